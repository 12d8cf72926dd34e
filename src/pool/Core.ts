/**
 * The pool's state and every change to it that is not one caller's
 * acquisition (that is `Lease`): putting back, removing, staleness, the
 * close-signal watchers, the `minIdleConns` warm-up, the reaper, `filter`
 * and closing.
 *
 * All of it is plain synchronous code over plain mutable fields (the pool
 * lives on one JS thread). A change is made in full before it returns; what
 * must wait (closing a connection's scope, a dial) is returned as an
 * `Effect` for the caller to run, uninterruptibly where it releases
 * something.
 *
 * Accounting invariants:
 *
 * - `turns` in use = leases holding a turn + `InUse` entries with `turn`.
 * - Idle entries hold no turn, so a new connection is dialled for `get` only
 *   when the idle list is empty: open + dialling never exceeds the turns
 *   except through `newConn`.
 * - `conns` holds exactly the entries not `Closed`.
 *
 * @since 0.1.0
 */
import type { Clock, Random } from "effect"
import { Effect, Exit, Fiber, Schedule, Scope } from "effect"
import { Breaker } from "./Breaker.ts"
import type { Dialer } from "./Dialer.ts"
import { IdleList } from "./IdleList.ts"
import type { Config } from "./PoolOptions.ts"
import { Entry } from "./PooledConn.ts"
import { BreakerOpen, PoolClosed, PoolError, PoolExhausted, PoolTimeout } from "./PoolError.ts"
import type { PoolStats } from "./PoolStats.ts"
import { Counters, snapshot } from "./PoolStats.ts"
import { Signal } from "./Signal.ts"
import { Turns } from "./Turns.ts"
import { Wakeups } from "./Wakeups.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class Core<A> {
  readonly config: Config
  readonly clock: Clock.Clock
  readonly random: Random.Random
  readonly dialer: Dialer<A>
  readonly closeSignal: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /** Owns every background fiber; closed by `close`. */
  readonly background: Scope.Closeable

  readonly conns = new Set<Entry<A>>()
  readonly idle = new IdleList<A>()
  /** `poolSize` turns (or `maxActiveConns` if lower), with `poolTimeout`. */
  readonly turns: Turns
  /** `maxConcurrentDials` slots, no timeout. */
  readonly dials: Turns
  readonly breaker: Breaker
  readonly counters = new Counters()
  /** Resumes waiters handed a turn or a dial slot. */
  readonly wakeups = new Wakeups()
  /** Dials in progress, counted against `maxActiveConns`. */
  dialing = 0
  /** Warm-up dials in progress, counted against `minIdleConns`. */
  warming = 0
  closed = false
  private readonly warmSignal = new Signal()

  constructor(options: {
    readonly config: Config
    readonly clock: Clock.Clock
    readonly random: Random.Random
    readonly dialer: Dialer<A>
    readonly closeSignal: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
    readonly background: Scope.Closeable
  }) {
    this.config = options.config
    this.clock = options.clock
    this.random = options.random
    this.dialer = options.dialer
    this.closeSignal = options.closeSignal
    this.background = options.background
    const now = () => this.now()
    this.turns = new Turns(options.config.turns, now, options.config.starvationMillis)
    this.dials = new Turns(options.config.maxConcurrentDials, now, options.config.starvationMillis)
    this.breaker = new Breaker(options.config.breakerThreshold)
  }

  /**
   * Monotonic millis. Every age, deadline and wait in the pool is measured on
   * this, never on the wall clock, which NTP or a VM resume can step by hours.
   */
  now(): number {
    return Number(this.clock.monotonicTimeNanosUnsafe()) / 1_000_000
  }

  /** A monotonic reading of `now()` as wall-clock millis, for the handles' `createdAt`/`usedAt`. */
  wallTime(monotonic: number): number {
    return this.clock.currentTimeMillisUnsafe() - (this.now() - monotonic)
  }

  // ---------------------------------------------------------------------------
  // errors
  // ---------------------------------------------------------------------------

  failClosed(): Effect.Effect<never, PoolError> {
    return Effect.fail(new PoolError({ reason: new PoolClosed({ pool: this.config.name }) }))
  }

  failTimeout(): Effect.Effect<never, PoolError> {
    return Effect.fail(
      new PoolError({ reason: new PoolTimeout({ pool: this.config.name, timeout: this.config.poolTimeout }) })
    )
  }

  failExhausted(): Effect.Effect<never, PoolError> {
    return Effect.fail(
      new PoolError({
        reason: new PoolExhausted({ pool: this.config.name, maxActiveConns: this.config.maxActiveConns })
      })
    )
  }

  failBreakerOpen(): Effect.Effect<never, PoolError> {
    return Effect.fail(
      new PoolError({ reason: new BreakerOpen({ pool: this.config.name, lastError: this.breaker.lastError! }) })
    )
  }

  // ---------------------------------------------------------------------------
  // health
  // ---------------------------------------------------------------------------

  /** Within its lifetime and not idle too long. Checked before every hand-out. */
  isHealthy(entry: Entry<A>, now: number): boolean {
    return now < entry.expiresAt && now - entry.lastUsed < this.config.connMaxIdleTimeMillis
  }

  /** `connMaxLifetime` ± a uniform draw within `connMaxLifetimeJitter`. */
  expiresAt(born: number): number {
    const lifetime = this.config.connMaxLifetimeMillis
    if (lifetime === Infinity) return Infinity
    const jitter = this.config.connMaxLifetimeJitterMillis
    if (jitter === 0) return born + lifetime
    return born + lifetime + (this.random.nextDoubleUnsafe() * 2 - 1) * jitter
  }

  // ---------------------------------------------------------------------------
  // connections in and out
  // ---------------------------------------------------------------------------

  /** Registers a freshly dialled connection, `InUse`. */
  adopt(conn: A, scope: Scope.Closeable, pooled: boolean): Entry<A> {
    const now = this.now()
    const entry = new Entry(this, conn, scope, now, this.expiresAt(now), pooled)
    this.conns.add(entry)
    this.breaker.recordSuccess()
    return entry
  }

  /**
   * A connection whose dial outlived its caller (interrupted, or the attempt
   * timed out) and opened anyway: pooled idle for the next `get`, as go-redis
   * does, when the pool is open and it fits (under the turns, counting open
   * connections and dials in progress, and under `maxIdleConns`); closed
   * otherwise.
   */
  adoptOrphan(conn: A, scope: Scope.Closeable): Effect.Effect<void> | undefined {
    if (
      this.closed || this.conns.size + this.dialing >= this.config.turns ||
      this.idle.size >= this.config.maxIdleConns
    ) {
      return Scope.close(scope, Exit.void)
    }
    const entry = this.adopt(conn, scope, true)
    entry.state = "Idle"
    this.idle.pushBack(entry)
    return this.watch(entry)
  }

  /** Forks the entry's close-signal watcher, if the pool has a close signal. */
  watch(entry: Entry<A>): Effect.Effect<void> | undefined {
    const closeSignal = this.closeSignal
    if (closeSignal === undefined) return undefined
    const watcher = Effect.andThen(
      Effect.exit(Effect.suspend(() => closeSignal(entry.conn))),
      Effect.suspend(() => {
        // This fiber is the watcher: closing the entry must not wait for it.
        entry.watcher = undefined
        return this.peerClosed(entry) ?? Effect.void
      })
    )
    return Effect.map(Effect.forkIn(watcher, this.background), (fiber) => {
      entry.watcher = fiber
    })
  }

  /** The connection closed by itself: drop it now if idle, on put if in use. */
  private peerClosed(entry: Entry<A>): Effect.Effect<void> | undefined {
    switch (entry.state) {
      case "Idle":
        return this.discard(entry, true)
      case "InUse":
        entry.dead = true
        return undefined
      case "Closed":
        return undefined
    }
  }

  /**
   * Puts an `InUse` entry back (its holder checked that it holds it): frees
   * its turn, then pools it, or closes it when it must not be pooled.
   */
  putUnsafe(entry: Entry<A>): Effect.Effect<void> | undefined {
    if (entry.state !== "InUse") return undefined
    entry.holder = undefined
    const now = this.now()
    entry.lastUsed = now
    const expired = now >= entry.expiresAt
    if (
      this.closed || !entry.pooled || entry.closeOnPut || entry.dead || expired ||
      this.idle.size >= this.config.maxIdleConns
    ) {
      return this.discard(entry, entry.dead || expired)
    }
    entry.state = "Idle"
    this.idle.pushBack(entry)
    // Pooled before the turn goes: a waiter handed it finds this connection.
    if (entry.turn) {
      entry.turn = false
      this.turns.release(now)
    }
    return undefined
  }

  /** Closes an `InUse` entry its holder gives back broken (`remove`, `closeConn`). */
  removeUnsafe(entry: Entry<A>): Effect.Effect<void> | undefined {
    if (entry.state !== "InUse") return undefined
    return this.discard(entry, entry.dead)
  }

  /**
   * Unregisters an entry now (freeing its turn if it holds one) and returns
   * the effect that closes it.
   */
  discard(entry: Entry<A>, stale: boolean): Effect.Effect<void> {
    this.unregister(entry, stale)
    if (entry.turn) {
      entry.turn = false
      this.turns.release()
    }
    this.checkMinIdle()
    return this.closeEntry(entry)
  }

  /** Bookkeeping half of `discard` for an idle entry a lease popped as stale; it closes it. */
  dropPopped(entry: Entry<A>): void {
    entry.state = "Closed"
    this.conns.delete(entry)
    this.counters.staleConns++
  }

  private unregister(entry: Entry<A>, stale: boolean): void {
    if (entry.state === "Idle") this.idle.remove(entry)
    entry.state = "Closed"
    entry.holder = undefined
    this.conns.delete(entry)
    if (stale) this.counters.staleConns++
  }

  /** Stops the watcher and closes the connection's scope. */
  closeEntry(entry: Entry<A>): Effect.Effect<void> {
    const watcher = entry.watcher
    entry.watcher = undefined
    const close = Scope.close(entry.scope, Exit.void)
    return watcher === undefined ? close : Effect.andThen(Fiber.interrupt(watcher), close)
  }

  closeAll(entries: ReadonlyArray<Entry<A>>): Effect.Effect<void> {
    return Effect.forEach(entries, (entry) => this.closeEntry(entry), { discard: true })
  }

  // ---------------------------------------------------------------------------
  // minIdleConns
  // ---------------------------------------------------------------------------

  private needsWarm(): boolean {
    return this.idle.size + this.warming < this.config.minIdleConns &&
      this.conns.size + this.dialing < this.config.turns &&
      !this.breaker.isOpen && !this.closed
  }

  /** Wakes the warm-up fiber if idle connections are below `minIdleConns`. */
  checkMinIdle(): void {
    if (this.config.minIdleConns > 0 && this.needsWarm()) this.warmSignal.notify()
  }

  /**
   * One warm-up dial, holding a turn and a dial slot like a `get` would (so
   * it never takes the pool past its size), but never waiting for either:
   * when callers hold every turn they dial for themselves. Succeeds with
   * whether to go on.
   */
  private readonly warmOne: Effect.Effect<boolean> = Effect.suspend(() => {
    if (!this.needsWarm() || this.turns.free === 0 || this.dials.free === 0) return Effect.succeed(false)
    this.turns.tryTake()
    this.dials.tryTake()
    this.warming++
    this.dialing++
    let done = false
    const finish = () => {
      if (done) return
      done = true
      this.warming--
      this.dialing--
      this.dials.release()
      this.turns.release()
    }
    const dial = this.dialer.dial((conn, scope) => {
      if (this.closed) {
        finish()
        return Scope.close(scope, Exit.void)
      }
      const entry = this.adopt(conn, scope, true)
      entry.state = "Idle"
      this.idle.pushBack(entry)
      // The idle connection is in place before the turn goes to a waiter.
      finish()
      return this.watch(entry)
    })
    return dial.pipe(
      Effect.tapError((error) => Effect.sync(() => this.breaker.recordFailure(error))),
      Effect.onExit(() => Effect.sync(finish)),
      Effect.as(true),
      Effect.catch(() => Effect.succeed(false))
    )
  })

  /** Warm-up dials, one after another, until enough idle connections are open or one fails. */
  private readonly warmUp: Effect.Effect<void> = Effect.flatMap(
    this.warmOne,
    (more) => more ? this.warmUp : Effect.void
  )

  /** The warm-up fiber's loop. */
  readonly warmer: Effect.Effect<never> = Effect.forever(Effect.andThen(this.warmSignal.wait, this.warmUp))

  // ---------------------------------------------------------------------------
  // reaper, filter, stats, close
  // ---------------------------------------------------------------------------

  /** Closes every idle connection that is stale now; succeeds with how many. */
  readonly reapStaleConns: Effect.Effect<number> = Effect.uninterruptible(Effect.suspend(() => {
    const now = this.now()
    const closes: Array<Effect.Effect<void>> = []
    for (const entry of this.idle.toArray()) {
      if (!this.isHealthy(entry, now)) closes.push(this.discard(entry, true))
    }
    if (closes.length === 0) return Effect.succeed(0)
    return Effect.as(Effect.all(closes, { discard: true }), closes.length)
  }))

  /** The reaper fiber: `reapStaleConns` every `idleCheckFrequency`. */
  reaper(): Effect.Effect<void> {
    return Effect.andThen(
      Effect.sleep(this.config.idleCheckFrequency),
      Effect.repeat(this.reapStaleConns, Schedule.spaced(this.config.idleCheckFrequency))
    )
  }

  /** Closes matching idle connections now and matching in-use ones when they come back. */
  filter(predicate: (entry: Entry<A>) => boolean): Effect.Effect<number> {
    return Effect.uninterruptible(Effect.suspend(() => {
      const closes: Array<Effect.Effect<void>> = []
      let matched = 0
      for (const entry of Array.from(this.conns)) {
        if (!predicate(entry)) continue
        matched++
        if (entry.state === "Idle") closes.push(this.discard(entry, false))
        else entry.closeOnPut = true
      }
      return Effect.as(Effect.all(closes, { discard: true }), matched)
    }))
  }

  stats(): PoolStats {
    return snapshot(this.counters, this.conns.size, this.idle.size, this.dialer.abandoned())
  }

  /**
   * Closes the pool: fails queued waiters with `PoolClosed`, closes idle
   * connections, stops the background fibers. In-use connections close when
   * they come back. Idempotent.
   */
  readonly close: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    this.turns.drain()
    this.dials.drain()
    this.dialer.shutdown()
    const closes: Array<Effect.Effect<void>> = []
    for (const entry of this.idle.toArray()) closes.push(this.discard(entry, false))
    return Effect.andThen(
      Effect.all(closes, { discard: true }),
      Scope.close(this.background, Exit.void)
    )
  }))
}
