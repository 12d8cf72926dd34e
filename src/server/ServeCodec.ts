/**
 * One accepted stream of an `RpcServer`: requests read and answered one after
 * another, as Go's `rpc.ServeCodec` does.
 *
 * **What can go wrong, and what it costs**
 * - Bytes that are not a request (garbage, a request over `maxMessageSize`,
 *   the stream ending mid-request) reset this stream only.
 * - Request bytes that would pass the session's or the server's budget reset
 *   this stream only; its bytes go back to the budget.
 * - A handler that fails answers with its `message`; one that dies, throws,
 *   returns something other than an Effect, or returns a reply whose encoding
 *   throws answers `"internal error"` and the stream carries on.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit } from "effect"
import type { MuxSession, MuxStream } from "../mux/MuxSession.ts"
import { RequestReader } from "../msgpackrpc/Codec.ts"
import type { Request } from "../msgpackrpc/Codec.ts"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import type { DecoderOptions, Value } from "../msgpackrpc/Decoder.ts"
import { Encoder } from "../msgpackrpc/Encoder.ts"
import type { Budget } from "./Budget.ts"
import type { Handler, Server } from "./RpcServer.ts"

/** What the streams of one server count (read by `RpcServer`'s stats). */
export interface Counters {
  conns: number
  streams: number
  served: number
  live: number
  /** Streams being served now. */
  serving: number
  refusedStreams: number
  overBudget: number
  internalErrors: number
}

/** What every stream of one server shares. */
export interface Shared {
  readonly handlers: Readonly<Record<string, Handler>>
  /** Nomad's per-stream byte, `undefined` for Consul. */
  readonly streamByte: number | undefined
  readonly decoder: DecoderOptions
  readonly encoder: Encoder
  readonly counters: Counters
  readonly server: () => Server
}

/** The session a stream arrived on. */
export interface Origin {
  readonly remoteAddress: string
  readonly session: MuxSession
  readonly budget: Budget
}

const emptyReply = {}
const internalError = "internal error"

/** Go net/rpc's wording, so clients see the same strings from either server. */
const notFound = (method: string, handlers: Readonly<Record<string, Handler>>): string => {
  const dot = method.lastIndexOf(".")
  const service = dot < 0 ? "" : method.slice(0, dot)
  const known = service !== "" && Object.keys(handlers).some((m) => m.startsWith(`${service}.`))
  return known ? `rpc: can't find method ${method}` : `rpc: can't find service ${method}`
}

/** A failure's `message`, as Go sends an `error`'s text; read defensively, as handlers are user code. */
const failureMessage = (error: unknown): string => {
  try {
    const message = (error as { readonly message?: unknown } | null | undefined)?.message
    return typeof message === "string" && message !== "" ? message : "error"
  } catch {
    return "error"
  }
}

/**
 * The handler's result, if it is an Effect. Anything else (a Promise, a
 * value) would kill the serving fiber outright, past `Effect.exit`: effect's
 * run loop does not turn it into a defect of the Effect that returned it.
 */
const checked = (method: string, result: unknown): Effect.Effect<unknown, unknown> =>
  Effect.isEffect(result)
    ? result as Effect.Effect<unknown, unknown>
    : Effect.die(new TypeError(`the handler of ${method} returned ${typeof result}, not an Effect`))

/** The request's stream failed (bad bytes, budget, transport): reset it. */
const broken = Symbol("broken")

/**
 * Serves `stream` until the client closes it or it breaks; never fails.
 *
 * @category constructors
 */
export const serveCodec = (shared: Shared, origin: Origin, stream: MuxStream): Effect.Effect<void> => {
  const { counters, encoder } = shared
  const reader = new RequestReader(shared.decoder)
  /** Bytes this stream has taken from the budget. */
  let held = 0

  /** Feeds the reader; false (nothing fed) when the bytes would pass a budget. */
  const push = (chunk: Uint8Array): boolean => {
    if (!origin.budget.take(chunk.length)) {
      counters.overBudget++
      return false
    }
    held += chunk.length
    reader.push(chunk)
    return true
  }

  /** The next request; `undefined` on a clean EOF between requests. */
  const nextRequest = (): Effect.Effect<Request | undefined, unknown> => {
    const request = reader.next()
    if (request instanceof CodecError) return Effect.fail(request)
    if (request !== undefined) return Effect.succeed(request)
    return Effect.flatMap(stream.read, (chunk) => {
      if (chunk === undefined) {
        const truncated = reader.end()
        return truncated === undefined && reader.bufferedBytes === 0 ? Effect.succeed(undefined) : Effect.fail(truncated)
      }
      return push(chunk) ? nextRequest() : Effect.fail(broken)
    })
  }

  const call = (method: string, args: Value): Effect.Effect<{ readonly error: string; readonly reply: unknown }> => {
    const handler = shared.handlers[method]
    if (handler === undefined) return Effect.succeed({ error: notFound(method, shared.handlers), reply: emptyReply })
    const context = { method, remoteAddress: origin.remoteAddress, server: shared.server(), session: origin.session }
    return Effect.flatMap(Effect.exit(Effect.suspend(() => checked(method, handler(args, context)))), (exit) => {
      if (Exit.isSuccess(exit)) return Effect.succeed({ error: "", reply: exit.value })
      const failure = Cause.findErrorOption(exit.cause)
      if (failure._tag === "Some") return Effect.succeed({ error: failureMessage(failure.value), reply: emptyReply })
      counters.internalErrors++
      return Effect.as(
        Effect.logWarning(`RpcServer: handler of ${method} died; answered "${internalError}"`, exit.cause),
        { error: internalError, reply: emptyReply }
      )
    })
  }

  /**
   * The response's bytes. An unencodable reply is answered with the codec's
   * error, as before; one whose encoding throws (a getter, a Proxy) with
   * `"internal error"`. Replies to unknown methods use an encoder of their own
   * so a client's made-up names never enter the shared encoder's method cache.
   */
  const encode = (method: string, seq: number | bigint, error: string, reply: unknown): Array<Uint8Array> | undefined => {
    const using = shared.handlers[method] === undefined ? new Encoder({ slabBytes: 64 }) : encoder
    let response: Array<Uint8Array> | CodecError
    try {
      response = using.encodeResponseParts(method, seq, error, reply)
    } catch {
      counters.internalErrors++
      response = using.encodeResponseParts(method, seq, internalError, emptyReply)
    }
    if (response instanceof CodecError) {
      response = using.encodeResponseParts(method, seq, `encoding reply: ${response.message}`, emptyReply)
    }
    return response instanceof CodecError ? undefined : response
  }

  const loop = Effect.gen(function*() {
    if (shared.streamByte !== undefined) {
      // Nomad: the first byte of every stream says what it carries; we serve only RPC.
      const first = yield* stream.read
      if (first === undefined) return
      if (first[0] !== shared.streamByte) return yield* Effect.fail(broken)
      if (first.length > 1 && !push(first.subarray(1))) return yield* Effect.fail(broken)
    }
    for (;;) {
      const request = yield* nextRequest()
      if (request === undefined) return yield* stream.close
      const { ServiceMethod: method, Seq: seq } = request.header
      const { error, reply } = yield* call(method, request.body)
      const response = encode(method, seq, error, reply)
      if (response === undefined) return yield* Effect.fail(broken)
      counters.served++
      // Large byte arrays in the reply go out uncopied; the handler's reply is not touched after this.
      for (const part of response) yield* stream.write(part)
      // The request is answered: its bytes go back, what is buffered of the next one stays taken.
      const keep = reader.bufferedBytes
      origin.budget.give(held - keep)
      held = keep
    }
  })

  return loop.pipe(
    // A broken stream, or a bug below, ends this loop only; the session and other streams carry on.
    Effect.catchCause(() => stream.reset),
    Effect.ensuring(Effect.sync(() => {
      origin.budget.give(held)
      held = 0
    }))
  )
}
