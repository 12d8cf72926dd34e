/**
 * The RPC pool's errors: each lower-layer failure as one typed RpcError with its reason and
 * isRetryable.
 * The server runs in this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil` (setImmediate
 * turns, never timers). Shared helpers: `rpcPoolFixtures.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { deadPort, quiet, rawServer, rpcError, serve, serverTls, waitUntil } from "./rpcPoolFixtures.ts"

describe("RpcPool", () => {
  // -------------------------------------------------------------------------
  // errors
  // -------------------------------------------------------------------------

  describe("errors", () => {
    it.effect("a remote error carries the server's message, is not retryable and closes only its stream", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        const error = rpcError(yield* Effect.exit(pool.rpc(server.address, "Test.Fail", { Message: "boom" })))
        assert.strictEqual(error.reason, "RemoteError")
        assert.strictEqual(error.detail, "boom")
        assert.include(error.message, "boom")
        assert.strictEqual(error.method, "Test.Fail")
        assert.strictEqual(error.address, server.address)
        assert.isTrue(error.sent)
        assert.isFalse(error.isRetryable)
        // Consul closes the stream after any error (issue 3: "on any error close that stream").
        let stats = yield* pool.stats
        assert.strictEqual(stats.streamsIdle, 0)
        assert.strictEqual(stats.streamsInUse, 0)
        assert.strictEqual(stats.sessions, 1)
        assert.strictEqual(stats.failures.RemoteError, 1)
        // The session is fine: the next call opens a new stream on it.
        yield* pool.rpc(server.address, "Status.Ping", {})
        stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(stats.streamsIdle, 1)
        assert.strictEqual(server.stats().conns, 1)
        assert.strictEqual(server.stats().streams, 2)
      }))

    it.effect("isRetryable is true for a refused dial and false for a timeout after the request was sent", () =>
      Effect.gen(function*() {
        const port = yield* deadPort
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet })
        const refused = rpcError(yield* Effect.exit(pool.rpc(`127.0.0.1:${port}`, "Status.Ping", {})))
        assert.strictEqual(refused.reason, "DialFailed")
        assert.isTrue(refused.isRetryable)
        const call = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 5000 }, { timeout: "1 second" }))
        )
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        yield* TestClock.adjust("1 second")
        const timedOut = rpcError(yield* Fiber.join(call))
        assert.strictEqual(timedOut.reason, "CallTimeout")
        assert.isFalse(timedOut.isRetryable)
      }))

    it.effect("a timeout before anything was sent is retryable", () =>
      Effect.gen(function*() {
        // TLS against a listener that never answers: the dial stays in flight.
        const raw = yield* rawServer(() => {})
        const pool = yield* RpcPool.make({ tls: { verify: false } })
        const call = yield* Effect.forkChild(
          Effect.exit(pool.rpc(raw.address, "Status.Ping", {}, { timeout: "1 second" }))
        )
        yield* waitUntil(() => raw.accepted() === 1, "the dial to connect")
        yield* TestClock.adjust("1 second")
        const error = rpcError(yield* Fiber.join(call))
        assert.strictEqual(error.reason, "CallTimeout")
        assert.isFalse(error.sent)
        assert.isTrue(error.isRetryable)
      }))

    it.effect("each run of the same rpc effect reports whether its own request was sent", () =>
      Effect.gen(function*() {
        const first = yield* Scope.make()
        const server = yield* serve({ tls: serverTls }).pipe(Scope.provide(first))
        const pool = yield* RpcPool.make({ tls: { verify: false }, session: quiet })
        const call = pool.rpc(server.address, "Test.Sleep", { Millis: 5000 }, { timeout: "1 second" })

        const run1 = yield* Effect.forkChild(Effect.exit(call))
        yield* waitUntil(() => server.sleeping() === 1, "the first run to reach the server")
        yield* TestClock.adjust("1 second")
        const sent = rpcError(yield* Fiber.join(run1))
        assert.strictEqual(sent.reason, "CallTimeout")
        assert.isTrue(sent.sent)

        // Same address, now a listener that never finishes the TLS handshake.
        yield* Scope.close(first, Exit.void)
        yield* waitUntil(() => Effect.runSync(pool.stats).sessions === 0, "the pool to drop the dead session")
        const hang = yield* rawServer(() => {}, server.port)
        const run2 = yield* Effect.forkChild(Effect.exit(call))
        yield* waitUntil(() => hang.accepted() === 1, "the second run to be dialling")
        yield* TestClock.adjust("1 second")
        const unsent = rpcError(yield* Fiber.join(run2))
        assert.strictEqual(unsent.reason, "CallTimeout")
        assert.isFalse(unsent.sent, "the second run never sent its request")
        assert.isTrue(unsent.isRetryable)
      }))

    it.effect("a call timeout that is not a duration >= 0 fails with a typed InvalidOption, sending nothing", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        for (const timeout of ["banana", -1, Number.NaN, "-5 seconds"]) {
          // Called directly, not under Effect.suspend: a throw here would be the bug.
          const error = rpcError(yield* Effect.exit(pool.rpc(server.address, "Status.Ping", {}, { timeout: timeout as Duration.Input })))
          assert.strictEqual(error.reason, "InvalidOption")
          assert.strictEqual(error.address, server.address)
          assert.strictEqual(error.method, "Status.Ping")
          assert.include(error.message, "timeout")
          assert.isFalse(error.sent)
          assert.isFalse(error.isRetryable)
        }
        assert.strictEqual(server.stats().conns, 0, "nothing dialled")
      }))

    it.effect("a malformed address fails with a typed error", () =>
      Effect.gen(function*() {
        const pool = yield* RpcPool.make()
        const error = rpcError(yield* Effect.exit(pool.rpc("no-port", "Status.Ping", {})))
        assert.strictEqual(error.reason, "DialFailed")
        assert.strictEqual(error.address, "no-port")
      }))
  })
})
