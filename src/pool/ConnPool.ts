/**
 * A bounded pool of whole connections, one caller per connection at a time:
 * go-redis's `internal/pool` in Effect form, for protocols that do not
 * multiplex (Redis, SQL, most TCP services). The connection type is
 * generic; the pool only needs an Effect that dials one.
 *
 * **What it does**
 *
 * - `poolSize` turns with a fast path and FIFO waiters, Go `sync.Mutex`
 *   style: a freed turn may be taken by a running fiber (no lock convoy)
 *   until a waiter has waited `starvationThreshold`; a wait longer than
 *   `poolTimeout` fails with `PoolTimeout`.
 * - Handles are leases, given back once; a stale or foreign one is ignored.
 * - Idle list LIFO (FIFO with `poolFIFO`); a connection past
 *   `connMaxIdleTime` or its (jittered) lifetime is never handed out but
 *   closed and counted stale; with a `closeSignal`, one that dies while idle
 *   is dropped when it dies.
 * - `minIdleConns` kept warm, `maxIdleConns`, `maxActiveConns`,
 *   `maxConcurrentDials`; per-attempt `dialTimeout` with a retry `Schedule`.
 * - go-redis's dial-error breaker: after `breakerThreshold` (default
 *   `poolSize`) dials fail in a row, a `get` that would dial fails at once
 *   with `BreakerOpen` while one background probe redials every second.
 * - A reaper every `idleCheckFrequency`; go-redis v9 stats, closes by reason.
 * - Hooks (`onGet`, `onPut`, `validate`): an unusable connection is closed
 *   and counted, never handed out.
 * - `close` closes every connection, borrowed ones included (after
 *   `closeGracePeriod`), and interrupts dials in progress.
 * - Pools per key: `KeyedPool.ts`.
 *
 * Time comes only from `Clock` and `Schedule`, every deadline and age on its
 * monotonic time, so `TestClock` drives every timeout, the reaper, the probe
 * and lifetimes, and a stepped wall clock moves none; every background
 * fiber lives in the pool's scope.
 *
 * @since 0.1.0
 */
import type { Context } from "effect"
import { Clock, Duration, Effect, Exit, Layer, Random, Scope } from "effect"
import { dual } from "effect/Function"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import { Borrow } from "./Borrow.ts"
import { Core } from "./Core.ts"
import * as Dialer from "./Dialer.ts"
import { Lease } from "./Lease.ts"
import type { PooledConn } from "./PooledConn.ts"
import { PoolError } from "./PoolError.ts"
import { PoolMetrics } from "./PoolMetrics.ts"
import type { Options } from "./PoolOptions.ts"
import { normalize } from "./PoolOptions.ts"
import type { PoolStats } from "./PoolStats.ts"
import * as Reaper from "./Reaper.ts"

/**
 * @category type IDs
 * @since 0.1.0
 */
export const TypeId = "~effect-connpool/ConnPool"

/**
 * The pool: go-redis's `Pooler`, with Effects for methods.
 *
 * **Gotchas**
 *
 * - A handle from `get` or `newConn` is a lease: it must go back through
 *   exactly one `put` or `remove` (or `closeConn`); until then it keeps its
 *   turn. `use` does this for you, interruption included; prefer it.
 * - `put`/`remove`/`closeConn` of a handle that is not out (given back
 *   already, or from another pool) do nothing, even if its connection has
 *   since been lent to someone else: they are counted in `staleHandles`.
 *
 * @category models
 * @since 0.1.0
 */
export interface ConnPool<A> extends Pipeable {
  readonly [TypeId]: typeof TypeId
  /** The `name` option: names the pool in errors. */
  readonly name: string
  /**
   * Dials a connection outside the turns and the idle list (go-redis
   * `NewConn`): counted in `len` and against `maxActiveConns` (fails with
   * `PoolExhausted` there), subject to the breaker. `put` closes it.
   */
  readonly newConn: Effect.Effect<PooledConn<A>, PoolError>
  /** Closes the connection of a lease from `get` or `newConn` now, freeing its turn. */
  readonly closeConn: (conn: PooledConn<A>) => Effect.Effect<void>
  /**
   * Takes a turn (waiting up to `poolTimeout`), then hands out the most
   * recently used healthy idle connection (the oldest with `poolFIFO`), or
   * dials one.
   */
  readonly get: Effect.Effect<PooledConn<A>, PoolError>
  /** Returns a connection from `get`: pooled, or closed when it must not be; frees its turn. */
  readonly put: (conn: PooledConn<A>) => Effect.Effect<void>
  /** Returns a broken connection from `get`: closed, turn freed. `reason` is logged at debug level. */
  readonly remove: (conn: PooledConn<A>, reason?: unknown) => Effect.Effect<void>
  /** Open connections: idle, in use, and from `newConn`. */
  readonly len: Effect.Effect<number>
  /** Idle connections. */
  readonly idleLen: Effect.Effect<number>
  /** A snapshot of the counters and gauges. */
  readonly stats: Effect.Effect<PoolStats>
  /**
   * Closes the pool: queued and later `get`s fail with `PoolClosed`, idle
   * connections close now, in-use ones when they come back, background
   * fibers stop. Closing the pool's scope does this too. Idempotent.
   */
  readonly close: Effect.Effect<void>
  /**
   * Closes the connections `predicate` matches: idle ones now, in-use ones
   * when they come back. Succeeds with how many matched.
   */
  readonly filter: (predicate: (conn: PooledConn<A>) => boolean) => Effect.Effect<number>
  /** Closes idle connections past `connMaxIdleTime` or their lifetime; succeeds with how many. */
  readonly reapStaleConns: Effect.Effect<number>
}

interface ConnPoolImpl<A> extends ConnPool<A> {
  readonly core: Core<A>
}

/**
 * @category guards
 * @since 0.1.0
 */
export const isConnPool = (u: unknown): u is ConnPool<unknown> => hasProperty(u, TypeId)

/**
 * Creates a pool in the current `Scope`; closing the scope closes the pool.
 *
 * **When to use**
 *
 * For a protocol that needs a whole connection per request. For a
 * multiplexed protocol, share one connection instead.
 *
 * **Details**
 *
 * `dial` runs with the connection's own `Scope` provided: acquire the
 * connection with `Effect.acquireRelease` and the pool closes it by closing
 * that scope. Every option and its default is on `Options`; invalid values
 * fail with `PoolError` / `InvalidOption`.
 *
 * **Example** (A pool of fake connections)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ConnPool } from "effect-connpool"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* ConnPool.make({
 *     name: "127.0.0.1:6379",
 *     dial: Effect.acquireRelease(Effect.succeed({ id: 1 }), () => Effect.void),
 *     poolSize: 4
 *   })
 *   const id = yield* ConnPool.use(pool, (conn) => Effect.succeed(conn.id))
 *   return [id, (yield* pool.stats).misses]
 * }).pipe(Effect.scoped)
 * // => [1, 1]
 * ```
 *
 * @see {@link use} to borrow a connection for one effect
 * @see {@link layer} to provide a pool as a service
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <A, E, R>(
  options: Options<A, E, R>
): Effect.Effect<ConnPool<A>, PoolError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const config = normalize(options)
    if (!("turns" in config)) return yield* Effect.fail(new PoolError({ reason: config }))
    const scope = yield* Effect.scope
    const services = yield* Effect.context<Exclude<R, Scope.Scope>>()
    const clock = yield* Clock.Clock
    const random = yield* Random.Random
    const background = yield* Scope.fork(scope, "parallel")
    const metrics = config.observability.metrics
      ? new PoolMetrics(yield* Effect.context<never>(), config.name, clock)
      : undefined
    const core = new Core<A>({
      config,
      clock,
      random,
      dialer: Dialer.make({
        dial: options.dial,
        services: services as Context.Context<never>,
        name: config.name,
        dialTimeout: config.dialTimeout,
        dialRetry: config.dialRetry,
        observer: metrics
      }),
      closeSignal: options.closeSignal,
      hooks: {
        onGet: options.onGet,
        onPut: options.onPut,
        validate: options.validate,
        validateAfterMillis: config.validateAfterMillis
      },
      background,
      metrics
    })
    metrics?.observe(core)
    yield* Scope.addFinalizer(scope, core.close)

    const probeDial = core.dialer.attempt((_, connScope) => Scope.close(connScope, Exit.void))
    if (config.poolTimeoutMillis > 0 && config.poolTimeoutMillis !== Infinity) {
      yield* Effect.forkIn(core.turns.timer(clock, () => core.nowFresh()), background)
    }
    yield* Effect.forkIn(core.breaker.probe(probeDial, config.breakerProbe, () => core.checkMinIdle()), background)
    if (config.minIdleConns > 0) {
      yield* Effect.forkIn(core.warmer.loop, background)
      core.checkMinIdle()
    }
    if (
      Duration.isFinite(config.idleCheckFrequency) &&
      (config.connMaxIdleTimeMillis !== Infinity || config.connMaxLifetimeMillis !== Infinity)
    ) {
      yield* Effect.forkIn(Reaper.reaper(core), background)
    }
    return makePool(core)
  }))

/** `get` (with a turn) or `newConn` (without): the caller owns the lease once it succeeds. */
const acquire = <A>(core: Core<A>, withTurn: boolean): Effect.Effect<PooledConn<A>, PoolError> =>
  Effect.suspend(() => {
    const lease = new Lease(core, withTurn)
    return Effect.onExitPrimitive(
      Effect.withFiber((fiber) => {
        if (withTurn && lease.takeIdle()) return Effect.succeed<PooledConn<A>>(lease)
        const pending = lease.start(fiber)
        return pending === undefined ? Effect.succeed<PooledConn<A>>(lease) : Effect.as(pending, lease)
      }),
      (exit) => lease.finishGet(exit)
    )
  })

/**
 * Gives back the connection of `handle` if it is a lease of this pool that
 * still holds it. Anything else (a handle given back already, whose
 * connection may now be lent to someone else, or one from another pool) is
 * ignored: counted in `staleHandles` and logged at debug level, unless the
 * pool is closed, where every give-back is a no-op.
 */
const giveBack = <A>(
  core: Core<A>,
  handle: PooledConn<A>,
  put: boolean,
  operation: string,
  reason?: unknown
): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (!(handle instanceof Lease) || handle.core !== core || !handle.holds()) {
      if (core.closed) return Effect.void
      core.counters.staleHandles++
      return Effect.logDebug(`${core.config.name}: ${operation} of a handle that is not out (given back already, or from another pool): ignored`)
    }
    // The bookkeeping is synchronous, so nothing can interrupt it; only the
    // close it may return has to run uninterruptibly.
    const close = (handle as Lease<A>).giveBack(put)
    if (close === undefined) return Effect.void
    return reason === undefined
      ? Effect.uninterruptible(close)
      : Effect.andThen(Effect.logDebug(`${core.config.name}: connection removed`, reason), Effect.uninterruptible(close))
  })

/**
 * `put`/`remove` of a handle for a pool that does not know which of its
 * pools the handle came from (a keyed pool): gives it back to its own pool
 * if `owns` that pool, ignores it (logged at debug level) otherwise.
 *
 * @internal
 */
export const giveBackLease = <A>(
  handle: PooledConn<A>,
  put: boolean,
  owns: (core: Core<A>) => boolean,
  operation: string,
  reason?: unknown
): Effect.Effect<void> =>
  handle instanceof Lease && owns(handle.core as Core<A>)
    ? giveBack(handle.core as Core<A>, handle, put, operation, reason)
    : Effect.logDebug(`${operation} of a handle from no pool of this keyed pool: ignored`)

/** @internal */
export const coreOf = <A>(pool: ConnPool<A>): Core<A> => (pool as ConnPoolImpl<A>).core

const makePool = <A>(core: Core<A>): ConnPool<A> => {
  const self: ConnPoolImpl<A> = {
    [TypeId]: TypeId,
    core,
    name: core.config.name,
    newConn: acquire(core, false),
    closeConn: (conn) => giveBack(core, conn, false, "closeConn"),
    get: acquire(core, true),
    put: (conn) => giveBack(core, conn, true, "put"),
    remove: (conn, reason) => giveBack(core, conn, false, "remove", reason),
    len: Effect.sync(() => core.conns.size),
    idleLen: Effect.sync(() => core.idle.size),
    stats: Effect.sync(() => core.stats()),
    close: core.close,
    filter: (predicate) => core.filter(predicate),
    reapStaleConns: Reaper.reapStaleConns(core),
    pipe() {
      return pipeArguments(this, arguments)
    }
  }
  return self
}

/**
 * Borrows a connection for one effect: gets one, runs `f` with it, puts it
 * back when `f` succeeds and removes (closes) it when `f` fails or is
 * interrupted.
 *
 * **Details**
 *
 * When a turn and a healthy idle connection are free, nothing waits and no
 * fiber, scope or finalizer registration is allocated: the connection is
 * taken and returned synchronously around `f`.
 *
 * **Gotchas**
 *
 * Any failure of `f` removes the connection. Catch errors that leave the
 * connection usable (a Redis error reply, say) inside `f`.
 *
 * @category combinators
 * @since 0.1.0
 */
export const use: {
  <A, B, E, R>(f: (conn: A) => Effect.Effect<B, E, R>): (self: ConnPool<A>) => Effect.Effect<B, E | PoolError, R>
  <A, B, E, R>(self: ConnPool<A>, f: (conn: A) => Effect.Effect<B, E, R>): Effect.Effect<B, E | PoolError, R>
} = dual(2, <A, B, E, R>(
  self: ConnPool<A>,
  f: (conn: A) => Effect.Effect<B, E, R>
): Effect.Effect<B, E | PoolError, R> =>
  // A borrow per run, so the returned effect can be run again, or by many fibers at once.
  Effect.suspend(() => {
    const borrow = new Borrow((self as ConnPoolImpl<A>).core)
    return Effect.onExitPrimitive(
      Effect.withFiber((fiber) => borrow.run(fiber, f)),
      (exit) => borrow.finish(exit)
    )
  }))

/**
 * A Layer providing a pool under `tag`; the pool closes with the layer.
 *
 * **Example** (A pool as a service)
 *
 * ```ts
 * import { Context, Effect } from "effect"
 * import { ConnPool } from "effect-connpool"
 *
 * class Redis extends Context.Service<Redis, ConnPool.ConnPool<Conn>>()("app/Redis") {}
 * const RedisLive = ConnPool.layer(Redis, { name: "127.0.0.1:6379", dial })
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <I, A, E, R>(
  tag: Context.Key<I, ConnPool<A>>,
  options: Options<A, E, R>
): Layer.Layer<I, PoolError, Exclude<R, Scope.Scope>> => Layer.effect(tag, make(options))
