import { assert, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"

it.effect("TestClock drives sleep", () =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.sleep("1 second").pipe(Effect.as(42)))
    yield* TestClock.adjust("1 second")
    assert.strictEqual(yield* Fiber.join(fiber), 42)
  }))
