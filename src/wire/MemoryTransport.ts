/**
 * Two connected in-memory `ByteTransport`s: what one end writes, the other
 * receives, in order, when the pair's `schedule` runs the delivery.
 *
 * **Details**
 * Every event (bytes arriving, a half-close, a close) is a task handed to
 * `schedule`, `queueMicrotask` by default. A simulator passes its own and
 * decides, from a seed, when each task runs; `split` cuts what is delivered
 * at any byte boundaries, as TCP may. Bytes wait in the writer's queue
 * (`writableLength`) until delivered, so a reader that `pause`s (or has no
 * `data` listener yet) holds the writer's bytes back and the writer sees
 * backpressure, as over TCP.
 *
 * Faults: `destroy` (the peer reads EOF, then close), `reset` (the peer gets
 * ECONNRESET, then close), `end` (half-close), and the pair's `sever`, after
 * which bytes vanish in both directions and neither end hears a thing (a
 * half-open link, a host gone dark).
 *
 * @since 0.1.0
 */
import type { ByteTransport } from "./ByteTransport.ts"

export interface PairOptions {
  /** Runs one delivery task. Default `queueMicrotask`. */
  readonly schedule?: ((task: () => void) => void) | undefined
  /** Queued bytes at which `write` returns false and `drain` is owed: default 16 KiB, as `net.Socket`. */
  readonly highWaterMark?: number | undefined
  /** Cuts a chunk into the pieces the reader receives. Default: whole chunks. */
  readonly split?: ((chunk: Uint8Array) => ReadonlyArray<Uint8Array>) | undefined
}

/** `net.Socket`'s default high-water mark. */
export const defaultHighWaterMark = 16 * 1024

type Listener = (arg?: never) => void

/** What both ends share: the scheduling, and whether the link still carries anything. */
interface Link {
  readonly schedule: (task: () => void) => void
  readonly highWaterMark: number
  readonly split: ((chunk: Uint8Array) => ReadonlyArray<Uint8Array>) | undefined
  severed: boolean
}

let nextPort = 1

export class MemoryTransport implements ByteTransport {
  readonly remoteAddress = "memory"
  readonly remotePort: number
  destroyed = false
  readableEnded = false
  /** Bytes delivered to this end so far. */
  bytesRead = 0

  private peer!: MemoryTransport
  private readonly link: Link
  private readonly listeners = new Map<string, Array<Listener>>()
  private queue: Array<Uint8Array> = []
  private queued = 0
  private corked = 0
  private needDrain = false
  private deliveryScheduled = false
  /** `end` was called: the peer reads EOF once the queue is delivered. */
  private ending = false
  private paused = false
  /** A `data` listener is attached. Until then bytes wait at the writer, as a socket holds them until it is read. */
  private reading = false

  /** @internal use `makePair` */
  constructor(link: Link, remotePort: number) {
    this.link = link
    this.remotePort = remotePort
  }

  /** @internal */
  static connect(a: MemoryTransport, b: MemoryTransport): void {
    a.peer = b
    b.peer = a
  }

  get writableLength(): number {
    return this.queued
  }

  on(event: "data", listener: (chunk: Uint8Array) => void): this
  on(event: "drain" | "end" | "close", listener: () => void): this
  on(event: "error", listener: (error: Error) => void): this
  on(event: string, listener: (arg: never) => void): this {
    const list = this.listeners.get(event)
    if (list === undefined) this.listeners.set(event, [listener as Listener])
    else list.push(listener as Listener)
    if (event === "data" && !this.reading) {
      this.reading = true
      // The first reader may come after the peer wrote (a server whose session starts in a forked fiber).
      if (!this.paused && !this.peer.destroyed && this.peer.queue.length > 0) this.peer.scheduleDelivery()
    }
    return this
  }

  write(chunk: Uint8Array): boolean {
    if (this.destroyed || this.ending) return false
    if (chunk.length === 0) return this.queued < this.link.highWaterMark
    // A copy (a Buffer, as net.Socket delivers), as the kernel takes one: the reader may keep what it receives.
    this.queue.push(Buffer.from(chunk))
    this.queued += chunk.length
    if (this.corked === 0) this.scheduleDelivery()
    if (this.queued < this.link.highWaterMark) return true
    this.needDrain = true
    return false
  }

  cork(): void {
    this.corked++
  }

  uncork(): void {
    if (this.corked > 0 && --this.corked === 0 && this.queue.length > 0) this.scheduleDelivery()
  }

  /** Half-closes: the peer reads what was written, then EOF. */
  end(): void {
    if (this.destroyed || this.ending) return
    this.ending = true
    this.scheduleDelivery()
  }

  /** Stops reading: bytes for this end stay queued at the writer. */
  pause(): void {
    this.paused = true
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    if (!this.peer.destroyed) this.peer.scheduleDelivery()
  }

  /** Closes both directions at once; the peer reads EOF, then both ends close. Idempotent. */
  destroy(): void {
    this.close(false)
  }

  /** As `destroy`, but the peer sees a connection reset (ECONNRESET) instead of EOF. */
  reset(): void {
    this.close(true)
  }

  private close(reset: boolean): void {
    if (this.destroyed) return
    this.destroyed = true
    this.queue = []
    this.queued = 0
    const peer = this.peer
    this.link.schedule(() => this.emit("close"))
    if (this.link.severed || peer.destroyed) return
    this.link.schedule(() => {
      if (peer.destroyed) return
      if (reset) {
        const error = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })
        peer.emit("error", error as never)
      } else {
        peer.readableEnded = true
        peer.emit("end")
      }
      peer.close(false)
    })
  }

  private scheduleDelivery(): void {
    if (this.deliveryScheduled) return
    this.deliveryScheduled = true
    this.link.schedule(this.deliver)
  }

  private readonly deliver = (): void => {
    this.deliveryScheduled = false
    const peer = this.peer
    if (this.destroyed) return
    if (this.link.severed || peer.destroyed) {
      // Into the void: handed to the "network", which loses it.
      this.queue = []
      this.queued = 0
    }
    while (
      this.queue.length > 0 && this.corked === 0 && peer.reading && !peer.paused && !peer.destroyed && !this.destroyed
    ) {
      const chunk = this.queue.shift()!
      this.queued -= chunk.length
      const pieces = this.link.split === undefined ? [chunk] : this.link.split(chunk)
      for (const piece of pieces) {
        if (peer.destroyed) break
        peer.bytesRead += piece.length
        peer.emit("data", piece as never)
      }
    }
    if (this.needDrain && this.queued === 0 && !this.destroyed) {
      this.needDrain = false
      this.emit("drain")
    }
    if (this.ending && this.queue.length === 0 && !peer.readableEnded && !peer.destroyed && !this.link.severed) {
      peer.readableEnded = true
      peer.emit("end")
    }
  }

  private emit(event: string, arg?: never): void {
    const list = this.listeners.get(event)
    if (list === undefined) return
    for (const listener of list.slice()) listener(arg)
  }
}

export interface MemoryPair {
  readonly client: MemoryTransport
  readonly server: MemoryTransport
  /** From now on bytes vanish both ways and neither end hears of it. */
  readonly sever: () => void
}

/**
 * Two connected ends.
 *
 * @category constructors
 */
export const makePair = (options: PairOptions = {}): MemoryPair => {
  const link: Link = {
    schedule: options.schedule ?? queueMicrotask,
    highWaterMark: options.highWaterMark ?? defaultHighWaterMark,
    split: options.split,
    severed: false
  }
  const client = new MemoryTransport(link, nextPort++)
  const server = new MemoryTransport(link, nextPort++)
  MemoryTransport.connect(client, server)
  return {
    client,
    server,
    sever: () => {
      link.severed = true
    }
  }
}
