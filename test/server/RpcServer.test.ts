/**
 * The msgpack-rpc server on loopback, driven by hand-made client sessions so a
 * test can put exact bytes on a stream.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { MuxError } from "../../src/mux/MuxError.ts"
import type { MuxSession } from "../../src/mux/MuxSession.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { RemoteError } from "../../src/msgpackrpc/RemoteError.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import * as Transport from "../../src/wire/Transport.ts"
import * as Session from "../../src/yamux/Session.ts"

/** One event-loop turn, so loopback I/O can flow. Not a timer. */
const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

const waitUntil = (condition: () => boolean, what: string, turns = 2000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns; i++) {
      if (condition()) return
      yield* flush
    }
    assert.fail(`gave up waiting for ${what}`)
  })

const quiet = { enableKeepAlive: false } as const

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

/** A client session of our own, in the test's Scope. */
const connect = (server: RpcServer.Server, protocol?: Protocol) =>
  Effect.gen(function*() {
    const socket = yield* Transport.dial({ host: server.host, port: server.port, protocol })
    return yield* Session.make(socket, { ...quiet, role: "client" })
  }).pipe(Effect.orDie)

const client = (session: MuxSession, protocol?: Protocol) =>
  Effect.map(session.open, (stream) => new StreamClient(stream, protocol?.streamByte)).pipe(Effect.orDie)

/** The call's typed failure (it must fail). */
const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
    if (!Exit.isFailure(exit)) throw new Error("unreachable")
    const reason = exit.cause.reasons[0]
    assert.strictEqual(reason?._tag, "Fail", `expected a typed failure, got ${String(reason?._tag)}`)
    return (reason as { readonly error: E }).error
  })

const remoteMessage = (error: unknown): string => {
  assert.instanceOf(error, RemoteError)
  return (error as RemoteError).message
}

const field = (value: Value, name: string): Value | undefined => (value as Record<string, Value>)[name]

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
      assert.deepStrictEqual(server.stats(), { conns: 2, streams: 3, served: 5, live: 2 })

      yield* Scope.close(twoScope, Exit.void)
      yield* waitUntil(() => server.stats().live === 1, "the server to see the second session close")
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
