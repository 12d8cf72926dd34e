import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Progress from "../../src/cli/progress.ts"

const capture = () => {
  const out: Array<string> = []
  return { out, write: (text: string) => void out.push(text) }
}

describe("progress", () => {
  it.effect("on a terminal redraws one bar in place, throttled, and ends it with a newline", () =>
    Effect.gen(function*() {
      const { out, write } = capture()
      const scope = yield* Scope.make()
      const progress = yield* Progress.make({ label: "bench", total: 100, tty: true, write }).pipe(Scope.provide(scope))
      for (let i = 0; i < 40; i++) progress.record(true)
      assert.lengthOf(out, 0)
      yield* TestClock.adjust("100 millis")
      assert.lengthOf(out, 1)
      assert.match(out[0]!, /^\r\x1b\[2Kbench \[#+-+\] 40% 40\/100 calls/)
      for (let i = 0; i < 60; i++) progress.record(i % 2 === 0)
      yield* TestClock.adjust("50 millis")
      assert.lengthOf(out, 1)
      yield* TestClock.adjust("50 millis")
      assert.lengthOf(out, 2)
      yield* Scope.close(scope, Exit.void)
      const last = out[out.length - 1]!
      assert.match(last, /100% 100\/100 calls .*30 failed\n$/)
    }))

  it.effect("off a terminal prints plain lines every 2 seconds and no carriage returns", () =>
    Effect.gen(function*() {
      const { out, write } = capture()
      const scope = yield* Scope.make()
      const progress = yield* Progress.make({ label: "bench", total: 10, tty: false, write }).pipe(Scope.provide(scope))
      progress.record(true)
      yield* TestClock.adjust("1 second")
      assert.lengthOf(out, 0)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(out, ["bench: 1/10 calls (10%), 1 calls/s, 2.0s\n"])
      yield* TestClock.adjust("2 seconds")
      assert.lengthOf(out, 2)
      yield* Scope.close(scope, Exit.void)
      assert.lengthOf(out, 3)
      assert.isFalse(out.some((line) => line.includes("\r")))
    }))

  it.effect("off a terminal a run shorter than one interval prints nothing", () =>
    Effect.gen(function*() {
      const { out, write } = capture()
      const scope = yield* Scope.make()
      const progress = yield* Progress.make({ label: "bench", total: 1, tty: false, write }).pipe(Scope.provide(scope))
      progress.record(true)
      yield* Scope.close(scope, Exit.void)
      assert.lengthOf(out, 0)
    }))

  it.effect("a run bounded by time shows the elapsed fraction", () =>
    Effect.gen(function*() {
      const { out, write } = capture()
      const scope = yield* Scope.make()
      yield* Progress.make({ label: "bench", duration: Progress.PlainRefreshInterval, tty: true, write }).pipe(
        Scope.provide(scope)
      )
      yield* TestClock.adjust("1 second")
      assert.match(out[out.length - 1]!, / 50% 0 calls/)
      yield* Scope.close(scope, Exit.void)
    }))
})
