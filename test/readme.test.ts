/**
 * The README's examples, run as tests so the README stays true.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { RpcPool, TestService } from "../src/index.ts"

// Lets loopback I/O through between TestClock steps; not a sleep.
const flushIo = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve))).pipe(
  Effect.repeat(Schedule.recurs(20))
)

describe("README", () => {
  it.effect("provides PoolLayer and retries only what is safe to retry", () =>
    Effect.gen(function*() {
      const server = yield* TestService.serve()
      const leader = RpcPool.rpc(server.address, "Status.Leader", {}).pipe(
        Effect.retry({
          schedule: Schedule.exponential("100 millis"),
          times: 3,
          while: (error) => error.isRetryable
        })
      )
      assert.strictEqual(yield* leader.pipe(Effect.provide(RpcPool.PoolLayer())), server.address)
    }))

  it.effect("reaps an idle session after maxTime, driven by TestClock", () =>
    Effect.gen(function*() {
      const server = yield* TestService.serve()
      yield* Effect.gen(function*() {
        yield* RpcPool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual((yield* RpcPool.stats).sessions, 1)

        yield* TestClock.adjust("9 seconds")
        yield* flushIo
        assert.strictEqual((yield* RpcPool.stats).sessions, 1)

        yield* TestClock.adjust("2 seconds")
        yield* flushIo
        assert.strictEqual((yield* RpcPool.stats).sessions, 0)
      }).pipe(Effect.provide(RpcPool.PoolLayer({ maxTime: "10 seconds" })))
    }))
})
