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
import type { MuxSession, MuxStream } from "../mux/MuxSession.ts"
import { RequestReader } from "../msgpackrpc/Codec.ts"
import type { Request } from "../msgpackrpc/Codec.ts"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { DefaultMaxBufferedBytes, DefaultMaxMessageBytes } from "../msgpackrpc/Decoder.ts"
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
  /** The yamux session the call arrived on (e.g. to send GoAway). */
  readonly session: MuxSession
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
  /** Limits on each request (nesting, buffering); `maxMessageSize` wins over `decoder.maxMessageBytes`. */
  readonly decoder?: DecoderOptions | undefined
  /**
   * Largest request value, in bytes. Default 64 MiB (`defaultMaxMessageSize`).
   * A larger request resets its stream as soon as its header announces the
   * size (the client sees `StreamReset`); the session and its other streams
   * carry on.
   */
  readonly maxMessageSize?: number | undefined
}

/**
 * Largest request value a server buffers and decodes: 64 MiB, the msgpack
 * decoder's default and the pool's `maxMessageSize`, so a default client and
 * server agree; one stream can make the server hold at most twice this.
 */
export const defaultMaxMessageSize = DefaultMaxMessageBytes

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
    const maxMessageSize = Math.max(
      1,
      Math.floor(options.maxMessageSize ?? options.decoder?.maxMessageBytes ?? defaultMaxMessageSize)
    )
    const decoder: DecoderOptions = {
      ...options.decoder,
      maxMessageBytes: maxMessageSize,
      // A request is two values (header and args), both held until the second is whole.
      maxBufferedBytes: options.decoder?.maxBufferedBytes ?? Math.max(DefaultMaxBufferedBytes, 2 * maxMessageSize)
    }
    const counters: Counters = { conns: 0, streams: 0, served: 0, live: 0 }
    const encoder = new Encoder()
    let server: Server | undefined

    /** The next request; `undefined` on a clean EOF between requests. */
    const nextRequest = (stream: MuxStream, reader: RequestReader): Effect.Effect<Request | undefined, unknown> => {
      const request = reader.next()
      if (request instanceof CodecError) return Effect.fail(request)
      if (request !== undefined) return Effect.succeed(request)
      return Effect.flatMap(stream.read, (chunk) => {
        if (chunk === undefined) {
          const truncated = reader.end()
          return truncated === undefined && reader.bufferedBytes === 0 ? Effect.succeed(undefined) : Effect.fail(truncated)
        }
        reader.push(chunk)
        return nextRequest(stream, reader)
      })
    }

    const call = (method: string, args: Value, remoteAddress: string, session: MuxSession): Effect.Effect<
      { readonly error: string; readonly reply: unknown }
    > => {
      const handler = options.handlers[method]
      if (handler === undefined) return Effect.succeed({ error: notFound(method, options.handlers), reply: emptyReply })
      return Effect.exit(Effect.suspend(() => handler(args, { method, remoteAddress, server: server!, session }))).pipe(
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

    const serveStream = (stream: MuxStream, remoteAddress: string, session: MuxSession): Effect.Effect<void> =>
      Effect.gen(function*() {
        const reader = new RequestReader(decoder)
        if (protocol.streamByte !== undefined) {
          // Nomad: the first byte of every stream says what it carries; we serve only RPC.
          const first = yield* stream.read
          if (first === undefined) return
          if (first[0] !== protocol.streamByte) return yield* stream.reset
          if (first.length > 1) reader.push(first.subarray(1))
        }
        for (;;) {
          const request = yield* nextRequest(stream, reader)
          if (request === undefined) return yield* stream.close
          const { ServiceMethod: method, Seq: seq } = request.header
          const { error, reply } = yield* call(method, request.body, remoteAddress, session)
          let response = encoder.encodeResponseParts(method, seq, error, reply)
          if (response instanceof CodecError) {
            response = encoder.encodeResponseParts(method, seq, `encoding reply: ${response.message}`, {})
            if (response instanceof CodecError) return yield* stream.reset
          }
          counters.served++
          // Large byte arrays in the reply go out uncopied; the handler's reply is not touched after this.
          for (const part of response) yield* stream.write(part)
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
            return Effect.forkIn(serveStream(stream, remoteAddress, session), scope)
          })).pipe(Effect.ignore),
          scope
        )
        yield* session.closed
      }))
    server = { ...listening, stats: () => ({ ...counters }) }
    return server
  })
