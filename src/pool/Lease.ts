/**
 * One acquisition (`get`, `use`, `newConn`) as a state machine that owns
 * everything it has taken so far, so that whatever exit it takes, one call
 * (`finishUse` / `finishGet`) gives back exactly what it holds.
 *
 * ```text
 *  start ─ closed? ──────────────────────────────────────────────► fail PoolClosed
 *    │ tryTake turn ── no ─► queued ── onTurn ─────┐   onTurnTimeout ► fail PoolTimeout
 *    ▼ yes                      │ onTurnsClosed ───┼─────────────────► fail PoolClosed
 *  afterTurn ◄──────────────────┼──────────────────┘
 *    │ pop idle: healthy ──────────────────────────────────────────► checkout (hit)
 *    │           stale ── unregister, close later (`stale` list)
 *    ▼ none (miss)
 *  miss ─ breaker open ► fail BreakerOpen; maxActiveConns ► fail PoolExhausted
 *    │ dial slot (tryTake, else queued without deadline)
 *    ▼
 *  dial ── opened (inside the attempt's exit) ─────────────────────► checkout
 *       └─ every attempt failed ───────────────────────────────────► fail DialFailed / DialTimeout
 * ```
 *
 * **Why interruption is safe.** The caller installs the finishing handler
 * (`Effect.onExitPrimitive`) before `start` runs, and every step records
 * what it took in a field of the lease synchronously, in the same step that
 * takes it: `turn` (pool turn), `turnsQueued` (queued for one; a grant sets
 * `turn` inside `Turns.release`), `dialSlot` and `dialing`, `stale`
 * (unregistered but not yet closed), `entry` (checked out). The finisher
 * gives back what these say and clears them, so each is given back once:
 * a turn moves from `turn` to `entry.turn` at checkout and is freed from
 * exactly one of the two.
 *
 * **Waiting.** The lease is itself the waiter queued in `Turns`, so waiting
 * allocates no waiter object of its own. A grant is recorded synchronously
 * (`onTurn`); the parked fiber is resumed later through the pool's
 * `Wakeups`.
 *
 * @since 0.1.0
 */
import type { Fiber, Scheduler } from "effect"
import { Effect, Exit, Scope } from "effect"
import type { Core } from "./Core.ts"
import type { Entry, PooledConn } from "./PooledConn.ts"
import type { DialError, PoolError } from "./PoolError.ts"
import { PoolError as PoolErrorClass } from "./PoolError.ts"
import type { TurnWaiter, Turns } from "./Turns.ts"
import type { Wakeable } from "./Wakeups.ts"

const Waiting = 0
const Granted = 1
const TimedOut = 2
const Closed = 3
/** A turn was freed: compete for it (`Turns.retake`) when the fiber is resumed. */
const Woken = 4
type Outcome = typeof Waiting | typeof Granted | typeof TimedOut | typeof Closed | typeof Woken

/**
 * @category models
 * @since 0.1.0
 */
export class Lease<A> implements TurnWaiter, Wakeable, PooledConn<A> {
  turnsNext: TurnWaiter | undefined = undefined
  turnsPrev: TurnWaiter | undefined = undefined
  turnsQueued = false
  turnsDeadline = 0
  turnsSince = 0
  readonly core: Core<A>
  /** False for `newConn`: no turn, no idle connection, not pooled. */
  private readonly withTurn: boolean
  /** Holds a pool turn not yet moved to an entry. */
  turn = false
  /** Holds a dial slot. */
  dialSlot = false
  /** Counted in `core.dialing`. */
  private dialing = false
  /** Counted in `pendingRequests`. */
  private pending = false
  /**
   * The queue (pool turns or dial slots) it joined and has not resumed from
   * yet: queued, or handed a turn (`turn`/`dialSlot` say so) but not woken.
   */
  private queue: Turns | undefined = undefined
  /** How its current wait ended. */
  private outcome: Outcome = Waiting
  /** Resumes the fiber parked in `wait`; set while it is parked. */
  private resume: ((effect: Effect.Effect<void, PoolError>) => void) | undefined = undefined
  private dispatcher: Scheduler.SchedulerDispatcher | undefined = undefined
  /** Stale idle entries it unregistered and has not closed yet. */
  private stale: Array<Entry<A>> | undefined = undefined
  /** The pool closed while it dialled: the new connection was closed. */
  private closedWhileDialling = false
  private waitStart = 0
  /** The entry it checked out; kept after it is given back, so the handle still reads. */
  entry: Entry<A> | undefined = undefined

  constructor(core: Core<A>, withTurn: boolean) {
    this.core = core
    this.withTurn = withTurn
  }

  // As the handle `get` and `newConn` return: read through to the entry.
  get conn(): A {
    return this.entry!.conn
  }

  get createdAt(): number {
    return this.entry!.createdAt
  }

  get usedAt(): number {
    return this.entry!.usedAt
  }

  /** Whether it is the connection's current lease: only then may it give it back. */
  holds(): boolean {
    const entry = this.entry
    return entry !== undefined && entry.holder === this
  }

  /**
   * Starts acquiring. Returns undefined when it finished synchronously (the
   * fast path: `entry` is set), otherwise the effect that finishes it.
   */
  start(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void, PoolError> | undefined {
    const core = this.core
    if (core.closed) return core.failClosed()
    if (!this.withTurn) return this.miss(fiber)
    core.counters.pendingRequests++
    this.pending = true
    if (core.turns.tryTake()) {
      this.turn = true
      return this.afterTurn(fiber, core.now())
    }
    const timeout = core.config.poolTimeoutMillis
    if (timeout <= 0) {
      core.counters.timeouts++
      return core.failTimeout()
    }
    const now = core.now()
    this.waitStart = now
    return Effect.flatMap(this.wait(core.turns, now, now + timeout, fiber), () => {
      this.queue = undefined
      const now = core.now()
      core.counters.waitCount++
      core.counters.waitMillis += Math.max(0, now - this.waitStart)
      return this.afterTurn(fiber, now) ?? Effect.void
    })
  }

  /**
   * Queues for a pool turn or a dial slot and parks until the queue settles
   * it. Being interrupted needs no cleanup here: the finisher leaves the
   * queue (`abandon`), and a wake-up already on its way then finds the
   * fiber gone and does nothing.
   */
  private wait(
    queue: Turns,
    now: number,
    deadline: number,
    fiber: Fiber.Fiber<unknown, unknown>
  ): Effect.Effect<void, PoolError> {
    this.queue = queue
    this.outcome = Waiting
    this.dispatcher = fiber.currentDispatcher
    queue.enqueue(this, now, deadline)
    return Effect.callback<void, PoolError>((resume) => {
      // Settled between queueing and parking (the fiber may yield in between).
      if (this.outcome === Woken) this.compete()
      if (this.outcome !== Waiting) return resume(this.result())
      this.resume = resume
    })
  }

  onTurn(): void {
    this.grant()
    this.settle(Granted)
  }

  onTurnFree(): void {
    this.settle(Woken)
  }

  /** Records the turn or dial slot it now owns. */
  private grant(): void {
    if (this.queue === this.core.turns) this.turn = true
    else this.dialSlot = true
    this.outcome = Granted
  }

  /** Woken for a freed turn: takes it, or waits on (a newcomer took it first). */
  private compete(): void {
    if (this.queue!.retake(this)) this.grant()
    else this.outcome = Waiting
  }

  onTurnTimeout(): void {
    this.core.counters.timeouts++
    this.settle(TimedOut)
  }

  onTurnsClosed(): void {
    this.settle(Closed)
  }

  private settle(outcome: Outcome): void {
    this.outcome = outcome
    // Not parked yet: `wait`'s callback finds the outcome when it parks.
    if (this.resume !== undefined) this.core.wakeups.add(this, this.dispatcher!)
  }

  /**
   * Resumes the parked fiber; nothing if it was interrupted meanwhile
   * (`abandon`). A woken waiter that loses its turn to a newcomer stays
   * parked, without a fiber resume.
   */
  wakeNow(): void {
    const resume = this.resume
    if (resume === undefined) return
    if (this.outcome === Woken) this.compete()
    if (this.outcome === Waiting) return
    this.resume = undefined
    resume(this.result())
  }

  private result(): Effect.Effect<void, PoolError> {
    switch (this.outcome) {
      case Granted:
        return Effect.void
      case TimedOut:
        return this.core.failTimeout()
      default:
        return this.core.failClosed()
    }
  }

  private afterTurn(
    fiber: Fiber.Fiber<unknown, unknown>,
    now: number
  ): Effect.Effect<void, PoolError> | undefined {
    const core = this.core
    if (core.closed) return core.failClosed()
    const fifo = core.config.poolFIFO
    let entry: Entry<A> | undefined
    while ((entry = core.idle.pop(fifo)) !== undefined) {
      if (core.isHealthy(entry, now)) {
        core.counters.hits++
        this.checkout(entry, now)
        return this.stale === undefined ? undefined : this.closeStale()
      }
      core.dropPopped(entry)
      ;(this.stale ??= []).push(entry)
    }
    core.counters.misses++
    const miss = this.miss(fiber)
    return this.stale === undefined ? miss : Effect.andThen(this.closeStale(), miss ?? Effect.void)
  }

  private closeStale(): Effect.Effect<void> {
    return Effect.uninterruptible(Effect.suspend(() => {
      const stale = this.stale
      this.stale = undefined
      this.core.checkMinIdle()
      return stale === undefined ? Effect.void : this.core.closeAll(stale)
    }))
  }

  private miss(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void, PoolError> {
    const core = this.core
    if (core.breaker.isOpen) return core.failBreakerOpen()
    if (core.conns.size + core.dialing >= core.config.maxActiveConns) return core.failExhausted()
    if (core.dials.tryTake()) {
      this.dialSlot = true
      return this.dial()
    }
    return Effect.flatMap(this.wait(core.dials, core.now(), Infinity, fiber), () => {
      this.queue = undefined
      // The breaker or the cap may have changed while it waited.
      if (core.closed) return core.failClosed()
      if (core.breaker.isOpen) return core.failBreakerOpen()
      if (core.conns.size + core.dialing >= core.config.maxActiveConns) return core.failExhausted()
      return this.dial()
    })
  }

  private dial(): Effect.Effect<void, PoolError> {
    const core = this.core
    this.dialing = true
    core.dialing++
    // A connection for `get` whose caller gave up is kept for the next one;
    // one for `newConn` would not be pooled anyway.
    const dial = this.withTurn
      ? core.dialer.dial((conn, scope) => this.opened(conn, scope), (conn, scope) => core.adoptOrphan(conn, scope))
      : core.dialer.dial((conn, scope) => this.opened(conn, scope))
    return Effect.onExitPrimitive(dial, () => {
      this.endDial()
      return undefined
    }).pipe(
      Effect.catch((error: DialError) => {
        if (core.closed) return core.failClosed()
        core.breaker.recordFailure(error)
        return Effect.fail(new PoolErrorClass({ reason: error }))
      }),
      Effect.andThen(Effect.suspend(() => this.closedWhileDialling ? core.failClosed() : Effect.void))
    )
  }

  /** Runs inside the dial attempt's exit: takes ownership of the new connection. */
  private opened(conn: A, scope: Scope.Closeable): Effect.Effect<void> | undefined {
    const core = this.core
    this.endDial()
    if (core.closed) {
      this.closedWhileDialling = true
      return Scope.close(scope, Exit.void)
    }
    const entry = core.adopt(conn, scope, this.withTurn)
    this.checkout(entry, entry.born)
    return core.watch(entry)
  }

  private endDial(): void {
    const core = this.core
    if (this.dialing) {
      this.dialing = false
      core.dialing--
    }
    if (this.dialSlot) {
      this.dialSlot = false
      core.dials.release()
    }
  }

  private checkout(entry: Entry<A>, now: number): void {
    const core = this.core
    entry.state = "InUse"
    entry.holder = this
    entry.lastUsed = now
    if (this.turn) {
      this.turn = false
      entry.turn = true
    }
    this.entry = entry
    if (this.pending) {
      this.pending = false
      core.counters.pendingRequests--
    }
    core.checkMinIdle()
  }

  /** Gives back the turn, queue place, dial slot and pending count it holds. */
  private abandon(): Effect.Effect<void> | undefined {
    const core = this.core
    const queue = this.queue
    if (queue !== undefined) {
      this.queue = undefined
      this.resume = undefined
      // Still queued: leave. Already granted: `turn`/`dialSlot` say so.
      queue.cancel(this)
    }
    if (this.pending) {
      this.pending = false
      core.counters.pendingRequests--
    }
    if (this.turn) {
      this.turn = false
      core.turns.release()
    }
    this.endDial()
    return this.closeLeftovers()
  }

  /** Closes stale entries it unregistered but was interrupted before closing. */
  private closeLeftovers(): Effect.Effect<void> | undefined {
    const stale = this.stale
    if (stale === undefined) return undefined
    this.stale = undefined
    this.core.checkMinIdle()
    return this.core.closeAll(stale)
  }

  /**
   * Gives the connection back (put, or remove when `put` is false) if this
   * is still its lease; does nothing otherwise (given back already, or the
   * pool closed it). Then closes leftovers.
   */
  giveBack(put: boolean): Effect.Effect<void> | undefined {
    const entry = this.entry
    const release = entry === undefined || entry.holder !== this
      ? undefined
      : put
      ? this.core.putUnsafe(entry)
      : this.core.removeUnsafe(entry)
    const leftovers = this.closeLeftovers()
    if (leftovers === undefined) return release
    return release === undefined ? leftovers : Effect.andThen(release, leftovers)
  }

  /** `use`'s exit: put back on success, remove on failure or interruption. */
  finishUse(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    if (this.entry === undefined) return this.abandon()
    return this.giveBack(exit._tag === "Success")
  }

  /** `get`'s exit: on success the caller owns the lease. */
  finishGet(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    if (exit._tag === "Success") return undefined
    if (this.entry === undefined) return this.abandon()
    // Checked out, but the caller never received it: back to the pool.
    return this.giveBack(true)
  }
}
