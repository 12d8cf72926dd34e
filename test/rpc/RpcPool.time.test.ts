/**
 * The RPC pool on the clock: idle sessions reaped, and call deadlines (on monotonic time).
 * The server runs in this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil` (setImmediate
 * turns, never timers). Shared helpers: `rpcPoolFixtures.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { oneHour, onClock, steppedClock } from "../yamux/steppedClock.ts"
import { ping, quiet, rpcError, serve, settle, waitUntil } from "./rpcPoolFixtures.ts"

describe("RpcPool", () => {
  // -------------------------------------------------------------------------
  // reaping
  // -------------------------------------------------------------------------

  describe("reaping", () => {
    const options = { maxTime: "10 seconds", session: quiet } as const

    it.effect("closes a session idle for maxTime, not before", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make(options)
        yield* pool.rpc(server.address, "Status.Ping", {})
        yield* TestClock.adjust("9 seconds")
        yield* settle()
        assert.strictEqual((yield* pool.stats).sessions, 1, "open at maxTime - 1s")
        assert.strictEqual(server.stats().live, 1)
        // maxTime plus one reap interval.
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* pool.stats).sessions, 0, "reaped by maxTime + reapInterval")
        yield* waitUntil(() => server.stats().live === 0, "the server to see the connection closed")
        // The next call dials again.
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual((yield* pool.stats).dials, 2)
      }))

    it.effect("never reaps a session during a call, and counts idleness from the call's end", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make(options)
        const call = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 30_000 }))
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        yield* settle()
        yield* TestClock.adjust("25 seconds")
        yield* settle()
        assert.strictEqual((yield* pool.stats).sessions, 1, "kept during the call")
        assert.strictEqual(server.stats().live, 1)
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(call)
        // lastUsed was refreshed at t=30s.
        yield* TestClock.adjust("9 seconds")
        yield* settle()
        assert.strictEqual((yield* pool.stats).sessions, 1, "not reaped right after a long call")
        assert.strictEqual((yield* pool.stats).dials, 1)
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* pool.stats).sessions, 0)
        yield* waitUntil(() => server.stats().live === 0, "the server to see the connection closed")
      }))

    it.effect("ages sessions on monotonic time: a wall clock stepped forward an hour reaps nothing early, one stepped back still reaps at maxTime", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const stepped = yield* steppedClock
        const pool = yield* onClock(stepped)(RpcPool.make(options))
        yield* pool.rpc(server.address, "Status.Ping", {})
        stepped.step(oneHour)
        yield* TestClock.adjust("2 seconds")
        yield* settle()
        assert.strictEqual((yield* pool.stats).sessions, 1, "not reaped 2 s in, after the wall clock jumped an hour")
        // Now an hour behind where it started.
        stepped.step(-2 * oneHour)
        yield* TestClock.adjust("7 seconds")
        yield* settle()
        assert.strictEqual((yield* pool.stats).sessions, 1, "open at maxTime - 1s")
        yield* TestClock.adjust("2 seconds")
        assert.strictEqual((yield* pool.stats).sessions, 0, "reaped by maxTime + reapInterval, wall clock an hour back")
      }))
  })

  // -------------------------------------------------------------------------
  // call timeout
  // -------------------------------------------------------------------------

  describe("call timeout", () => {
    it.effect("fails with CallTimeout, discards the stream and keeps the session", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet })
        const call = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 5000 }, { timeout: "1 second" }))
        )
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        yield* TestClock.adjust("1 second")
        const error = rpcError(yield* Fiber.join(call))
        assert.strictEqual(error.reason, "CallTimeout")
        assert.strictEqual(error.address, server.address)
        assert.strictEqual(error.method, "Test.Sleep")
        assert.isTrue(error.sent)
        let stats = yield* pool.stats
        assert.strictEqual(stats.streamsIdle, 0, "the timed-out stream is not kept")
        assert.strictEqual(stats.streamsInUse, 0)
        assert.strictEqual(stats.sessions, 1)
        // Same session, new stream.
        yield* pool.rpc(server.address, "Status.Ping", {})
        stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(stats.streamsIdle, 1)
        assert.strictEqual(server.stats().streams, 2)
        assert.strictEqual(server.stats().conns, 1)
      }))

    it.effect("defaults to 60 seconds", () =>
      Effect.gen(function*() {
        assert.strictEqual(Duration.toMillis(RpcPool.defaultCallTimeout), 60_000)
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet })
        const call = yield* Effect.forkChild(Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 120_000 })))
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        yield* TestClock.adjust("59 seconds")
        yield* settle()
        assert.isUndefined(call.pollUnsafe(), "still waiting at 59 s")
        yield* TestClock.adjust("1 second")
        const error = rpcError(yield* Fiber.join(call))
        assert.strictEqual(error.reason, "CallTimeout")
      }))

    it.effect("ends a call at its deadline though the wall clock steps back an hour during it", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const stepped = yield* steppedClock
        const pool = yield* onClock(stepped)(RpcPool.make({ session: quiet }))
        // An idle stream client, so the call takes the fast lane, where only the pool's deadline timer bounds it.
        yield* pool.rpc(server.address, "Status.Ping", {})
        const call = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 120_000 }, { timeout: "5 seconds" }))
        )
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        stepped.step(-oneHour)
        yield* TestClock.adjust("4 seconds")
        yield* settle()
        assert.isUndefined(call.pollUnsafe(), "still waiting at 4 s")
        yield* TestClock.adjust("1 second")
        yield* settle()
        assert.isDefined(call.pollUnsafe(), "ended at 5 s")
        assert.strictEqual(rpcError(yield* Fiber.join(call)).reason, "CallTimeout")
      }))

    it.effect("a wall clock stepped forward an hour neither ends a call early nor keeps one past its deadline", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const stepped = yield* steppedClock
        const pool = yield* onClock(stepped)(RpcPool.make({ session: quiet }))
        // Two idle stream clients, so both calls take the fast lane, where only the pool's deadline timer bounds them.
        yield* Effect.all([ping(pool, server.address), ping(pool, server.address)], { concurrency: 2 })
        assert.strictEqual((yield* pool.stats).streamsIdle, 2)
        const long = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 120_000 }, { timeout: "60 seconds" }))
        )
        yield* waitUntil(() => server.sleeping() === 1, "the first call to reach the server")
        stepped.step(oneHour)
        // A shorter deadline after the step wakes the pool's timer at 1 s.
        const short = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 120_000 }, { timeout: "1 second" }))
        )
        yield* waitUntil(() => server.sleeping() === 2, "the second call to reach the server")
        yield* TestClock.adjust("1 second")
        yield* settle()
        assert.isDefined(short.pollUnsafe(), "the 1 s call ended at 1 s")
        assert.strictEqual(rpcError(yield* Fiber.join(short)).reason, "CallTimeout")
        assert.isUndefined(long.pollUnsafe(), "the 60 s call still runs at 1 s")
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual(rpcError(yield* Fiber.join(long)).reason, "CallTimeout")
      }))
  })
})
