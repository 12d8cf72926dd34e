/**
 * The pool's limits against the embedded test server on loopback: the largest
 * message (reply on the client, request on the server), the streams one
 * session carries at once, and the callers that may wait per server. Each
 * test fails without its limit. TestClock drives the server's `Test.Sleep`
 * and every timeout; real I/O is let through with `until`/`flush`.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as net from "node:net"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import { flush, until } from "../yamux/harness.ts"
import { quiet, rpcError, serve } from "./rpcPoolFixtures.ts"

/** Keepalive pings need real round trips; both ends stay quiet while the clock moves. */

/** A listener that accepts and never answers: a TLS dial to it stays in flight. */
const silentServer = Effect.acquireRelease(
  Effect.callback<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; accepted: number }>((resume) => {
    const state = { server: net.createServer(), sockets: new Set<net.Socket>(), accepted: 0 }
    state.server.on("connection", (socket) => {
      state.accepted++
      state.sockets.add(socket)
      socket.on("error", () => {})
      socket.on("close", () => state.sockets.delete(socket))
      socket.resume()
    })
    state.server.listen(0, "127.0.0.1", () => resume(Effect.succeed(state)))
  }),
  (state) =>
    Effect.sync(() => {
      for (const socket of state.sockets) socket.destroy()
      state.server.close()
    })
).pipe(
  Effect.map((state) => ({
    address: `127.0.0.1:${(state.server.address() as net.AddressInfo).port}`,
    accepted: () => state.accepted
  }))
)


const field = (value: Value, name: string): Value | undefined => (value as Record<string, Value>)[name]

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const echo = (size: number, seq = 1) => ({ Payload: new Uint8Array(size).fill(0xab), Seq: seq, Note: "" })

const statsOf = (pool: RpcPool.RpcPool.Service) => Effect.runSync(pool.stats)

describe("RpcPool limits", () => {
  // -------------------------------------------------------------------------
  // maxMessageSize
  // -------------------------------------------------------------------------

  describe("maxMessageSize", () => {
    it.effect("defaults to 64 MiB, the decoder's own limit", () =>
      Effect.sync(() => {
        assert.strictEqual(RpcPool.defaultMaxMessageSize, 64 * 1024 * 1024)
        assert.strictEqual(RpcServer.defaultMaxMessageSize, 64 * 1024 * 1024)
      }))

    it.effect("a reply over maxMessageSize fails with MessageTooLarge, resets only its stream and keeps the session", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxMessageSize: 1024, session: quiet })
        // Under the limit: fine.
        const small = yield* pool.rpc(server.address, "Test.Echo", echo(900, 1))
        assert.strictEqual(field(small, "Seq"), 1)

        const error = rpcError(yield* Effect.exit(pool.rpc(server.address, "Test.Echo", echo(4096, 2))))
        assert.strictEqual(error.reason, "MessageTooLarge")
        assert.strictEqual(error.address, server.address)
        assert.strictEqual(error.method, "Test.Echo")
        assert.isTrue(error.sent)
        assert.isFalse(error.isRetryable)
        assert.include(error.message, "1024")
        let stats = yield* pool.stats
        assert.strictEqual(stats.failures.MessageTooLarge, 1)
        assert.strictEqual(stats.sessions, 1)
        assert.strictEqual(stats.streamsInUse, 0)
        assert.strictEqual(stats.streamsIdle, 0, "the oversized reply's stream is not kept")

        // Same session, a new stream.
        const after = yield* pool.rpc(server.address, "Test.Echo", echo(10, 3))
        assert.strictEqual(field(after, "Seq"), 3)
        stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(server.stats().conns, 1)
        assert.strictEqual(server.stats().streams, 2)
      }))

    it.effect("maxMessageSize wins over decoder.maxMessageBytes, which still applies alone", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const legacy = yield* RpcPool.make({ decoder: { maxMessageBytes: 1024 }, session: quiet })
        assert.strictEqual(
          rpcError(yield* Effect.exit(legacy.rpc(server.address, "Test.Echo", echo(4096)))).reason,
          "MessageTooLarge"
        )
        const both = yield* RpcPool.make({ maxMessageSize: 8192, decoder: { maxMessageBytes: 1024 }, session: quiet })
        const reply = yield* both.rpc(server.address, "Test.Echo", echo(4096, 5))
        assert.strictEqual(field(reply, "Seq"), 5)
      }))

    it.effect("a request over the server's maxMessageSize resets only its stream; the session carries on", () =>
      Effect.gen(function*() {
        const server = yield* serve({ maxMessageSize: 1024 })
        const pool = yield* RpcPool.make({ session: quiet })
        yield* pool.rpc(server.address, "Test.Echo", echo(900))
        const error = rpcError(yield* Effect.exit(pool.rpc(server.address, "Test.Echo", echo(4096))))
        assert.strictEqual(error.reason, "StreamReset")
        assert.isTrue(error.sent)
        assert.isFalse(error.isRetryable)
        assert.strictEqual(server.stats().served, 1, "the oversized request never reached a handler")
        // The next call works on the same connection.
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual(server.stats().conns, 1)
        assert.strictEqual(server.stats().live, 1)
        assert.strictEqual((yield* pool.stats).dials, 1)
      }))
  })

  // -------------------------------------------------------------------------
  // maxStreamsPerSession
  // -------------------------------------------------------------------------

  describe("maxStreamsPerSession", () => {
    it.effect("callers beyond the cap wait on the same session and take a stream as one comes back", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxStreamsPerSession: 2, session: quiet })
        const calls = yield* Effect.forEach(
          range(3),
          () => Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
        )
        yield* until("two calls to reach the server", () => server.sleeping() === 2)
        yield* flush(40)
        assert.strictEqual(server.sleeping(), 2, "the third caller has no stream")
        assert.strictEqual(server.stats().streams, 2)
        let stats = yield* pool.stats
        assert.strictEqual(stats.pending, 1)
        assert.strictEqual(stats.callers, 3)
        assert.strictEqual(stats.streamsInUse, 2)

        yield* TestClock.adjust("1 second")
        yield* until("the third call to reach the server", () => server.sleeping() === 3)
        // It reused a returned stream: still two streams, one session.
        assert.strictEqual(server.stats().streams, 2)
        assert.strictEqual((yield* pool.stats).pending, 0)
        yield* TestClock.adjust("1 second")
        yield* Effect.forEach(calls, Fiber.join, { discard: true })
        stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(stats.ok, 3)
        assert.strictEqual(server.stats().conns, 1)
      }))

    it.effect("waiting for a stream is bounded by the call timeout, is retryable and keeps the session", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxStreamsPerSession: 1, session: quiet })
        const holder = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 5000 }))
        yield* until("the holder's call to reach the server", () => server.sleeping() === 1)
        const waiter = yield* Effect.forkChild(
          Effect.exit(pool.rpc(server.address, "Status.Ping", {}, { timeout: "1 second" }))
        )
        yield* until("the waiter to wait", () => statsOf(pool).pending === 1)
        yield* TestClock.adjust("1 second")
        const error = rpcError(yield* Fiber.join(waiter))
        assert.strictEqual(error.reason, "CallTimeout")
        assert.isFalse(error.sent)
        assert.isTrue(error.isRetryable)
        const stats = yield* pool.stats
        assert.strictEqual(stats.pending, 0)
        assert.strictEqual(stats.callers, 1)
        assert.strictEqual(stats.sessions, 1)

        // The session was not doomed by the timeout: the holder finishes and the next call reuses its stream.
        yield* TestClock.adjust("4 seconds")
        yield* Fiber.join(holder)
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual((yield* pool.stats).dials, 1)
        assert.strictEqual(server.stats().conns, 1)
        assert.strictEqual(server.stats().streams, 1)
      }))

    it.effect("defaults to 1024 streams per session", () =>
      Effect.gen(function*() {
        assert.strictEqual(RpcPool.defaultMaxStreamsPerSession, 1024)
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet })
        const calls = yield* Effect.forEach(
          range(1030),
          () => Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
        )
        yield* until("1024 calls to reach the server", () => server.sleeping() === 1024, 5000)
        yield* flush(40)
        assert.strictEqual(server.sleeping(), 1024)
        assert.strictEqual((yield* pool.stats).pending, 6)
        yield* TestClock.adjust("1 second")
        yield* until("the rest to reach the server", () => server.sleeping() === 1030, 5000)
        yield* TestClock.adjust("1 second")
        yield* Effect.forEach(calls, Fiber.join, { discard: true })
        assert.strictEqual(server.stats().streams, 1024)
        assert.strictEqual(server.stats().conns, 1)
      }))

    it.effect("closing the pool releases callers waiting for a stream with PoolClosed", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const scope = yield* Scope.make()
        const pool = yield* RpcPool.make({ maxStreamsPerSession: 1, session: quiet }).pipe(Scope.provide(scope))
        const holder = yield* Effect.forkChild(Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 5000 })))
        yield* until("the holder's call to reach the server", () => server.sleeping() === 1)
        const waiters = yield* Effect.forEach(
          range(3),
          () => Effect.forkChild(Effect.exit(pool.rpc(server.address, "Status.Ping", {})))
        )
        yield* until("three callers to wait", () => statsOf(pool).pending === 3)
        yield* Scope.close(scope, Exit.void)
        for (const fiber of [holder, ...waiters]) {
          const error = rpcError(yield* Fiber.join(fiber))
          assert.strictEqual(error.reason, "PoolClosed")
        }
        assert.strictEqual(statsOf(pool).pending, 0)
        yield* until("the server to see the session closed", () => server.stats().live === 0)
        assert.strictEqual(server.stats().conns, 1, "no dial after close")
      }))
  })

  // -------------------------------------------------------------------------
  // maxPendingCalls
  // -------------------------------------------------------------------------

  describe("maxPendingCalls", () => {
    it.effect("defaults to 10,000", () =>
      Effect.sync(() => assert.strictEqual(RpcPool.defaultMaxPendingCalls, 10_000)))

    it.effect("a caller beyond maxPendingCalls waiting for a dial fails at once with a retryable TooManyPending", () =>
      Effect.gen(function*() {
        // TLS against a listener that never answers the handshake: the dial stays in flight.
        const silent = yield* silentServer
        const pool = yield* RpcPool.make({ tls: { verify: false }, maxPendingCalls: 3 })
        const waiting = yield* Effect.forEach(
          range(3),
          () => Effect.forkChild(Effect.exit(pool.rpc(silent.address, "Status.Ping", {})))
        )
        yield* until("three callers to wait for the dial", () => statsOf(pool).pending === 3)
        const extra = yield* Effect.forkChild(Effect.exit(pool.rpc(silent.address, "Status.Ping", {})))
        yield* flush()
        const exit = extra.pollUnsafe()
        assert.isDefined(exit, "the fourth caller does not wait")
        const error = rpcError(yield* Fiber.join(extra))
        assert.strictEqual(error.reason, "TooManyPending")
        assert.strictEqual(error.address, silent.address)
        assert.isFalse(error.sent)
        assert.isTrue(error.isRetryable)
        assert.include(error.message, "maxPendingCalls 3")
        const stats = yield* pool.stats
        assert.strictEqual(stats.failures.TooManyPending, 1)
        assert.strictEqual(stats.pending, 3)
        assert.strictEqual(silent.accepted(), 1, "still one dial")
        // The waiters were not disturbed; they fail with the dial's own timeout.
        yield* TestClock.adjust(RpcPool.defaultDialTimeout)
        for (const fiber of waiting) assert.strictEqual(rpcError(yield* Fiber.join(fiber)).reason, "DialTimeout")
        assert.strictEqual((yield* pool.stats).pending, 0)
      }))

    it.effect("a caller beyond maxPendingCalls waiting for a stream fails at once; the waiters are served", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxStreamsPerSession: 1, maxPendingCalls: 2, session: quiet })
        const holder = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
        yield* until("the holder's call to reach the server", () => server.sleeping() === 1)
        const waiting = yield* Effect.forEach(
          range(2),
          (i) => Effect.forkChild(pool.rpc(server.address, "Test.Echo", echo(1, i)))
        )
        yield* until("two callers to wait for a stream", () => statsOf(pool).pending === 2)
        const extra = yield* Effect.forkChild(Effect.exit(pool.rpc(server.address, "Status.Ping", {})))
        yield* flush()
        assert.isDefined(extra.pollUnsafe(), "the third waiter does not wait")
        const error = rpcError(yield* Fiber.join(extra))
        assert.strictEqual(error.reason, "TooManyPending")
        assert.isTrue(error.isRetryable)
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(holder)
        const replies = yield* Effect.forEach(waiting, Fiber.join)
        assert.deepStrictEqual(replies.map((reply) => field(reply, "Seq")), [0, 1])
        const stats = yield* pool.stats
        assert.strictEqual(stats.pending, 0)
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(server.stats().streams, 1)
      }))

    it.effect("is at least 1, so the caller that dials can always wait for its dial", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxPendingCalls: 0, session: quiet })
        yield* pool.rpc(server.address, "Status.Ping", {})
        assert.strictEqual(server.stats().conns, 1)
      }))
  })

  // -------------------------------------------------------------------------
  // per-address stats
  // -------------------------------------------------------------------------

  describe("per-address stats", () => {
    /**
     * A port bound on 127.0.0.1 only: no one else can bind it on any other
     * loopback address, so a connect to 127.1.x.y on it is refused at once.
     */
    const refusingPort = Effect.acquireRelease(
      Effect.callback<net.Server>((resume) => {
        const server = net.createServer()
        server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
      }),
      (server) => Effect.sync(() => server.close())
    ).pipe(Effect.map((server) => (server.address() as net.AddressInfo).port))

    // Live: 20,000 refused dials, each with a dial-timeout timer that never fires.
    it.live("20,000 dead addresses leave at most maxIdleAddresses (1024) in the table; the totals count them all", () =>
      Effect.gen(function*() {
        assert.strictEqual(RpcPool.maxIdleAddresses, 1024)
        const port = yield* refusingPort
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet })
        // A live address first: it keeps its session and counters throughout.
        yield* pool.rpc(server.address, "Status.Ping", {})
        const dead = range(20_000).map((i) => `127.1.${i >> 8}.${i & 255}:${port}`)
        yield* Effect.forEach(dead, (address) => Effect.exit(pool.rpc(address, "Status.Ping", {})), {
          concurrency: 64,
          discard: true
        })
        yield* pool.rpc(server.address, "Status.Ping", {})
        const stats = yield* pool.stats
        assert.isAtMost(stats.addresses.length, RpcPool.maxIdleAddresses + 1)
        assert.strictEqual(stats.calls, 20_002)
        assert.strictEqual(stats.ok, 2)
        assert.strictEqual(stats.dialFailures, 20_000)
        assert.deepStrictEqual(stats.failures, { DialFailed: 20_000 })
        const live = stats.addresses.find((a) => a.address === server.address)
        assert.deepStrictEqual([live?.sessions, live?.calls, live?.ok], [1, 2, 2])
        // The most recent dead addresses are the ones kept.
        assert.isDefined(stats.addresses.find((a) => a.address === dead[dead.length - 1]))
        assert.isUndefined(stats.addresses.find((a) => a.address === dead[0]))
        assert.isBelow(JSON.stringify(stats).length, 400_000)
      }), { timeout: 120_000 })
  })

  // -------------------------------------------------------------------------
  // PoolLayerConfig
  // -------------------------------------------------------------------------

  describe("PoolLayerConfig", () => {
    const layer = (env: Record<string, string>) =>
      RpcPool.PoolLayerConfig({ session: quiet }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

    it.effect("reads CONNPOOL_MAX_MESSAGE_SIZE, CONNPOOL_MAX_STREAMS_PER_SESSION and CONNPOOL_MAX_PENDING_CALLS", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        // CONNPOOL_MAX_MESSAGE_SIZE
        const large = rpcError(yield* Effect.exit(RpcPool.rpc(server.address, "Test.Echo", echo(4096))))
        assert.strictEqual(large.reason, "MessageTooLarge")
        // CONNPOOL_MAX_STREAMS_PER_SESSION: one stream, so the second caller waits ...
        const holder = yield* Effect.forkChild(RpcPool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
        yield* until("the holder's call to reach the server", () => server.sleeping() === 1)
        const waiter = yield* Effect.forkChild(RpcPool.rpc(server.address, "Status.Ping", {}))
        const pool = yield* RpcPool.RpcPool
        yield* until("the waiter to wait", () => statsOf(pool).pending === 1)
        // ... and CONNPOOL_MAX_PENDING_CALLS: one waiter, so the third fails at once.
        const third = yield* Effect.forkChild(Effect.exit(RpcPool.rpc(server.address, "Status.Ping", {})))
        yield* flush()
        assert.isDefined(third.pollUnsafe(), "the third caller does not wait")
        assert.strictEqual(rpcError(yield* Fiber.join(third)).reason, "TooManyPending")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(holder)
        yield* Fiber.join(waiter)
      }).pipe(Effect.provide(layer({
        CONNPOOL_MAX_MESSAGE_SIZE: "1024",
        CONNPOOL_MAX_STREAMS_PER_SESSION: "1",
        CONNPOOL_MAX_PENDING_CALLS: "1"
      }))))

    it.effect("falls back to the defaults for unset limits", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const reply = yield* RpcPool.rpc(server.address, "Test.Echo", echo(64 * 1024, 9))
        assert.strictEqual(field(reply, "Seq"), 9)
      }).pipe(Effect.provide(layer({}))))

    it.effect("fails to build on a malformed limit", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Layer.build(layer({ CONNPOOL_MAX_STREAMS_PER_SESSION: "lots" })))
        assert.isTrue(Exit.isFailure(exit))
      }))

    it.effect("fails to build with InvalidOption on a limit that parses but cannot be used", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(layer({ CONNPOOL_MAX_PENDING_CALLS: "-1" })))
        assert.instanceOf(error, RpcPool.InvalidOption)
        assert.strictEqual((error as RpcPool.InvalidOption).option, "maxPendingCalls")
      }))
  })
})
