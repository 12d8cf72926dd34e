/**
 * An msgpack-rpc server on the same stack as the client: listener, preamble,
 * optional TLS, a yamux session per connection, and on every accepted stream
 * a loop serving one request after another, as Go's `rpc.ServeCodec` does.
 *
 * TypeScript services can answer Go clients with it, and tests and the demo
 * need no Go.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit } from "effect"
import type { Scope } from "effect"
import type { MuxStream } from "../mux/MuxSession.ts"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { Decoder } from "../msgpackrpc/Decoder.ts"
import type { DecoderOptions, Value } from "../msgpackrpc/Decoder.ts"
import { Encoder } from "../msgpackrpc/Encoder.ts"
import * as Listener from "../wire/Listener.ts"
import type { Protocol } from "../wire/Protocol.ts"
import { consul } from "../wire/Protocol.ts"
import type { TransportError } from "../wire/TransportError.ts"
import type * as YamuxConfig from "../yamux/Config.ts"
import * as Session from "../yamux/Session.ts"

/** What a handler knows about the call it serves. */
export interface CallContext {
  readonly method: string
  /** The client, `host:port`. */
  readonly remoteAddress: string
  readonly server: Server
}

/**
 * Serves one method. A failure becomes the reply's `Error` string (its
 * `message`), exactly what a Go handler returning an `error` produces.
 */
export type Handler = (args: Value, context: CallContext) => Effect.Effect<unknown, { readonly message: string }>

export interface ServeOptions extends Listener.ListenOptions {
  /** Handlers by `Service.Method`. */
  readonly handlers: Readonly<Record<string, Handler>>
  /** yamux tunables for every session. */
  readonly session?: YamuxConfig.Options | undefined
  /** Limits on each request. */
  readonly decoder?: DecoderOptions | undefined
}

/** Counters since the server started (what `Test.Stats` reports). */
export interface ServerStats {
  /** TCP connections accepted. */
  readonly conns: number
  /** yamux streams accepted. */
  readonly streams: number
  /** Calls answered. */
  readonly served: number
  /** Sessions alive now. */
  readonly live: number
}

export interface Server extends Listener.Listening {
  readonly stats: () => ServerStats
}

interface Counters {
  conns: number
  streams: number
  served: number
  live: number
}

const emptyReply = {}

const requestHeader = (v: Value): { method: string; seq: number | bigint } | undefined => {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array || Array.isArray(v)) return undefined
  const h = v as Record<string, Value>
  const method = h["ServiceMethod"]
  const seq = h["Seq"]
  if (typeof method !== "string" || (typeof seq !== "number" && typeof seq !== "bigint")) return undefined
  return { method, seq }
}

/** Go net/rpc's wording, so clients see the same strings from either server. */
const notFound = (method: string, handlers: Readonly<Record<string, Handler>>): string => {
  const dot = method.lastIndexOf(".")
  const service = dot < 0 ? "" : method.slice(0, dot)
  const known = service !== "" && Object.keys(handlers).some((m) => m.startsWith(`${service}.`))
  return known ? `rpc: can't find method ${method}` : `rpc: can't find service ${method}`
}

/**
 * Listens and serves until the Scope closes; closing it closes every session.
 *
 * @category constructors
 */
export const serve = (options: ServeOptions): Effect.Effect<Server, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const protocol: Protocol = options.protocol ?? consul
    const counters: Counters = { conns: 0, streams: 0, served: 0, live: 0 }
    const encoder = new Encoder()
    let server: Server | undefined

    /** Pulls the next value; `undefined` on a clean EOF between requests. */
    const nextValue = (
      stream: MuxStream,
      decoder: Decoder,
      atBoundary: boolean
    ): Effect.Effect<Value | undefined, unknown> => {
      const value = decoder.next()
      if (value instanceof CodecError) return Effect.fail(value)
      if (value !== undefined) return Effect.succeed(value)
      return Effect.flatMap(stream.read, (chunk) => {
        if (chunk === undefined) {
          return atBoundary && decoder.bufferedBytes === 0 ? Effect.succeed(undefined) : Effect.fail("EOF mid-request")
        }
        decoder.push(chunk)
        return nextValue(stream, decoder, atBoundary)
      })
    }

    const call = (method: string, args: Value, remoteAddress: string): Effect.Effect<
      { readonly error: string; readonly reply: unknown }
    > => {
      const handler = options.handlers[method]
      if (handler === undefined) return Effect.succeed({ error: notFound(method, options.handlers), reply: emptyReply })
      return Effect.exit(Effect.suspend(() => handler(args, { method, remoteAddress, server: server! }))).pipe(
        Effect.map((exit) =>
          Exit.isSuccess(exit)
            ? { error: "", reply: exit.value }
            : {
              error: Cause.findErrorOption(exit.cause).pipe((o) =>
                o._tag === "Some" ? o.value.message || "error" : "internal error"
              ),
              reply: emptyReply
            }
        )
      )
    }

    const serveStream = (stream: MuxStream, remoteAddress: string): Effect.Effect<void> =>
      Effect.gen(function*() {
        const decoder = new Decoder(options.decoder)
        if (protocol.streamByte !== undefined) {
          // Nomad: the first byte of every stream says what it carries; we serve only RPC.
          const first = yield* stream.read
          if (first === undefined) return
          if (first[0] !== protocol.streamByte) return yield* stream.reset
          if (first.length > 1) decoder.push(first.subarray(1))
        }
        for (;;) {
          const header = yield* nextValue(stream, decoder, true)
          if (header === undefined) return yield* stream.close
          const parsed = requestHeader(header)
          if (parsed === undefined) return yield* stream.reset
          const args = yield* nextValue(stream, decoder, false)
          if (args === undefined) return yield* stream.reset
          const { error, reply } = yield* call(parsed.method, args, remoteAddress)
          let response = encoder.encodeResponse(parsed.method, parsed.seq, error, reply)
          if (response instanceof CodecError) {
            response = encoder.encodeResponse(parsed.method, parsed.seq, `encoding reply: ${response.message}`, {})
            if (response instanceof CodecError) return yield* stream.reset
          }
          counters.served++
          yield* stream.write(response)
        }
      }).pipe(
        // A broken stream ends its loop; the session and other streams carry on.
        Effect.catch(() => stream.reset)
      )

    const listening = yield* Listener.listen(options, ({ remoteAddress, socket }) =>
      Effect.gen(function*() {
        counters.conns++
        const scope = yield* Effect.scope
        const session = yield* Session.make(socket, { ...options.session, role: "server", address: remoteAddress })
        counters.live++
        yield* Effect.addFinalizer(() => Effect.sync(() => counters.live--))
        yield* Effect.forkIn(
          Effect.forever(Effect.flatMap(session.accept, (stream) => {
            counters.streams++
            return Effect.forkIn(serveStream(stream, remoteAddress), scope)
          })).pipe(Effect.ignore),
          scope
        )
        yield* session.closed
      }))
    server = { ...listening, stats: () => ({ ...counters }) }
    return server
  })
