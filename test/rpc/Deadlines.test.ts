import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Deadlines } from "../../src/rpc/Deadlines.ts"
import { oneHour, onClock, steppedClock } from "../yamux/steppedClock.ts"

const make = Effect.gen(function*() {
  const runFork = Effect.runForkWith(yield* Effect.context<never>())
  const deadlines = new Deadlines(yield* Clock.Clock, (effect) => runFork(effect))
  yield* Effect.addFinalizer(() => Effect.sync(() => deadlines.clear()))
  return deadlines
})

describe("Deadlines", () => {
  it.effect("leaves no timer running after clear when a due entry fires at once and the next one is scheduled", () =>
    Effect.gen(function*() {
      const context = yield* Effect.context<never>()
      const forked: Array<Fiber.Fiber<void>> = []
      const runFork = Effect.runForkWith(context)
      const deadlines = new Deadlines(yield* Clock.Clock, (effect) => {
        const fiber = runFork(effect)
        forked.push(fiber)
        return fiber
      })
      const fired: Array<string> = []
      deadlines.add(1000, Effect.sync(() => fired.push("later")))
      // Due now: TestClock's sleep(0) returns at once, so it fires inside the fork.
      deadlines.add(0, Effect.sync(() => fired.push("now")))
      assert.deepStrictEqual(fired, ["now"])
      deadlines.clear()
      yield* Effect.yieldNow
      assert.deepStrictEqual(forked.filter((fiber) => fiber.pollUnsafe() === undefined).length, 0, "a sleeper outlived clear")
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(fired, ["now"])
    }))

  it.effect("expires an entry whose deadline lies a float rounding error past a frozen clock, with no recursion", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      // The clock at exactly 2656.000001 ms; the call began at 1776.000001 ms with an 880 ms timeout:
      // in floats its deadline is 2656.0000010000003, not due, yet under half a nanosecond away, so a
      // sleep for the rest rounds to zero and fired at once, again and again, until the stack overflowed.
      yield* TestClock.adjust(Duration.nanos(2_656_000_001n))
      const now = deadlines.now()
      const fired: Array<string> = []
      const entry = deadlines.add(880, Effect.sync(() => fired.push("late")), 1776.000001)
      assert.isAbove(entry.at, now)
      yield* TestClock.adjust(Duration.nanos(1n))
      assert.deepStrictEqual(fired, ["late"])
      // The timer still works after it.
      deadlines.add(10, Effect.sync(() => fired.push("next")))
      yield* TestClock.adjust(10)
      assert.deepStrictEqual(fired, ["late", "next"])
    }))

  it.effect("runs an entry's expire at its deadline and not before", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<string> = []
      const entry = deadlines.add(1000, Effect.sync(() => fired.push("a")))
      yield* TestClock.adjust(999)
      assert.deepStrictEqual(fired, [])
      assert.isFalse(entry.expired)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(fired, ["a"])
      assert.isTrue(entry.expired)
      assert.strictEqual(deadlines.size, 0)
    }))

  it.effect("never expires a removed entry, and still expires the ones after it", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<string> = []
      const first = deadlines.add(1000, Effect.sync(() => fired.push("first")))
      yield* TestClock.adjust(500)
      deadlines.add(1000, Effect.sync(() => fired.push("second")))
      deadlines.remove(first)
      yield* TestClock.adjust(600)
      assert.deepStrictEqual(fired, [])
      yield* TestClock.adjust(400)
      assert.deepStrictEqual(fired, ["second"])
    }))

  it.effect("wakes early for a shorter deadline registered after a longer one", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<string> = []
      deadlines.add(60_000, Effect.sync(() => fired.push("long")))
      deadlines.add(100, Effect.sync(() => fired.push("short")))
      yield* TestClock.adjust(100)
      assert.deepStrictEqual(fired, ["short"])
      yield* TestClock.adjust(59_900)
      assert.deepStrictEqual(fired, ["short", "long"])
    }))

  it.effect("expires every entry due at one wake, across durations, in deadline order per duration", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<number> = []
      for (let i = 0; i < 5; i++) deadlines.add(200, Effect.sync(() => fired.push(i)))
      deadlines.add(100, Effect.sync(() => fired.push(-1)))
      yield* TestClock.adjust(200)
      assert.deepStrictEqual(fired, [-1, 0, 1, 2, 3, 4])
      assert.strictEqual(deadlines.size, 0)
    }))

  it.effect("clear stops the timer: nothing left expires", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<string> = []
      deadlines.add(100, Effect.sync(() => fired.push("a")))
      deadlines.clear()
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(fired, [])
    }))
})

describe("Deadlines under a wall clock that steps", () => {
  it.effect("a wall clock stepped back an hour does not delay an expiry", () =>
    Effect.gen(function*() {
      const stepped = yield* steppedClock
      const deadlines = yield* onClock(stepped)(make)
      const fired: Array<string> = []
      deadlines.add(1000, Effect.sync(() => fired.push("a")))
      yield* TestClock.adjust(500)
      stepped.step(-oneHour)
      yield* TestClock.adjust(499)
      assert.deepStrictEqual(fired, [])
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(fired, ["a"])
    }))

  it.effect("a wall clock stepped forward an hour expires nothing early", () =>
    Effect.gen(function*() {
      const stepped = yield* steppedClock
      const deadlines = yield* onClock(stepped)(make)
      const fired: Array<string> = []
      deadlines.add(60_000, Effect.sync(() => fired.push("long")))
      stepped.step(oneHour)
      // A shorter deadline wakes the timer after the step: the long one is not due at that wake.
      deadlines.add(1000, Effect.sync(() => fired.push("short")))
      yield* TestClock.adjust(1000)
      assert.deepStrictEqual(fired, ["short"])
      yield* TestClock.adjust(58_999)
      assert.deepStrictEqual(fired, ["short"])
      yield* TestClock.adjust(1)
      assert.deepStrictEqual(fired, ["short", "long"])
    }))
})

describe("Deadlines bookkeeping", () => {
  it.effect("forgets a duration once its last entry is removed, and a reused duration still expires", () =>
    Effect.gen(function*() {
      const deadlines = yield* make
      const fired: Array<number> = []
      for (let i = 0; i < 100; i++) deadlines.remove(deadlines.add(1000 + i, Effect.sync(() => fired.push(i))))
      assert.strictEqual(deadlines.size, 0)
      assert.strictEqual(deadlines.durations, 0)
      deadlines.add(1000, Effect.sync(() => fired.push(-1)))
      yield* TestClock.adjust(2000)
      assert.deepStrictEqual(fired, [-1])
    }))
})
