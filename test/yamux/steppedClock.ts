/**
 * A Clock whose wall time can be stepped, as NTP or a resumed VM steps a real
 * one, while sleeps and monotonic time stay the TestClock's.
 *
 * `TestClock.setTime` cannot model a step: it moves the TestClock's wall time
 * and with it every sleep (TestClock keys its sleeps to that timestamp, where
 * real timers are monotonic). Here the wall time reported is the TestClock's
 * plus an offset the test steps; `sleep` and `monotonicTimeNanos` delegate
 * untouched, so code that measures spans on monotonic time is unaffected by a
 * step, and code that (wrongly) uses wall time is thrown off by it.
 */
import { Clock, Effect } from "effect"

export interface SteppedClock {
  readonly clock: Clock.Clock
  /** Steps the wall clock by `millis` (negative: back). */
  readonly step: (millis: number) => void
}

export const oneHour = 60 * 60 * 1000

/** Built on the Clock in context (the TestClock in `it.effect`). */
export const steppedClock: Effect.Effect<SteppedClock> = Effect.map(Clock.clockWith(Effect.succeed), (inner) => {
  let offset = 0
  const millis = () => inner.currentTimeMillisUnsafe() + offset
  const nanos = () => inner.currentTimeNanosUnsafe() + BigInt(offset) * 1_000_000n
  const clock: Clock.Clock = {
    currentTimeMillisUnsafe: millis,
    currentTimeMillis: Effect.sync(millis),
    currentTimeNanosUnsafe: nanos,
    currentTimeNanos: Effect.sync(nanos),
    monotonicTimeNanosUnsafe: () => inner.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: inner.monotonicTimeNanos,
    sleep: (duration) => inner.sleep(duration)
  }
  return {
    clock,
    step: (stepMillis) => {
      offset += stepMillis
    }
  }
})

/** Runs `effect` (and the fibers it forks) on the stepped clock. */
export const onClock = (stepped: SteppedClock) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Clock.Clock, stepped.clock)
