/**
 * A yamux session over one transport connection (hashicorp/yamux `session.go`):
 * the frame loop, stream table, accept queue, outbound SYN slots, keepalive,
 * GoAway and the batched writer.
 *
 * **Details**
 * The frame loop runs synchronously in the transport's `data` callback: frames
 * are decoded in place (see `Frame.ts`) and handed to streams, which wake the
 * one fiber parked on them. Writes are queued and flushed once per microtask
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
import { Clock, Deferred, Duration, Effect, Fiber, Schedule, Scope } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import type { MuxErrorReason } from "../mux/MuxError.ts"
import type { MuxSession } from "../mux/MuxSession.ts"
import type { ByteTransport } from "../wire/ByteTransport.ts"
import * as Config from "./Config.ts"
import {
  encodeHeaderInto,
  flagACK,
  flagFIN,
  flagRST,
  flagSYN,
  FrameDecoder,
  goAwayInternalErr,
  goAwayNormal,
  goAwayProtoErr,
  headerSize,
  maxStreamId,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate
} from "./Frame.ts"
import type { FrameHandler, FrameViolation } from "./Frame.ts"
import { Stream } from "./Stream.ts"
import type { StreamHost } from "./StreamHost.ts"

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

const violationDetail = (v: FrameViolation): string => {
  switch (v._tag) {
    case "InvalidVersion":
      return `invalid protocol version ${v.version}`
    case "InvalidMsgType":
      return `invalid message type ${v.type}`
    case "FrameTooLarge":
      return `data frame of ${v.length} bytes exceeds the ${v.limit}-byte window`
  }
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
  private readonly fork: (effect: Effect.Effect<void>) => Timer
  private readonly streams = new Map<number, Stream>()
  private nextStreamId: number

  /** The stream receiving the current Data frame's body (undefined: drain it). */
  private dataTarget: Stream | undefined = undefined
  /** The current Data frame carries FIN: apply it after the body's last byte (see `handleStreamMessage`). */
  private finPending = false

  private readonly acceptQueue: Array<Stream> = []
  private acceptWaiter: (() => void) | undefined = undefined

  /** Opened streams not yet ACKed; `open` waits while there are `acceptBacklog` of them. */
  private readonly synPending = new Map<number, Timer | undefined>()
  private readonly openWaiters: Array<() => void> = []

  private readonly closeTimers = new Map<number, Timer>()

  private nextPingId = 0
  private readonly pings = new Map<number, () => void>()

  private localGoAway = false
  private remoteGoAway = false

  private closedError: MuxError | undefined = undefined
  private readonly closedDeferred = Deferred.makeUnsafe<MuxError>()

  private out: Array<Uint8Array> = []
  private outBytes = 0
  private flushScheduled = false
  private readonly drainWaiters: Array<() => void> = []

  constructor(transport: Transport, options: MakeOptions, fork: (effect: Effect.Effect<void>) => Timer) {
    this.transport = transport
    this.role = options.role
    this.config = Config.make(options)
    this.maxStreamWindowSize = this.config.maxStreamWindowSize
    this.address = options.address ?? `${transport.remoteAddress ?? "?"}:${transport.remotePort ?? "?"}`
    this.acceptInbound = options.acceptInbound ?? true
    this.nextStreamId = options.firstStreamId ?? (options.role === "client" ? 1 : 2)
    this.fork = fork
    // A legitimate peer never sends more than the window we granted in one frame.
    this.decoder = new FrameDecoder(this, this.config.maxStreamWindowSize)
  }

  /** Attaches to the transport. Separate from the constructor so `make` registers the finalizer first. */
  start(initial: Uint8Array | undefined): void {
    const transport = this.transport
    transport.on("data", this.onChunk)
    transport.on("drain", this.onDrain)
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
    if (this.synPending.size >= this.config.acceptBacklog) {
      return Effect.flatMap(
        Effect.callback<void>((resume) => {
          const waiter = () => resume(Effect.void)
          this.openWaiters.push(waiter)
          return Effect.sync(() => {
            const i = this.openWaiters.indexOf(waiter)
            if (i >= 0) this.openWaiters.splice(i, 1)
          })
        }),
        () => this.openNow()
      )
    }
    if (this.streams.size >= this.config.maxStreams) {
      return Effect.fail(this.error("TooManyStreams", `${this.streams.size} live streams`))
    }
    const id = this.nextStreamId
    if (id >= maxStreamId) return Effect.fail(this.error("StreamsExhausted"))
    this.nextStreamId += 2
    const stream = new Stream(this, id, "Init")
    this.streams.set(id, stream)
    // The open timeout closes the whole session, as Go's StreamOpenTimeout does.
    const timer = this.fork(Effect.andThen(
      Effect.sleep(this.config.streamOpenTimeout),
      Effect.sync(() => {
        if (this.synPending.has(id)) this.fail("OpenTimeout", `stream ${id} was never acknowledged`)
      })
    ))
    this.synPending.set(id, timer)
    stream.sendWindowUpdate(0)
    return Effect.succeed(stream)
  }

  readonly accept: Effect.Effect<Stream, MuxError> = Effect.suspend(() => this.acceptNow())

  private acceptNow(): Effect.Effect<Stream, MuxError> {
    const stream = this.acceptQueue.shift()
    if (stream !== undefined) {
      // Go's AcceptStream ACKs when the application accepts, not when the SYN arrives.
      stream.sendWindowUpdate(0)
      return Effect.succeed(stream)
    }
    if (this.closedError !== undefined) return Effect.fail(this.closedError)
    return Effect.flatMap(
      Effect.callback<void>((resume) => {
        this.acceptWaiter = () => resume(Effect.void)
        return Effect.sync(() => {
          this.acceptWaiter = undefined
        })
      }),
      () => this.acceptNow()
    )
  }

  readonly ping: Effect.Effect<Duration.Duration, MuxError> = Effect.suspend(() => {
    if (this.closedError !== undefined) return Effect.fail(this.closedError)
    const id = this.nextPingId
    this.nextPingId = (this.nextPingId + 1) >>> 0
    return Effect.gen({ self: this }, function*() {
      // Monotonic: a wall clock stepped during the round trip must not bend it.
      const start = yield* Clock.monotonicTimeNanos
      yield* Effect.callback<void, MuxError>((resume) => {
        this.pings.set(id, () => resume(this.closedError === undefined ? Effect.void : Effect.fail(this.closedError)))
        this.sendFrame(typePing, flagSYN, 0, id, undefined, true)
        return Effect.sync(() => {
          this.pings.delete(id)
        })
      }).pipe(
        Effect.timeoutOrElse({
          duration: this.config.connectionWriteTimeout,
          orElse: () => Effect.fail(this.error("KeepAliveTimeout", `ping ${id} unanswered`))
        })
      )
      const end = yield* Clock.monotonicTimeNanos
      return Duration.nanos(end - start)
    })
  })

  readonly goAway: Effect.Effect<void> = Effect.sync(() => {
    if (this.localGoAway || this.closedError !== undefined) return
    this.localGoAway = true
    this.sendFrame(typeGoAway, 0, 0, goAwayNormal, undefined, true)
  })

  readonly close: Effect.Effect<void> = Effect.sync(() => this.fail("SessionShutdown", "closed locally"))

  /** The keepalive loop; `make` forks it into the session's scope. */
  get keepalive(): Effect.Effect<void> {
    return Effect.schedule(this.ping, Schedule.spaced(this.config.keepAliveInterval)).pipe(
      Effect.catch((error) => Effect.sync(() => this.fail(error.reason, error.detail, error.cause))),
      Effect.asVoid
    )
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
        return this.handlePing(flags, length)
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
    if (this.streams.size >= this.config.maxStreams || this.acceptQueue.length >= this.config.acceptBacklog) {
      this.sendFrame(typeWindowUpdate, flagRST, id, 0, undefined, true)
      return true
    }
    const stream = new Stream(this, id, "SYNReceived")
    this.streams.set(id, stream)
    this.acceptQueue.push(stream)
    const waiter = this.acceptWaiter
    if (waiter !== undefined) {
      this.acceptWaiter = undefined
      waiter()
    }
    return true
  }

  private handlePing(flags: number, id: number): void {
    if ((flags & flagSYN) !== 0) {
      this.sendFrame(typePing, flagACK, 0, id, undefined, true)
      return
    }
    const waiter = this.pings.get(id)
    if (waiter !== undefined) {
      this.pings.delete(id)
      waiter()
    }
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
    return this.outBytes + this.transport.writableLength > this.config.maxWriteBuffer
  }

  awaitDrain(onPark: (wake: () => void) => void): Effect.Effect<void, MuxError> {
    if (this.closedError !== undefined) return Effect.fail(this.closedError)
    if (!this.congested) return Effect.void
    return Effect.callback<void>((resume) => {
      const waiter = () => resume(Effect.void)
      this.drainWaiters.push(waiter)
      onPark(waiter)
      return Effect.sync(() => {
        const i = this.drainWaiters.indexOf(waiter)
        if (i >= 0) this.drainWaiters.splice(i, 1)
      })
    }).pipe(
      Effect.timeoutOrElse({
        duration: this.config.connectionWriteTimeout,
        orElse: () => Effect.fail(this.error("WriteTimeout", "transport did not drain"))
      })
    )
  }

  established(stream: Stream): void {
    const timer = this.synPending.get(stream.id)
    if (timer === undefined && !this.synPending.has(stream.id)) return
    this.synPending.delete(stream.id)
    timer?.interruptUnsafe()
    this.openWaiters.shift()?.()
  }

  closing(stream: Stream): void {
    // After the session closed nothing would cancel the timer, and it would hold the process for minutes.
    if (this.closedError !== undefined) return
    const id = stream.id
    const timer = this.fork(Effect.andThen(
      Effect.sleep(this.config.streamCloseTimeout),
      Effect.sync(() => {
        this.closeTimers.delete(id)
        stream.resetNow()
      })
    ))
    this.closeTimers.set(id, timer)
  }

  forget(stream: Stream): void {
    const id = stream.id
    if (this.streams.get(id) === stream) this.streams.delete(id)
    this.established(stream)
    const closeTimer = this.closeTimers.get(id)
    if (closeTimer !== undefined) {
      this.closeTimers.delete(id)
      closeTimer.interruptUnsafe()
    }
    const i = this.acceptQueue.indexOf(stream)
    if (i >= 0) this.acceptQueue.splice(i, 1)
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
    if (this.closedError !== undefined) return
    if (payload === undefined || payload.length === 0) {
      const buf = Buffer.allocUnsafe(headerSize)
      encodeHeaderInto(buf, 0, type, flags, streamId, length)
      this.enqueue(buf)
    } else if (coalesce) {
      const buf = Buffer.allocUnsafe(headerSize + payload.length)
      encodeHeaderInto(buf, 0, type, flags, streamId, length)
      buf.set(payload, headerSize)
      this.enqueue(buf)
    } else {
      const buf = Buffer.allocUnsafe(headerSize)
      encodeHeaderInto(buf, 0, type, flags, streamId, length)
      this.enqueue(buf)
      this.enqueue(payload)
    }
  }

  private enqueue(buf: Uint8Array): void {
    this.out.push(buf)
    this.outBytes += buf.length
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flush)
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    const out = this.out
    if (out.length === 0 || this.transport.destroyed) return
    this.out = []
    this.outBytes = 0
    const transport = this.transport
    if (out.length === 1) {
      transport.write(out[0]!)
    } else {
      transport.cork()
      for (let i = 0; i < out.length; i++) transport.write(out[i]!)
      transport.uncork()
    }
    // Data writers wait at maxWriteBuffer; only control frames (ping replies, window
    // updates) go past it, and only a peer that never reads lets them pile up.
    if (transport.writableLength > 4 * this.config.maxWriteBuffer) {
      this.fail("WriteTimeout", "peer is not reading")
    }
  }

  private readonly onDrain = (): void => {
    const waiters = this.drainWaiters.splice(0)
    for (const waiter of waiters) waiter()
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
    // Let frames already queued (a GoAway, a last reply) reach the transport first.
    this.flush()
    this.transport.destroy()
    for (const stream of this.streams.values()) stream.sessionClosed(error)
    this.streams.clear()
    this.acceptQueue.length = 0
    const acceptWaiter = this.acceptWaiter
    this.acceptWaiter = undefined
    acceptWaiter?.()
    for (const waiter of this.openWaiters.splice(0)) waiter()
    for (const waiter of this.drainWaiters.splice(0)) waiter()
    for (const waiter of this.pings.values()) waiter()
    this.pings.clear()
    for (const timer of this.synPending.values()) timer?.interruptUnsafe()
    this.synPending.clear()
    for (const timer of this.closeTimers.values()) timer.interruptUnsafe()
    this.closeTimers.clear()
    Deferred.doneUnsafe(this.closedDeferred, Effect.succeed(error))
  }

  private error(reason: MuxErrorReason, detail?: string, cause?: unknown): MuxError {
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
