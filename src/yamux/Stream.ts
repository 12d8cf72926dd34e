/**
 * One yamux stream: its state machine (hashicorp/yamux `stream.go`), its receive
 * buffer and both flow-control windows.
 *
 * ```
 *            open: send SYN                  accept: send ACK
 *   Init ─────────────────▶ SYNSent    SYNReceived ───────────▶ Established
 *                              │ ACK                                  │
 *                              └───────────────▶ Established ◀────────┘
 *   Established ── local FIN ──▶ LocalClose ── remote FIN ──▶ Closed
 *   Established ── remote FIN ─▶ RemoteClose ── local FIN ──▶ Closed
 *   any ── RST (either way) ──▶ Reset
 * ```
 *
 * Everything here runs synchronously on the session's frame loop; the only
 * Effects are the public `read`, `write`, `close` and `reset`, which park a
 * single callback while they wait.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import type { MuxStream } from "../mux/MuxSession.ts"
import { keep } from "../wire/Lent.ts"
import { initialStreamWindow } from "./Config.ts"
import { flagACK, flagFIN, flagRST, flagSYN, typeData, typeWindowUpdate } from "./Frame.ts"
import type { StreamHost } from "./StreamHost.ts"

export type StreamState =
  | "Init"
  | "SYNSent"
  | "SYNReceived"
  | "Established"
  | "LocalClose"
  | "RemoteClose"
  | "Closed"
  | "Reset"

/** Payloads up to this size are copied next to their header so a small frame is one buffer. */
const coalesceLimit = 16 * 1024

/**
 * The largest Data frame a write queues at once. Without a cap a peer granting a large
 * window (or a large `maxStreamWindowSize` on both ends) gets one frame as big as the write,
 * which lands on the socket past the session's "peer is not reading" limit (4 x the
 * smallest write buffer, 64 KiB) and kills a healthy session. Capped, the congestion check
 * runs between frames.
 */
const maxDataFrame = 64 * 1024

export class Stream implements MuxStream {
  readonly id: number
  state: StreamState
  private readonly host: StreamHost

  /** Bytes the peer may still send us before we grant more. */
  private recvWindow: number
  /** Bytes we may still send before the peer grants more. */
  private sendWindow: number

  private readonly chunks: Array<Uint8Array> = []
  private head = 0
  private buffered = 0
  /**
   * Body bytes `reserve` counted that have not arrived yet. They are spoken for: a window
   * update computed while a frame is half-received must not grant them again.
   */
  private inflight = 0

  /** Receive mode: where arriving bytes go instead of `chunks` (see `receiveInto`). */
  private sink: ((lent: Uint8Array) => boolean) | undefined = undefined
  /** Receive mode: bytes went to the sink since the last `received`. */
  private arrived = false

  /** The one parked reader or writer; a stream carries one call at a time. */
  private readWaiter: (() => void) | undefined = undefined
  private writeWaiter: (() => void) | undefined = undefined
  /** Set by the session when it closes, so parked callers fail with its reason. */
  private sessionError: MuxError | undefined = undefined
  /** Called once when the stream is fully closed or reset (open/close timers hang here). */
  onFinish: (() => void) | undefined = undefined
  /** The peer reset it before its ACK (see MuxStream.refused). */
  refused = false

  constructor(host: StreamHost, id: number, state: StreamState) {
    this.host = host
    this.id = id
    this.state = state
    this.recvWindow = initialStreamWindow
    this.sendWindow = initialStreamWindow
  }

  get isClosed(): boolean {
    return this.state !== "Established" && this.state !== "SYNSent" && this.state !== "SYNReceived" &&
      this.state !== "Init"
  }

  /** Buffered, unread bytes (for stats and tests). */
  get bufferedBytes(): number {
    return this.buffered
  }

  // ---------------------------------------------------------------------------
  // Inbound, called by the session's frame loop
  // ---------------------------------------------------------------------------

  /**
   * Applies a frame's flags (Go `processFlags`). Returns false on a flag that
   * makes no sense in the current state; the session treats that as a protocol
   * error, as Go does.
   */
  processFlags(flags: number): boolean {
    if ((flags & flagACK) !== 0) {
      if (this.state === "SYNSent") this.state = "Established"
      this.host.established(this)
    }
    if ((flags & flagFIN) !== 0) {
      switch (this.state) {
        case "SYNSent":
        case "SYNReceived":
        case "Established":
          this.state = "RemoteClose"
          this.wake()
          break
        case "LocalClose":
          this.state = "Closed"
          this.finish()
          break
        default:
          return false
      }
    }
    if ((flags & flagRST) !== 0) {
      // An ACK in the same frame was applied above: only a reset still in SYNSent is a refusal.
      if (this.state === "SYNSent") this.refused = true
      this.state = "Reset"
      this.finish()
    }
    return true
  }

  /** Adds a WindowUpdate's delta to what we may send. */
  growSendWindow(delta: number): void {
    this.sendWindow += delta
    if (delta > 0) this.wakeWriter()
  }

  /**
   * Reserves receive window for a Data frame's body before it arrives, so an
   * over-long frame is refused before a byte of it is buffered.
   */
  reserve(length: number): boolean {
    if (length > this.recvWindow) return false
    this.recvWindow -= length
    this.inflight += length
    return true
  }

  /**
   * A piece of Data frame body, already counted by `reserve`. The piece is lent
   * (the socket's reused read buffer): the sink copies what it keeps, and
   * `read`'s buffer keeps a copy.
   */
  deliver(piece: Uint8Array): void {
    this.inflight -= piece.length
    // A FIN may ride on the frame that carries the last data, so Closed still buffers.
    if (this.state === "Reset") return
    const sink = this.sink
    if (sink === undefined) this.chunks.push(keep(piece))
    else this.arrived = true
    // Taken for a value the consumer waits on: read already, so the window reopens now,
    // not when the consumer's fiber next runs (Go grants at half the window).
    if (sink !== undefined && sink(piece)) this.sendWindowUpdate(0)
    else this.buffered += piece.length
    this.wakeReader()
  }

  /** The session closed under this stream. */
  sessionClosed(error: MuxError): void {
    this.sessionError = error
    this.wake()
  }

  // ---------------------------------------------------------------------------
  // Outbound, the MuxStream interface
  // ---------------------------------------------------------------------------

  readonly read: Effect.Effect<Uint8Array | undefined, MuxError> = Effect.suspend(() => this.readNow())

  private readNow(): Effect.Effect<Uint8Array | undefined, MuxError> {
    if (this.head < this.chunks.length) return Effect.succeed(this.take())
    const ended = this.ended()
    return ended !== undefined ? ended as Effect.Effect<undefined, MuxError> : Effect.flatMap(this.parkReader, () => this.readNow())
  }

  receiveInto(sink: ((lent: Uint8Array) => boolean) | undefined): void {
    // Leaving receive mode: what the sink took is the consumer's now, read.
    if (sink === undefined && this.sink !== undefined) this.consumed()
    this.sink = sink
    if (sink === undefined || this.chunks.length === 0) return
    // Bytes that arrived before: the sink gets them first, still unread until `received`.
    for (let i = this.head; i < this.chunks.length; i++) sink(this.chunks[i]!)
    this.chunks.length = 0
    this.head = 0
    this.arrived = true
  }

  readonly received: Effect.Effect<boolean, MuxError> = Effect.suspend(() => this.receivedNow())

  private receivedNow(): Effect.Effect<boolean, MuxError> {
    if (this.arrived) return Effect.succeed(this.consumed())
    const ended = this.ended()
    return ended !== undefined
      ? Effect.as(ended, false)
      : Effect.flatMap(this.parkReader, () => this.receivedNow())
  }

  /** Receive mode: everything the sink took counts as read, which may reopen the peer's window. */
  private consumed(): true {
    this.arrived = false
    if (this.buffered > 0) {
      this.buffered = 0
      this.sendWindowUpdate(0)
    }
    return true
  }

  /** With nothing to read: EOF (`undefined`) or the failure, else `undefined` to wait. */
  private ended(): Effect.Effect<undefined, MuxError> | undefined {
    switch (this.state) {
      case "RemoteClose":
      case "Closed":
        return Effect.succeed(undefined)
      case "Reset":
        return Effect.fail(this.error("StreamReset"))
    }
    return this.sessionError !== undefined ? Effect.fail(this.sessionError) : undefined
  }

  private readonly parkReader: Effect.Effect<void> = Effect.callback<void>((resume) => {
    this.readWaiter = () => resume(Effect.void)
    return Effect.sync(() => {
      this.readWaiter = undefined
    })
  })

  private take(): Uint8Array {
    const chunk = this.chunks[this.head]!
    this.chunks[this.head] = undefined as unknown as Uint8Array
    this.head++
    if (this.head === this.chunks.length) {
      this.chunks.length = 0
      this.head = 0
    }
    this.buffered -= chunk.length
    this.sendWindowUpdate(0)
    return chunk
  }

  write(data: Uint8Array): Effect.Effect<void, MuxError> {
    // Go's Write sends no frame for an empty buffer either.
    return Effect.suspend(() => data.length === 0 ? this.writeFrom(data, -1) : this.writeFrom(data, 0))
  }

  private writeFrom(data: Uint8Array, offset: number): Effect.Effect<void, MuxError> {
    for (;;) {
      switch (this.state) {
        case "LocalClose":
        case "Closed":
          return Effect.fail(this.error("StreamClosed"))
        case "Reset":
          return Effect.fail(this.error("StreamReset"))
      }
      if (this.sessionError !== undefined) return Effect.fail(this.sessionError)
      if (offset < 0) return Effect.void
      const remaining = data.length - offset
      if (this.sendWindow === 0 && remaining > 0) break
      if (this.host.congested) {
        // Parked as the stream's writer too, so a reset (a call's deadline) ends the wait at once.
        return Effect.flatMap(this.host.awaitDrain(this.parkWriter), () => {
          this.writeWaiter = undefined
          return this.writeFrom(data, offset)
        })
      }
      const n = Math.min(this.sendWindow, remaining, maxDataFrame)
      const flags = this.sendFlags()
      this.sendWindow -= n
      const piece = offset === 0 && n === data.length ? data : data.subarray(offset, offset + n)
      this.host.sendFrame(typeData, flags, this.id, n, piece, n <= coalesceLimit)
      offset += n
      if (offset === data.length) return Effect.void
    }
    return Effect.flatMap(
      Effect.callback<void>((resume) => {
        this.writeWaiter = () => resume(Effect.void)
        return Effect.sync(() => {
          this.writeWaiter = undefined
        })
      }),
      () => this.writeFrom(data, offset)
    )
  }

  private readonly parkWriter = (wake: () => void): void => {
    this.writeWaiter = wake
  }

  /** Go `Close`: half-close with FIN; the stream is done once the peer's FIN arrives. */
  readonly close: Effect.Effect<void> = Effect.sync(() => {
    switch (this.state) {
      case "Init":
      case "SYNSent":
      case "SYNReceived":
      case "Established":
        this.state = "LocalClose"
        this.sendClose()
        this.host.closing(this)
        return
      case "RemoteClose":
        this.state = "Closed"
        this.sendClose()
        this.finish()
        return
      default:
        return
    }
  })

  /** Resets the stream at once and forgets it. */
  readonly reset: Effect.Effect<void> = Effect.sync(() => this.resetNow())

  resetNow(): void {
    if (this.state === "Reset" || this.state === "Closed") return
    this.state = "Reset"
    if (this.sessionError === undefined) this.host.sendFrame(typeWindowUpdate, flagRST, this.id, 0, undefined, true)
    this.finish()
  }

  // ---------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------

  /** Go `sendFlags`: SYN on the first frame of an opened stream, ACK on the first of an accepted one. */
  private sendFlags(): number {
    switch (this.state) {
      case "Init":
        this.state = "SYNSent"
        return flagSYN
      case "SYNReceived":
        this.state = "Established"
        return flagACK
      default:
        return 0
    }
  }

  /**
   * Go `sendWindowUpdate`: grant the peer what the reader consumed once it is
   * worth a frame (half the window), or at once when flags must go out (open
   * and accept).
   */
  sendWindowUpdate(extraFlags: number): void {
    const max = this.host.maxStreamWindowSize
    const delta = max - this.buffered - this.inflight - this.recvWindow
    const flags = this.sendFlags() | extraFlags
    if (delta < max / 2 && flags === 0) return
    if (this.sessionError !== undefined || this.state === "Reset") return
    this.recvWindow += delta
    this.host.sendWindowUpdate(flags, this.id, delta)
  }

  private sendClose(): void {
    if (this.sessionError !== undefined) return
    const flags = this.sendFlags() | flagFIN
    this.host.sendWindowUpdate(flags, this.id, 0)
  }

  private finish(): void {
    // Forget first: a woken fiber resumes synchronously, and must not find the stream still counted.
    this.host.forget(this)
    const onFinish = this.onFinish
    this.onFinish = undefined
    onFinish?.()
    this.wake()
  }

  private wake(): void {
    this.wakeReader()
    this.wakeWriter()
  }

  private wakeReader(): void {
    const waiter = this.readWaiter
    if (waiter !== undefined) {
      this.readWaiter = undefined
      waiter()
    }
  }

  private wakeWriter(): void {
    const waiter = this.writeWaiter
    if (waiter !== undefined) {
      this.writeWaiter = undefined
      waiter()
    }
  }

  private error(reason: "StreamReset" | "StreamClosed"): MuxError {
    return new MuxError({ reason, address: this.host.address, detail: `stream ${this.id}` })
  }
}
