/**
 * A one-slot wake-up for a background fiber: the pool's plain synchronous
 * code calls `notify()`, and the one fiber parked in `wait` resumes on the
 * next scheduler tick. A notify with nobody parked is remembered, so the next
 * `wait` returns at once.
 *
 * The resume is scheduled, not run inline, so the background fiber never runs
 * inside the caller's stack while the pool is half-way through an update.
 *
 * @since 0.1.0
 */
import type { Scheduler } from "effect"
import { Effect } from "effect"

/**
 * @category models
 * @since 0.1.0
 */
export class Signal {
  private notified = false
  private resume: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  private dispatcher: Scheduler.SchedulerDispatcher | undefined = undefined

  /** Wakes the parked fiber, or the next one to park. */
  notify(): void {
    const resume = this.resume
    if (resume === undefined) {
      this.notified = true
      return
    }
    this.resume = undefined
    this.dispatcher!.scheduleTask(() => resume(Effect.void), 0)
  }

  /** Parks until `notify` is called; returns at once if it already was. */
  readonly wait: Effect.Effect<void> = Effect.withFiber((fiber) => {
    if (this.notified) {
      this.notified = false
      return Effect.void
    }
    return Effect.callback<void>((resume) => {
      this.resume = resume
      this.dispatcher = fiber.currentDispatcher
      return Effect.sync(() => {
        if (this.resume === resume) this.resume = undefined
      })
    })
  })
}
