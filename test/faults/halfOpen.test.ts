/**
 * Fault: a half-open connection. The peer stops responding without FIN or RST (a partition,
 * a frozen process, a NAT that forgot the flow), so the socket looks healthy and no event
 * ever says otherwise. A proxy in front of the real server makes the link go silent.
 *
 * Promise: every call ends at its deadline (CallTimeout) or when keepalive gives up on the
 * session (ConnectionLost), whichever comes first; keepalive (a ping every 30 s, 10 s to
 * answer) closes the session, the pool drops it, and the next call dials afresh. The session
 * level alone is in test/yamux/Session.badPeers.test.ts ("silence (the keepalive catches it)").
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { MuxError } from "../../src/mux/MuxError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { flush, proxy, rpcErrorOf, serve, until } from "./helpers.ts"

const sessions = (pool: RpcPool.RpcPool.Service) => Effect.runSync(pool.stats).sessions

describe("half-open connection", () => {
  it.effect("calls end at their deadline, keepalive closes the session at 30 s + 10 s, the next call redials", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const link = yield* proxy(server.port)
      // Keepalive at yamux's defaults: a ping every 30 s, 10 s to answer.
      const pool = yield* RpcPool.make({ callTimeout: "5 seconds" })
      yield* pool.rpc(link.address, "Status.Ping", {})

      yield* link.blackhole
      const short = yield* Effect.forkChild(Effect.exit(pool.rpc(link.address, "Status.Ping", {})))
      const long = yield* Effect.forkChild(Effect.exit(pool.rpc(link.address, "Status.Ping", {}, { timeout: "2 minutes" })))
      yield* until("both calls to be in flight", () => Effect.runSync(pool.stats).streamsInUse === 2)

      yield* TestClock.adjust("5 seconds")
      const timedOut = rpcErrorOf(yield* Fiber.join(short))
      assert.strictEqual(timedOut.reason, "CallTimeout")
      assert.isTrue(timedOut.sent, "the request went into the silent socket")
      assert.isFalse(timedOut.isRetryable)
      // Nothing on the socket says the peer is gone: the session is still in the pool.
      assert.strictEqual(sessions(pool), 1)

      // t = 30 s: the keepalive ping goes out and is never answered.
      yield* TestClock.adjust("25 seconds")
      yield* flush()
      assert.strictEqual(sessions(pool), 1)
      assert.isUndefined(long.pollUnsafe())
      yield* TestClock.adjust("9999 millis")
      yield* flush()
      assert.strictEqual(sessions(pool), 1, "the ping has 10 s")
      assert.isUndefined(long.pollUnsafe())
      // t = 40 s: the session is closed, and the call with the 2-minute deadline ends with it.
      yield* TestClock.adjust("1 millis")
      const lost = rpcErrorOf(yield* Fiber.join(long))
      assert.strictEqual(lost.reason, "ConnectionLost")
      assert.instanceOf(lost.cause, MuxError)
      assert.strictEqual((lost.cause as MuxError).reason, "KeepAliveTimeout")
      yield* until("the pool to drop the session", () => sessions(pool) === 0)

      yield* pool.rpc(link.address, "Status.Ping", {})
      const stats = yield* pool.stats
      assert.strictEqual(stats.dials, 2)
      assert.strictEqual(stats.sessions, 1)
      assert.deepStrictEqual(stats.failures, { CallTimeout: 1, ConnectionLost: 1 })
      assert.strictEqual(link.accepted(), 2)
    }))

  it.effect("an idle session to a silent peer is dropped by keepalive before a caller meets it", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const link = yield* proxy(server.port)
      const pool = yield* RpcPool.make({ callTimeout: "5 seconds" })
      yield* pool.rpc(link.address, "Status.Ping", {})
      yield* link.blackhole
      yield* TestClock.adjust("30 seconds")
      yield* flush()
      yield* TestClock.adjust("10 seconds")
      yield* until("the pool to drop the session", () => sessions(pool) === 0)
      // The next caller dials at once and never waits on the dead link.
      yield* pool.rpc(link.address, "Status.Ping", {})
      const stats = yield* pool.stats
      assert.deepStrictEqual(stats.failures, {})
      assert.strictEqual(stats.dials, 2)
      assert.strictEqual(stats.ok, 2)
    }))
})
