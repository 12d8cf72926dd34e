/**
 * How long to sleep until a deadline, for every timer loop in the library.
 *
 * Deadlines are float milliseconds on the monotonic clock, which counts whole
 * nanoseconds. A deadline a float rounding error ahead (`start + timeout`
 * never lands on a whole nanosecond) is not due, yet a sleep for the rest,
 * rounded to the nearest nanosecond, is zero and returns at once. A loop that
 * sleeps until a deadline and then checks it would find it still not due and
 * go round again: on a clock that does not move by itself (`TestClock`, so
 * also users' tests) it spun or recursed without end (found by `npm run sim`
 * in `Deadlines` and in ConnPool's turn timer). Rounded up, the sleep ends at
 * or after the deadline.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

/**
 * The sleep until a deadline `remainingMillis` away: zero when it is due,
 * otherwise rounded up to whole nanoseconds (at least one).
 *
 * @category constructors
 * @since 0.1.0
 */
export const untilDeadline = (remainingMillis: number): Duration.Duration =>
  remainingMillis > 0 ? Duration.nanos(BigInt(Math.ceil(remainingMillis * 1_000_000))) : Duration.zero
