import { assert, describe, it } from "@effect/vitest"
import type { Scheduler } from "effect"
import type { Wakeable } from "../../src/pool/Wakeups.ts"
import { Wakeups, wakeupsPerTask } from "../../src/pool/Wakeups.ts"

/** A dispatcher whose tasks run only when the test says so. */
const manualDispatcher = () => {
  const tasks: Array<() => void> = []
  const dispatcher: Scheduler.SchedulerDispatcher = {
    scheduleTask: (task) => {
      tasks.push(task)
    },
    flush: () => {
      while (tasks.length > 0) tasks.shift()!()
    }
  }
  const runNext = () => tasks.shift()!()
  return { dispatcher, tasks, runNext }
}

const waiter = (label: string, log: Array<string>, onWake?: () => void): Wakeable => ({
  wakeNow: () => {
    log.push(label)
    onWake?.()
  }
})

describe("Wakeups", () => {
  it("wakes nobody inline, then everyone queued in one task, in order", () => {
    const { dispatcher, runNext, tasks } = manualDispatcher()
    const log: Array<string> = []
    const wakeups = new Wakeups()
    wakeups.add(waiter("a", log), dispatcher)
    wakeups.add(waiter("b", log), dispatcher)
    assert.deepStrictEqual(log, [])
    assert.strictEqual(tasks.length, 1)
    runNext()
    assert.deepStrictEqual(log, ["a", "b"])
    assert.strictEqual(tasks.length, 0)
  })

  it("runs the wake-ups a wake-up causes in the same task, after those already queued", () => {
    const { dispatcher, runNext, tasks } = manualDispatcher()
    const log: Array<string> = []
    const wakeups = new Wakeups()
    wakeups.add(waiter("a", log, () => wakeups.add(waiter("c", log), dispatcher)), dispatcher)
    wakeups.add(waiter("b", log), dispatcher)
    runNext()
    assert.deepStrictEqual(log, ["a", "b", "c"])
    assert.strictEqual(tasks.length, 0)
  })

  it("leaves the rest to a new task after wakeupsPerTask wake-ups", () => {
    const { dispatcher, runNext, tasks } = manualDispatcher()
    let woken = 0
    const wakeups = new Wakeups()
    // Each wake-up causes the next, as hand-offs under contention do.
    const chain: Wakeable = {
      wakeNow: () => {
        woken++
        if (woken < 3 * wakeupsPerTask) wakeups.add(chain, dispatcher)
      }
    }
    wakeups.add(chain, dispatcher)
    runNext()
    assert.strictEqual(woken, wakeupsPerTask)
    assert.strictEqual(tasks.length, 1)
    runNext()
    assert.strictEqual(woken, 2 * wakeupsPerTask)
    runNext()
    assert.strictEqual(woken, 3 * wakeupsPerTask)
    assert.strictEqual(tasks.length, 0)
  })

  it("a wake-up that throws does not strand the ones after it", () => {
    const { dispatcher, runNext, tasks } = manualDispatcher()
    const log: Array<string> = []
    const wakeups = new Wakeups()
    wakeups.add(waiter("a", log, () => {
      throw new Error("boom")
    }), dispatcher)
    wakeups.add(waiter("b", log), dispatcher)
    assert.throws(runNext, "boom")
    assert.strictEqual(tasks.length, 1)
    runNext()
    assert.deepStrictEqual(log, ["a", "b"])
  })
})
