/**
 * One acquisition (`get`, `newConn`, and a `use` off the fast path) as a
 * state machine that owns everything it has taken so far, so that whatever
 * exit it takes, one call (`finishUse` / `finishGet`) gives back exactly
 * what it holds. Once it has checked a connection out it is also that
 * connection's handle: the lease `get` returns, given back once.
 *
 * `get` first tries the fast path (`takeIdle`, `Checkout.ts`), which takes
 * a turn and a healthy idle connection in one step or nothing; `start` is
 * the rest: waiting, stale connections, hooks, dialling. (`use` makes a
 * lease only when its own fast path took nothing: `Borrow.ts`.)
 *
 * ```text
 *  start ─ closed? ──────────────────────────────────────────────► fail PoolClosed
 *    │ tryTake turn ── no ─► wait (Waiter) ── granted ─┐   timed out ► fail PoolTimeout
 *    ▼ yes                      │ closed ──────────────┼─────────────► fail PoolClosed
 *  afterTurn ◄──────────────────┼──────────────────────┘
 *    │ pop idle: healthy, no hook due ─────────────────────────────► checkout (hit)
 *    │           healthy, hook due ─► vet (`candidate`) ── usable ──► checkout (hit)
 *    │                                   └─ unusable: closed, counted, next one
 *    │           stale ── unregister, close later (`stale` list)
 *    ▼ none (miss)
 *  miss ─ breaker open ► fail BreakerOpen; maxActiveConns ► fail PoolExhausted
 *    │ dial slot (tryTake, else wait without deadline)
 *    ▼
 *  dial ── opened (inside the attempt's exit) ── checkout ── onGet ► usable: done
 *       │                                                   └─ unusable ► fail DialFailed
 *       └─ every attempt failed ───────────────────────────────────► fail DialFailed / DialTimeout
 * ```
 *
 * **Why interruption is safe.** The caller installs the finishing handler
 * (`Effect.onExitPrimitive`) before `start` runs, and every step records
 * what it took in a field of the lease synchronously, in the same step that
 * takes it: `turn` (pool turn), `queue` (queued for one; a grant sets `turn`
 * inside `Turns`), `dialSlot` and `dialing`, `stale` (unregistered but not
 * yet closed), `candidate` (out of the idle list while its hooks run),
 * `entry` (checked out). The finisher gives back what these say and clears
 * them, so each is given back once: a turn moves from `turn` to
 * `entry.turn` at checkout and is freed from exactly one of the two.
 *
 * @since 0.1.0
 */
import type { Fiber } from "effect"
import { Cause, Effect, Exit, Scope } from "effect"
import { giveBackHeld, takeIdle } from "./Checkout.ts"
import type { Core } from "./Core.ts"
import * as Hooks from "./Hooks.ts"
import type { Entry, PooledConn } from "./PooledConn.ts"
import type { DialError, PoolError } from "./PoolError.ts"
import { DialFailed, PoolError as PoolErrorClass } from "./PoolError.ts"
import type { Turns } from "./Turns.ts"
import * as PoolTracing from "./PoolTracing.ts"
import { Waiter } from "./Waiter.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class Lease<A> extends Waiter implements PooledConn<A> {
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
  /** Stale idle entries it unregistered and has not closed yet. */
  private stale: Array<Entry<A>> | undefined = undefined
  /** An idle entry it popped and is vetting with the hooks: `InUse`, no holder, no turn. */
  private candidate: Entry<A> | undefined = undefined
  /** The pool closed while it dialled: the new connection was closed. */
  private closedWhileDialling = false
  private waitStart = 0
  /** The entry it checked out; kept after it is given back, so the handle still reads. */
  entry: Entry<A> | undefined = undefined

  constructor(core: Core<A>, withTurn: boolean) {
    super(core)
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

  protected granted(queue: Turns): void {
    if (queue === this.core.turns) this.turn = true
    else this.dialSlot = true
  }

  /**
   * The fast path, tried first: a free turn and a healthy idle connection
   * taken in one synchronous step (`Checkout.takeIdle`). False when it took
   * nothing; then `start`.
   */
  takeIdle(): boolean {
    const entry = takeIdle(this.core, this)
    if (entry === undefined) return false
    this.entry = entry
    return true
  }

  /**
   * Starts acquiring (after `takeIdle` took nothing, or for `newConn`).
   * Returns undefined when it finished synchronously (`entry` is set),
   * otherwise the effect that finishes it.
   */
  start(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void, PoolError> | undefined {
    const core = this.core
    if (core.closed) return core.failClosed()
    if (!this.withTurn) return this.miss(fiber)
    core.counters.pendingRequests++
    this.pending = true
    if (core.turns.tryTake()) {
      this.turn = true
      const now = core.now()
      this.waitStart = now
      return this.afterTurn(fiber, now)
    }
    const timeout = core.config.poolTimeoutMillis
    if (timeout <= 0) {
      core.counters.timeouts++
      return core.failTimeout()
    }
    const now = core.nowFresh()
    this.waitStart = now
    const wait = this.wait(core.turns, now, now + timeout, fiber)
    return Effect.flatMap(core.tracing ? PoolTracing.wait(core.config.name, wait) : wait, () => {
      this.queue = undefined
      const now = core.nowFresh()
      core.counters.waitCount++
      core.counters.waitMillis += Math.max(0, now - this.waitStart)
      return this.afterTurn(fiber, now) ?? Effect.void
    })
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
      const stale = core.staleReason(entry, now)
      if (stale === undefined) {
        if (Hooks.vetsIdle(core.hooks, now - entry.lastUsed)) return this.vet(entry, now, fiber)
        core.counters.hits++
        this.checkout(entry, now)
        return this.stale === undefined ? undefined : this.closeStale()
      }
      core.dropPopped(entry, stale)
      ;(this.stale ??= []).push(entry)
    }
    core.counters.misses++
    return this.then(this.miss(fiber))
  }

  /** `next` after closing the stale entries it popped, if any. */
  private then(next: Effect.Effect<void, PoolError> | undefined): Effect.Effect<void, PoolError> | undefined {
    return this.stale === undefined ? next : Effect.andThen(this.closeStale(), next ?? Effect.void)
  }

  private closeStale(): Effect.Effect<void> {
    return Effect.uninterruptible(Effect.suspend(() => this.closeLeftovers() ?? Effect.void))
  }

  /**
   * Runs the hooks due on an idle entry before handing it out. It stays
   * registered (`InUse`, so `close` and `filter` still see it) but has no
   * holder, and the lease keeps its turn: an unusable entry is closed and
   * the lease goes on to the next one.
   */
  private vet(entry: Entry<A>, now: number, fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void, PoolError> {
    const core = this.core
    entry.state = "InUse"
    this.candidate = entry
    // Settled uninterruptibly, whatever the hooks' outcome; only the hooks
    // themselves and what comes after (the next entry, a dial) can be interrupted.
    const settled = Effect.uninterruptible(Effect.flatMap(
      Hooks.vetIdle(core.hooks, entry.conn, now - entry.lastUsed),
      (exit) =>
        Effect.suspend((): Effect.Effect<Hooks.Verdict> => {
          this.candidate = undefined
          const verdict = Hooks.verdictOf(exit)
          if (verdict === "interrupted") return Effect.as(core.discard(entry, "remove"), verdict)
          // The pool closed, or the peer closed it, while its hooks ran.
          if (entry.state === "Closed" || entry.dead || verdict === "unusable") {
            return Effect.as(core.discard(entry, entry.dead ? "stale" : "validate"), "unusable")
          }
          core.counters.hits++
          this.checkout(entry, core.now())
          return Effect.succeed(verdict)
        })
    ))
    return Effect.andThen(
      this.closeStale(),
      Effect.flatMap(settled, (verdict) =>
        verdict === "usable"
          ? Effect.void
          : verdict === "interrupted"
          ? Effect.interrupt
          : Effect.suspend(() => this.afterTurn(fiber, core.now()) ?? Effect.void))
    )
  }

  private miss(fiber: Fiber.Fiber<unknown, unknown>): Effect.Effect<void, PoolError> {
    const core = this.core
    if (core.breaker.isOpen) return core.failBreakerOpen()
    if (core.conns.size + core.dialing >= core.config.maxActiveConns) return core.failExhausted()
    if (core.dials.tryTake()) {
      this.dialSlot = true
      return this.dial()
    }
    return Effect.flatMap(this.wait(core.dials, core.nowFresh(), Infinity, fiber), () => {
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
    const dialled = Effect.onExitPrimitive(dial, () => {
      this.endDial()
      return undefined
    }).pipe(
      Effect.catch((error: DialError) => {
        if (core.closed) return core.failClosed()
        core.breaker.recordFailure(error)
        return Effect.fail(new PoolErrorClass({ reason: error }))
      }),
      Effect.andThen(Effect.suspend(() => this.closedWhileDialling ? core.failClosed() : this.vetNew()))
    )
    return core.tracing ? PoolTracing.dial(core.config.name, dialled) : dialled
  }

  /** Runs inside the dial attempt's exit: takes ownership of the new connection. */
  private opened(conn: A, scope: Scope.Closeable): Effect.Effect<void> | undefined {
    const core = this.core
    this.endDial()
    if (core.closed) {
      this.closedWhileDialling = true
      return core.closeUnregistered(scope, "close")
    }
    const entry = core.adopt(conn, scope, this.withTurn)
    this.checkout(entry, entry.born)
    return core.watch(entry)
  }

  /**
   * `onGet` on the connection it dialled. One it rejects is closed and the
   * acquisition fails as a dial would: a connection that cannot be set up
   * is a failed dial (the breaker does not count it).
   */
  private vetNew(): Effect.Effect<void, PoolError> {
    const core = this.core
    if (core.hooks.onGet === undefined || this.entry === undefined) return Effect.void
    const entry = this.entry
    return Effect.uninterruptible(Effect.flatMap(Hooks.vetNew(core.hooks, entry.conn), (exit) => {
      if (Exit.isSuccess(exit)) return Effect.void
      const close = this.giveBack(false, "validate") ?? Effect.void
      if (Exit.hasInterrupts(exit)) return Effect.andThen(close, Effect.interrupt)
      const cause = new DialFailed({ pool: core.config.name, cause: Exit.isFailure(exit) ? Cause.squash(exit.cause) : exit })
      return Effect.andThen(close, Effect.fail(new PoolErrorClass({ reason: cause })))
    }))
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
    if (this.turn) {
      this.turn = false
      entry.turn = true
    }
    this.entry = entry
    // From `get` to a connection in hand: 0 on the fast path, where no time passed.
    const metrics = core.metrics
    if (metrics !== undefined && this.withTurn) {
      if (now === this.waitStart) metrics.waitTime.recordZero()
      else metrics.waitTime.record((now - this.waitStart) / 1000)
    }
    if (this.pending) {
      this.pending = false
      core.counters.pendingRequests--
    }
    core.lend(entry, this, now)
  }

  /** Gives back the turn, queue place, dial slot, candidate and pending count it holds. */
  private abandon(): Effect.Effect<void> | undefined {
    const core = this.core
    this.leave()
    if (this.pending) {
      this.pending = false
      core.counters.pendingRequests--
    }
    if (this.turn) {
      this.turn = false
      core.turns.release()
    }
    this.endDial()
    const candidate = this.candidate
    this.candidate = undefined
    // Its hooks were cut short: the connection's state is unknown, so it is closed.
    const close = candidate === undefined ? undefined : core.discard(candidate, "remove")
    const leftovers = this.closeLeftovers()
    if (close === undefined) return leftovers
    return leftovers === undefined ? close : Effect.andThen(close, leftovers)
  }

  /** Closes stale entries it unregistered but has not closed yet. */
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
   * pool closed it). A put runs `onPut` first, interruptibly: the lease lets
   * go of the entry before, so a second give-back is stale, and the entry is
   * closed if the hook fails or is interrupted. Then closes leftovers.
   */
  giveBack(put: boolean, reason?: "validate"): Effect.Effect<void> | undefined {
    const entry = this.entry
    const release = entry !== undefined && entry.holder === this
      ? giveBackHeld(this.core, entry, put, reason)
      : undefined
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
