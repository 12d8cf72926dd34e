/**
 * The msgpack-rpc server on loopback, driven by hand-made client sessions so a
 * test can put exact bytes on a stream.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import { MuxError } from "../../src/mux/MuxError.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { Connector } from "../../src/wire/ByteTransport.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import * as Transport from "../../src/wire/Transport.ts"
import * as Session from "../../src/yamux/Session.ts"
import {
  client,
  connect,
  connectFrom,
  failure,
  field,
  quiet,
  readFailure,
  remoteMessage,
  request,
  send,
  until,
  within
} from "./helpers.ts"

const serve = (protocol?: Protocol) =>
  RpcServer.serve({
    protocol,
    session: quiet,
    handlers: {
      ...TestService.handlers,
      "Test.Boom": () => Effect.fail({ message: "kaboom" }),
      "Test.Silent": () => Effect.fail({ message: "" }),
      "Test.Die": () => Effect.die(new Error("handler bug"))
    }
  })

describe("RpcServer", () => {
  it.effect("answers an unknown service with Go's \"can't find service\" and keeps the stream", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const c = yield* client(yield* connect(server))
      const error = yield* failure(c.call("Nope.Method", {}))
      assert.strictEqual(remoteMessage(error), "rpc: can't find service Nope.Method")
      const noDot = yield* failure(c.call("Ping", {}))
      assert.strictEqual(remoteMessage(noDot), "rpc: can't find service Ping")
      // Like Go's ServeCodec, the stream carries on.
      assert.deepStrictEqual(yield* c.call("Status.Ping", {}), {})
    }))

  it.effect("answers an unknown method of a known service with Go's \"can't find method\"", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const c = yield* client(yield* connect(server))
      const error = yield* failure(c.call("Test.Nope", {}))
      assert.strictEqual(remoteMessage(error), "rpc: can't find method Test.Nope")
    }))

  it.effect("turns a handler failure into the reply's error string", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const c = yield* client(yield* connect(server))
      assert.strictEqual(remoteMessage(yield* failure(c.call("Test.Boom", {}))), "kaboom")
      assert.strictEqual(remoteMessage(yield* failure(c.call("Test.Fail", { Message: "from args" }))), "from args")
      assert.strictEqual(remoteMessage(yield* failure(c.call("Test.Silent", {}))), "error")
      assert.strictEqual(remoteMessage(yield* failure(c.call("Test.Die", {}))), "internal error")
      // Every one of them was answered, on the same stream.
      assert.deepStrictEqual(yield* c.call("Status.Ping", {}), {})
      assert.strictEqual(server.stats().streams, 1)
      assert.strictEqual(server.stats().served, 5)
    }))

  it.effect("serves sequential calls on one stream", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const c = yield* client(yield* connect(server))
      for (let seq = 1; seq <= 5; seq++) {
        const reply = yield* c.call("Test.Echo", { Seq: seq, Note: `call ${seq}`, Payload: Uint8Array.of(0xff, seq) })
        assert.strictEqual(field(reply, "Seq"), seq)
        assert.strictEqual(field(reply, "Note"), `call ${seq}`)
        assert.deepStrictEqual(field(reply, "Payload"), Uint8Array.of(0xff, seq))
        assert.strictEqual(field(reply, "Served"), seq)
      }
      assert.strictEqual(server.stats().streams, 1)
      assert.strictEqual(server.stats().served, 5)
    }))

  it.effect("resets a stream that sends garbage while the session's other streams carry on", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const session = yield* connect(server)
      const good = yield* client(session)
      yield* good.call("Status.Ping", {})

      // 0xc1 is never valid msgpack.
      const garbage = yield* session.open
      yield* garbage.write(Uint8Array.of(0xc1, 0x00, 0x00))
      const read = yield* Effect.exit(garbage.read)
      assert.isTrue(Exit.isFailure(read), "the server resets the stream")
      if (Exit.isFailure(read)) {
        const reason = read.cause.reasons[0]
        assert.strictEqual(reason?._tag, "Fail")
        assert.instanceOf((reason as { readonly error: unknown }).error, MuxError)
        assert.strictEqual((reason as { readonly error: MuxError }).error.reason, "StreamReset")
      }

      // Valid msgpack that is not a request header is reset as well.
      const notHeader = yield* session.open
      yield* notHeader.write(Uint8Array.of(0x2a))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(notHeader.read)))

      assert.deepStrictEqual(yield* good.call("Status.Ping", {}), {})
      const other = yield* client(session)
      assert.deepStrictEqual(yield* other.call("Status.Ping", {}), {})
      assert.isFalse(session.isClosed)
      assert.strictEqual(server.stats().live, 1)
    }))

  it.effect("resets a nomad stream whose first byte is not the RPC byte", () =>
    Effect.gen(function*() {
      const server = yield* serve(Protocols.nomad)
      const session = yield* connect(server, Protocols.nomad)
      const wrong = new StreamClient(yield* Effect.orDie(session.open), 0x02)
      const error = yield* failure(wrong.call("Status.Ping", {}))
      assert.instanceOf(error, MuxError)
      assert.strictEqual((error as MuxError).reason, "StreamReset")
      // The RPC byte 0x01 is served, once per stream.
      const right = yield* client(session, Protocols.nomad)
      assert.deepStrictEqual(yield* right.call("Status.Ping", {}), {})
      assert.deepStrictEqual(yield* right.call("Status.Ping", {}), {})
      assert.strictEqual(server.stats().served, 2)
    }))

  it.effect("counts conns, streams, served calls and live sessions in Test.Stats", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const one = yield* connect(server)
      const a = yield* client(one)
      const b = yield* client(one)
      yield* a.call("Status.Ping", {})
      yield* a.call("Status.Ping", {})
      yield* b.call("Status.Ping", {})
      const twoScope = yield* Scope.make()
      const two = yield* connect(server).pipe(Scope.provide(twoScope))
      yield* (yield* client(two)).call("Status.Ping", {})

      // Test.Stats does not count itself as served.
      const stats = yield* a.call("Test.Stats", {})
      assert.deepStrictEqual(stats, { Conns: 2, Streams: 3, Served: 4, Live: 2 })
      assert.deepStrictEqual(server.stats(), { conns: 2, streams: 3, served: 5, streamingRpcs: 0, live: 2 })

      yield* Scope.close(twoScope, Exit.void)
      yield* until("the server to see the second session close", () => server.stats().live === 1)
      assert.deepStrictEqual(yield* a.call("Test.Stats", {}), { Conns: 2, Streams: 3, Served: 5, Live: 1 })
    }))

  it.effect("closes its sessions when its scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* serve().pipe(Scope.provide(scope))
      const session = yield* connect(server)
      const c = yield* client(session)
      yield* c.call("Status.Ping", {})
      yield* Scope.close(scope, Exit.void)
      const reason = yield* session.closed
      assert.strictEqual(reason.reason, "ConnectionLost")
      assert.isTrue(session.isClosed)
      assert.strictEqual(server.stats().live, 0)
      // And it no longer listens.
      const redial = yield* Effect.exit(Transport.dial({ host: server.host, port: server.port }).pipe(Effect.scoped))
      assert.isTrue(Exit.isFailure(redial))
    }))
})

/**
 * A server whose `Test.Park` handler waits for ever (interruptibly) and whose `Test.Hold` waits,
 * uninterruptibly, for `release`: what a handler that ignores interruption looks like.
 */
const parking = (options: Omit<RpcServer.ServeOptions, "handlers"> = {}) =>
  Effect.gen(function*() {
    const release = yield* Deferred.make<void>()
    const counts = { started: 0, interrupted: 0 }
    const park = Effect.sync(() => counts.started++).pipe(
      Effect.andThen(Effect.never),
      Effect.onInterrupt(() => Effect.sync(() => counts.interrupted++))
    )
    const hold = Effect.sync(() => counts.started++).pipe(
      Effect.andThen(Deferred.await(release)),
      Effect.uninterruptible,
      Effect.as({})
    )
    const server = yield* RpcServer.serve({
      ...options,
      session: quiet,
      handlers: { ...TestService.handlers, "Test.Park": () => park, "Test.Hold": () => hold }
    })
    return { server, counts, release: Deferred.succeed(release, undefined) }
  })

describe("RpcServer limits", () => {
  it.effect("interrupts the handler of a stream the client resets, so reset streams never pile up", () =>
    Effect.gen(function*() {
      const { counts, server } = yield* parking({ maxStreamsPerSession: 8 })
      const session = yield* connect(server)
      // Far more resets than the stream limit: before, every handler stayed parked (10,600 on one session).
      for (let i = 0; i < 40; i++) {
        const stream = yield* send(session, request("Test.Park", i, {}))
        yield* until(`handler ${i} to start`, () => counts.started === i + 1)
        yield* stream.reset
        yield* until(`handler ${i} to be interrupted`, () => counts.interrupted === i + 1)
      }
      assert.strictEqual(server.limitStats().servingStreams, 0)
      assert.strictEqual(server.limitStats().refusedStreams, 0)
      // The session serves as before.
      assert.deepStrictEqual(yield* (yield* client(session)).call("Status.Ping", {}), {})
    }))

  it.effect("refuses a stream past maxStreamsPerSession before its ACK and takes one again once a stream ends", () =>
    Effect.gen(function*() {
      const { counts, server } = yield* parking({ maxStreamsPerSession: 4 })
      const session = yield* connect(server)
      const parked = []
      for (let i = 0; i < 4; i++) parked.push(yield* send(session, request("Test.Park", i, {})))
      yield* until("four handlers to start", () => counts.started === 4)

      const fifth = yield* send(session, request("Test.Park", 4, {}))
      assert.strictEqual(yield* readFailure(fifth), "StreamReset")
      // yamux refused it before the ACK: no handler ran, and the client may retry it safely.
      assert.isTrue(fifth.refused)
      assert.strictEqual(counts.started, 4)
      assert.strictEqual(server.limitStats().servingStreams, 4)

      yield* parked[0]!.reset
      yield* until("the reset stream's handler to end", () => server.limitStats().servingStreams === 3)
      assert.deepStrictEqual(yield* (yield* client(session)).call("Status.Ping", {}), {})
      assert.isFalse(session.isClosed)
    }))

  it.effect("resets new streams on accept while handlers that ignore interruption outlive their reset streams", () =>
    Effect.gen(function*() {
      const { counts, release, server } = yield* parking({ maxStreamsPerSession: 2 })
      const session = yield* connect(server)
      for (let i = 0; i < 2; i++) {
        const stream = yield* send(session, request("Test.Hold", i, {}))
        yield* until(`handler ${i} to start`, () => counts.started === i + 1)
        yield* stream.reset
      }
      // yamux has forgotten both streams, but their handlers still run.
      yield* until("yamux to forget the reset streams", () => session.numStreams === 0)
      assert.strictEqual(server.limitStats().servingStreams, 2)

      const third = yield* send(session, request("Test.Hold", 2, {}))
      assert.strictEqual(yield* readFailure(third), "StreamReset")
      assert.strictEqual(counts.started, 2, "no handler ran for the stream past the limit")
      assert.strictEqual(server.limitStats().refusedStreams, 1)

      yield* release
      yield* until("the held handlers to end", () => server.limitStats().servingStreams === 0)
      assert.deepStrictEqual(yield* (yield* client(session)).call("Status.Ping", {}), {})
    }))

  it.effect("counts streams of every session against maxStreams", () =>
    Effect.gen(function*() {
      const { counts, server } = yield* parking({ maxStreams: 3 })
      const one = yield* connect(server)
      const two = yield* connect(server)
      yield* send(one, request("Test.Park", 1, {}))
      yield* send(one, request("Test.Park", 2, {}))
      yield* send(two, request("Test.Park", 3, {}))
      yield* until("three handlers to start", () => counts.started === 3)
      const fourth = yield* send(two, request("Status.Ping", 4, {}))
      assert.strictEqual(yield* readFailure(fourth), "StreamReset")
      assert.strictEqual(server.limitStats().refusedStreams, 1)
      assert.strictEqual(server.limitStats().servingStreams, 3)
    }))

  it.effect("closes connections past maxConnsPerClient right after accept, counts them, and serves the rest", () =>
    Effect.gen(function*() {
      const server = yield* TestService.serve({ session: quiet, maxConnsPerClient: 2 })
      const first = yield* connectFrom(server, "127.0.0.1")
      yield* connectFrom(server, "127.0.0.1")
      const third = yield* connectFrom(server, "127.0.0.1")
      const lost = yield* within("the refused session to close", third.closed)
      assert.strictEqual(lost.reason, "ConnectionLost")
      // Another client IP has a count of its own.
      const other = yield* connectFrom(server, "127.0.0.2")
      assert.deepStrictEqual(yield* (yield* client(other)).call("Status.Ping", {}), {})
      assert.deepStrictEqual(yield* (yield* client(first)).call("Status.Ping", {}), {})
      const stats = server.limitStats()
      assert.strictEqual(stats.refusedConns, 1)
      assert.strictEqual(stats.openConns, 3)
      // A refused connection is not a served one.
      assert.strictEqual(server.stats().conns, 3)
    }))

  it.effect("defaults: Consul's 100 connections per client, 10,000 in all, 2048 streams a session, 16,384 in all", () =>
    Effect.gen(function*() {
      const server = yield* TestService.serve({ session: quiet })
      assert.deepStrictEqual(server.limits, {
        maxConns: 10_000,
        maxConnsPerClient: 100,
        maxStreamsPerSession: 2048,
        maxStreams: 16_384,
        maxBufferedBytesPerSession: 128 * 1024 * 1024,
        maxBufferedBytes: 256 * 1024 * 1024,
        maxMessageSize: 64 * 1024 * 1024
      })
      assert.strictEqual(RpcServer.defaultMaxConnsPerClient, 100)
    }))

  it.effect("refuses the 2049th stream of a session by default, before its ACK", () =>
    Effect.gen(function*() {
      const { counts, server } = yield* parking()
      const session = yield* connect(server)
      for (let i = 0; i < 2048; i++) yield* send(session, request("Test.Park", i, {}))
      yield* until("2048 handlers to start", () => counts.started === 2048, 5000)
      const over = yield* send(session, request("Test.Park", 2048, {}))
      assert.strictEqual(yield* readFailure(over), "StreamReset")
      assert.isTrue(over.refused)
      assert.strictEqual(server.limitStats().servingStreams, 2048)
    }))
})

describe("RpcServer.make (no listener)", () => {
  it.effect("serves the pool over in-memory transports handed to it, with the stats serve keeps", () =>
    Effect.gen(function*() {
      const server = yield* RpcServer.make({ host: "127.0.0.9", port: 8300, session: quiet, handlers: TestService.handlers })
      const connector: Connector = () =>
        Effect.gen(function*() {
          const pair = MemoryTransport.makePair()
          yield* Effect.forkScoped(server.serveTransport(pair.server, "client:1"))
          return pair.client
        })
      const replies = yield* Effect.gen(function*() {
        const pool = yield* RpcPool.make({ session: quiet }).pipe(Effect.provideService(Connector, connector))
        const leader = yield* pool.rpc("server-a:8300", "Status.Leader", {})
        const echoes = yield* Effect.forEach([1, 2, 3], (i) => pool.rpc("server-a:8300", "Test.Echo", { Seq: i }), {
          concurrency: "unbounded"
        })
        assert.strictEqual(server.connections().open, 1)
        return [leader, ...echoes.map((reply) => field(reply, "Seq"))]
      }).pipe(Effect.scoped)
      // The handlers see the name given, not a listener's.
      assert.deepStrictEqual(replies, ["127.0.0.9:8300", 1, 2, 3])
      const stats = server.stats()
      assert.strictEqual(stats.conns, 1)
      assert.strictEqual(stats.served, 4)
      yield* until("the session to end with the pool", () => server.stats().live === 0)
      assert.deepStrictEqual(server.connections(), { open: 0, refused: 0 })
    }))

  it.effect("serves a session the caller made, which the caller can GoAway", () =>
    Effect.gen(function*() {
      const server = yield* RpcServer.make({ session: quiet, handlers: TestService.handlers })
      const pair = MemoryTransport.makePair()
      const serverSession = yield* Session.make(pair.server, { ...quiet, role: "server" })
      yield* Effect.forkScoped(server.serveSession(serverSession, "client:1"))
      const clientSession = yield* Session.make(pair.client, { ...quiet, role: "client" })
      const stream = yield* client(clientSession)
      const reply = yield* stream.call("Test.Echo", { Seq: 7 })
      assert.strictEqual(field(reply, "Seq"), 7)
      yield* serverSession.goAway
      yield* until("the GoAway to arrive", () => clientSession.peerGoneAway)
      assert.strictEqual(server.stats().served, 1)
    }))

  it.effect("refuses bad options with ServerConfigError, as serve does", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(RpcServer.make({ handlers: TestService.handlers, maxStreams: -1 }))
      assert.isTrue(Exit.isFailure(exit))
    }))
})
