/**
 * go-redis's dial-error breaker (`dialErrorsNum`, `lastDialError`,
 * `tryDial`), as a small state machine plus the probe loop it starts.
 *
 * ```text
 *            failure (count < threshold)
 *           ┌────┐
 *           ▼    │   threshold-th failure in a row
 *   Closed ──────┴──────────────────────────────► Open ── probe dial fails ─┐
 *     ▲  │ success resets the count                │  ▲                     │
 *     │  └──┘                                      │  └─────────────────────┘
 *     └─────── probe dial succeeds, or its schedule ends ─┘
 * ```
 *
 * While open, the pool fails a `get` that would dial with `BreakerOpen`
 * (carrying the last dial error) and does not dial; idle connections are
 * still handed out. One background probe redials on the `breakerProbe`
 * schedule; its first dial that succeeds closes the breaker (the probe's
 * connection is then closed, as in go-redis).
 *
 * effect's `CircuitBreaker` was not used: there a caller's own call is the
 * half-open probe, rejections are `CircuitBreakerError`s rather than the
 * last dial error, and it needs a store; go-redis's semantics are this much
 * smaller thing.
 *
 * Unlike go-redis (which only resets the count in `tryDial`), any successful
 * dial resets it, so the threshold counts consecutive failures.
 *
 * @since 0.1.0
 */
import type { Schedule } from "effect"
import { Effect } from "effect"
import type { DialError } from "./PoolError.ts"
import { Signal } from "./Signal.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class Breaker {
  /** Consecutive failed dials. */
  failures = 0
  lastError: DialError | undefined = undefined
  private readonly signal = new Signal()

  readonly threshold: number
  /** Writes a debug line of the pool's (a transition). */
  private readonly log: (message: string) => Effect.Effect<void>

  constructor(threshold: number, log: (message: string) => Effect.Effect<void> = () => Effect.void) {
    this.threshold = threshold
    this.log = log
  }

  get isOpen(): boolean {
    return this.failures >= this.threshold
  }

  recordSuccess(): void {
    this.failures = 0
  }

  /** Counts a dial that failed on every attempt; the threshold-th in a row wakes the probe. */
  recordFailure(error: DialError): void {
    this.lastError = error
    this.failures++
    if (this.failures === this.threshold) this.signal.notify()
  }

  /**
   * The probe fiber's loop: parks until the breaker opens, then runs `dial`
   * (one attempt that closes its connection) on `schedule` until it succeeds
   * or the schedule ends, and closes the breaker. `onClose` runs after.
   */
  probe(
    dial: Effect.Effect<void, DialError>,
    schedule: Schedule.Schedule<unknown, DialError>,
    onClose: () => void
  ): Effect.Effect<never> {
    // A dial elsewhere may close the breaker while the probe waits between attempts.
    const attempt = Effect.suspend(() =>
      this.isOpen
        ? Effect.tapError(dial, (error) =>
          Effect.sync(() => {
            this.lastError = error
          }))
        : Effect.void
    )
    const round = Effect.andThen(
      this.signal.wait,
      Effect.suspend(() => {
        if (!this.isOpen) return Effect.void
        const opened = this.log(
          `dial breaker open after ${this.failures} failed dials in a row: ${this.lastError?.message ?? "?"}; probing`
        )
        return opened.pipe(
          Effect.andThen(Effect.ignore(Effect.retry(attempt, schedule))),
          Effect.andThen(Effect.sync(() => {
            this.failures = 0
            onClose()
          })),
          Effect.andThen(this.log("dial breaker closed"))
        )
      })
    )
    return Effect.forever(round)
  }
}
