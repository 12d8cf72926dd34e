/**
 * The wake-ups of a pool's parked waiters (a turn or a dial slot handed
 * over inside `Turns.release`), run in FIFO order from scheduler tasks.
 *
 * **Why not inline.** Waking inline would run the waiter's continuation
 * inside the releaser's stack, one level deeper per waiter, while the
 * releaser is half-way through its update.
 *
 * **Why not one task per wake-up.** Under contention every hand-off is a
 * wake-up, and a woken waiter that puts its connection back hands its turn
 * to the next one. With a task per wake-up, each hand-off would wait for
 * the next turn of the event loop, which then bounds the pool's throughput.
 * Instead, one task runs the wake-ups queued so far and those they cause,
 * up to `wakeupsPerTask`, then leaves the rest to a fresh task, so I/O and
 * other fibers still get the thread (as Effect's scheduler yields a fiber
 * every so many operations).
 *
 * **Why a scheduler task, not a microtask.** `TestClock` waits for the tasks
 * a woken fiber schedules on its scheduler, not for microtasks, and a task
 * is what Effect's own `Semaphore` uses.
 *
 * @since 0.1.0
 */
import type { Scheduler } from "effect"

/**
 * Wake-ups one task runs before it leaves the rest to a new task. The
 * hand-off itself costs about a microsecond, but a woken fiber runs inside
 * `wakeNow` until it parks or uses up its scheduler budget (2048
 * operations), so a task holds the thread for as many of those runs: in
 * `bench/acquire.ts` (64 fibers that never park for I/O) up to about 20 ms
 * for 128 wake-ups. That is the time the same fibers would take if each were
 * resumed by a task of its own, since Effect's scheduler runs every task
 * queued for a turn of the event loop in that turn; the budget bounds how
 * long the event loop waits for I/O, not how long the fibers run.
 *
 * @category constants
 * @since 0.1.0
 */
export const wakeupsPerTask = 128

/**
 * A parked waiter, resumed by `wakeNow`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Wakeable {
  wakeNow(): void
}

/**
 * @category models
 * @since 0.1.0
 */
export class Wakeups {
  private queue: Array<Wakeable> = []
  private head = 0
  private scheduled = false
  private running = false

  /** Wakes `waiter` soon, after the wake-ups already queued. */
  add(waiter: Wakeable, dispatcher: Scheduler.SchedulerDispatcher): void {
    this.queue.push(waiter)
    if (this.running || this.scheduled) return
    this.scheduled = true
    dispatcher.scheduleTask(() => this.run(dispatcher), 0)
  }

  private run(dispatcher: Scheduler.SchedulerDispatcher): void {
    this.scheduled = false
    this.running = true
    let budget = wakeupsPerTask
    try {
      while (budget > 0 && this.head < this.queue.length) {
        budget--
        const waiter = this.queue[this.head]!
        this.head++
        waiter.wakeNow()
      }
    } finally {
      this.running = false
      if (this.head === this.queue.length) {
        this.queue.length = 0
        this.head = 0
      } else {
        this.queue = this.queue.slice(this.head)
        this.head = 0
        this.scheduled = true
        dispatcher.scheduleTask(() => this.run(dispatcher), 0)
      }
    }
  }
}
