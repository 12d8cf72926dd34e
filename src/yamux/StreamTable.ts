/**
 * A session's streams by id (hashicorp/yamux's `streams` map with its
 * `acceptCh` and close timers): the next id this side opens, the inbound
 * streams waiting for `accept` and the one fiber parked there, and the close
 * timers of streams that sent FIN first. Kept apart so `Session.ts` reads as
 * the frame loop, and so every place a stream leaves the session is one
 * `forget`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Duration, Fiber } from "effect"
import type { MuxError } from "../mux/MuxError.ts"
import { maxStreamId } from "./Frame.ts"
import type { Stream } from "./Stream.ts"

export class StreamTable {
  private readonly streams = new Map<number, Stream>()
  private nextStreamId: number
  private readonly acceptQueue: Array<Stream> = []
  private acceptWaiter: (() => void) | undefined = undefined
  private readonly closeTimers = new Map<number, Fiber.Fiber<void>>()
  private readonly closeTimeout: Duration.Duration
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>

  constructor(
    firstStreamId: number,
    closeTimeout: Duration.Duration,
    fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  ) {
    this.nextStreamId = firstStreamId
    this.closeTimeout = closeTimeout
    this.fork = fork
  }

  get size(): number {
    return this.streams.size
  }

  /** Inbound streams the application has not accepted yet. */
  get backlog(): number {
    return this.acceptQueue.length
  }

  get(id: number): Stream | undefined {
    return this.streams.get(id)
  }

  has(id: number): boolean {
    return this.streams.has(id)
  }

  /** The id `open` uses next, consumed; undefined once ids are exhausted (Go's `ErrStreamsExhausted`). */
  takeId(): number | undefined {
    const id = this.nextStreamId
    if (id >= maxStreamId) return undefined
    this.nextStreamId += 2
    return id
  }

  /** A stream this side opened. */
  add(stream: Stream): void {
    this.streams.set(stream.id, stream)
  }

  /** A stream the peer opened: it waits in the accept queue, and wakes a parked `accept`. */
  addInbound(stream: Stream): void {
    this.streams.set(stream.id, stream)
    this.acceptQueue.push(stream)
    const waiter = this.acceptWaiter
    if (waiter !== undefined) {
      this.acceptWaiter = undefined
      waiter()
    }
  }

  /** The oldest stream waiting to be accepted, taken off the queue. */
  nextAccepted(): Stream | undefined {
    return this.acceptQueue.shift()
  }

  /** Completes when an inbound stream arrives or the session closes (the caller then checks again). */
  readonly arrival: Effect.Effect<void> = Effect.callback<void>((resume) => {
    this.acceptWaiter = () => resume(Effect.void)
    return Effect.sync(() => {
      this.acceptWaiter = undefined
    })
  })

  /** `stream` sent FIN first: it is reset unless it closes within the close timeout. */
  startCloseTimer(stream: Stream): void {
    const id = stream.id
    const timer = this.fork(Effect.andThen(
      Effect.sleep(this.closeTimeout),
      Effect.sync(() => {
        this.closeTimers.delete(id)
        stream.resetNow()
      })
    ))
    this.closeTimers.set(id, timer)
  }

  /** `stream` is closed or reset: it leaves the table, its close timer and the accept queue. */
  forget(stream: Stream): void {
    const id = stream.id
    if (this.streams.get(id) === stream) this.streams.delete(id)
    const closeTimer = this.closeTimers.get(id)
    if (closeTimer !== undefined) {
      this.closeTimers.delete(id)
      closeTimer.interruptUnsafe()
    }
    const i = this.acceptQueue.indexOf(stream)
    if (i >= 0) this.acceptQueue.splice(i, 1)
  }

  /** The session closed with `error`: every stream hears it, a parked `accept` wakes, timers stop. */
  close(error: MuxError): void {
    for (const stream of this.streams.values()) stream.sessionClosed(error)
    this.streams.clear()
    this.acceptQueue.length = 0
    const acceptWaiter = this.acceptWaiter
    this.acceptWaiter = undefined
    acceptWaiter?.()
    for (const timer of this.closeTimers.values()) timer.interruptUnsafe()
    this.closeTimers.clear()
  }
}
