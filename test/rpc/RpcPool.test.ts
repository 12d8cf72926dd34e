/**
 * The RPC pool against the embedded test server on loopback. The server runs in
 * this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil`
 * (setImmediate turns, never timers).
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Clock, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Scheduler, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as net from "node:net"
import { encodeResponse, RequestReader } from "../../src/msgpackrpc/Codec.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import type { MuxStream } from "../../src/mux/MuxSession.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import type { ServerTls } from "../../src/wire/Tls.ts"
import { Connector } from "../../src/wire/ByteTransport.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import * as Session from "../../src/yamux/Session.ts"
import { oneHour, onClock, steppedClock } from "../yamux/steppedClock.ts"

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/** One event-loop turn, so loopback I/O can flow. Not a timer. */
const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const settle = (turns = 10) => Effect.repeat(flush, { times: turns - 1 })

/** Lets I/O flow until `condition` holds (bounded by turns, not by time). */
const waitUntil = (condition: () => boolean, what: string, turns = 2000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns; i++) {
      if (condition()) return
      yield* flush
    }
    assert.fail(`gave up waiting for ${what}`)
  })

/** Keepalive pings need real round trips; tests that move the clock far turn them off on both ends. */
const quiet = { enableKeepAlive: false } as const

interface TestServer extends RpcServer.Server {
  /** `Test.Sleep` calls whose handler has started (so their sleep is on the clock). */
  readonly sleeping: () => number
}

/**
 * The test service, plus `Test.GoAway` (sends GoAway on the caller's session)
 * and a `Test.Sleep` that counts the sleeps it has started.
 */
const serve = (options: { readonly protocol?: Protocol; readonly port?: number; readonly tls?: ServerTls } = {}) =>
  Effect.gen(function*() {
    let sleeping = 0
    const server = yield* RpcServer.serve({
      protocol: options.protocol,
      port: options.port,
      tls: options.tls,
      session: quiet,
      handlers: {
        ...TestService.handlers,
        "Test.Sleep": (args, context) =>
          Effect.suspend(() => {
            sleeping++
            return TestService.handlers["Test.Sleep"]!(args, context)
          }),
        "Test.GoAway": (_, { session }) => Effect.as(session.goAway, {})
      }
    })
    return { ...server, sleeping: () => sleeping } satisfies TestServer
  })

const fixture = (name: string) => fs.readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url))

const serverTls: ServerTls = { cert: fixture("server.pem"), key: fixture("server-key.pem") }

interface RawServer {
  readonly port: number
  readonly address: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Connections still open on the server side. */
  readonly open: () => number
}

/** A plain TCP listener that hands each connection to `onConnection` and speaks nothing. */
const rawServer = (onConnection: (socket: net.Socket) => void, port = 0) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; readonly raw: RawServer }>(
      (resume) => {
        const sockets = new Set<net.Socket>()
        let accepted = 0
        const server = net.createServer((socket) => {
          accepted++
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("close", () => sockets.delete(socket))
          // Consume what arrives, or Node never reports the peer's close.
          socket.resume()
          onConnection(socket)
        })
        server.listen(port, "127.0.0.1", () => {
          const port = (server.address() as net.AddressInfo).port
          resume(Effect.succeed({
            server,
            sockets,
            raw: { port, address: `127.0.0.1:${port}`, accepted: () => accepted, open: () => sockets.size }
          }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  ).pipe(Effect.map(({ raw }) => raw))

interface FakeConn {
  /** Stream ids the client opened (SYN), in order. */
  readonly syns: Array<number>
  /** Sends a normal GoAway. */
  readonly goAway: Effect.Effect<void>
  /** ACKs the client's stream `id`. */
  readonly ack: (id: number) => Effect.Effect<void>
}

const yamuxFrame = (type: number, flags: number, streamId: number, length: number) => {
  const frame = Buffer.alloc(12)
  frame.writeUInt8(0, 0)
  frame.writeUInt8(type, 1)
  frame.writeUInt16BE(flags, 2)
  frame.writeUInt32BE(streamId, 4)
  frame.writeUInt32BE(length, 8)
  return frame
}

/** A yamux "server" that only records SYNs and sends the frames a test asks for. */
const fakeYamux = Effect.gen(function*() {
  const conns: Array<FakeConn> = []
  const raw = yield* rawServer((socket) => {
    const syns: Array<number> = []
    const send = (frame: Buffer) =>
      Effect.callback<void>((resume) => {
        socket.write(frame, () => resume(Effect.void))
      })
    conns.push({ syns, goAway: send(yamuxFrame(3, 0, 0, 0)), ack: (id) => send(yamuxFrame(1, 2, id, 0)) })
    let pending = Buffer.alloc(0)
    let preamble = true
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      if (preamble && pending.length > 0) {
        pending = pending.subarray(1)
        preamble = false
      }
      while (pending.length >= 12) {
        const type = pending.readUInt8(1)
        const flags = pending.readUInt16BE(2)
        const id = pending.readUInt32BE(4)
        const length = pending.readUInt32BE(8)
        const size = type === 0 ? 12 + length : 12
        if (pending.length < size) break
        if ((flags & 1) !== 0) syns.push(id)
        pending = pending.subarray(size)
      }
    })
  })
  return { ...raw, conns }
})

/** The current clock, counting the sleeps in progress on it. */
const countingClock = Effect.map(Clock.clockWith(Effect.succeed), (clock) => {
  let sleeping = 0
  const counted: Clock.Clock & { readonly sleeping: () => number } = {
    currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
    currentTimeMillis: clock.currentTimeMillis,
    currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
    currentTimeNanos: clock.currentTimeNanos,
    monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: clock.monotonicTimeNanos,
    sleep: (duration) =>
      Effect.suspend(() => {
        sleeping++
        return Effect.ensuring(clock.sleep(duration), Effect.sync(() => sleeping--))
      }),
    sleeping: () => sleeping
  }
  return counted
})

/** A loopback port where nothing listens. */
const deadPort = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const rpcError = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
  if (!Exit.isFailure(exit)) throw new Error("unreachable")
  const error = Cause.findErrorOption(exit.cause)
  assert.strictEqual(error._tag, "Some", `expected a typed error, got ${Cause.pretty(exit.cause)}`)
  if (error._tag !== "Some") throw new Error("unreachable")
  assert.instanceOf(error.value, RpcError)
  return error.value
}

const field = (value: Value, name: string): Value | undefined =>
  (value as Record<string, Value>)[name]

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

const ping = (pool: RpcPool.RpcPool.Service, address: string) => pool.rpc(address, "Status.Ping", {})

// ---------------------------------------------------------------------------
// sharing: one connection, streams reused
// ---------------------------------------------------------------------------

describe("RpcPool", () => {
  describe("sharing", () => {
    it.effect("300 concurrent callers share one TCP connection and 6000 calls open at most 300 streams", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ maxStreams: 300 })
        yield* Effect.forEach(
          range(300),
          (caller) =>
            Effect.forEach(range(20), (i) =>
              pool.rpc(server.address, "Test.Echo", { Seq: caller * 20 + i, Note: "n", Payload: "p" }).pipe(
                Effect.tap((reply) => Effect.sync(() => assert.strictEqual(field(reply, "Seq"), caller * 20 + i)))
              ), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        const stats = yield* pool.rpc(server.address, "Test.Stats", {})
        assert.strictEqual(field(stats, "Conns"), 1)
        assert.strictEqual(field(stats, "Served"), 6000)
        const streams = field(stats, "Streams") as number
        assert.isAtMost(streams, 300)
        // "about as many as callers": far fewer than 6000, and more than a handful.
        assert.isAtLeast(streams, 2)
        const local = yield* pool.stats
        assert.strictEqual(local.dials, 1)
        assert.strictEqual(local.sessions, 1)
        assert.strictEqual(local.ok, 6001)
        assert.strictEqual(local.streamsInUse, 0)
        assert.isAtMost(local.streamsIdle, 300)
      }))

    it.effect("args that cannot be encoded fail unsent on a reused stream, not with the last call's sent flag", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        yield* pool.rpc(server.address, "Status.Ping", {})
        const error = yield* Effect.flip(pool.rpc(server.address, "Test.Echo", { Payload: new Set([1]) }))
        assert.strictEqual(error.reason, "ProtocolError")
        assert.isFalse(error.sent)
      }))

    it.effect("keeps at most maxStreams idle stream clients and reuses them", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make()
        yield* Effect.forEach(range(300), () => pool.rpc(server.address, "Status.Ping", {}), {
          concurrency: "unbounded",
          discard: true
        })
        assert.strictEqual(server.stats().streams, 300)
        let stats = yield* pool.stats
        assert.strictEqual(stats.streamsIdle, RpcPool.defaultMaxStreams)
        assert.strictEqual(stats.streamsInUse, 0)
        // The 64 kept clients carry the next 64 concurrent calls: no new stream.
        yield* Effect.forEach(range(RpcPool.defaultMaxStreams), () => pool.rpc(server.address, "Status.Ping", {}), {
          concurrency: "unbounded",
          discard: true
        })
        assert.strictEqual(server.stats().streams, 300)
        stats = yield* pool.stats
        assert.strictEqual(stats.streamsIdle, RpcPool.defaultMaxStreams)
        assert.strictEqual(stats.dials, 1)
      }))
  })

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

  // -------------------------------------------------------------------------
  // options
  // -------------------------------------------------------------------------

  describe("options", () => {
    const invalid: ReadonlyArray<readonly [RpcPool.RpcPool.Options, string]> = [
      [{ maxPendingCalls: Number.NaN }, "maxPendingCalls"],
      [{ maxPendingCalls: -1 }, "maxPendingCalls"],
      [{ maxPendingCalls: Infinity }, "maxPendingCalls"],
      [{ maxStreams: 2.5 }, "maxStreams"],
      [{ maxStreamsPerSession: -3 }, "maxStreamsPerSession"],
      [{ maxMessageSize: Number.NaN }, "maxMessageSize"],
      [{ callTimeout: "banana" as Duration.Input }, "callTimeout"],
      [{ callTimeout: "-5 seconds" }, "callTimeout"],
      [{ dialTimeout: Number.NaN }, "dialTimeout"],
      [{ maxTime: -1 }, "maxTime"],
      [{ reapInterval: 0 }, "reapInterval"],
      [{ session: { keepAliveInterval: "banana" as Duration.Input } }, "session.keepAliveInterval"],
      [{ session: { maxStreams: -5 } }, "session.maxStreams"]
    ]

    it.effect("refuses an unusable option when the pool is made, with InvalidOption naming it", () =>
      Effect.gen(function*() {
        for (const [options, option] of invalid) {
          const made = yield* Effect.exit(Effect.scoped(Effect.asVoid(RpcPool.make(options))))
          const built = yield* Effect.exit(Effect.scoped(Effect.asVoid(Layer.build(RpcPool.PoolLayer(options)))))
          for (const exit of [made, built]) {
            assert.isTrue(Exit.isFailure(exit), `${option}: accepted ${JSON.stringify(options)}`)
            const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
            assert.isTrue(error?._tag === "Some" && error.value instanceof RpcPool.InvalidOption, `${option}: not typed`)
            if (error?._tag !== "Some") continue
            assert.strictEqual(error.value.option, option)
            assert.strictEqual(error.value.pool, "RpcPool")
            assert.include(error.value.message, option)
            assert.isFalse(error.value.isRetryable)
          }
        }
      }))

    it.effect("raises 0 to 1 where at least 1 is needed, and takes infinite durations", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({
          maxStreamsPerSession: 0,
          maxPendingCalls: 0,
          callTimeout: Duration.infinity,
          dialTimeout: Infinity,
          maxTime: 0,
          session: quiet
        })
        assert.deepStrictEqual(yield* pool.rpc(server.address, "Status.Ping", {}), {})
        assert.deepStrictEqual(yield* pool.rpc(server.address, "Status.Ping", {}, { timeout: Infinity }), {})
      }))
  })

  // -------------------------------------------------------------------------
  // streams the server opens
  // -------------------------------------------------------------------------

  describe("inbound streams", () => {
    it.effect("refuses streams a server opens on the pool's session with RST, so their windows hold nothing", () =>
      Effect.gen(function*() {
        // A hostile server: on each call it opens 8 streams back to the client and fills their windows.
        const opened: Array<MuxStream> = []
        const server = yield* RpcServer.serve({
          session: quiet,
          handlers: {
            ...TestService.handlers,
            "Test.OpenBack": (_, { session }) =>
              Effect.gen(function*() {
                for (let i = 0; i < 8; i++) {
                  const stream = yield* session.open
                  opened.push(stream)
                  yield* Effect.ignore(stream.write(new Uint8Array(256 * 1024)))
                }
                return {}
              })
          }
        })
        const pool = yield* RpcPool.make({ session: quiet })
        yield* pool.rpc(server.address, "Test.OpenBack", {})
        yield* waitUntil(
          () => opened.length === 8 && opened.every((stream) => stream.refused),
          "every stream the server opened to be refused"
        )
        // The session carries on.
        assert.deepStrictEqual(yield* pool.rpc(server.address, "Status.Ping", {}), {})
        const stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.deepStrictEqual(stats.failures, {})
      }))
  })

  // -------------------------------------------------------------------------
  // the transport seam
  // -------------------------------------------------------------------------

  describe("over an in-memory transport", () => {
    /** A yamux server session on `transport` echoing every request's body, forked into the Scope. */
    const echoServer = (transport: MemoryTransport.MemoryTransport) =>
      Effect.gen(function*() {
        const session = yield* Session.make(transport, { ...quiet, role: "server" })
        const serveStream = (stream: MuxStream): Effect.Effect<void, unknown> =>
          Effect.gen(function*() {
            const reader = new RequestReader()
            for (;;) {
              const request = reader.next()
              if (request === undefined) {
                const chunk = yield* stream.read
                if (chunk === undefined) return yield* stream.close
                reader.push(chunk)
                continue
              }
              if (request instanceof Error) return yield* Effect.fail(request)
              const response = encodeResponse(request.header.ServiceMethod, request.header.Seq, "", request.body)
              if (response instanceof Error) return yield* Effect.fail(response)
              yield* stream.write(response)
            }
          })
        yield* Effect.forkScoped(Effect.forever(Effect.flatMap(session.accept, (stream) => Effect.forkScoped(serveStream(stream)))))
      })

    it.effect("runs calls over the Connector in context, with no socket under them", () =>
      Effect.gen(function*() {
        const dialled: Array<string> = []
        const connector: Connector = (options) =>
          Effect.gen(function*() {
            dialled.push(`${options.host}:${options.port}`)
            const pair = MemoryTransport.makePair()
            yield* echoServer(pair.server)
            return pair.client
          })
        const pool = yield* RpcPool.make({ session: quiet }).pipe(Effect.provideService(Connector, connector))
        const replies = yield* Effect.forEach(
          range(50),
          (i) => pool.rpc("server-a:8300", "Test.Echo", { Seq: i }),
          { concurrency: "unbounded" }
        )
        replies.forEach((reply, i) => assert.strictEqual(field(reply, "Seq"), i))
        assert.deepStrictEqual(dialled, ["server-a:8300"])
        const stats = yield* pool.stats
        assert.strictEqual(stats.dials, 1)
        assert.strictEqual(stats.ok, 50)
      }))

    // Found by the simulator (npm run sim): a fiber may yield at any step, and a caller interrupted
    // between taking its stream client and receiving it stranded the client, counted in use for good.
    it.effect("a caller interrupted at any step of taking a stream leaves none checked out", () =>
      Effect.gen(function*() {
        const server = yield* RpcServer.make({ session: quiet, handlers: TestService.handlers })
        const connector: Connector = () =>
          Effect.gen(function*() {
            const pair = MemoryTransport.makePair()
            yield* Effect.forkScoped(server.serveTransport(pair.server, "client:1"))
            return pair.client
          })
        // No idle clients kept: every call takes the slow path and opens a stream.
        const pool = yield* RpcPool.make({ session: quiet, maxStreams: 0 }).pipe(Effect.provideService(Connector, connector))
        yield* pool.rpc("server-a:8300", "Status.Ping", {})
        // Yield every few operations (never every one: a fiber that yields before each step makes no progress),
        // and interrupt after a growing number of the test's own yields: somewhere, between any two steps.
        for (let ops = 2; ops <= 12; ops++) {
          for (let step = 0; step < 60; step++) {
            const call = pool.rpc("server-a:8300", "Test.Echo", { Seq: step }).pipe(
              Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)
            )
            const fiber = yield* Effect.forkChild(call)
            for (let i = 0; i < step; i++) yield* Effect.yieldNow
            yield* Fiber.interrupt(fiber)
            const stats = yield* pool.stats
            assert.strictEqual(stats.streamsInUse, 0, `yielding every ${ops} operations, interrupted after ${step} yields`)
            assert.strictEqual(stats.callers, 0, `yielding every ${ops} operations, interrupted after ${step} yields`)
          }
        }
      }))
  })

  // -------------------------------------------------------------------------
  // typed methods
  // -------------------------------------------------------------------------

  describe("method", () => {
    const EchoArgs = Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String })
    const Echo = RpcPool.method("Test.Echo", {
      args: EchoArgs,
      reply: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String, Served: Schema.Number })
    })

    it.effect("decodes a matching reply, bytes included", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        // Valid UTF-8 comes back as a msgpack string, the rest as bytes: both decode to Uint8Array.
        const text = new TextEncoder().encode("héllo")
        const binary = Uint8Array.of(0xff, 0x00, 0xfe)
        const a = yield* Echo(server.address, { Payload: text, Seq: 1, Note: "a" })
        const b = yield* Echo(server.address, { Payload: binary, Seq: 2, Note: "b" })
        assert.deepStrictEqual(a, { Payload: text, Seq: 1, Note: "a", Served: 1 })
        assert.deepStrictEqual(b, { Payload: binary, Seq: 2, Note: "b", Served: 2 })
      }).pipe(Effect.provide(RpcPool.PoolLayer())))

    it.effect("fails a mismatching reply with ReplyMismatch", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const Wrong = RpcPool.method("Test.Echo", {
          args: EchoArgs,
          reply: Schema.Struct({ Served: Schema.String })
        })
        const error = rpcError(yield* Effect.exit(Wrong(server.address, { Payload: new Uint8Array(1), Seq: 1, Note: "" })))
        assert.strictEqual(error.reason, "ReplyMismatch")
        assert.strictEqual(error.method, "Test.Echo")
        assert.strictEqual(error.address, server.address)
        assert.isTrue(error.sent)
        assert.isFalse(error.isRetryable)
        // The call itself succeeded on the server.
        assert.strictEqual(server.stats().served, 1)
      }).pipe(Effect.provide(RpcPool.PoolLayer())))
  })

  // -------------------------------------------------------------------------
  // PoolLayerConfig
  // -------------------------------------------------------------------------

  describe("PoolLayerConfig", () => {
    const layer = (env: Record<string, string>) =>
      RpcPool.PoolLayerConfig({ session: quiet }).pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env))))

    it.effect("reads CONNPOOL_* options from the ConfigProvider", () =>
      Effect.gen(function*() {
        const server = yield* serve({ protocol: Protocols.nomad })
        // CONNPOOL_PROTOCOL: a consul preamble would be refused by a nomad server.
        yield* Effect.forEach(range(5), () => RpcPool.rpc(server.address, "Status.Ping", {}), {
          concurrency: "unbounded",
          discard: true
        })
        // CONNPOOL_MAX_STREAMS
        assert.strictEqual((yield* RpcPool.stats).streamsIdle, 2)
        // CONNPOOL_CALL_TIMEOUT
        const call = yield* Effect.forkChild(Effect.exit(RpcPool.rpc(server.address, "Test.Sleep", { Millis: 5000 })))
        yield* waitUntil(() => server.sleeping() === 1, "the call to reach the server")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(rpcError(yield* Fiber.join(call)).reason, "CallTimeout")
        // CONNPOOL_MAX_TIME
        yield* TestClock.adjust("9 seconds")
        yield* settle()
        assert.strictEqual((yield* RpcPool.stats).sessions, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* RpcPool.stats).sessions, 0)
      }).pipe(
        Effect.provide(layer({
          CONNPOOL_MAX_STREAMS: "2",
          CONNPOOL_CALL_TIMEOUT: "1 second",
          CONNPOOL_MAX_TIME: "10 seconds",
          CONNPOOL_PROTOCOL: "nomad",
          CONNPOOL_DIAL_TIMEOUT: "3 seconds"
        }))
      ))

    it.effect("falls back to the defaults for unset options", () =>
      Effect.gen(function*() {
        const server = yield* serve()
        yield* Effect.forEach(range(100), () => RpcPool.rpc(server.address, "Status.Ping", {}), {
          concurrency: "unbounded",
          discard: true
        })
        assert.strictEqual((yield* RpcPool.stats).streamsIdle, RpcPool.defaultMaxStreams)
      }).pipe(Effect.provide(layer({}))))

    it.effect("fails to build on a malformed value", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Layer.build(layer({ CONNPOOL_MAX_STREAMS: "many" })))
        assert.isTrue(Exit.isFailure(exit))
      }))
  })

  // -------------------------------------------------------------------------
  // Nomad
  // -------------------------------------------------------------------------

  describe("nomad profile", () => {
    it.effect("calls a nomad server end to end, reusing its streams", () =>
      Effect.gen(function*() {
        const server = yield* serve({ protocol: Protocols.nomad })
        const pool = yield* RpcPool.make({ protocol: Protocols.nomad })
        for (const seq of range(5)) {
          const reply = yield* pool.rpc(server.address, "Test.Echo", { Seq: seq, Note: "nomad", Payload: "x" })
          assert.strictEqual(field(reply, "Seq"), seq)
          assert.strictEqual(field(reply, "Note"), "nomad")
        }
        // The stream byte went out once, on the one stream that carried all five calls.
        assert.strictEqual(server.stats().streams, 1)
        assert.strictEqual(server.stats().served, 5)
        const leader = yield* pool.rpc(server.address, "Status.Leader", {})
        assert.strictEqual(leader, server.address)
      }))
  })
})
