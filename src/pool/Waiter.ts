/**
 * Parking a fiber on a `Turns` queue: the waiter half of a `Lease`. The
 * waiter is itself the node queued in `Turns` and the entry queued in
 * `Wakeups`, so waiting allocates nothing of its own.
 *
 * ```text
 *  wait ─► Waiting ── onTurn (hand-off) ───────► Granted ──► resumed
 *             │  ▲ ── onTurnFree ─► Woken ── retake ok ─┘
 *             │  └───────────────────┘ retake lost (a newcomer barged): parked on
 *             ├─ onTurnTimeout ──────────────► TimedOut ─► resumed with PoolTimeout
 *             └─ onTurnsClosed ──────────────► Closed ───► resumed with PoolClosed
 * ```
 *
 * Every transition is made synchronously by `Turns`; the parked fiber is
 * resumed later, from a `Wakeups` task. A woken waiter competes for its
 * turn in that task (`Turns.retake`), so one that loses it to a newcomer
 * stays parked without a fiber resume. Interruption needs no cleanup here:
 * the owner calls `leave`, and a wake-up already on its way then finds no
 * fiber parked and does nothing.
 *
 * @since 0.1.0
 */
import type { Fiber, Scheduler } from "effect"
import { Effect } from "effect"
import type { PoolError } from "./PoolError.ts"
import type { TurnWaiter, Turns } from "./Turns.ts"
import type { Wakeable, Wakeups } from "./Wakeups.ts"

const Waiting = 0
const Granted = 1
const TimedOut = 2
const Closed = 3
const Woken = 4
type Outcome = typeof Waiting | typeof Granted | typeof TimedOut | typeof Closed | typeof Woken

/**
 * What a waiter needs of its pool.
 *
 * @category models
 * @since 0.1.0
 */
export interface WaiterHost {
  readonly wakeups: Wakeups
  readonly counters: { timeouts: number }
  failTimeout(): Effect.Effect<never, PoolError>
  failClosed(): Effect.Effect<never, PoolError>
}

/**
 * @category models
 * @since 0.1.0
 */
export abstract class Waiter implements TurnWaiter, Wakeable {
  turnsNext: TurnWaiter | undefined = undefined
  turnsPrev: TurnWaiter | undefined = undefined
  turnsQueued = false
  turnsDeadline = 0
  turnsSince = 0
  turnsLost = false
  /**
   * The queue it joined and has not resumed from yet: queued, or handed a
   * turn (the owner's record says so) but not woken.
   */
  queue: Turns | undefined = undefined
  private outcome: Outcome = Waiting
  /** Resumes the fiber parked in `wait`; set while it is parked. */
  private resume: ((effect: Effect.Effect<void, PoolError>) => void) | undefined = undefined
  private dispatcher: Scheduler.SchedulerDispatcher | undefined = undefined
  private readonly host: WaiterHost

  constructor(host: WaiterHost) {
    this.host = host
  }

  /** Records, synchronously, the turn `queue` has just handed it. */
  protected abstract granted(queue: Turns): void

  /**
   * Queues on `queue` (`now` and `deadline` in monotonic millis) and parks
   * until the queue settles it.
   */
  protected wait(
    queue: Turns,
    now: number,
    deadline: number,
    fiber: Fiber.Fiber<unknown, unknown>
  ): Effect.Effect<void, PoolError> {
    this.queue = queue
    this.outcome = Waiting
    this.dispatcher = fiber.currentDispatcher
    queue.enqueue(this, now, deadline)
    return Effect.callback<void, PoolError>((resume) => {
      // Settled between queueing and parking (the fiber may yield in between).
      if (this.outcome === Woken) this.compete()
      if (this.outcome !== Waiting) return resume(this.result())
      this.resume = resume
    })
  }

  /** Leaves the queue it waits on, if any (the owner gave up). */
  protected leave(): void {
    const queue = this.queue
    if (queue === undefined) return
    this.queue = undefined
    this.resume = undefined
    // Still queued: leave. Already granted: the owner's record says so.
    queue.cancel(this)
  }

  onTurn(): void {
    this.granted(this.queue!)
    this.settle(Granted)
  }

  onTurnFree(): void {
    this.settle(Woken)
  }

  onTurnTimeout(): void {
    this.host.counters.timeouts++
    this.settle(TimedOut)
  }

  onTurnsClosed(): void {
    this.settle(Closed)
  }

  /** Woken for a freed turn: takes it, or waits on (a newcomer took it first). */
  private compete(): void {
    const queue = this.queue!
    if (queue.retake(this)) {
      this.granted(queue)
      this.outcome = Granted
    } else {
      this.outcome = Waiting
    }
  }

  private settle(outcome: Outcome): void {
    this.outcome = outcome
    // Not parked yet: `wait`'s callback finds the outcome when it parks.
    if (this.resume !== undefined) this.host.wakeups.add(this, this.dispatcher!)
  }

  /**
   * Resumes the parked fiber; nothing if it left meanwhile. A woken waiter
   * that loses its turn to a newcomer stays parked.
   */
  wakeNow(): void {
    const resume = this.resume
    if (resume === undefined) return
    if (this.outcome === Woken) this.compete()
    if (this.outcome === Waiting) return
    this.resume = undefined
    resume(this.result())
  }

  private result(): Effect.Effect<void, PoolError> {
    switch (this.outcome) {
      case Granted:
        return Effect.void
      case TimedOut:
        return this.host.failTimeout()
      default:
        return this.host.failClosed()
    }
  }
}
