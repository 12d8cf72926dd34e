/**
 * A counting semaphore of turns with FIFO waiters, a per-waiter deadline,
 * and Go's `sync.Mutex` policy against both lock convoys and starvation:
 * go-redis's turn semaphore (`waitTurn`/`freeTurn`), in plain synchronous
 * code.
 *
 * **Normal mode: barging.** A released turn goes back to the free count and
 * the head waiter is woken (`onTurnFree`) to compete for it. Until the head
 * runs, a newcomer may take the turn (`tryTake`): usually the fiber that
 * just released it, looping for its next borrow. Handing every freed turn to
 * the oldest waiter instead makes each acquire under contention a fiber
 * suspend and resume (a convoy: the releaser finds no turn on its next
 * acquire and queues too). One waiter is woken at a time; a woken waiter that
 * finds the turn taken stays at the head, and the next release wakes it again.
 *
 * **Starvation mode: hand-off.** When a turn is released while the head has
 * waited `starvationMillis` or longer (Go: 1 ms), or has already lost a
 * freed turn to a newcomer once, the turn is handed to the head directly
 * (`onTurn`), and newcomers queue behind the waiters instead of barging.
 * The mode ends when a waiter served that way had waited less than the
 * threshold (and lost no race), or nobody is left waiting. So a waiter at
 * the head waits at most one more hold after losing a race, and never more
 * than the threshold plus one hold: `poolTimeout` stays honest.
 * `starvationMillis` 0 hands off always (strict FIFO); `Infinity` never
 * (pure barging, losers are only woken again).
 *
 * Go's rule has only the threshold. The lost race is added because a
 * borrower that holds its connection across a yield gains nothing from
 * barging (it suspends holding the turn anyway) and would keep the turns
 * among a few fibers until the threshold: in `bench/acquire.ts` with
 * borrowers that yield while holding, it took the p99 wait from 10 ms (the
 * threshold) to about 3 ms at the same throughput.
 *
 * **Invariants.** A turn is owned by exactly one party at a time: the free
 * count, a waiter (from `onTurn` or a successful `retake`), or its holder.
 * While turns are free and waiters queue, one waiter is woken (`woken`, the
 * head), so a free turn never sits unclaimed. Ownership moves inside the
 * call itself, synchronously; a waiter must record it and schedule its own
 * wake-up, never run effects there.
 *
 * Every waiter of one `Turns` gets the same timeout, so queue order is
 * deadline order and one timer fiber (`timer`) expires them all: it sleeps
 * until the head's deadline, not one timer per waiter.
 *
 * Nothing here knows about connections; the pool uses one `Turns` for its
 * pool-size turns and one, without deadlines, for `maxConcurrentDials`.
 *
 * @since 0.1.0
 */
import type { Clock } from "effect"
import { Effect } from "effect"
import { Signal } from "./Signal.ts"
import { untilDeadline } from "../time/untilDeadline.ts"

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
  /** When it queued (monotonic millis), for the starvation check. */
  turnsSince: number
  /** It was woken for a freed turn and a newcomer took it first. */
  turnsLost: boolean
  /** The waiter owns one turn from now on (hand-off). Called synchronously. */
  onTurn(): void
  /** A turn was freed: the waiter should `retake` soon (it may lose it to a newcomer). */
  onTurnFree(): void
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
  /** Hand-off mode: freed turns go to the head, newcomers queue. */
  starving = false
  private head: TurnWaiter | undefined = undefined
  private tail: TurnWaiter | undefined = undefined
  /** The head, woken to compete for a freed turn and not yet back. */
  private woken: TurnWaiter | undefined = undefined
  private waiting = 0
  private readonly signal = new Signal()

  readonly size: number
  private readonly now: () => number
  private readonly starvationMillis: number

  constructor(size: number, now: () => number, starvationMillis: number) {
    this.size = size
    this.free = size
    this.now = now
    this.starvationMillis = starvationMillis
  }

  /** Number of queued waiters. */
  get waiters(): number {
    return this.waiting
  }

  /** Whether a newcomer may take a turn now: one is free and no waiter is starving. */
  canTake(): boolean {
    return this.free > 0 && !(this.starving && this.head !== undefined)
  }

  /** A newcomer's fast path: takes a free turn, unless waiters are starving. */
  tryTake(): boolean {
    if (!this.canTake()) return false
    this.free--
    return true
  }

  /**
   * Gives one turn back: to a starved head directly, else to the free count
   * (waking the head). `now`, when the caller has just read the clock, saves
   * reading it again.
   */
  release(now?: number): void {
    const head = this.head
    if (head !== undefined) {
      const threshold = this.starvationMillis
      const starved = threshold !== Infinity &&
        (threshold === 0 || head.turnsLost || (now ?? this.now()) - head.turnsSince >= threshold)
      if (this.starving || starved) {
        this.unlink(head)
        this.starving = starved && this.head !== undefined
        head.onTurn()
        return
      }
    }
    this.free++
    this.wakeHead()
  }

  /**
   * The woken waiter competing for a freed turn. Succeeds when one is still
   * free (the waiter owns it and leaves the queue); otherwise it stays at
   * the head and the next release wakes it again.
   */
  retake(waiter: TurnWaiter): boolean {
    if (this.woken === waiter) this.woken = undefined
    if (!waiter.turnsQueued) return false
    if (this.free === 0) {
      waiter.turnsLost = true
      return false
    }
    this.free--
    this.unlink(waiter)
    this.wakeHead()
    return true
  }

  /**
   * Queues a waiter at the back. `now` and `deadline` are monotonic millis
   * (`Infinity` for no deadline). Call only after `tryTake` failed.
   */
  enqueue(waiter: TurnWaiter, now: number, deadline: number): void {
    waiter.turnsSince = now
    waiter.turnsLost = false
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
    // Turns can be free here only in hand-off mode, where the woken head takes them.
    this.wakeHead()
  }

  /** Removes a waiter that gave up. Returns false if it was no longer queued. */
  cancel(waiter: TurnWaiter): boolean {
    if (!waiter.turnsQueued) return false
    this.unlink(waiter)
    this.wakeHead()
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
    this.starving = false
  }

  /** Times out every waiter whose deadline is at or before `now`. */
  expire(now: number): void {
    let waiter = this.head
    while (waiter !== undefined && waiter.turnsDeadline <= now) {
      this.unlink(waiter)
      waiter.onTurnTimeout()
      waiter = this.head
    }
    this.wakeHead()
  }

  /**
   * The timer fiber's loop: parks while no waiter has a deadline, otherwise
   * sleeps until the head's deadline and expires what is due. Deadlines are
   * on the monotonic clock, and `clock.sleep` is monotonic too
   * (`setTimeout`), so a stepped wall clock moves no timeout. `now` reads
   * the time afresh (the pool's `now` may be as of the start of the task).
   */
  timer(clock: Clock.Clock, now: () => number = this.now): Effect.Effect<never> {
    const step = Effect.suspend(() => {
      const head = this.head
      if (head === undefined || head.turnsDeadline === Infinity) return this.signal.wait
      const at = now()
      this.expire(at)
      const next = this.head
      if (next === undefined) return Effect.void
      return clock.sleep(untilDeadline(next.turnsDeadline - at))
    })
    return Effect.forever(step)
  }

  /** While a turn is free and nobody is woken, wakes the head to compete for it. */
  private wakeHead(): void {
    const head = this.head
    if (head === undefined || this.free === 0 || this.woken !== undefined) return
    this.woken = head
    head.onTurnFree()
  }

  private unlink(waiter: TurnWaiter): void {
    if (this.woken === waiter) this.woken = undefined
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
    if (this.head === undefined) this.starving = false
  }
}
