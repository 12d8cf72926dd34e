/**
 * The pool's monotonic clock in millis, read from `Clock` at most once per
 * event-loop task when that clock is effect's default one.
 *
 * **Why.** A reading of the default clock (`process.hrtime.bigint()` and its
 * conversion to a number) cost about as much as the rest of a hand-out: in
 * `bench/acquire.ts` a hand-out and a put read it twice, and without those
 * two readings the pool did 1.3x the acquires per second. So a reading is
 * reused until the current task ends (a queued microtask marks the end), as
 * Node's timers measure from a loop time read once per turn. An age or a
 * stamp is then as of the start of the work the task has done since, never
 * later than the truth: within a task that is the task's own run time.
 * Under Effect's scheduler that task can be a whole turn of the event loop:
 * the scheduler runs every fiber queued for the turn, each for up to 2048
 * operations, before the microtask checkpoint. With 64 fibers that never
 * park for I/O (`bench/acquire.ts`) a turn took 10 to 40 ms and a reading
 * was up to a turn old; each `fresh` reading (a waiter queueing or resuming)
 * renews it.
 *
 * **Fresh readings.** Deadlines and waits (`fresh`) read the clock every
 * time, so a pool timeout never fires early.
 *
 * **Other clocks.** Any other `Clock` (`TestClock`, a custom one) is read
 * every time: a `TestClock` moves within a task, where the real clock moves
 * only by the task's own work.
 *
 * @since 0.1.0
 */
import { Clock, Context } from "effect"

/** Effect's default clock: the one every fiber has unless a `Clock` is provided. */
const defaultClock: Clock.Clock = Context.get(Context.empty(), Clock.Clock)

/**
 * Whether a reading of `clock` may be reused within a task: only for
 * effect's default clock, which moves within a task only by the task's work.
 *
 * @since 0.1.0
 */
export const reusesReadings = (clock: Clock.Clock): boolean => clock === defaultClock

/**
 * @category models
 * @since 0.1.0
 */
export class Millis {
  private readonly clock: Clock.Clock
  /** Whether a reading may be reused until the task ends. */
  private readonly reuse: boolean
  private reading = 0
  /** `reading` was taken in the current task. */
  private valid = false
  private readonly expire = (): void => {
    this.valid = false
  }

  constructor(clock: Clock.Clock, reuse: boolean = reusesReadings(clock)) {
    this.clock = clock
    this.reuse = reuse
  }

  /** Monotonic millis as of this task: for ages and stamps. */
  now(): number {
    return this.valid ? this.reading : this.fresh()
  }

  /** Monotonic millis read now: for deadlines and waits. */
  fresh(): number {
    const reading = Number(this.clock.monotonicTimeNanosUnsafe()) / 1_000_000
    if (this.reuse) {
      this.reading = reading
      if (!this.valid) {
        this.valid = true
        queueMicrotask(this.expire)
      }
    }
    return reading
  }
}
