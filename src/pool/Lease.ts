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
 * @since 0.1.0
 */
import type { Scheduler } from "effect"
import { Effect, Exit, Scope } from "effect"
import type { Core } from "./Core.ts"
import type { Entry } from "./PooledConn.ts"
import type { DialError, PoolError } from "./PoolError.ts"
import { PoolError as PoolErrorClass } from "./PoolError.ts"
import type { TurnWaiter, Turns } from "./Turns.ts"

const Waiting = 0
const Granted = 1
const TimedOut = 2
const Closed = 3
type Outcome = typeof Waiting | typeof Granted | typeof TimedOut | typeof Closed

/**
 * A queued claim on a pool turn or a dial slot, and the fiber waiting for it.
 */
class Claim implements TurnWaiter {
  turnsNext: TurnWaiter | undefined = undefined
  turnsPrev: TurnWaiter | undefined = undefined
  turnsQueued = false
  turnsDeadline = 0
  outcome: Outcome = Waiting
  private resume: ((effect: Effect.Effect<void, PoolError>) => void) | undefined = undefined
  private readonly lease: Lease<any>
  /** The queue it waits in. */
  readonly queue: Turns
  private readonly dispatcher: Scheduler.SchedulerDispatcher
  private readonly onGrant: (lease: Lease<any>) => void

  constructor(
    lease: Lease<any>,
    queue: Turns,
    dispatcher: Scheduler.SchedulerDispatcher,
    onGrant: (lease: Lease<any>) => void
  ) {
    this.lease = lease
    this.queue = queue
    this.dispatcher = dispatcher
    this.onGrant = onGrant
  }

  onTurn(): void {
    this.onGrant(this.lease)
    this.settle(Granted)
  }

  onTurnTimeout(): void {
    this.lease.core.counters.timeouts++
    this.settle(TimedOut)
  }

  onTurnsClosed(): void {
    this.settle(Closed)
  }

  private settle(outcome: Outcome): void {
    this.outcome = outcome
    const resume = this.resume
    if (resume === undefined) return
    this.resume = undefined
    // Scheduled, not inline: waking inline would run the waiter's whole
    // continuation inside the releaser's stack, one level deeper per waiter.
    this.dispatcher.scheduleTask(() => resume(this.result()), 0)
  }

  private result(): Effect.Effect<void, PoolError> {
    switch (this.outcome) {
      case Granted:
        return Effect.void
      case TimedOut:
        return this.lease.core.failTimeout()
      default:
        return this.lease.core.failClosed()
    }
  }

  /** Suspends until the claim is settled. Interrupted, it leaves the queue. */
  readonly await: Effect.Effect<void, PoolError> = Effect.callback<void, PoolError>((resume) => {
    if (this.outcome !== Waiting) return resume(this.result())
    this.resume = resume
    return Effect.sync(() => {
      this.resume = undefined
    })
  })
}

const grantTurn = (lease: Lease<any>): void => {
  lease.turn = true
}

const grantDialSlot = (lease: Lease<any>): void => {
  lease.dialSlot = true
}

/**
 * @category models
 * @since 0.1.0
 */
export class Lease<A> {
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
  /** Queued for a turn or a dial slot. */
  private claim: Claim | undefined = undefined
  /** Stale idle entries it unregistered and has not closed yet. */
  private stale: Array<Entry<A>> | undefined = undefined
  /** The pool closed while it dialled: the new connection was closed. */
  private closedWhileDialling = false
  private waitStart = 0
  /** The entry it checked out. */
  entry: Entry<A> | undefined = undefined

  constructor(core: Core<A>, withTurn: boolean) {
    this.core = core
    this.withTurn = withTurn
  }

  /**
   * Starts acquiring. Returns undefined when it finished synchronously (the
   * fast path: `entry` is set), otherwise the effect that finishes it.
   */
  start(dispatcher: Scheduler.SchedulerDispatcher): Effect.Effect<void, PoolError> | undefined {
    const core = this.core
    if (core.closed) return core.failClosed()
    if (!this.withTurn) return this.miss(dispatcher)
    core.counters.pendingRequests++
    this.pending = true
    if (core.turns.tryTake()) {
      this.turn = true
      return this.afterTurn(dispatcher, core.now())
    }
    const timeout = core.config.poolTimeoutMillis
    if (timeout <= 0) {
      core.counters.timeouts++
      return core.failTimeout()
    }
    const now = core.now()
    this.waitStart = now
    const claim = new Claim(this, core.turns, dispatcher, grantTurn)
    this.claim = claim
    core.turns.enqueue(claim, now + timeout)
    return Effect.flatMap(claim.await, () => {
      this.claim = undefined
      const now = core.now()
      core.counters.waitCount++
      core.counters.waitMillis += Math.max(0, now - this.waitStart)
      return this.afterTurn(dispatcher, now) ?? Effect.void
    })
  }

  private afterTurn(
    dispatcher: Scheduler.SchedulerDispatcher,
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
    const miss = this.miss(dispatcher)
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

  private miss(dispatcher: Scheduler.SchedulerDispatcher): Effect.Effect<void, PoolError> {
    const core = this.core
    if (core.breaker.isOpen) return core.failBreakerOpen()
    if (core.conns.size + core.dialing >= core.config.maxActiveConns) return core.failExhausted()
    if (core.dials.tryTake()) {
      this.dialSlot = true
      return this.dial()
    }
    const claim = new Claim(this, core.dials, dispatcher, grantDialSlot)
    this.claim = claim
    core.dials.enqueue(claim, Infinity)
    return Effect.flatMap(claim.await, () => {
      this.claim = undefined
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
    const dial = core.dialer.dial((conn, scope) => this.opened(conn, scope))
    return Effect.onExitPrimitive(dial, () => {
      this.endDial()
      return undefined
    }).pipe(
      Effect.catch((error: DialError) => {
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
    this.checkout(entry, entry.createdAt)
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
    entry.usedAt = now
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
    const claim = this.claim
    if (claim !== undefined) {
      this.claim = undefined
      // Still queued: leave. Already granted: `turn`/`dialSlot` say so.
      claim.queue.cancel(claim)
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

  /** Releases a checked-out entry, then closes leftovers. */
  private release(entry: Entry<A>, put: boolean): Effect.Effect<void> | undefined {
    this.entry = undefined
    const release = put ? this.core.putUnsafe(entry) : this.core.removeUnsafe(entry)
    const leftovers = this.closeLeftovers()
    if (leftovers === undefined) return release
    return release === undefined ? leftovers : Effect.andThen(release, leftovers)
  }

  /** `use`'s exit: put back on success, remove on failure or interruption. */
  finishUse(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    const entry = this.entry
    if (entry === undefined) return this.abandon()
    return this.release(entry, exit._tag === "Success")
  }

  /** `get`'s exit: on success the caller owns the entry. */
  finishGet(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    if (exit._tag === "Success") return undefined
    const entry = this.entry
    if (entry === undefined) return this.abandon()
    // Checked out, but the caller never received it: back to the pool.
    return this.release(entry, true)
  }
}
