import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import type { TurnWaiter } from "../../src/pool/Turns.ts"
import { Turns } from "../../src/pool/Turns.ts"
import { settle } from "./utils.ts"

const waiter = (label: string, log: Array<string>): TurnWaiter => ({
  turnsNext: undefined,
  turnsPrev: undefined,
  turnsQueued: false,
  turnsDeadline: 0,
  onTurn: () => log.push(`${label}:turn`),
  onTurnTimeout: () => log.push(`${label}:timeout`),
  onTurnsClosed: () => log.push(`${label}:closed`)
})

describe("Turns", () => {
  it("tryTake takes free turns without waiting and fails when none is free", () => {
    const turns = new Turns(2)
    assert.isTrue(turns.tryTake())
    assert.isTrue(turns.tryTake())
    assert.isFalse(turns.tryTake())
    turns.release()
    assert.strictEqual(turns.free, 1)
  })

  it("release hands the turn to the first waiter instead of freeing it", () => {
    const log: Array<string> = []
    const turns = new Turns(1)
    turns.tryTake()
    const a = waiter("a", log)
    const b = waiter("b", log)
    turns.enqueue(a, Infinity)
    turns.enqueue(b, Infinity)
    turns.release()
    assert.deepStrictEqual(log, ["a:turn"])
    assert.strictEqual(turns.free, 0)
    assert.isFalse(turns.tryTake(), "a newcomer cannot overtake the queue")
    assert.isFalse(a.turnsQueued)
    turns.release()
    turns.release()
    assert.deepStrictEqual(log, ["a:turn", "b:turn"])
    assert.strictEqual(turns.free, 1)
    assert.strictEqual(turns.waiters, 0)
  })

  it("cancel removes a queued waiter, and only once", () => {
    const log: Array<string> = []
    const turns = new Turns(1)
    turns.tryTake()
    const [a, b, c] = [waiter("a", log), waiter("b", log), waiter("c", log)]
    turns.enqueue(a, Infinity)
    turns.enqueue(b, Infinity)
    turns.enqueue(c, Infinity)
    assert.isTrue(turns.cancel(b))
    assert.isFalse(turns.cancel(b))
    turns.release()
    turns.release()
    assert.deepStrictEqual(log, ["a:turn", "c:turn"])
  })

  it("expire times out the waiters whose deadline has passed, oldest first", () => {
    const log: Array<string> = []
    const turns = new Turns(1)
    turns.tryTake()
    turns.enqueue(waiter("a", log), 100)
    turns.enqueue(waiter("b", log), 200)
    turns.expire(150)
    assert.deepStrictEqual(log, ["a:timeout"])
    turns.expire(200)
    assert.deepStrictEqual(log, ["a:timeout", "b:timeout"])
    turns.release()
    assert.strictEqual(turns.free, 1)
  })

  it("drain tells every queued waiter the turns closed", () => {
    const log: Array<string> = []
    const turns = new Turns(1)
    turns.tryTake()
    turns.enqueue(waiter("a", log), Infinity)
    turns.enqueue(waiter("b", log), Infinity)
    turns.drain()
    assert.deepStrictEqual(log, ["a:closed", "b:closed"])
    assert.strictEqual(turns.waiters, 0)
  })

  it.effect("the timer expires each waiter at its deadline with one fiber", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000
      const log: Array<string> = []
      const turns = new Turns(1)
      turns.tryTake()
      yield* Effect.forkChild(turns.timer(clock, now))
      yield* settle
      turns.enqueue(waiter("a", log), now() + 4000)
      yield* TestClock.adjust("1 second")
      turns.enqueue(waiter("b", log), now() + 4000)
      yield* TestClock.adjust("2999 millis")
      assert.deepStrictEqual(log, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(log, ["a:timeout"])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(log, ["a:timeout", "b:timeout"])
      turns.enqueue(waiter("c", log), now() + 4000)
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(log, ["a:timeout", "b:timeout", "c:timeout"])
    }))
})
