/**
 * The RPC pool against the embedded test server on loopback: sharing one connection, options,
 * inbound streams, the in-memory transport, typed methods, PoolLayerConfig and the nomad profile.
 * Dials, timing, errors and shutdown have their own files.
 * The server runs in this process, so TestClock drives its `Test.Sleep` as well as the pool's
 * reaper and timeouts; real socket I/O is let through with `settle`/`waitUntil` (setImmediate
 * turns, never timers). Shared helpers: `rpcPoolFixtures.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Scheduler, Schema } from "effect"
import { TestClock } from "effect/testing"
import { encodeResponse, RequestReader } from "../../src/msgpackrpc/Codec.ts"
import type { MuxStream } from "../../src/mux/MuxSession.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import { Connector } from "../../src/wire/ByteTransport.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import * as Session from "../../src/yamux/Session.ts"
import { field, quiet, range, rpcError, serve, settle, waitUntil } from "./rpcPoolFixtures.ts"

describe("RpcPool", () => {
  // -------------------------------------------------------------------------
  // sharing: one connection, streams reused
  // -------------------------------------------------------------------------


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
