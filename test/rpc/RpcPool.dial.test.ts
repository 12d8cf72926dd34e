/**
 * The RPC pool's dial limiter (one dial per server however many callers) and its one retry when a
 * stream fails to open.
 * The server runs in this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil` (setImmediate
 * turns, never timers). Shared helpers: `rpcPoolFixtures.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { deadPort, fakeYamux, field, quiet, range, rawServer, rpcError, serve, settle, waitUntil } from "./rpcPoolFixtures.ts"

describe("RpcPool", () => {
  // -------------------------------------------------------------------------
  // dial limiter
  // -------------------------------------------------------------------------

  describe("dial limiter", () => {
    it.effect("100 concurrent first callers make exactly one dial", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        yield* Effect.forEach(range(100), () => pool.rpc(server.address, "Status.Ping", {}), {
          concurrency: "unbounded",
          discard: true
        })
        assert.strictEqual(server.stats().conns, 1)
        const stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(stats.ok, 100)
      }))

    it.effect("the leader's dial failure reaches every waiter, naming the address", () =>
      Effect.gen(function*() {
        const port = yield* deadPort
        const address = `127.0.0.1:${port}`
        const pool = yield* RpcPool.make()
        const exits = yield* Effect.forEach(range(100), () => Effect.exit(pool.rpc(address, "Status.Ping", {})), {
          concurrency: "unbounded"
        })
        for (const exit of exits) {
          const error = rpcError(exit)
          assert.strictEqual(error.reason, "DialFailed")
          assert.strictEqual(error.address, address)
          assert.include(error.message, address)
          assert.isFalse(error.sent)
        }
        const stats = yield* pool.stats
        assert.strictEqual(stats.dialFailures, 1)
        assert.strictEqual(stats.dials, 0)
        assert.strictEqual(stats.failures.DialFailed, 100)
      }))

    it.effect("100 callers behind a failing dial make one connection attempt", () =>
      Effect.gen(function*() {
        // Accepts and drops at once: the TLS handshake behind the preamble fails.
        const raw = yield* rawServer((socket) => socket.destroy())
        const pool = yield* RpcPool.make({ tls: { verify: false } })
        const exits = yield* Effect.forEach(range(100), () => Effect.exit(pool.rpc(raw.address, "Status.Ping", {})), {
          concurrency: "unbounded"
        })
        for (const exit of exits) {
          const error = rpcError(exit)
          assert.strictEqual(error.reason, "DialFailed")
          assert.strictEqual(error.address, raw.address)
        }
        assert.strictEqual(raw.accepted(), 1)
        assert.strictEqual((yield* pool.stats).dialFailures, 1)
      }))

    it.effect("a dial that does not finish within dialTimeout (default 10 s) fails every waiter with DialTimeout", () =>
      Effect.gen(function*() {
        assert.strictEqual(Duration.toMillis(RpcPool.defaultDialTimeout), 10_000)
        // TLS against a listener that never answers the handshake: the dial stays in flight.
        const raw = yield* rawServer(() => {})
        const pool = yield* RpcPool.make({ tls: { verify: false } })
        const callers = yield* Effect.forEach(
          range(20),
          () => Effect.forkChild(Effect.exit(pool.rpc(raw.address, "Status.Ping", {})))
        )
        yield* waitUntil(() => raw.accepted() === 1, "the dial to connect")
        yield* TestClock.adjust("9 seconds")
        yield* settle()
        assert.isTrue(callers.every((caller) => caller.pollUnsafe() === undefined), "still dialling at 9 s")
        yield* TestClock.adjust("1 second")
        for (const caller of callers) {
          const error = rpcError(yield* Fiber.join(caller))
          assert.strictEqual(error.reason, "DialTimeout")
          assert.strictEqual(error.address, raw.address)
          assert.isTrue(error.isRetryable)
        }
        assert.strictEqual(raw.accepted(), 1)
        assert.strictEqual((yield* pool.stats).dialFailures, 1)
        yield* waitUntil(() => raw.open() === 0, "the abandoned connection to close")
      }))

    it.effect("a caller interrupted during the dial does not cancel it for the others", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        const leader = yield* Effect.forkChild(pool.rpc(server.address, "Status.Ping", {}))
        const follower = yield* Effect.forkChild(pool.rpc(server.address, "Status.Ping", {}))
        yield* waitUntil(() => pool.stats.pipe(Effect.runSync).calls === 2, "both callers to start")
        // Nothing has reached the server yet: the dial is in flight.
        assert.strictEqual(server.stats().conns, 0)
        assert.strictEqual((yield* pool.stats).dials, 0)
        yield* Fiber.interrupt(leader)
        const leaderExit = yield* Fiber.await(leader)
        assert.isTrue(Exit.isFailure(leaderExit) && Cause.hasInterruptsOnly(leaderExit.cause))
        yield* Fiber.join(follower)
        assert.strictEqual((yield* pool.stats).dials, 1)
        assert.strictEqual(server.stats().conns, 1)
      }))

    it.effect("a dial whose only caller was interrupted still lands in the pool", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        const caller = yield* Effect.forkChild(pool.rpc(server.address, "Status.Ping", {}))
        yield* waitUntil(() => pool.stats.pipe(Effect.runSync).calls === 1, "the caller to start")
        yield* Fiber.interrupt(caller)
        yield* waitUntil(() => pool.stats.pipe(Effect.runSync).sessions === 1, "the dial to finish")
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual((yield* pool.stats).dials, 1)
        assert.strictEqual(server.stats().conns, 1)
      }))
  })

  // -------------------------------------------------------------------------
  // the one retry on stream-open failure
  // -------------------------------------------------------------------------

  describe("stream-open retry", () => {
    it.effect("retries a refused stream open once, on a fresh dial", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        // One live stream per session: while the holder's call runs, a second open is refused (TooManyStreams).
        const pool = yield* RpcPool.make({ session: { ...quiet, maxStreams: 1 } })
        const holder = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
        yield* waitUntil(() => server.sleeping() === 1, "the holder's call to reach the server")
        const reply = yield* pool.rpc(server.address, "Test.Echo", { Seq: 3, Note: "retried", Payload: "" })
        assert.strictEqual(field(reply, "Note"), "retried")
        let stats = yield* pool.stats
        assert.strictEqual(stats.dials, 2)
        assert.deepStrictEqual(stats.failures, {})
        assert.strictEqual(server.stats().conns, 2)
        // The refused session is doomed: it serves the holder's call, then closes.
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(holder)
        yield* waitUntil(() => server.stats().live === 1, "the first session to close after its last call")
        stats = yield* pool.stats
        assert.strictEqual(stats.sessions, 1)
        assert.strictEqual(stats.dials, 2)
      }))

    it.effect("after the server sends GoAway the next call succeeds on a fresh dial", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        // No idle clients kept: the next call needs a new stream, which the GoAway'd session refuses.
        const pool = yield* RpcPool.make({ maxStreams: 0 })
        yield* pool.rpc(server.address, "Test.GoAway", {})
        const reply = yield* pool.rpc(server.address, "Test.Echo", { Seq: 7, Note: "after GoAway", Payload: "" })
        assert.strictEqual(field(reply, "Note"), "after GoAway")
        const stats = yield* pool.stats
        assert.strictEqual(stats.dials, 2)
        assert.strictEqual(stats.sessions, 1)
        assert.deepStrictEqual(stats.failures, {})
        assert.strictEqual(server.stats().conns, 2)
        // The GoAway'd session had no callers left, so it was closed.
        yield* waitUntil(() => server.stats().live === 1, "the old session to close")
      }))

    it.effect("a second consecutive stream-open failure fails with StreamOpenFailed", () =>
      Effect.gen(function*() {
        // A scripted yamux peer: it ACKs no stream and sends GoAway only when told, so the
        // order of events below is fixed. With acceptBacklog 1 an open waits while one SYN is unACKed.
        const peer = yield* fakeYamux
        const pool = yield* RpcPool.make({ maxStreams: 0, session: { ...quiet, acceptBacklog: 1 } })
        const call = () => Effect.forkChild(Effect.exit(pool.rpc(peer.address, "Status.Ping", {})))
        const callers = () => Effect.runSync(pool.stats).callers

        // u opens the only unACKed stream of session X; w's open on X waits behind it.
        const u = yield* call()
        yield* waitUntil(() => peer.conns[0]?.syns.length === 1, "u's SYN on X")
        const w = yield* call()
        yield* waitUntil(() => callers() === 2, "w to wait on X")
        // X goes away: v's open on X fails at once, v clears X and dials Y, where its SYN stays unACKed.
        yield* peer.conns[0]!.goAway
        yield* settle()
        const v = yield* call()
        yield* waitUntil(() => peer.conns[1]?.syns.length === 1, "v's SYN on Y")
        // w's first attempt fails on X; its one retry finds Y and waits behind v.
        yield* peer.conns[0]!.ack(peer.conns[0]!.syns[0]!)
        yield* waitUntil(() => callers() === 2 && Effect.runSync(pool.stats).dials === 2, "w to wait on Y")
        // Y goes away too: w's second open fails, and it is not retried again.
        yield* peer.conns[1]!.goAway
        yield* peer.conns[1]!.ack(peer.conns[1]!.syns[0]!)
        const error = rpcError(yield* Fiber.join(w))
        assert.strictEqual(error.reason, "StreamOpenFailed")
        assert.strictEqual(error.address, peer.address)
        assert.strictEqual(error.method, "Status.Ping")
        assert.isFalse(error.sent)
        assert.isTrue(error.isRetryable)
        assert.include(error.message, "RemoteGoAway")
        yield* settle()
        assert.strictEqual(peer.conns.length, 2, "one retry: two dials, not three")
        assert.strictEqual((yield* pool.stats).dials, 2)
        assert.isUndefined(u.pollUnsafe())
        assert.isUndefined(v.pollUnsafe())
      }))
  })
})
