/**
 * One streaming RPC served by `RpcServer`: the ack, the handler's end as EOF or as an error
 * frame, the client's FIN or RST interrupting the handler, and the server's limits applied to
 * streaming streams. Clients are our own sessions writing exact bytes, or `RpcPool.stream`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Stream } from "effect"
import { Decoder } from "../../src/msgpackrpc/Decoder.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import * as Streaming from "../../src/msgpackrpc/Streaming.ts"
import type { MuxStream } from "../../src/mux/MuxSession.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import { ServerConfigError } from "../../src/server/ServerConfigError.ts"
import * as StreamingHandler from "../../src/server/StreamingHandler.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import { connect, failure, quiet, readFailure, until } from "./helpers.ts"

const protocol = Protocols.nomad

const serve = (
  streaming: Readonly<Record<string, StreamingHandler.StreamingHandler>>,
  options: Partial<RpcServer.ServeOptions> = {}
) => RpcServer.serve({ protocol, session: quiet, handlers: {}, streaming, ...options }).pipe(Effect.orDie)

const bytes = (value: unknown): Uint8Array => {
  const out = encode(value)
  if (out instanceof Error) throw out
  return out
}

const header = (method: string): Uint8Array => {
  const out = Streaming.encodeHeader(method, protocol.streamingByte)
  if (out instanceof Error) throw out
  return out
}

/** Reads values off a raw stream until `count` have arrived (or EOF). */
const readValues = (stream: MuxStream, count: number) =>
  Effect.gen(function*() {
    const decoder = new Decoder()
    const values: Array<Value> = []
    while (values.length < count) {
      for (let v = decoder.next(); v !== undefined && values.length < count; v = decoder.next()) {
        if (v instanceof Error) return assert.fail(v.message)
        values.push(v)
      }
      if (values.length === count) break
      const chunk = yield* stream.read
      if (chunk === undefined) break
      decoder.push(chunk)
    }
    return values
  }).pipe(Effect.orDie)

/** A raw streaming RPC of `method`: the stream after the server's ack. */
const open = (server: RpcServer.Server, method: string, request: unknown) =>
  Effect.gen(function*() {
    const session = yield* connect(server, protocol)
    const stream = yield* session.open.pipe(Effect.orDie)
    yield* stream.write(header(method)).pipe(Effect.orDie)
    const [ack] = yield* readValues(stream, 1)
    assert.deepStrictEqual(ack, { Error: "" })
    yield* stream.write(bytes(request)).pipe(Effect.orDie)
    return { session, stream }
  })

const rpcFailure = <A>(effect: Effect.Effect<A, RpcError>) =>
  Effect.map(failure(effect), (error) => {
    assert.instanceOf(error, RpcError)
    return error
  })

describe("RpcServer streaming RPC", () => {
  it.effect("a handler that fails ends the stream with an error frame carrying its message and code", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "Test.Fails": StreamingHandler.duplex((_, send) =>
          Effect.andThen(send("first"), Effect.fail({ message: "permission denied", code: 403 }))
        )
      })
      const rpc = yield* RpcPool.make({ protocol, session: quiet })
      const frames: Array<string> = []
      const error = yield* rpcFailure(Stream.runForEach(
        rpc.stream(server.address, "Test.Fails", {}),
        (frame) => Effect.sync(() => frames.push(frame._tag))
      ))
      assert.deepStrictEqual(frames, ["Payload"])
      assert.strictEqual(error.reason, "RemoteError")
      assert.strictEqual(error.detail, "permission denied")
      assert.strictEqual(error.code, 403)
      assert.strictEqual(server.limitStats().internalErrors, 0)
    }))

  it.effect("a handler that dies, or returns no Effect, sends \"internal error\" and the session carries on", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "Test.Dies": StreamingHandler.duplex(() => Effect.die(new Error("bug"))),
        "Test.NotEffect": StreamingHandler.duplex((() => 42) as unknown as StreamingHandler.StreamingHandler["run"])
      })
      const rpc = yield* RpcPool.make({ protocol, session: quiet })
      for (const method of ["Test.Dies", "Test.NotEffect"]) {
        const error = yield* rpcFailure(Stream.runDrain(rpc.stream(server.address, method, {})))
        assert.strictEqual(error.reason, "RemoteError", method)
        assert.strictEqual(error.detail, "internal error", method)
        assert.isUndefined(error.code)
      }
      assert.strictEqual(server.limitStats().internalErrors, 2)
      assert.strictEqual((yield* rpc.stats).dials, 1)
    }))

  for (const how of ["FIN", "RST"] as const) {
    it.effect(`the client's ${how} interrupts the handler and frees its place`, () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const server = yield* serve({
          "Test.Forever": StreamingHandler.frames(
            () =>
              Stream.unwrap(Effect.as(Deferred.succeed(started, undefined), Stream.never)).pipe(
                Stream.ensuring(Deferred.succeed(interrupted, undefined))
              ),
            { heartbeat: false }
          )
        })
        const { stream } = yield* open(server, "Test.Forever", {})
        yield* Deferred.await(started)
        yield* how === "FIN" ? stream.close : stream.reset
        yield* Deferred.await(interrupted)
        yield* until("its place to be free", () => server.limitStats().servingStreams === 0)
        if (how === "FIN") {
          // The server answers a FIN with its own: EOF, not a reset.
          assert.isUndefined(yield* stream.read.pipe(Effect.orDie))
        }
      }))
  }

  it.effect("a duplex handler reads the client's values in order from `requests`", () =>
    Effect.gen(function*() {
      const server = yield* serve({
        "Test.Sum": StreamingHandler.duplex((requests, send) =>
          requests.pipe(
            Stream.takeWhile((v) => typeof v === "number"),
            Stream.runFold(() => 0, (sum, v) => sum + (v as number)),
            Effect.flatMap((sum) => send(String(sum)))
          ), { heartbeat: false })
      })
      const { stream } = yield* open(server, "Test.Sum", 1)
      for (const n of [2, 3, 4]) yield* stream.write(bytes(n)).pipe(Effect.orDie)
      yield* stream.write(bytes("end")).pipe(Effect.orDie)
      const [frame, eof] = yield* readValues(stream, 2)
      const parsed = Streaming.parseFrame(frame!)
      assert.isTrue(!(parsed instanceof Error) && parsed._tag === "Payload")
      assert.strictEqual(new TextDecoder().decode((parsed as { readonly payload: Uint8Array }).payload), "10")
      assert.isUndefined(eof, "EOF after the handler ended")
    }))

  it.effect("an unknown method is refused in the ack and its stream closed; no handler runs", () =>
    Effect.gen(function*() {
      const server = yield* serve({})
      const session = yield* connect(server, protocol)
      const stream = yield* session.open.pipe(Effect.orDie)
      yield* stream.write(header("Nope.Nope")).pipe(Effect.orDie)
      const values = yield* readValues(stream, 2)
      assert.deepStrictEqual(values, [{ Error: "Unknown rpc method: \"Nope.Nope\"" }])
      assert.strictEqual(server.stats().streamingRpcs, 0)
    }))

  it.effect("bytes that are not a header, or a request over maxMessageSize, reset only that stream", () =>
    Effect.gen(function*() {
      const server = yield* serve(
        { "Test.Forever": StreamingHandler.frames(() => Stream.never, { heartbeat: false }) },
        { maxMessageSize: 1024 }
      )
      const session = yield* connect(server, protocol)
      const garbage = yield* session.open.pipe(Effect.orDie)
      yield* garbage.write(Uint8Array.of(protocol.streamingByte!, 0xc1)).pipe(Effect.orDie)
      assert.strictEqual(yield* readFailure(garbage), "StreamReset")
      const big = yield* session.open.pipe(Effect.orDie)
      yield* big.write(header("Test.Forever")).pipe(Effect.orDie)
      assert.deepStrictEqual(yield* readValues(big, 1), [{ Error: "" }])
      yield* big.write(bytes({ Big: "x".repeat(2000) })).pipe(Effect.orDie)
      assert.strictEqual(yield* readFailure(big), "StreamReset")
      yield* until("nothing serving", () => server.limitStats().servingStreams === 0)
      assert.strictEqual(server.limitStats().bufferedBytes, 0, "every byte back in the budget")
      // The session carries on.
      const next = yield* session.open.pipe(Effect.orDie)
      yield* next.write(header("Test.Forever")).pipe(Effect.orDie)
      assert.deepStrictEqual(yield* readValues(next, 1), [{ Error: "" }])
    }))

  it.effect("an open streaming RPC holds its place in maxStreams: another stream is reset until it ends", () =>
    Effect.gen(function*() {
      const server = yield* serve(
        { "Test.Forever": StreamingHandler.frames(() => Stream.never, { heartbeat: false }) },
        { maxStreams: 1, handlers: { "Status.Ping": () => Effect.succeed({}) } }
      )
      const { stream } = yield* open(server, "Test.Forever", {})
      yield* until("the handler to run", () => server.limitStats().servingStreams === 1)
      const rpc = yield* RpcPool.make({ protocol, session: quiet })
      // Past maxStreams a stream is reset on accept (ServeOptions): the call's stream is reset.
      const refused = yield* rpcFailure(rpc.rpc(server.address, "Status.Ping", {}))
      assert.strictEqual(refused.reason, "StreamReset")
      assert.strictEqual(server.limitStats().refusedStreams, 1)
      yield* stream.reset
      yield* until("its place to be free", () => server.limitStats().servingStreams === 0)
      yield* rpc.rpc(server.address, "Status.Ping", {})
    }))

  it.effect("streaming handlers that StreamingHandler did not make are refused at construction", () =>
    Effect.gen(function*() {
      const error = yield* failure(
        Effect.scoped(RpcServer.serve({ protocol, handlers: {}, streaming: { "Test.Bad": (() => Effect.void) as never } }))
      )
      assert.instanceOf(error, ServerConfigError)
      assert.strictEqual((error as ServerConfigError).option, "streaming.Test.Bad")
    }))
})
