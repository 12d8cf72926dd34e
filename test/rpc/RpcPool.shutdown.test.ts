/**
 * The RPC pool's shutdown and its handling of dead sessions.
 * The server runs in this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil` (setImmediate
 * turns, never timers). Shared helpers: `rpcPoolFixtures.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { countingClock, quiet, range, rawServer, rpcError, serve, serverTls, settle, waitUntil } from "./rpcPoolFixtures.ts"

describe("RpcPool", () => {
  // -------------------------------------------------------------------------
  // shutdown and dead sessions
  // -------------------------------------------------------------------------

  describe("shutdown", () => {
    it.effect("closing the Layer's scope releases dial waiters, closes every session and refuses later calls", () =>
      Effect.gen(function*() {
        // Everything over TLS, so a dial to a listener that never answers the handshake stays in flight.
        const server = yield* serve({ tls: serverTls })
        const hang = yield* rawServer(() => {})
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          RpcPool.PoolLayer({ tls: { verify: false }, session: quiet }),
          scope
        )
        const run = <A, E>(effect: Effect.Effect<A, E, RpcPool.RpcPool>) => Effect.provide(effect, context)

        // A live session with a call in flight, and callers waiting on a dial that never finishes.
        yield* run(RpcPool.rpc(server.address, "Status.Ping", {}))
        const inFlight = yield* Effect.forkChild(
          Effect.exit(run(RpcPool.rpc(server.address, "Test.Sleep", { Millis: 30_000 })))
        )
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        const waiters = yield* Effect.forEach(
          range(3),
          () => Effect.forkChild(Effect.exit(run(RpcPool.rpc(hang.address, "Status.Ping", {})))),
        )
        yield* waitUntil(() => hang.accepted() === 1 && hang.open() === 1, "the dial to be in flight")
        yield* settle()
        assert.strictEqual(server.stats().live, 1)

        yield* Scope.close(scope, Exit.void)
        for (const waiter of waiters) {
          const error = rpcError(yield* Fiber.join(waiter))
          assert.strictEqual(error.reason, "PoolClosed")
          assert.strictEqual(error.address, hang.address)
          assert.isFalse(error.isRetryable)
        }
        const interrupted = rpcError(yield* Fiber.join(inFlight))
        assert.strictEqual(interrupted.reason, "PoolClosed")
        assert.strictEqual(interrupted.address, server.address)
        // Every socket the pool had is closed: the session's and the pending dial's.
        yield* waitUntil(() => server.stats().live === 0, "the server to see the session closed")
        yield* waitUntil(() => hang.open() === 0, "the pending dial's socket to close")

        const after = rpcError(yield* Effect.exit(run(RpcPool.rpc(server.address, "Status.Ping", {}))))
        assert.strictEqual(after.reason, "PoolClosed")
        assert.strictEqual(after.address, server.address)
        // Nothing was dialled after close.
        yield* settle()
        assert.strictEqual(server.stats().conns, 1)
        assert.strictEqual(hang.accepted(), 1)
      }))

    it.effect("leaves no timer of its own running after shutdown", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const clock = yield* countingClock
        const scope = yield* Scope.make()
        // The pool, its reaper and its sessions' timers see the counting clock; the test does not.
        const pool = yield* RpcPool.make({ maxTime: "10 seconds" }).pipe(
          Scope.provide(scope),
          Effect.provideService(Clock.Clock, clock)
        )
        yield* pool.rpc(server.address, "Status.Ping", {})
        yield* settle()
        // The reaper's and the session keepalive's sleeps at least.
        assert.isAtLeast(clock.sleeping(), 2)
        yield* Scope.close(scope, Exit.void)
        yield* settle()
        assert.strictEqual(clock.sleeping(), 0)
        yield* waitUntil(() => server.stats().live === 0, "the server to see the session closed")
        yield* TestClock.adjust("5 minutes")
        yield* settle()
        assert.strictEqual(server.stats().conns, 1, "nothing dialled after shutdown")
      }))

    it.effect("drops a session the server closed and dials a new one on the next call", () =>
      Effect.gen(function*() {
        const first = yield* Scope.make()
        const server = yield* serve().pipe(Scope.provide(first))
        const pool = yield* RpcPool.make({ session: quiet })
        yield* pool.rpc(server.address, "Status.Ping", {})
        yield* Scope.close(first, Exit.void)
        // The pool notices by itself, without a call.
        yield* waitUntil(() => Effect.runSync(pool.stats).sessions === 0, "the pool to drop the dead session")
        const again = yield* serve({ port: server.port })
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual(again.stats().conns, 1)
        const stats = yield* pool.stats
        assert.strictEqual(stats.dials, 2)
        assert.strictEqual(stats.sessions, 1)
      }))
  })
})
