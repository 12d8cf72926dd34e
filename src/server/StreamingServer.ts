/**
 * One streaming RPC being served (Nomad `handleStreamingConn`): the header
 * read, the method acked or refused, then the handler running beside two
 * helpers until one of them ends it.
 *
 * ```
 *   header ── unknown method ──▶ ack "Unknown rpc method: \"X\"", FIN
 *      └── ack "" ──▶ handler ──────── ends ──▶ FIN (EOF for the client)
 *                     │        └────── fails ─▶ error frame {Message, Code}, FIN
 *                     ├ reader: the client's values into `requests`; its FIN or RST interrupts the handler
 *                     └ heartbeat: `{}` on the handler's Schedule
 * ```
 *
 * What the client sends is held within the server's limits: the decoder's
 * bytes count against the session's budget (a stream that would pass it is
 * reset), one decoded value waits for the handler at a time, and the rest
 * waits in the stream's window, where the client's writes stop.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, Fiber, Queue, Schedule, Semaphore, Stream } from "effect"
import type { Scope } from "effect"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { Decoder } from "../msgpackrpc/Decoder.ts"
import type { Value } from "../msgpackrpc/Decoder.ts"
import * as Streaming from "../msgpackrpc/Streaming.ts"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxStream } from "../mux/MuxSession.ts"
import { Heartbeat } from "./StreamingHandler.ts"
import type { Outbound, StreamingError, StreamingHandler } from "./StreamingHandler.ts"
import { RPC_METHOD } from "../observability/Semconv.ts"
import { failureCode, failureMessage } from "./Failure.ts"
import { clientAttributes } from "./ServerObserver.ts"
import type { Origin, Shared } from "./StreamServer.ts"

const internalError = "internal error"

/** Nomad's wording (`nomad/rpc.go`), so clients see the same text from either server. */
const unknownMethod = (method: string): string => `Unknown rpc method: ${JSON.stringify(method)}`

/** The stream broke under the RPC (bad bytes, over budget, reset): reset it, end everything. */
class Broken {
  readonly cause: CodecError | MuxError | undefined
  constructor(cause?: CodecError | MuxError) {
    this.cause = cause
  }
}

/** Ended by the client: its FIN (EOF on our reads). */
const clientClosed = Symbol("clientClosed")

export class StreamingServer {
  private readonly shared: Shared
  private readonly origin: Origin
  private readonly stream: MuxStream
  private readonly decoder: Decoder
  /** Bytes the decoder holds, taken from the session's budget. */
  private held = 0
  private eof = false
  /** Sends and heartbeats, one frame at a time. */
  private readonly writeLock = Semaphore.makeUnsafe(1)

  constructor(shared: Shared, origin: Origin, stream: MuxStream) {
    this.shared = shared
    this.origin = origin
    this.stream = stream
    this.decoder = new Decoder(shared.decoder)
  }

  /** Serves the RPC whose type byte has been read; `rest` is what came after it. Never fails. */
  serve(rest: Uint8Array): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      if (rest.length > 0 && !this.push(rest)) return yield* Effect.fail(new Broken())
      const header = yield* this.next
      if (header === undefined) return yield* this.stream.close
      const method = Streaming.parseHeader(header)
      if (method instanceof CodecError) return yield* Effect.fail(new Broken(method))
      const handler = this.shared.streaming[method]
      yield* this.write(Streaming.encodeAck(handler === undefined ? unknownMethod(method) : ""))
      if (handler === undefined) return yield* this.stream.close
      this.shared.counters.streamingRpcs++
      yield* this.run(handler, method)
    }).pipe(
      Effect.scoped,
      Effect.catch(() => this.stream.reset),
      Effect.ensuring(Effect.sync(() => this.giveAll()))
    )
  }

  /** The handler with its reader and heartbeat; how it ends decides the stream's last frame. */
  private run(handler: StreamingHandler, method: string): Effect.Effect<void, Broken, Scope.Scope> {
    return Effect.gen({ self: this }, function*() {
      const requests = yield* Queue.bounded<Value, Cause.Done>(1)
      const context = {
        method,
        remoteAddress: this.origin.remoteAddress,
        server: this.shared.server(),
        session: this.origin.session
      }
      const work = yield* Effect.forkChild(
        Effect.suspend(() => checked(method, handler.run(Stream.fromQueue(requests), this.send, context)))
      )
      const reader = yield* Effect.forkChild(this.read(requests))
      if (handler.heartbeat !== false) yield* Effect.forkChild(this.heartbeats(handler.heartbeat))
      // The client's FIN or a broken stream ends the handler: its reads and writes could only fail.
      reader.addObserver(() => work.interruptUnsafe())
      const exit = yield* Fiber.await(work)
      const ended = yield* Fiber.interrupt(reader).pipe(Effect.andThen(Fiber.await(reader)))
      if (Exit.isFailure(ended)) {
        const error = Cause.findErrorOption(ended.cause)
        if (error._tag === "Some" && error.value instanceof Broken) return yield* Effect.fail(error.value)
      }
      if (Exit.isSuccess(exit)) return yield* this.stream.close
      const failure = Cause.findErrorOption(exit.cause)
      if (failure._tag === "Some") return yield* this.finish(failure.value)
      if (Cause.hasInterruptsOnly(exit.cause)) return yield* this.stream.close
      this.shared.counters.internalErrors++
      // As a call's handler's defect: at error with its cause; the client gets only "internal error".
      yield* Effect.annotateLogs(
        Effect.logError(`RpcServer: streaming handler of ${method} died; sent "${internalError}"`, exit.cause),
        { [RPC_METHOD]: method, ...clientAttributes(this.origin.remoteAddress) }
      )
      yield* this.finish({ message: internalError })
    })
  }

  /** An error frame, then FIN. */
  private finish(error: StreamingError): Effect.Effect<void, Broken> {
    const frame = Streaming.encodeError(failureMessage(error), failureCode(error))
    return Effect.andThen(this.write(frame), this.stream.close)
  }

  /** The handler's `send`: a payload or heartbeat frame; a client that has gone interrupts the handler. */
  private readonly send = (frame: Outbound): Effect.Effect<void> =>
    Effect.catch(
      this.writeParts(frame === Heartbeat ? [Streaming.heartbeatBytes] : Streaming.encodePayload(frame)),
      () => Effect.interrupt
    )

  private heartbeats(schedule: Schedule.Schedule<unknown>): Effect.Effect<void> {
    let first = true
    // The Schedule's first step comes after its first run: that run sends nothing.
    const beat = Effect.suspend(() => {
      if (!first) return this.writeParts([Streaming.heartbeatBytes])
      first = false
      return Effect.void
    })
    return Effect.ignore(Effect.repeat(beat, schedule))
  }

  private write(bytes: Uint8Array | CodecError): Effect.Effect<void, Broken> {
    return bytes instanceof CodecError ? Effect.fail(new Broken(bytes)) : this.writeParts([bytes])
  }

  private writeParts(parts: ReadonlyArray<Uint8Array>): Effect.Effect<void, Broken> {
    return this.writeLock.withPermit(
      Effect.mapError(Effect.forEach(parts, (part) => this.stream.write(part), { discard: true }), (e) => new Broken(e))
    )
  }

  /** The client's values into `requests` until its FIN (which ends `requests`) or a failure. */
  private read(requests: Queue.Queue<Value, Cause.Done>): Effect.Effect<typeof clientClosed, Broken> {
    const loop: Effect.Effect<typeof clientClosed, Broken> = Effect.flatMap(this.next, (v) => {
      if (v === undefined) return Effect.as(Queue.end(requests), clientClosed)
      return Effect.andThen(Queue.offer(requests, v), loop)
    })
    return loop
  }

  /** The client's next value; `undefined` at its EOF. */
  private readonly next: Effect.Effect<Value | undefined, Broken> = Effect.suspend(() => {
    const v = this.decoder.next()
    if (v instanceof CodecError) return Effect.fail(new Broken(v))
    if (v !== undefined) {
      this.giveBack()
      return Effect.succeed(v)
    }
    if (this.eof) {
      const truncated = this.decoder.end()
      return truncated === undefined ? Effect.succeed(undefined) : Effect.fail(new Broken(truncated))
    }
    return Effect.matchEffect(this.stream.read, {
      onFailure: (error) => Effect.fail(new Broken(error)),
      onSuccess: (chunk) => {
        if (chunk === undefined) this.eof = true
        else if (!this.push(chunk)) return Effect.fail(new Broken())
        return this.next
      }
    })
  })

  /** Feeds the decoder; false (nothing fed) when the bytes would pass a budget. */
  private push(chunk: Uint8Array): boolean {
    if (!this.origin.budget.take(chunk.length)) {
      this.shared.counters.overBudget++
      return false
    }
    this.held += chunk.length
    this.decoder.push(chunk)
    return true
  }

  /** The RPC is over: every byte it held goes back. */
  private giveAll(): void {
    this.origin.budget.give(this.held)
    this.held = 0
  }

  /** Bytes decoded into values go back to the budget. */
  private giveBack(): void {
    const keep = this.decoder.bufferedBytes
    this.origin.budget.give(this.held - keep)
    this.held = keep
  }
}

/** The handler's Effect, if it is one (see `StreamServer`'s `checked`). */
const checked = (method: string, result: unknown): Effect.Effect<void, StreamingError> =>
  Effect.isEffect(result)
    ? Effect.asVoid(result as Effect.Effect<unknown, StreamingError>)
    : Effect.die(new TypeError(`the streaming handler of ${method} returned ${typeof result}, not an Effect`))
