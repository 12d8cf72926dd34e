/**
 * Helpers for the server suites: hand-made client sessions on loopback (our own Transport and
 * yamux, so a test can put exact bytes on a stream), typed failures, and a bound on waits that
 * counts event-loop turns rather than time.
 */
import { assert } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import * as net from "node:net"
import type { MuxSession, MuxStream } from "../../src/mux/MuxSession.ts"
import { encodeRequest } from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { RemoteError } from "../../src/msgpackrpc/RemoteError.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import type * as RpcServer from "../../src/server/RpcServer.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import { consul } from "../../src/wire/Protocol.ts"
import * as Transport from "../../src/wire/Transport.ts"
import * as Session from "../../src/yamux/Session.ts"
import { flush } from "../yamux/harness.ts"

export { flush, until } from "../yamux/harness.ts"

/** No keepalive timers: the tests run on the TestClock and never move it unless they say so. */
export const quiet = { enableKeepAlive: false } as const

/** A client session of our own, in the test's Scope. */
export const connect = (server: RpcServer.Server, protocol?: Protocol) =>
  Effect.gen(function*() {
    const socket = yield* Transport.dial({ host: server.host, port: server.port, protocol })
    return yield* Session.make(socket, { ...quiet, role: "client" })
  }).pipe(Effect.orDie)

/**
 * A consul client session from another loopback address (127.0.0.2, ...), so one test can be
 * several client IPs. Plain TCP by hand: the preamble byte, then yamux.
 */
export const connectFrom = (server: RpcServer.Server, localAddress: string) =>
  Effect.gen(function*() {
    const socket = yield* Effect.acquireRelease(
      Effect.callback<net.Socket>((resume) => {
        const socket = net.createConnection({ host: server.host, port: server.port, localAddress }, () => {
          socket.write(Uint8Array.of(consul.muxByte))
          resume(Effect.succeed(socket))
        })
        socket.on("error", () => {})
      }),
      (socket) => Effect.sync(() => socket.destroy())
    )
    return yield* Session.make(socket, { ...quiet, role: "client" })
  })

export const client = (session: MuxSession, protocol?: Protocol) =>
  Effect.map(session.open, (stream) => new StreamClient(stream, protocol?.streamByte)).pipe(Effect.orDie)

/** A request's bytes, for hostile clients that write them by hand (in pieces, or never whole). */
export const request = (method: string, seq: number, args: unknown): Uint8Array => {
  const bytes = encodeRequest(method, seq, args)
  if (bytes instanceof CodecError) throw bytes
  return bytes
}

/** Opens a stream and writes `bytes` on it, without waiting for any reply. */
export const send = (session: MuxSession, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const stream = yield* session.open
    yield* stream.write(bytes)
    return stream
  }).pipe(Effect.orDie)

/** The call's typed failure (it must fail). */
export const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
    if (!Exit.isFailure(exit)) throw new Error("unreachable")
    const reason = exit.cause.reasons[0]
    assert.strictEqual(reason?._tag, "Fail", `expected a typed failure, got ${String(reason?._tag)}`)
    return (reason as { readonly error: E }).error
  })

export const remoteMessage = (error: unknown): string => {
  assert.instanceOf(error, RemoteError)
  return (error as RemoteError).message
}

/** The MuxError reason a stream's next read fails with (it must fail). */
export const readFailure = (stream: MuxStream) =>
  Effect.map(failure(stream.read), (error) => error.reason)

export const field = (value: Value, name: string): Value | undefined => (value as Record<string, Value>)[name]

/**
 * Runs `effect` and fails the test if it has not finished within `turns` event-loop turns, so a
 * server that wedges fails the test with a message rather than hanging it. Not a timer.
 */
export const within = <A, E>(what: string, effect: Effect.Effect<A, E>, turns = 2000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(effect)
    for (let i = 0; i < turns; i++) {
      const exit = fiber.pollUnsafe()
      if (exit !== undefined) return yield* exit
      yield* flush(2)
    }
    yield* Fiber.interrupt(fiber)
    return assert.fail(`${what}: still waiting after ${turns} event-loop turns`)
  })
