/**
 * Every call deadline of a pool on one timer fiber.
 *
 * `Effect.timeoutOrElse` races the call against a sleep: two forked fibers
 * and a timer per call, about 9 µs, a quarter of the CPU a small call costs.
 * Here a call registers an entry instead (two Set operations) and one fiber
 * sleeps until the earliest deadline, then runs the `expire` Effect of every
 * entry that is due. Entries are grouped by duration: calls sharing a
 * timeout register in deadline order, so the first entry of each group is
 * that group's earliest, and the fiber wakes about once per timeout, not once
 * per call.
 *
 * Time comes from `Clock`, so `TestClock` drives it, and it is the Clock's
 * monotonic time: a deadline is a span from the call's start, and a wall
 * clock that steps (NTP, a VM resumed) must not stretch or cut it. The timer
 * itself is a relative `Effect.sleep`, which the live Clock runs on Node's
 * monotonic timers.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Fiber } from "effect"
import { untilDeadline } from "../time/untilDeadline.ts"

export interface Deadline {
  /** Monotonic milliseconds (the Clock's `monotonicTimeNanos`) at which the entry expires. */
  readonly at: number
  /** Set just before `expire` runs; read by the caller to tell its failure apart. */
  expired: boolean
  readonly expire: Effect.Effect<void>
  /** @internal */
  readonly millis: number
  /** @internal */
  readonly group: Set<Deadline>
}

export class Deadlines {
  private readonly clock: Clock.Clock
  private readonly runFork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  private readonly groups = new Map<number, Set<Deadline>>()
  private sleeper: Fiber.Fiber<void> | undefined = undefined
  private wakeAt = Number.POSITIVE_INFINITY
  /** Identifies the current sleeper, so one that lost a race to an earlier deadline does nothing. */
  private token: object | undefined = undefined

  /** `runFork` runs the timer fiber in the pool's Scope, so closing the pool stops it. */
  constructor(clock: Clock.Clock, runFork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>) {
    this.clock = clock
    this.runFork = runFork
  }

  /** Monotonic milliseconds: the time every entry's `at` is on. */
  now(): number {
    return Number(this.clock.monotonicTimeNanosUnsafe()) / 1_000_000
  }

  /** Entries registered and not yet removed or expired (for tests and stats). */
  get size(): number {
    let n = 0
    for (const group of this.groups.values()) n += group.size
    return n
  }

  /**
   * Registers `expire` to run once `millis` have passed since `now` (default:
   * this moment, read from the clock), unless `remove` comes first.
   */
  add(millis: number, expire: Effect.Effect<void>, now: number = this.now()): Deadline {
    let group = this.groups.get(millis)
    if (group === undefined) {
      group = new Set()
      this.groups.set(millis, group)
    }
    const entry: Deadline = { at: now + millis, expired: false, expire, millis, group }
    group.add(entry)
    if (entry.at < this.wakeAt) this.schedule(entry.at)
    return entry
  }

  /** The call ended: forget its entry. A timer already set is left to wake and find nothing due. */
  remove(entry: Deadline): void {
    const group = entry.group
    group.delete(entry)
    // Per-call timeouts can make many durations; an empty group must not outlive its calls.
    if (group.size === 0 && this.groups.get(entry.millis) === group) this.groups.delete(entry.millis)
  }

  /** Stops the timer (the pool is closing); entries left never expire. */
  clear(): void {
    this.groups.clear()
    this.wakeAt = Number.POSITIVE_INFINITY
    const sleeper = this.sleeper
    this.sleeper = undefined
    this.token = undefined
    sleeper?.interruptUnsafe()
  }

  /** Distinct durations with entries (for tests). */
  get durations(): number {
    return this.groups.size
  }

  private schedule(at: number): void {
    this.sleeper?.interruptUnsafe()
    this.wakeAt = at
    const token = {}
    this.token = token
    const sleeper = this.runFork(Effect.andThen(
      Effect.suspend(() => Effect.sleep(untilDeadline(at - this.now()))),
      this.fire(token)
    ))
    // A Clock whose sleep(0) returns at once (TestClock's) fires inside runFork, and that may
    // have set the next sleeper already: keeping this one would orphan that one, left running
    // after `clear` (found by the simulator).
    if (this.token === token) this.sleeper = sleeper
  }

  private fire(token: object): Effect.Effect<void> {
    return Effect.suspend(() => {
      // A newer sleeper took over (an earlier deadline arrived): it will do the work.
      if (this.token !== token) return Effect.void
      this.token = undefined
      this.sleeper = undefined
      this.wakeAt = Number.POSITIVE_INFINITY
      const now = this.now()
      const due: Array<Deadline> = []
      let next = Number.POSITIVE_INFINITY
      for (const [millis, group] of this.groups) {
        for (const entry of group) {
          if (entry.at > now) {
            if (entry.at < next) next = entry.at
            break
          }
          group.delete(entry)
          entry.expired = true
          due.push(entry)
        }
        if (group.size === 0) this.groups.delete(millis)
      }
      if (next !== Number.POSITIVE_INFINITY) this.schedule(next)
      return Effect.forEach(due, (entry) => entry.expire, { discard: true })
    })
  }
}
