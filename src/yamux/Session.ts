/**
 * A yamux session over one transport connection (hashicorp/yamux `session.go`):
 * the frame loop, GoAway and shutdown. Its parts: `StreamTable.ts` (the
 * streams by id, the accept queue, the close timers), `Writer.ts` (the batched
 * send side and the write-buffer rules), `Pings.ts` (pings and keepalive),
 * `SynSlots.ts` (opened streams awaiting their ACK), `Stream.ts` (each
 * stream's state machine and windows).
 *
 * **Details**
 * The frame loop runs synchronously in the transport's `data` callback: frames
 * are decoded in place (see `Frame.ts`) and handed to streams, which wake the
 * one fiber parked on them. A chunk is lent (it may be the socket's reused read
 * buffer), so a stream copies what it keeps, once. Writes are queued and flushed once per microtask
 * under `cork`, so many frames written in one scheduler turn leave in one
 * `writev`. Memory is bounded by the per-stream windows, the stream limit, the
 * accept backlog and the write-buffer limit; a peer that breaks any of them
 * loses the session.
 *
 * The transport is a `ByteTransport` (`wire/ByteTransport.ts`): a `net.Socket`
 * as it is, or an in-memory pair whose deliveries a test schedules.
 *
 * Timers (keepalive, stream open and close timeouts) are fibers on the `Clock`
 * captured when the session was made, so TestClock drives them. They are
 * relative sleeps, which the live Clock runs on monotonic timers, so a wall
 * clock that steps does not move them. They end with the session: closing its
 * Scope leaves no timer behind to hold the process.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Fiber, Scope } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import type { MuxErrorReason } from "../mux/MuxError.ts"
import type { MuxSession } from "../mux/MuxSession.ts"
import type { ByteTransport } from "../wire/ByteTransport.ts"
import * as Config from "./Config.ts"
import {
  flagFIN,
  flagRST,
  flagSYN,
  FrameDecoder,
  goAwayInternalErr,
  goAwayNormal,
  goAwayProtoErr,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate,
  violationDetail
} from "./Frame.ts"
import type { FrameHandler } from "./Frame.ts"
import { Stream } from "./Stream.ts"
import type { StreamHost } from "./StreamHost.ts"
import { Pings } from "./Pings.ts"
import { StreamTable } from "./StreamTable.ts"
import { SynSlots } from "./SynSlots.ts"
import { Writer } from "./Writer.ts"

/**
 * The byte transport under a session: a `net.Socket` or `tls.TLSSocket` as
 * they are, or any other `ByteTransport` (an in-memory pair in tests).
 */
export type Transport = ByteTransport

export type Role = "client" | "server"

export interface MakeOptions extends Config.Options {
  /** Client sessions use odd stream ids, servers even ones. */
  readonly role: Role
  /** The peer, for errors and stats. Default: the transport's remote address. */
  readonly address?: string | undefined
  /**
   * Accept streams the peer opens. Default true. False answers every inbound
   * SYN with RST at once, holding nothing for it: the RPC pool's sessions
   * refuse, since a server has no business opening streams on its clients,
   * and each accepted stream would hold up to its window (256 KiB by default,
   * 64 MiB over the accept backlog) until the application read it.
   */
  readonly acceptInbound?: boolean | undefined
  /** Bytes already read off the transport after the preamble. */
  readonly initial?: Uint8Array | undefined
  /**
   * Test hook: the first stream id `open` allocates (it must have the role's parity), so
   * id exhaustion can be reached without opening four billion streams. Default: 1 for a
   * client, 2 for a server.
   */
  readonly firstStreamId?: number | undefined
}

type Timer = Fiber.Fiber<void>

export class Session implements MuxSession, FrameHandler, StreamHost {
  readonly address: string
  readonly role: Role
  readonly config: Config.Config
  readonly maxStreamWindowSize: number
  /** Inbound SYNs answered with RST because this session accepts none. */
  refusedInbound = 0

  private readonly transport: Transport
  private readonly acceptInbound: boolean
  private readonly decoder: FrameDecoder
  private readonly streams: StreamTable

  /** The stream receiving the current Data frame's body (undefined: drain it). */
  private dataTarget: Stream | undefined = undefined
  /** The current Data frame carries FIN: apply it after the body's last byte (see `handleStreamMessage`). */
  private finPending = false

  /** Opened streams not yet ACKed; `open` waits while there are `acceptBacklog` of them. */
  private readonly synSlots: SynSlots

  private readonly pings: Pings

  private localGoAway = false
  private remoteGoAway = false

  /** @internal set once, by `fail` */
  closedError: MuxError | undefined = undefined
  private readonly closedDeferred = Deferred.makeUnsafe<MuxError>()

  private readonly writer: Writer

  constructor(transport: Transport, options: MakeOptions, fork: (effect: Effect.Effect<void>) => Timer) {
    this.transport = transport
    this.role = options.role
    this.config = Config.make(options)
    this.maxStreamWindowSize = this.config.maxStreamWindowSize
    this.address = options.address ?? `${transport.remoteAddress ?? "?"}:${transport.remotePort ?? "?"}`
    this.acceptInbound = options.acceptInbound ?? true
    this.streams = new StreamTable(
      options.firstStreamId ?? (options.role === "client" ? 1 : 2),
      this.config.streamCloseTimeout,
      fork
    )
    this.writer = new Writer(transport, this.config.maxWriteBuffer, this.config.connectionWriteTimeout, this)
    this.pings = new Pings(this, this.config.connectionWriteTimeout)
    this.synSlots = new SynSlots(this.config.acceptBacklog, this.config.streamOpenTimeout, fork)
    this.ping = this.pings.ping
    // A legitimate peer never sends more than the window we granted in one frame.
    this.decoder = new FrameDecoder(this, this.config.maxStreamWindowSize)
  }

  /** Attaches to the transport. Separate from the constructor so `make` registers the finalizer first. */
  start(initial: Uint8Array | undefined): void {
    const transport = this.transport
    transport.on("data", this.onChunk)
    transport.on("drain", this.writer.onDrain)
    transport.on("end", () => this.fail("ConnectionLost", "EOF"))
    transport.on("error", (cause) => this.fail("ConnectionLost", cause.message, cause))
    transport.on("close", () => this.fail("ConnectionLost", "connection closed"))
    if (initial !== undefined && initial.length > 0) this.onChunk(initial)
    // A transport that ended or closed before we listened will never tell us again.
    if (transport.destroyed || transport.readableEnded) {
      this.fail("ConnectionLost", "connection closed before the session started")
    }
  }

  // ---------------------------------------------------------------------------
  // MuxSession
  // ---------------------------------------------------------------------------

  get isClosed(): boolean {
    return this.closedError !== undefined
  }

  get peerGoneAway(): boolean {
    return this.remoteGoAway
  }

  get numStreams(): number {
    return this.streams.size
  }

  readonly closed: Effect.Effect<MuxError> = Deferred.await(this.closedDeferred)

  readonly open: Effect.Effect<Stream, MuxError> = Effect.suspend(() => this.openNow())

  private openNow(): Effect.Effect<Stream, MuxError> {
    if (this.closedError !== undefined) return Effect.fail(this.closedError)
    if (this.remoteGoAway) return Effect.fail(this.error("RemoteGoAway"))
    if (this.synSlots.full) return Effect.flatMap(this.synSlots.released, () => this.openNow())
    if (this.streams.size >= this.config.maxStreams) {
      return Effect.fail(this.error("TooManyStreams", `${this.streams.size} live streams`))
    }
    const id = this.streams.takeId()
    if (id === undefined) return Effect.fail(this.error("StreamsExhausted"))
    const stream = new Stream(this, id, "Init")
    this.streams.add(stream)
    // The open timeout closes the whole session, as Go's StreamOpenTimeout does.
    this.synSlots.take(id, () => this.fail("OpenTimeout", `stream ${id} was never acknowledged`))
    stream.sendWindowUpdate(0)
    return Effect.succeed(stream)
  }

  readonly accept: Effect.Effect<Stream, MuxError> = Effect.suspend(() => this.acceptNow())

  private acceptNow(): Effect.Effect<Stream, MuxError> {
    const stream = this.streams.nextAccepted()
    if (stream !== undefined) {
      // Go's AcceptStream ACKs when the application accepts, not when the SYN arrives.
      stream.sendWindowUpdate(0)
      return Effect.succeed(stream)
    }
    if (this.closedError !== undefined) return Effect.fail(this.closedError)
    return Effect.flatMap(this.streams.arrival, () => this.acceptNow())
  }

  readonly ping: Effect.Effect<Duration.Duration, MuxError>

  readonly goAway: Effect.Effect<void> = Effect.sync(() => {
    if (this.localGoAway || this.closedError !== undefined) return
    this.localGoAway = true
    this.sendFrame(typeGoAway, 0, 0, goAwayNormal, undefined, true)
  })

  readonly close: Effect.Effect<void> = Effect.sync(() => this.fail("SessionShutdown", "closed locally"))

  /** The keepalive loop; `make` forks it into the session's scope. */
  get keepalive(): Effect.Effect<void> {
    return this.pings.keepalive(this.config.keepAliveInterval)
  }

  // ---------------------------------------------------------------------------
  // Frame loop (FrameHandler)
  // ---------------------------------------------------------------------------

  private readonly onChunk = (chunk: Uint8Array): void => {
    const violation = this.decoder.push(chunk)
    if (violation !== undefined) this.protocolError(violationDetail(violation))
  }

  onHeader(type: number, flags: number, streamId: number, length: number): void {
    switch (type) {
      case typeData:
      case typeWindowUpdate:
        return this.handleStreamMessage(type, flags, streamId, length)
      case typePing:
        return this.pings.received(flags, length)
      default:
        return this.handleGoAway(length)
    }
  }

  onData(streamId: number, piece: Uint8Array, last: boolean): void {
    const target = this.dataTarget
    if (target === undefined) return
    target.deliver(piece)
    if (last && this.finPending) {
      this.finPending = false
      // A local reset while the body was in flight makes the FIN moot.
      if (target.state !== "Reset" && !target.processFlags(flagFIN)) {
        this.protocolError(`unexpected flags ${flagFIN} on stream ${streamId}`)
      }
    }
  }

  private handleStreamMessage(type: number, flags: number, id: number, length: number): void {
    this.dataTarget = undefined
    this.finPending = false
    if ((flags & flagSYN) !== 0 && !this.incomingStream(id)) return
    const stream = this.streams.get(id)
    // Frames for streams we no longer know are drained and ignored, as in Go.
    if (stream === undefined) return
    // Go reads a Data body whole before anyone sees its FIN. Here the body may span many
    // socket reads, and a reader woken by the FIN would report EOF before the bytes arrived.
    const deferFin = type === typeData && length > 0 && (flags & (flagFIN | flagRST)) === flagFIN
    if (!stream.processFlags(deferFin ? flags & ~flagFIN : flags)) {
      return this.protocolError(`unexpected flags ${flags} on stream ${id}`)
    }
    if (type === typeWindowUpdate) return stream.growSendWindow(length)
    if (length === 0) return
    if (!stream.reserve(length)) return this.protocolError(`stream ${id} exceeded its receive window`)
    this.dataTarget = stream
    this.finPending = deferFin
  }

  /** Go `incomingStream`. Returns false when the session failed. */
  private incomingStream(id: number): boolean {
    if (!this.acceptInbound) {
      this.refusedInbound++
      this.sendFrame(typeWindowUpdate, flagRST, id, 0, undefined, true)
      return true
    }
    if (this.localGoAway) {
      this.sendFrame(typeWindowUpdate, flagRST, id, 0, undefined, true)
      return true
    }
    if (this.streams.has(id)) {
      this.protocolError(`duplicate stream ${id}`)
      return false
    }
    if (this.streams.size >= this.config.maxStreams || this.streams.backlog >= this.config.acceptBacklog) {
      this.sendFrame(typeWindowUpdate, flagRST, id, 0, undefined, true)
      return true
    }
    this.streams.addInbound(new Stream(this, id, "SYNReceived"))
    return true
  }

  private handleGoAway(code: number): void {
    switch (code) {
      case goAwayNormal:
        this.remoteGoAway = true
        return
      case goAwayProtoErr:
        return this.fail("ProtocolError", "peer sent GoAway: protocol error")
      case goAwayInternalErr:
        return this.fail("SessionShutdown", "peer sent GoAway: internal error")
      default:
        return this.fail("ProtocolError", `peer sent GoAway with unknown code ${code}`)
    }
  }

  private protocolError(detail: string): void {
    if (this.closedError !== undefined) return
    this.sendFrame(typeGoAway, 0, 0, goAwayProtoErr, undefined, true)
    this.fail("ProtocolError", detail)
  }

  // ---------------------------------------------------------------------------
  // StreamHost
  // ---------------------------------------------------------------------------

  get congested(): boolean {
    return this.writer.congested
  }

  awaitDrain(onPark: (wake: () => void) => void): Effect.Effect<void, MuxError> {
    return this.writer.awaitDrain(onPark)
  }

  established(stream: Stream): void {
    this.synSlots.release(stream.id)
  }

  closing(stream: Stream): void {
    // After the session closed nothing would cancel the timer, and it would hold the process for minutes.
    if (this.closedError !== undefined) return
    this.streams.startCloseTimer(stream)
  }

  forget(stream: Stream): void {
    this.streams.forget(stream)
    this.established(stream)
  }

  sendWindowUpdate(flags: number, streamId: number, delta: number): void {
    this.sendFrame(typeWindowUpdate, flags, streamId, delta, undefined, true)
  }

  sendFrame(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    payload: Uint8Array | undefined,
    coalesce: boolean
  ): void {
    this.writer.sendFrame(type, flags, streamId, length, payload, coalesce)
  }

  // ---------------------------------------------------------------------------
  // Shutdown
  // ---------------------------------------------------------------------------

  /** Closes the session once, with the first reason; wakes everything parked on it. */
  fail(reason: MuxErrorReason, detail?: string, cause?: unknown): void {
    if (this.closedError !== undefined) return
    const error = this.error(reason, detail, cause)
    this.closedError = error
    this.decoder.stop()
    // Frames already queued (a GoAway, a last reply) reach the transport before it is destroyed.
    this.writer.close(error)
    this.transport.destroy()
    this.streams.close(error)
    this.synSlots.close()
    this.writer.onDrain()
    this.pings.closeAll()
    Deferred.doneUnsafe(this.closedDeferred, Effect.succeed(error))
  }

  /** @internal */
  error(reason: MuxErrorReason, detail?: string, cause?: unknown): MuxError {
    return new MuxError({ reason, address: this.address, detail, cause })
  }
}

/**
 * Runs a yamux session over `transport` (a `net.Socket`, a `tls.TLSSocket`
 * or any `ByteTransport`) for the life of the current Scope.
 *
 * **Details**
 * Closing the Scope closes the session and destroys the transport. Keepalive
 * (`enableKeepAlive`, default on) pings every `keepAliveInterval` (30 s) and
 * closes the session when a ping goes unanswered for `connectionWriteTimeout`
 * (10 s). All defaults are hashicorp/yamux's, see `Config.ts`.
 *
 * @category constructors
 */
export const make = (transport: Transport, options: MakeOptions): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const context = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(context)
    const session = new Session(transport, options, (effect) => runFork(effect))
    yield* Scope.addFinalizer(scope, session.close)
    if (session.config.enableKeepAlive) yield* Effect.forkIn(session.keepalive, scope)
    session.start(options.initial)
    return session
  })
