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
import { RPC_METHOD } from "../observability/Semconv.ts"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { type DecoderOptions, type Value, Yield } from "../msgpackrpc/Decoder.ts"
import { Encoder } from "../msgpackrpc/Encoder.ts"
import type { Budget } from "./Budget.ts"
import { failureMessage, failureTag } from "./Failure.ts"
import type { StreamingHandler } from "./StreamingHandler.ts"
import { StreamingServer } from "./StreamingServer.ts"
import type { Handler, Server } from "./RpcServer.ts"
import { clientAttributes } from "./ServerObserver.ts"
import type { ServerObserver } from "./ServerObserver.ts"

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
  /** Streaming RPCs acked (their handler ran). */
  streamingRpcs: number
}

/** What every stream of one server shares. */
export interface Shared {
  readonly handlers: Readonly<Record<string, Handler>>
  readonly streaming: Readonly<Record<string, StreamingHandler>>
  /** Nomad's per-stream byte, `undefined` for Consul. */
  readonly streamByte: number | undefined
  /** Nomad's byte for a streaming-RPC stream, `undefined` when the protocol has none. */
  readonly streamingByte: number | undefined
  readonly decoder: DecoderOptions
  readonly encoder: Encoder
  readonly counters: Counters
  readonly server: () => Server
  /** Metrics and spans per call; undefined when both are off (or until the server listens). */
  observer: ServerObserver | undefined
}

/** The session a stream arrived on, and what its streams hold of the session's limits. */
export interface Origin {
  readonly remoteAddress: string
  readonly session: MuxSession
  readonly budget: Budget
  /** Streams of this session being served now. */
  serving: number
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
 * One stream being served. Counted in its session's and its server's
 * `serving` from construction until `done`, which its fiber's observer calls
 * however the fiber ends (even interrupted before it ran).
 *
 * @category constructors
 */
export class StreamServer {
  private readonly shared: Shared
  private readonly origin: Origin
  private readonly stream: MuxStream
  private readonly reader: RequestReader
  /** Bytes this stream has taken from the budget: what arrived, and the room reserved for a large request. */
  private held = 0
  /** Bytes were refused (over a budget): the stream is to be reset. */
  private refused = false
  /** `done` ran. Bytes the session still delivers to the sink (its fiber ended first) are not taken. */
  private finished = false

  constructor(shared: Shared, origin: Origin, stream: MuxStream) {
    this.shared = shared
    this.origin = origin
    this.stream = stream
    this.reader = new RequestReader(shared.decoder)
    origin.serving++
    shared.counters.serving++
  }

  /** Serves the stream until the client closes it or it breaks; never fails. */
  serve(): Effect.Effect<void> {
    return Effect.catchCause(
      this.loop(),
      // A broken stream, or a bug below, ends this loop only; the session and other streams carry on.
      () => this.stream.reset
    )
  }

  /** Gives back what the stream held: its bytes and its place in the stream limits. Called once. */
  readonly done = (): void => {
    this.finished = true
    this.origin.budget.give(this.held)
    this.held = 0
    this.origin.serving--
    this.shared.counters.serving--
  }

  private loop(): Effect.Effect<void, unknown> {
    return Effect.gen({ self: this }, function*() {
      const { shared, stream } = this
      if (shared.streamByte !== undefined) {
        // Nomad: the first byte of every stream says what it carries: RPC or a streaming RPC.
        const first = yield* stream.read
        if (first === undefined) return
        if (first[0] === shared.streamingByte) {
          return yield* new StreamingServer(shared, this.origin, stream).serve(first.subarray(1))
        }
        if (first[0] !== shared.streamByte) return yield* Effect.fail(broken)
        stream.receiveInto(this.sink)
        if (first.length > 1) this.sink(first.subarray(1))
      } else {
        stream.receiveInto(this.sink)
      }
      for (;;) {
        const request = yield* this.nextRequest()
        if (request === undefined) return yield* stream.close
        const observer = shared.observer
        yield* observer === undefined
          ? this.answer(request)
          : observer.call(request.header.ServiceMethod, this.origin.remoteAddress, this.answer(request))
      }
    })
  }

  /** Runs the request's handler and writes the response; succeeds with the call's `error.type` when it failed. */
  private answer(request: Request): Effect.Effect<string | undefined, unknown> {
    return Effect.gen({ self: this }, function*() {
      const { shared, stream } = this
      const { ServiceMethod: method, Seq: seq } = request.header
      const handler = shared.handlers[method]
      const { error, reply, errorType } = yield* call(shared, this.origin, handler, method, request.body)
      const internalErrors = shared.counters.internalErrors
      const response = encode(shared, handler !== undefined, method, seq, error, reply)
      if (response === undefined) return yield* Effect.fail(broken)
      shared.counters.served++
      // Large byte arrays in the reply go out uncopied; the handler's reply is not touched after this.
      for (const part of response) yield* stream.write(part)
      this.answered()
      return shared.counters.internalErrors === internalErrors ? errorType : "InternalError"
    })
  }

  /** The next request; `undefined` on a clean EOF between requests. */
  private nextRequest(): Effect.Effect<Request | undefined, unknown> {
    const request = this.reader.step()
    // A large request is decoded a slice at a time, yielding between slices so other streams run.
    if (request === Yield) return Effect.flatMap(Effect.yieldNow, () => this.nextRequest())
    if (request instanceof CodecError) return Effect.fail(request)
    if (request !== undefined) return Effect.succeed(request)
    if (this.refused) return Effect.fail(broken)
    return Effect.flatMap(this.stream.received, this.onReceived)
  }

  private readonly onReceived = (more: boolean): Effect.Effect<Request | undefined, unknown> => {
    if (more) return this.nextRequest()
    const truncated = this.reader.end()
    return truncated === undefined && this.reader.bufferedBytes === 0 ? Effect.succeed(undefined) : Effect.fail(truncated)
  }

  /**
   * The stream's receive sink: requests are read as they arrive, straight into the reader (copied once,
   * large ones into their buffer). It charges the budget first for a piece's bytes and then for any room the
   * reader reserved for a large request, and refuses past a budget (the stream is then reset).
   */
  private readonly sink = (lent: Uint8Array): boolean => {
    if (this.refused || this.finished) return false
    const budget = this.origin.budget
    // Bytes that fill room already reserved (and charged) for a large request cost nothing more.
    const reserved = this.reader.reservedBytes
    const fill = Math.min(lent.length, reserved)
    if (!budget.take(lent.length - fill)) return this.refuse()
    this.held += lent.length - fill
    const consumed = this.reader.receive(lent)
    const grown = this.reader.reservedBytes - (reserved - fill)
    if (grown > 0 && !budget.take(grown)) return this.refuse()
    if (grown < 0) budget.give(-grown)
    this.held += grown
    return consumed
  }

  private refuse(): false {
    this.shared.counters.overBudget++
    this.refused = true
    return false
  }

  /** The request is answered: its bytes go back, what is held of the next one stays taken. */
  private answered(): void {
    const keep = this.reader.bufferedBytes + this.reader.reservedBytes
    this.origin.budget.give(this.held - keep)
    this.held = keep
  }
}

const call = (
  shared: Shared,
  origin: Origin,
  handler: Handler | undefined,
  method: string,
  args: Value
): Effect.Effect<{ readonly error: string; readonly reply: unknown; readonly errorType?: string }> => {
  if (handler === undefined) {
    return Effect.succeed({ error: notFound(method, shared.handlers), reply: emptyReply, errorType: "MethodNotFound" })
  }
  const context = { method, remoteAddress: origin.remoteAddress, server: shared.server(), session: origin.session }
  return Effect.flatMap(Effect.exit(Effect.suspend(() => checked(method, handler(args, context)))), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.succeed({ error: "", reply: exit.value })
    const failure = Cause.findErrorOption(exit.cause)
    if (failure._tag === "Some") {
      return Effect.succeed({ error: failureMessage(failure.value), reply: emptyReply, errorType: failureTag(failure.value) })
    }
    shared.counters.internalErrors++
    // The client sees only "internal error"; the cause (a stack trace, a value) is for the server's operators.
    return Effect.as(
      Effect.annotateLogs(Effect.logError(`RpcServer: handler of ${method} died; answered "${internalError}"`, exit.cause), {
        [RPC_METHOD]: method,
        ...clientAttributes(origin.remoteAddress)
      }),
      { error: internalError, reply: emptyReply, errorType: "InternalError" }
    )
  })
}

/**
 * The response's bytes. An unencodable reply is answered with the codec's
 * error, as before; one whose encoding throws (a getter, a Proxy) with
 * `"internal error"`. Replies to unknown methods use an encoder of their own
 * so a client's made-up names never enter the shared encoder's method cache.
 */
const encode = (
  shared: Shared,
  known: boolean,
  method: string,
  seq: number | bigint,
  error: string,
  reply: unknown
): Array<Uint8Array> | undefined => {
  const encoder = known ? shared.encoder : new Encoder({ slabBytes: 64 })
  let response: Array<Uint8Array> | CodecError
  try {
    response = encoder.encodeResponseParts(method, seq, error, reply)
  } catch {
    shared.counters.internalErrors++
    response = encoder.encodeResponseParts(method, seq, internalError, emptyReply)
  }
  // A reply that throws while it is read (a getter, a Proxy trap) is the handler's bug: an internal error.
  if (response instanceof CodecError && response.reason === "Unreadable") {
    shared.counters.internalErrors++
    response = encoder.encodeResponseParts(method, seq, internalError, emptyReply)
  }
  if (response instanceof CodecError) {
    response = encoder.encodeResponseParts(method, seq, `encoding reply: ${response.message}`, emptyReply)
  }
  return response instanceof CodecError ? undefined : response
}
