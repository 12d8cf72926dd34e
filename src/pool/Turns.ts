/**
 * A counting semaphore of turns with FIFO waiters and a per-waiter deadline:
 * go-redis's turn semaphore (`waitTurn`/`freeTurn`), in plain synchronous code.
 *
 * **Details**
 *
 * - `tryTake` is the fast path: a free turn is taken without waiting.
 * - A released turn is handed straight to the first waiter (`onTurn`), so it
 *   never becomes free while someone waits and a newcomer cannot overtake
 *   the queue. Hence: `free > 0` implies no waiters.
 * - Ownership moves inside `release` itself, synchronously, so there is no
 *   moment at which a handed-over turn belongs to nobody. The waiter must
 *   record it and schedule its own wake-up; it must not run effects there.
 * - Every waiter of one `Turns` gets the same timeout, so queue order is
 *   deadline order and one timer fiber (`timer`) expires them all: it sleeps
 *   until the head's deadline, not one timer per waiter.
 *
 * Nothing here knows about connections; the pool uses one `Turns` for its
 * pool-size turns and one, without deadlines, for `maxConcurrentDials`.
 *
 * @since 0.1.0
 */
import type { Clock } from "effect"
import { Duration, Effect } from "effect"
import { Signal } from "./Signal.ts"

/**
 * A queued claim on one turn. Its `turns*` fields belong to `Turns`.
 *
 * @category models
 * @since 0.1.0
 */
export interface TurnWaiter {
  turnsNext: TurnWaiter | undefined
  turnsPrev: TurnWaiter | undefined
  turnsQueued: boolean
  turnsDeadline: number
  /** The waiter owns one turn from now on. Called synchronously from `release`. */
  onTurn(): void
  /** The deadline passed while the waiter was still queued; it owns nothing. */
  onTurnTimeout(): void
  /** The turns were shut down (`drain`) while the waiter was queued; it owns nothing. */
  onTurnsClosed(): void
}

/**
 * @category models
 * @since 0.1.0
 */
export class Turns {
  free: number
  private head: TurnWaiter | undefined = undefined
  private tail: TurnWaiter | undefined = undefined
  private waiting = 0
  private readonly signal = new Signal()

  readonly size: number

  constructor(size: number) {
    this.size = size
    this.free = size
  }

  /** Number of queued waiters. */
  get waiters(): number {
    return this.waiting
  }

  /** Takes a free turn if there is one. */
  tryTake(): boolean {
    if (this.free > 0) {
      this.free--
      return true
    }
    return false
  }

  /** Gives one turn back: to the first waiter if any, else to the free count. */
  release(): void {
    const waiter = this.head
    if (waiter === undefined) {
      this.free++
      return
    }
    this.unlink(waiter)
    waiter.onTurn()
  }

  /**
   * Queues a waiter at the back. `deadline` is in monotonic millis
   * (`Infinity` for none). Call only after `tryTake` failed.
   */
  enqueue(waiter: TurnWaiter, deadline: number): void {
    waiter.turnsDeadline = deadline
    waiter.turnsQueued = true
    waiter.turnsNext = undefined
    waiter.turnsPrev = this.tail
    if (this.tail === undefined) {
      this.head = waiter
      if (deadline !== Infinity) this.signal.notify()
    } else {
      this.tail.turnsNext = waiter
    }
    this.tail = waiter
    this.waiting++
  }

  /** Removes a waiter that gave up. Returns false if it was no longer queued. */
  cancel(waiter: TurnWaiter): boolean {
    if (!waiter.turnsQueued) return false
    this.unlink(waiter)
    return true
  }

  /** Shuts down: dequeues every waiter, oldest first, telling each `onTurnsClosed`. */
  drain(): void {
    let waiter = this.head
    while (waiter !== undefined) {
      this.unlink(waiter)
      waiter.onTurnsClosed()
      waiter = this.head
    }
  }

  /** Times out every waiter whose deadline is at or before `now`. */
  expire(now: number): void {
    let waiter = this.head
    while (waiter !== undefined && waiter.turnsDeadline <= now) {
      this.unlink(waiter)
      waiter.onTurnTimeout()
      waiter = this.head
    }
  }

  /**
   * The timer fiber's loop: parks while no waiter has a deadline, otherwise
   * sleeps until the head's deadline and expires what is due. `now` is the
   * monotonic clock the deadlines were set on; `clock.sleep` is monotonic too
   * (`setTimeout`), so a stepped wall clock moves no timeout.
   */
  timer(clock: Clock.Clock, now: () => number): Effect.Effect<never> {
    const step = Effect.suspend(() => {
      const head = this.head
      if (head === undefined || head.turnsDeadline === Infinity) return this.signal.wait
      const at = now()
      this.expire(at)
      const next = this.head
      if (next === undefined) return Effect.void
      return clock.sleep(Duration.millis(Math.max(next.turnsDeadline - at, 0)))
    })
    return Effect.forever(step)
  }

  private unlink(waiter: TurnWaiter): void {
    const prev = waiter.turnsPrev
    const next = waiter.turnsNext
    if (prev === undefined) this.head = next
    else prev.turnsNext = next
    if (next === undefined) this.tail = prev
    else next.turnsPrev = prev
    waiter.turnsPrev = undefined
    waiter.turnsNext = undefined
    waiter.turnsQueued = false
    this.waiting--
  }
}
