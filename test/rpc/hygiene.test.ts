/**
 * Stream hygiene and the decoding budget against hostile servers on loopback.
 *
 * The hostile server is built from the project's own pieces (Listener, yamux Session, RequestReader) and
 * answers each request with bytes the test scripts: a reply sent twice, a reply for a later Seq sent early,
 * a reply for another Seq, stray bytes on an idle stream, a body that declares 60 million values.
 *
 * Promise: bytes left on a pooled stream never poison or answer the next, unrelated call; a reply whose Seq is
 * not the request's is never returned; a body that would build too much fails its call with MessageTooLarge,
 * resets only its stream and keeps the session; our server fails only the request that would.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import type { Scope } from "effect"
import { encodeRequest, encodeResponse, type Request, RequestReader } from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import { MuxError } from "../../src/mux/MuxError.ts"
import type { MuxStream } from "../../src/mux/MuxSession.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import * as Listener from "../../src/wire/Listener.ts"
import * as Transport from "../../src/wire/Transport.ts"
import * as Session from "../../src/yamux/Session.ts"
import { rpcErrorOf } from "../faults/helpers.ts"
import { flush, until } from "../yamux/harness.ts"

const quiet = { enableKeepAlive: false } as const

const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => Uint8Array.from(Buffer.concat(parts))

/** The response the server would send for `request`: its own Seq and method, `body` as the reply. */
const answer = (request: Request, body: Value = request.body, seq: number | bigint = request.header.Seq) =>
  bytesOf(encodeResponse(request.header.ServiceMethod, seq, "", body))

interface Served {
  readonly request: Request
  readonly stream: MuxStream
  /** Requests served before this one on the same stream. */
  readonly onStream: number
  /** Requests served before this one on any stream. */
  readonly overall: number
}

interface Hostile extends Listener.Listening {
  /** Streams the clients opened. */
  readonly streams: () => number
  /** Streams whose next read failed with a reset from the client. */
  readonly resets: () => number
}

/** Reads the next request off `stream`; `undefined` at EOF. Fails with the stream's or the codec's error. */
const nextRequest = (stream: MuxStream, reader: RequestReader): Effect.Effect<Request | undefined, MuxError | CodecError> => {
  const request = reader.next()
  if (request instanceof CodecError) return Effect.fail(request)
  if (request !== undefined) return Effect.succeed(request)
  return Effect.flatMap(stream.read, (chunk) => {
    if (chunk === undefined) return Effect.succeed(undefined)
    reader.push(chunk)
    return nextRequest(stream, reader)
  })
}

/**
 * A msgpack-rpc server that answers every request with what `respond` writes on the stream (by default the
 * request's args echoed, as `Test.Echo` does), closed with the Scope.
 */
const hostile = (
  respond: (served: Served) => Effect.Effect<void, MuxError> = ({ request, stream }) => stream.write(answer(request))
): Effect.Effect<Hostile, never, Scope.Scope> =>
  Effect.gen(function*() {
    let streams = 0
    let resets = 0
    let overall = 0
    const serveStream = (stream: MuxStream) =>
      Effect.gen(function*() {
        const reader = new RequestReader()
        for (let onStream = 0;; onStream++) {
          const request = yield* nextRequest(stream, reader)
          if (request === undefined) return yield* stream.close
          yield* respond({ request, stream, onStream, overall: overall++ })
        }
      }).pipe(
        Effect.catch((e) =>
          Effect.sync(() => {
            if (e instanceof MuxError && e.reason === "StreamReset") resets++
          })
        )
      )
    const listening = yield* Effect.orDie(Listener.listen({}, ({ remoteAddress, socket }) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const session = yield* Session.make(socket, { ...quiet, role: "server", address: remoteAddress })
        yield* Effect.forkIn(
          Effect.forever(Effect.flatMap(session.accept, (stream) => {
            streams++
            return Effect.forkIn(serveStream(stream), scope)
          })).pipe(Effect.ignore),
          scope
        )
        yield* session.closed
      })))
    return { ...listening, streams: () => streams, resets: () => resets }
  })

const echo = (pool: RpcPool.RpcPool.Service, address: string, n: number) =>
  pool.rpc(address, "Test.Echo", { N: n })

/** The first echo's failure, which must be `reason` naming `says`, after the request was sent: not retryable. */
const failsAfterSending = (pool: RpcPool.RpcPool.Service, address: string, reason: RpcError["reason"], says: string) =>
  Effect.map(Effect.exit(echo(pool, address, 1)), (exit) => {
    const error = rpcErrorOf(exit)
    assert.strictEqual(error.reason, reason)
    assert.include(error.message, says)
    assert.isTrue(error.sent)
    assert.isFalse(error.isRetryable)
    return error
  })

describe("stream hygiene", () => {
  it.effect("a reply sent twice in one write: the stream is not reused and the next call gets its own reply", () =>
    Effect.gen(function*() {
      const server = yield* hostile(({ onStream, request, stream }) =>
        stream.write(onStream === 0 ? concat(answer(request), answer(request)) : answer(request))
      )
      const pool = yield* RpcPool.make({ session: quiet })
      assert.deepStrictEqual(yield* echo(pool, server.address, 1), { N: 1 })
      const stats = yield* pool.stats
      assert.strictEqual(stats.streamsIdle, 0, "a stream with a second reply buffered is not kept")
      assert.deepStrictEqual(yield* echo(pool, server.address, 2), { N: 2 })
      assert.strictEqual(server.streams(), 2, "the second call went on a fresh stream")
      yield* until("the client to reset the first stream", () => server.resets() === 1)
      assert.strictEqual((yield* pool.stats).dials, 1, "the session is kept")
    }))

  it.effect("a reply sent twice in separate writes never fails or answers a later call, whenever the copy lands", () =>
    Effect.gen(function*() {
      const server = yield* hostile(({ request, stream }) =>
        Effect.andThen(stream.write(answer(request)), Effect.andThen(flush(1), stream.write(answer(request))))
      )
      const pool = yield* RpcPool.make({ session: quiet })
      // Back to back, so the copy lands before, during or after the next call's request.
      for (let n = 0; n < 30; n++) assert.deepStrictEqual(yield* echo(pool, server.address, n), { N: n })
      assert.strictEqual((yield* pool.stats).dials, 1)
    }))

  it.effect("a reply for a later Seq sent early is never returned to the call with that Seq", () =>
    Effect.gen(function*() {
      const server = yield* hostile(({ onStream, request, stream }) =>
        stream.write(
          onStream === 0
            ? concat(answer(request), answer(request, { N: "forged" }, Number(request.header.Seq) + 1))
            : answer(request)
        )
      )
      const pool = yield* RpcPool.make({ session: quiet })
      assert.deepStrictEqual(yield* echo(pool, server.address, 1), { N: 1 })
      // This call's Seq is the forged reply's (Seqs come from one counter and nothing else calls meanwhile).
      assert.deepStrictEqual(yield* echo(pool, server.address, 2), { N: 2 })
      assert.strictEqual(server.streams(), 2)
    }))

  it.effect("a reply for another Seq fails its call with ProtocolError, resets only its stream, and the next call succeeds", () =>
    Effect.gen(function*() {
      const server = yield* hostile(({ overall, request, stream }) =>
        stream.write(overall === 0 ? answer(request, { N: "not yours" }, Number(request.header.Seq) + 1000) : answer(request))
      )
      const pool = yield* RpcPool.make({ session: quiet })
      yield* failsAfterSending(pool, server.address, "ProtocolError", "expected")
      assert.deepStrictEqual(yield* echo(pool, server.address, 2), { N: 2 })
      yield* until("the client to reset the first stream", () => server.resets() === 1)
      const stats = yield* pool.stats
      assert.strictEqual(stats.dials, 1, "the session is kept")
      assert.strictEqual(stats.failures.ProtocolError, 1)
    }))

  it.effect("a stream client is not reusable once bytes arrive on its stream after the reply", () =>
    Effect.gen(function*() {
      let stray: MuxStream | undefined
      const server = yield* hostile(({ request, stream }) => {
        stray = stream
        return stream.write(answer(request))
      })
      const socket = yield* Effect.orDie(Transport.dial({ host: server.host, port: server.port }))
      const session = yield* Session.make(socket, { ...quiet, role: "client" })
      const client = new StreamClient(yield* Effect.orDie(session.open), undefined)
      assert.deepStrictEqual(yield* Effect.orDie(client.call("Test.Echo", { N: 1 })), { N: 1 })
      assert.isTrue(client.reusable)
      // The server speaks out of turn on the idle stream.
      yield* Effect.orDie(stray!.write(bytesOf(encodeResponse("Test.Echo", 12345, "", "stray"))))
      yield* until("the stray bytes to arrive", () => client.stream.bufferedBytes > 0)
      assert.isFalse(client.reusable)
    }))
})

describe("decoding budget over the wire", () => {
  /** Header of an array32 claiming 60 Mi nils, then a few of them: 60 MiB under maxMessageSize. */
  const bomb = Uint8Array.of(0xdd, 0x03, 0xc0, 0x00, 0x00, 0xc0, 0xc0, 0xc0)

  it.effect("a reply declaring 60 million nils fails with MessageTooLarge at its header, resets only its stream, keeps the session", () =>
    Effect.gen(function*() {
      const server = yield* hostile(({ overall, request, stream }) =>
        // The response header, then the bomb where the body goes; the rest never comes.
        stream.write(overall === 0 ? concat(answer(request, null).subarray(0, -1), bomb) : answer(request))
      )
      const pool = yield* RpcPool.make({ session: quiet })
      yield* failsAfterSending(pool, server.address, "MessageTooLarge", "maxDecodedBytes")
      yield* until("the client to reset the bomb's stream", () => server.resets() === 1)
      assert.deepStrictEqual(yield* echo(pool, server.address, 2), { N: 2 })
      const stats = yield* pool.stats
      assert.strictEqual(stats.sessions, 1)
      assert.strictEqual(stats.dials, 1)
      assert.strictEqual(stats.failures.MessageTooLarge, 1)
    }))

  it.effect("our RpcServer resets only the stream of a request declaring 60 million values; the session's other streams carry on", () =>
    Effect.gen(function*() {
      const server = yield* RpcServer.serve({ session: quiet, handlers: TestService.handlers })
      const socket = yield* Effect.orDie(Transport.dial({ host: server.host, port: server.port }))
      const session = yield* Session.make(socket, { ...quiet, role: "client" })
      const good = new StreamClient(yield* Effect.orDie(session.open), undefined)
      assert.deepStrictEqual(yield* Effect.orDie(good.call("Status.Ping", {})), {})

      const attack = yield* Effect.orDie(session.open)
      const header = bytesOf(encodeRequest("Test.Echo", 1, null)).subarray(0, -1) // drop the nil args
      yield* Effect.orDie(attack.write(concat(header, bomb)))
      const read = yield* Effect.exit(attack.read)
      assert.isTrue(Exit.isFailure(read), "the server resets the stream")

      assert.deepStrictEqual(yield* Effect.orDie(good.call("Status.Ping", {})), {})
      assert.isFalse(session.isClosed)
      assert.strictEqual(server.stats().live, 1)
      assert.strictEqual(server.stats().served, 2, "the bomb never reached a handler")
    }))
})
