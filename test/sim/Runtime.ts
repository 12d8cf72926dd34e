/**
 * The simulator's machine: one queue of runnable tasks (Effect fiber tasks
 * from a custom `Scheduler`, and every delivery of every in-memory link),
 * drained in an order the seed picks, and the clock (effect's `TestClock`)
 * moved only when nothing can run, straight to the next timer.
 *
 * **Why it is deterministic**
 * A seed runs inside one macrotask of Node's event loop: the drive loop
 * awaits only microtasks (so yamux's per-microtask write flush still runs
 * between steps), no real socket or timer is involved, and every choice
 * comes from the seeded `Prng`. Real timers TestClock sets for its "not
 * advancing" warnings cannot fire mid-seed, and are cleared when it ends.
 *
 * **Order kept, order chosen**
 * A link direction has at most one delivery task pending (MemoryTransport
 * batches what is queued behind it), so bytes of one direction stay in order
 * however tasks are picked, as TCP keeps them; everything else (connections,
 * directions, fibers) interleaves as the seed says. A delivery may be held
 * back for some milliseconds of simulated time (a slow network).
 */
import { Clock, Duration, Effect, Fiber } from "effect"
import type { Scheduler } from "effect"
import type { Metric } from "effect"
import type { TestClock } from "effect/testing"
import type { SteppedClock } from "../yamux/steppedClock.ts"
import type { Prng } from "./Prng.ts"

interface Task {
  readonly run: () => void
  /** The link direction it delivers on; 0 for a fiber task. */
  readonly lane: number
}

export interface Tuning {
  /** Chance the oldest runnable task goes next rather than a random one. */
  readonly fifoBias: number
  /** Operations a fiber runs before it must yield: small values interleave fibers finely. */
  readonly maxOps: number
  /** Chance a delivery is held back, and for how long at most (millis). */
  readonly delayChance: number
  readonly maxDelayMillis: number
}

/** The frames of the project's own code that asked for a sleep. */
const siteOf = (
  stack: string | undefined,
  millis: number,
  end: number,
  fiber: Fiber.Fiber<unknown, unknown>
): { readonly text: string; readonly fiber: Fiber.Fiber<unknown, unknown> } => ({
  fiber,
  text: `sleep ${millis} ms until ${end}: ` +
    (stack ?? "").split("\n").filter((l) => l.includes("/src/") || l.includes("/test/sim/")).slice(0, 4)
      .map((l) => l.trim().replace(/^at /, "").replace(/\(?file:\/\/.*\/(src|test)\//, "$1/")).join(" < ")
})

export class Runtime {
  readonly prng: Prng
  readonly tuning: Tuning
  private ready: Array<Task> = []
  private delayed: Array<{ readonly at: number; readonly task: Task }> = []
  /** Pending sleeps: end (TestClock millis) → how many. */
  private readonly sleeps = new Map<number, number>()
  /** Fibers started and not ended, counted through effect's runtime-metrics hook. */
  liveFibers = 0
  steps = 0
  /** Windows of simulated time the clock jumped through while tasks were runnable (stalls). */
  private readonly stalls: Array<{ readonly from: number; readonly to: number }> = []
  /** Steps the world's wall clock (NTP, a resumed VM); monotonic time and sleeps are untouched. */
  stepWall: (millis: number) => void = () => {}
  private lanes = 0
  /** FNV-1a over every choice and event: two runs of a seed must agree on it. */
  hash = 0x811c9dc5
  /** Events in words, kept when replaying a seed. */
  readonly trace: Array<string> | undefined
  /** The first broken invariant; the drive loop stops at it. */
  failed: string | undefined = undefined
  testClock: TestClock.TestClock | undefined = undefined
  /** Runs an Effect on a fiber in the world's context (set once the world is up). */
  runFork: ((effect: Effect.Effect<void>) => Fiber.Fiber<void>) | undefined = undefined

  constructor(prng: Prng, tuning: Tuning, keepTrace: boolean) {
    this.prng = prng
    this.tuning = tuning
    this.trace = keepTrace ? [] : undefined
  }

  // ---------------------------------------------------------------------------
  // What the world plugs in
  // ---------------------------------------------------------------------------

  /** effect's Scheduler: every fiber task joins the one queue. */
  readonly scheduler: Scheduler.Scheduler = {
    executionMode: "async",
    shouldYield: (fiber) => fiber.currentOpCount >= this.tuning.maxOps,
    makeDispatcher: () => ({
      scheduleTask: (run) => {
        this.ready.push({ run, lane: 0 })
      },
      flush: () => {
        while (this.ready.length > 0) this.ready.shift()!.run()
      }
    })
  }

  readonly fiberMetrics: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => {
      this.liveFibers++
    },
    recordFiberEnd: () => {
      this.liveFibers--
    }
  }

  /** A `schedule` for one link direction: its deliveries are tasks of their own lane, sometimes held back. */
  lane(): (task: () => void) => void {
    const lane = ++this.lanes
    return (run) => {
      const task = { run, lane }
      const { delayChance, maxDelayMillis } = this.tuning
      if (delayChance > 0 && this.prng.chance(delayChance)) {
        this.delayed.push({ at: this.now() + this.prng.range(1, maxDelayMillis), task })
      } else {
        this.ready.push(task)
      }
    }
  }

  /** TestClock's time (millis since 0), the time of every sleep. */
  now(): number {
    return this.testClock?.currentTimeMillisUnsafe() ?? 0
  }

  /**
   * TestClock's monotonic millis: the time the pool's deadlines run on, so the
   * time calls are judged by. It can run ahead of `now` (TestClock moves it on
   * at the end of an adjust, whatever the wall timestamp did meanwhile).
   */
  monotonic(): number {
    return this.testClock === undefined ? 0 : Number(this.testClock.monotonicTimeNanosUnsafe()) / 1_000_000
  }

  /**
   * The Clock the world runs on: `stepped` (TestClock's, with a wall clock
   * the chaos can step, see test/yamux/steppedClock.ts) with its sleeps
   * counted, so the drive loop knows the next timer and the end of a run
   * knows none is left.
   */
  clock(stepped: SteppedClock, inner: TestClock.TestClock): Clock.Clock {
    this.stepWall = stepped.step
    return {
      ...stepped.clock,
      sleep: (duration) =>
        // Counted and uncounted in one uninterruptible region: an interruption between the two
        // would leave a sleep counted that never ends.
        Effect.uninterruptibleMask((restore) =>
          Effect.withFiber((fiber) => {
            const end = inner.currentTimeMillisUnsafe() + Duration.toMillis(duration)
            if (!(end > inner.currentTimeMillisUnsafe()) || !Number.isFinite(end)) return restore(inner.sleep(duration))
            this.sleeps.set(end, (this.sleeps.get(end) ?? 0) + 1)
            // Where each sleep began, when tracing: a timer left at the end names its code.
            const site = this.trace === undefined ? undefined : siteOf(new Error().stack, Duration.toMillis(duration), end, fiber)
            if (site !== undefined) this.sleepSites.add(site)
            return Effect.ensuring(
              restore(inner.sleep(duration)),
              Effect.sync(() => {
                if (site !== undefined) this.sleepSites.delete(site)
                const n = this.sleeps.get(end)! - 1
                if (n === 0) this.sleeps.delete(end)
                else this.sleeps.set(end, n)
              })
            )
          })
        )
    }
  }

  /** A stall of `millis` starts now: until it ends, runnable work waits while time runs. */
  stall(millis: number): void {
    this.stalls.push({ from: this.monotonic(), to: this.monotonic() + millis })
  }

  /**
   * Simulated (monotonic) millis between `from` and `to` spent in stalls: work runnable
   * then waited while the clock ran, so a call may end that much later.
   */
  stalledBetween(from: number, to: number): number {
    let total = 0
    for (const s of this.stalls) total += Math.max(0, Math.min(to, s.to) - Math.max(from, s.from))
    return total
  }

  /** Where the pending sleeps began (tracing only). */
  readonly sleepSites = new Set<{ readonly text: string; readonly fiber: Fiber.Fiber<unknown, unknown> }>()

  /** Sleeps not yet woken (timers alive). */
  get pendingSleeps(): number {
    let n = 0
    for (const count of this.sleeps.values()) n += count
    return n
  }

  // ---------------------------------------------------------------------------
  // Trace
  // ---------------------------------------------------------------------------

  private mix(n: number): void {
    let h = this.hash
    h = Math.imul(h ^ (n & 0xff), 0x01000193)
    h = Math.imul(h ^ ((n >>> 8) & 0xff), 0x01000193)
    h = Math.imul(h ^ ((n >>> 16) & 0xff), 0x01000193)
    h = Math.imul(h ^ (n >>> 24), 0x01000193)
    this.hash = h >>> 0
  }

  /** Records an event: hashed always, kept in words when tracing. */
  event(text: string): void {
    for (let i = 0; i < text.length; i++) this.mix(text.charCodeAt(i))
    this.trace?.push(`${this.now().toString().padStart(7)}ms #${this.steps} ${text}`)
    if (this.trace !== undefined && process.env.SIM_LIVE_TRACE === "1") console.log(this.trace[this.trace.length - 1])
  }

  /** An invariant broke: remember the first, stop the run. */
  violate(what: string): void {
    this.event(`VIOLATION ${what}`)
    this.failed ??= what
  }

  // ---------------------------------------------------------------------------
  // The drive loop
  // ---------------------------------------------------------------------------

  /** Moves held-back deliveries whose time has come to the runnable queue, in the order they were held. */
  private release(): void {
    if (this.delayed.length === 0) return
    const now = this.now()
    const due = this.delayed.filter((d) => d.at <= now)
    if (due.length === 0) return
    this.delayed = this.delayed.filter((d) => d.at > now)
    for (const d of due) this.ready.push(d.task)
  }

  private nextTime(): number | undefined {
    let next = Infinity
    for (const end of this.sleeps.keys()) if (end < next) next = end
    for (const d of this.delayed) if (d.at < next) next = d.at
    return next === Infinity ? undefined : next
  }

  /**
   * Runs until `root` has ended and nothing is runnable. Returns why it
   * stopped early, if it did: the step limit, the real-time limit, or a world
   * stuck with nothing to run and no timer to wait for.
   */
  async drive(
    root: Fiber.Fiber<unknown, unknown>,
    limits: { readonly maxSteps: number; readonly realDeadline: number; readonly onStep: () => void; readonly afterStep: () => void; readonly checkEvery: number }
  ): Promise<string | undefined> {
    let advancing: Fiber.Fiber<void> | undefined
    for (;;) {
      this.release()
      const n = this.ready.length
      if (n > 0) {
        const i = n === 1 || this.prng.chance(this.tuning.fifoBias) ? 0 : this.prng.int(n)
        const task = i === 0 ? this.ready.shift()! : this.ready.splice(i, 1)[0]!
        this.steps++
        this.mix(task.lane * 31 + i)
        task.run()
        // Let microtasks run (yamux flushes its writes on one), never a macrotask.
        await undefined
        // Nothing from outside the world (an interrupted caller) while the clock is moving: an idle
        // advance starts with nothing runnable, and must not overtake work that was.
        if (advancing === undefined || advancing.pollUnsafe() !== undefined) limits.afterStep()
        if (this.failed !== undefined) return undefined
        if (this.steps % limits.checkEvery === 0) {
          limits.onStep()
          if (this.steps >= limits.maxSteps) return `step limit (${limits.maxSteps}) reached: a livelock?`
          if (performance.now() > limits.realDeadline) return "real-time limit reached"
        }
        continue
      }
      if (this.failed !== undefined) return undefined
      if (root.pollUnsafe() !== undefined) {
        if (this.delayed.length === 0) return undefined
        // The world has ended: what the network still holds arrives now (closes the peers must hear).
        for (const d of this.delayed.splice(0)) this.ready.push(d.task)
        continue
      }
      if (advancing !== undefined && advancing.pollUnsafe() === undefined) {
        return "stuck: the clock is moving but no task runs"
      }
      const next = this.nextTime()
      if (next === undefined) return "deadlock: nothing runnable, no timer pending, and the world has not finished"
      // A sleep counted here at a time TestClock has passed without waking it began, in TestClock,
      // after a stall moved the clock (the fiber yielded in between): step on until it fires.
      const by = next > this.now() ? next - this.now() : 1
      this.trace?.push(`${this.now().toString().padStart(7)}ms #${this.steps} (clock +${by} ms: ${this.pendingSleeps} sleeps, ${this.delayed.length} deliveries held)`)
      this.mix(by)
      // TestClock rounds a fractional millisecond to whole nanoseconds; so does this step, but never to
      // zero: a step under half a nanosecond (float error between two sleeps' ends) would move nothing, forever.
      advancing = this.runFork!(this.testClock!.adjust(Number.isInteger(by) ? by : Duration.nanos(BigInt(Math.max(1, Math.round(by * 1e6))))))
    }
  }
}
