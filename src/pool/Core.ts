/**
 * The pool's state and every change to it that is not one caller's
 * acquisition (that is `Lease`): putting back, removing, staleness, the
 * close-signal watchers, `filter` and closing. The `minIdleConns` warm-up is
 * `Warmer`, the reaper `Reaper`.
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
 * - `conns` holds exactly the entries not `Closed`; each entry is closed
 *   once, by `discard`, which counts it under one `CloseReason`.
 *
 * @since 0.1.0
 */
import type { Clock, Random } from "effect"
import { Deferred, Duration, Effect, Exit, Fiber, Scope } from "effect"
import { DB_POOL_NAME } from "../observability/Semconv.ts"
import { Breaker } from "./Breaker.ts"
import type { Dialer } from "./Dialer.ts"
import type { Hooks } from "./Hooks.ts"
import { IdleList } from "./IdleList.ts"
import { Millis } from "./Millis.ts"
import type { Config } from "./PoolOptions.ts"
import { Entry } from "./PooledConn.ts"
import type { PoolMetrics } from "./PoolMetrics.ts"
import { BreakerOpen, PoolClosed, PoolError, PoolExhausted, PoolTimeout } from "./PoolError.ts"
import type { CloseReason, PoolStats } from "./PoolStats.ts"
import { Counters, snapshot } from "./PoolStats.ts"
import { Turns } from "./Turns.ts"
import { Wakeups } from "./Wakeups.ts"
import { Warmer } from "./Warmer.ts"

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
  readonly hooks: Hooks<A>
  /** Owns every background fiber; closed by `close`. */
  readonly background: Scope.Closeable
  /** The pool's metrics; undefined when `observability.metrics` is off, so a borrow pays one check. */
  readonly metrics: PoolMetrics | undefined
  /** Spans for the waits and dials of `get` (`observability.tracing`). */
  readonly tracing: boolean

  readonly conns = new Set<Entry<A>>()
  readonly idle = new IdleList<A>()
  /** `poolSize` turns (or `maxActiveConns` if lower), with `poolTimeout`. */
  readonly turns: Turns
  /** `maxConcurrentDials` slots, no timeout. */
  readonly dials: Turns
  readonly breaker: Breaker
  readonly warmer: Warmer<A>
  readonly counters = new Counters()
  /** Resumes waiters handed a turn or a dial slot. */
  readonly wakeups = new Wakeups()
  /** The monotonic clock in millis, read at most once per task where that is safe (see `Millis`). */
  readonly millis: Millis
  /** Dials in progress, counted against `maxActiveConns`. */
  dialing = 0
  /** When a connection was last handed out or put back (monotonic millis): a keyed pool's idle clock. */
  lastActive: number
  closed = false
  /** Completed when `close` has closed every connection; later closes await it. */
  private readonly closeDone = Deferred.makeUnsafe<void>()
  /** Completed when the last connection leaves while the pool closes (the grace period's end). */
  private readonly drained = Deferred.makeUnsafe<void>()

  constructor(options: {
    readonly config: Config
    readonly clock: Clock.Clock
    readonly random: Random.Random
    readonly dialer: Dialer<A>
    readonly closeSignal: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
    readonly hooks: Hooks<A>
    readonly background: Scope.Closeable
    readonly metrics?: PoolMetrics | undefined
  }) {
    this.config = options.config
    this.clock = options.clock
    this.random = options.random
    this.dialer = options.dialer
    this.closeSignal = options.closeSignal
    this.hooks = options.hooks
    this.background = options.background
    this.millis = new Millis(options.clock)
    this.metrics = options.metrics
    this.tracing = options.config.observability.tracing
    const now = () => this.now()
    this.turns = new Turns(options.config.turns, now, options.config.starvationMillis)
    this.dials = new Turns(options.config.maxConcurrentDials, now, options.config.starvationMillis)
    this.breaker = new Breaker(options.config.breakerThreshold, (message) => this.logDebug(message))
    this.warmer = new Warmer(this)
    this.lastActive = this.now()
  }

  /**
   * Monotonic millis, as of the current event-loop task (see `Millis`). Every
   * age, deadline and wait in the pool is measured on the monotonic clock,
   * never on the wall clock, which NTP or a VM resume can step by hours.
   */
  now(): number {
    return this.millis.now()
  }

  /** `now()` read afresh, for deadlines and waits (see `Millis`). */
  nowFresh(): number {
    return this.millis.fresh()
  }

  /** A monotonic reading of `now()` as wall-clock millis, for the handles' `createdAt`/`usedAt`. */
  wallTime(monotonic: number): number {
    return this.clock.currentTimeMillisUnsafe() - (this.nowFresh() - monotonic)
  }

  /** A debug line about the pool, named and annotated with its name. */
  logDebug(message: string): Effect.Effect<void> {
    return Effect.annotateLogs(Effect.logDebug(`${this.config.name}: ${message}`), { [DB_POOL_NAME]: this.config.name })
  }

  failClosed(): Effect.Effect<never, PoolError> {
    return Effect.fail(new PoolError({ reason: new PoolClosed({ pool: this.config.name }) }))
  }

  failTimeout(): Effect.Effect<never, PoolError> {
    return Effect.fail(
      new PoolError({ reason: new PoolTimeout({ pool: this.config.name, timeout: this.config.poolTimeout }) })
    )
  }

  failExhausted(): Effect.Effect<never, PoolError> {
    const reason = new PoolExhausted({ pool: this.config.name, maxActiveConns: this.config.maxActiveConns })
    return Effect.fail(new PoolError({ reason }))
  }

  failBreakerOpen(): Effect.Effect<never, PoolError> {
    const reason = new BreakerOpen({ pool: this.config.name, lastError: this.breaker.lastError! })
    return Effect.fail(new PoolError({ reason }))
  }

  /** Wakes the warm-up fiber if idle connections are below `minIdleConns`. */
  checkMinIdle(): void {
    this.warmer.check()
  }

  /** Nothing borrowed (`newConn` included), waited for or dialled. */
  isQuiet(): boolean {
    return this.conns.size === this.idle.size && this.counters.pendingRequests === 0 && this.dialing === 0
  }

  // ---------------------------------------------------------------------------
  // health
  // ---------------------------------------------------------------------------

  /** Why an idle entry must not be handed out now (past its lifetime, idle too long), or undefined. */
  staleReason(entry: Entry<A>, now: number): "lifetime" | "stale" | undefined {
    if (now >= entry.expiresAt) return "lifetime"
    return now - entry.lastUsed < this.config.connMaxIdleTimeMillis ? undefined : "stale"
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

  /** Registers a freshly dialled connection straight into the idle list. */
  adoptIdle(conn: A, scope: Scope.Closeable): Entry<A> {
    const entry = this.adopt(conn, scope, true)
    entry.state = "Idle"
    this.idle.pushBack(entry)
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
    if (this.closed) return this.closeUnregistered(scope, "close")
    if (this.conns.size + this.dialing >= this.config.turns || this.idle.size >= this.config.maxIdleConns) {
      return this.closeUnregistered(scope, "excess")
    }
    return this.watch(this.adoptIdle(conn, scope))
  }

  /** Closes a dialled connection that was never registered (the pool had no use for it). */
  closeUnregistered(scope: Scope.Closeable, reason: CloseReason): Effect.Effect<void> {
    this.counters.closes[reason]++
    return Effect.andThen(this.logDebug(`connection closed: ${reason}`), Scope.close(scope, Exit.void))
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
    if (entry.state === "Idle") return this.discard(entry, "stale")
    if (entry.state === "InUse") entry.dead = true
    return undefined
  }

  /** Lends an entry taken from the idle list or just dialled to `holder`, stamped `now`. */
  lend(entry: Entry<A>, holder: object, now: number): void {
    entry.state = "InUse"
    entry.holder = holder
    entry.lastUsed = now
    this.lastActive = now
    this.checkMinIdle()
  }

  /**
   * Puts an `InUse` entry back (its holder checked that it holds it): frees
   * its turn, then pools it, or closes it when it must not be pooled.
   */
  putUnsafe(entry: Entry<A>): Effect.Effect<void> | undefined {
    if (entry.state !== "InUse") return undefined
    entry.holder = undefined
    const now = this.now()
    this.metrics?.useTime.record((now - entry.lastUsed) / 1000)
    entry.lastUsed = now
    this.lastActive = now
    const reason: CloseReason | undefined = this.closed
      ? "close"
      : entry.dead
      ? "stale"
      : now >= entry.expiresAt
      ? "lifetime"
      : entry.closeOnPut
      ? "filter"
      : !entry.pooled || this.idle.size >= this.config.maxIdleConns
      ? "excess"
      : undefined
    if (reason !== undefined) return this.discard(entry, reason)
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
  removeUnsafe(entry: Entry<A>, reason: CloseReason = "remove"): Effect.Effect<void> | undefined {
    if (entry.state !== "InUse") return undefined
    this.metrics?.useTime.record((this.now() - entry.lastUsed) / 1000)
    return this.discard(entry, entry.dead ? "stale" : reason)
  }

  /**
   * Unregisters an entry now (freeing its turn if it holds one), counts it
   * under `reason` and returns the effect that closes it. A closed entry is
   * left alone: every connection is closed and counted once.
   */
  discard(entry: Entry<A>, reason: CloseReason): Effect.Effect<void> {
    if (entry.state === "Closed") return Effect.void
    this.unregister(entry, reason)
    if (entry.turn) {
      entry.turn = false
      this.turns.release()
    }
    this.checkMinIdle()
    return this.closeEntry(entry)
  }

  /** Bookkeeping half of `discard` for an idle entry a lease popped; the lease closes it. */
  dropPopped(entry: Entry<A>, reason: CloseReason): void {
    // Out of the idle list already: not to be unlinked again.
    entry.state = "InUse"
    this.unregister(entry, reason)
  }

  private unregister(entry: Entry<A>, reason: CloseReason): void {
    if (entry.state === "Idle") this.idle.remove(entry)
    entry.state = "Closed"
    entry.closeReason = reason
    entry.holder = undefined
    this.conns.delete(entry)
    this.counters.closes[reason]++
    if (this.closed && this.conns.size === 0) Deferred.doneUnsafe(this.drained, Exit.void)
  }

  /** Stops the watcher and closes the connection's scope, saying why at debug level. */
  closeEntry(entry: Entry<A>): Effect.Effect<void> {
    const watcher = entry.watcher
    entry.watcher = undefined
    const close = Effect.andThen(this.logDebug(`connection closed: ${entry.closeReason ?? "remove"}`), Scope.close(entry.scope, Exit.void))
    return watcher === undefined ? close : Effect.andThen(Fiber.interrupt(watcher), close)
  }

  closeAll(entries: ReadonlyArray<Entry<A>>): Effect.Effect<void> {
    return Effect.forEach(entries, (entry) => this.closeEntry(entry), { discard: true })
  }

  // ---------------------------------------------------------------------------
  // filter, stats, close
  // ---------------------------------------------------------------------------

  /** Closes matching idle connections now and matching in-use ones when they come back. */
  filter(predicate: (entry: Entry<A>) => boolean): Effect.Effect<number> {
    return Effect.uninterruptible(Effect.suspend(() => {
      const closes: Array<Effect.Effect<void>> = []
      let matched = 0
      for (const entry of Array.from(this.conns)) {
        if (!predicate(entry)) continue
        matched++
        if (entry.state === "Idle") closes.push(this.discard(entry, "filter"))
        else entry.closeOnPut = true
      }
      return Effect.as(Effect.all(closes, { discard: true }), matched)
    }))
  }

  stats(): PoolStats {
    return snapshot(this.counters, this.conns.size, this.idle.size, this.dialer.abandoned())
  }

  /**
   * Closes the pool as go-redis does: fails queued waiters with
   * `PoolClosed`, interrupts dials, closes idle connections at once and
   * every borrowed one too (their owners' next operation on them fails),
   * after at most `closeGracePeriod` for them to come back by themselves,
   * then stops the background fibers. Succeeds once every connection's scope
   * has closed. A second close waits for the first.
   */
  readonly close: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
    if (this.closed) return Deferred.await(this.closeDone)
    this.closed = true
    // The registry must not keep the pool's gauges (and through them the pool) alive.
    this.metrics?.remove()
    this.turns.drain()
    this.dials.drain()
    this.dialer.shutdown()
    if (this.conns.size === 0) Deferred.doneUnsafe(this.drained, Exit.void)
    const idle = this.idle.toArray().map((entry) => this.discard(entry, "close"))
    const grace = this.config.closeGracePeriod
    const awaitBorrowed = this.conns.size === 0 || Duration.isZero(grace)
      ? Effect.void
      : Effect.ignore(Effect.timeout(Deferred.await(this.drained), grace))
    const closeBorrowed = Effect.suspend(() =>
      Effect.all(Array.from(this.conns, (entry) => this.discard(entry, "close")), { discard: true })
    )
    return Effect.all(idle, { discard: true }).pipe(
      Effect.andThen(Effect.interruptible(awaitBorrowed)),
      Effect.andThen(closeBorrowed),
      Effect.andThen(Scope.close(this.background, Exit.void)),
      Effect.ensuring(Deferred.done(this.closeDone, Exit.void))
    )
  }))
}
