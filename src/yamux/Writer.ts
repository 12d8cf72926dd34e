/**
 * A session's send side (hashicorp/yamux's `sendLoop`): frames are queued and
 * flushed once per microtask, under `cork` when there are several, so the
 * frames written in one scheduler turn leave in one `writev`; and the
 * write-buffer rules that bound what a peer that does not read can make us
 * hold.
 *
 * - Data writers wait once the queue plus the transport's `writableLength`
 *   pass `maxWriteBuffer`, until `drain` or `writeTimeout`.
 * - Control frames (window updates, ping replies, RSTs) never wait; a peer that
 *   lets them pile up past 4 × `maxWriteBuffer` costs the session.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Duration } from "effect"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxErrorReason } from "../mux/MuxError.ts"
import type { ByteTransport } from "../wire/ByteTransport.ts"
import { encodeHeaderInto, headerSize } from "./Frame.ts"

/** What the writer needs from its session. */
export interface WriterHost {
  error(reason: MuxErrorReason, detail: string): MuxError
  /** Closes the session (the peer is not reading). */
  fail(reason: MuxErrorReason, detail: string): void
}

/** Frames are encoded into slabs of this size; a slab is never written again once handed on. */
const SlabBytes = 64 * 1024

export class Writer {
  private readonly transport: ByteTransport
  private readonly maxWriteBuffer: number
  private readonly writeTimeout: Duration.Duration
  private readonly host: WriterHost
  /** What the next flush writes, in order: closed regions of slabs, and large payloads as they are. */
  private out: Array<Uint8Array> = []
  private outBytes = 0
  /**
   * Headers and small payloads are encoded one after another into the slab, so that a flush of many
   * small frames is one buffer and one write, not a buffer and a write per frame. `[start, pos)` is the
   * region the next flush takes.
   */
  private slab = new Uint8Array(0)
  private start = 0
  private pos = 0
  private flushScheduled = false
  private readonly drainWaiters: Array<() => void> = []
  private closedError: MuxError | undefined = undefined

  constructor(transport: ByteTransport, maxWriteBuffer: number, writeTimeout: Duration.Duration, host: WriterHost) {
    this.transport = transport
    this.maxWriteBuffer = maxWriteBuffer
    this.writeTimeout = writeTimeout
    this.host = host
  }

  /** True while the queue and the transport's buffer hold more than `maxWriteBuffer`. */
  get congested(): boolean {
    return this.outBytes + this.transport.writableLength > this.maxWriteBuffer
  }

  /**
   * Completes when the transport drained, or when `onPark`'s wake-up is called
   * (the stream was reset under its writer); fails when the session closed or
   * nothing drained within the write timeout.
   */
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
        duration: this.writeTimeout,
        orElse: () => Effect.fail(this.host.error("WriteTimeout", "transport did not drain"))
      })
    )
  }

  /** Queues a frame; `coalesce` copies a small payload next to its header, into the slab. */
  sendFrame(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    payload: Uint8Array | undefined,
    coalesce: boolean
  ): void {
    if (this.closedError !== undefined) return
    const small = payload !== undefined && coalesce ? payload.length : 0
    const n = headerSize + small
    if (this.pos + n > this.slab.length) this.nextSlab(n)
    const slab = this.slab
    encodeHeaderInto(slab, this.pos, type, flags, streamId, length)
    if (small > 0) slab.set(payload!, this.pos + headerSize)
    this.pos += n
    this.outBytes += n
    if (payload !== undefined && !coalesce && payload.length > 0) {
      // A large payload goes out as it is, after the region that holds its header.
      this.closeRegion()
      this.out.push(payload)
      this.outBytes += payload.length
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true
      queueMicrotask(this.flush)
    }
  }

  /** The slab's bytes since the last region become a region of `out`. */
  private closeRegion(): void {
    if (this.pos > this.start) this.out.push(this.slab.subarray(this.start, this.pos))
    this.start = this.pos
  }

  private nextSlab(n: number): void {
    this.closeRegion()
    this.slab = new Uint8Array(Math.max(SlabBytes, n))
    this.start = this.pos = 0
  }

  private readonly flush = (): void => {
    this.flushScheduled = false
    this.closeRegion()
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
    if (transport.writableLength > 4 * this.maxWriteBuffer) this.host.fail("WriteTimeout", "peer is not reading")
  }

  /** The transport drained: every parked writer may go on. */
  readonly onDrain = (): void => {
    for (const waiter of this.drainWaiters.splice(0)) waiter()
  }

  /**
   * The session is closing with `error`: no frame is queued from now on, and
   * the frames already queued (a GoAway, a last reply) go to the transport now,
   * before it is destroyed.
   */
  close(error: MuxError): void {
    this.closedError = error
    this.flush()
  }
}
