import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect } from "effect"
import { Millis, reusesReadings } from "../../src/pool/Millis.ts"

/** A clock that advances one millisecond at every monotonic reading, and counts them. */
const countingClock = () => {
  let reads = 0
  const monotonic = () => BigInt(++reads) * 1_000_000n
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => reads,
    currentTimeMillis: Effect.sync(() => reads),
    currentTimeNanosUnsafe: monotonic,
    currentTimeNanos: Effect.sync(monotonic),
    monotonicTimeNanosUnsafe: monotonic,
    monotonicTimeNanos: Effect.sync(monotonic),
    sleep: () => Effect.void
  }
  return { clock, reads: () => reads }
}

/** Lets the current task end: the microtasks queued so far run first. */
const nextTask = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

describe("Millis", () => {
  it.effect("reusing readings, now() reads the clock once per task and afresh in the next", () =>
    Effect.gen(function*() {
      const { clock, reads } = countingClock()
      const millis = new Millis(clock, true)
      assert.strictEqual(millis.now(), 1)
      assert.strictEqual(millis.now(), 1)
      assert.strictEqual(reads(), 1)
      yield* nextTask
      assert.strictEqual(millis.now(), 2)
      assert.strictEqual(millis.now(), 2)
      assert.strictEqual(reads(), 2)
    }))

  it.effect("a microtask checkpoint ends the reuse too", () =>
    Effect.gen(function*() {
      const { clock, reads } = countingClock()
      const millis = new Millis(clock, true)
      millis.now()
      yield* Effect.promise(() => Promise.resolve())
      assert.strictEqual(millis.now(), 2)
      assert.strictEqual(reads(), 2)
    }))

  it.effect("fresh() reads the clock every time, and now() reuses its latest reading in the task", () =>
    Effect.gen(function*() {
      const { clock, reads } = countingClock()
      const millis = new Millis(clock, true)
      assert.strictEqual(millis.now(), 1)
      assert.strictEqual(millis.fresh(), 2)
      assert.strictEqual(millis.fresh(), 3)
      assert.strictEqual(millis.now(), 3)
      assert.strictEqual(reads(), 3)
    }))

  it.effect("without reuse every reading is fresh", () =>
    Effect.sync(() => {
      const { clock, reads } = countingClock()
      const millis = new Millis(clock, false)
      assert.deepStrictEqual([millis.now(), millis.now(), millis.fresh()], [1, 2, 3])
      assert.strictEqual(reads(), 3)
    }))

  it.effect("reuses readings of effect's default clock only, never of TestClock or a custom clock", () =>
    Effect.gen(function*() {
      assert.isTrue(reusesReadings(Context.get(Context.empty(), Clock.Clock)))
      assert.isFalse(reusesReadings(yield* Clock.clockWith(Effect.succeed)), "it.effect's TestClock")
      assert.isFalse(reusesReadings(countingClock().clock))
    }))
})
