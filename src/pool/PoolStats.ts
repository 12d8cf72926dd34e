/**
 * Pool statistics with go-redis v9's fields. Counters live in a mutable
 * `Counters` inside the pool; gauges are read when a snapshot is taken, and
 * every snapshot is a fresh immutable value.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

/**
 * Why the pool closed a connection:
 *
 * - `stale`: idle longer than `connMaxIdleTime`, or closed by its peer;
 * - `lifetime`: past its (jittered) `connMaxLifetime`;
 * - `validate`: a hook (`validate`, `onGet`, `onPut`) failed on it (go-redis v9's `Unusable`);
 * - `filter`: matched by `filter`;
 * - `remove`: given back broken (`remove`, `closeConn`, a `use` whose effect failed), or its
 *   hooks were interrupted;
 * - `close`: the pool closed;
 * - `excess`: not kept: over `maxIdleConns`, a `newConn` connection put back, or a dial that
 *   opened after its caller gave up with no room for it.
 *
 * @category models
 * @since 0.1.0
 */
export type CloseReason = "stale" | "lifetime" | "validate" | "filter" | "remove" | "close" | "excess"

/**
 * Connections closed, by reason (counters).
 *
 * @category models
 * @since 0.1.0
 */
export type Closes = { readonly [R in CloseReason]: number }

/**
 * A snapshot of a pool's counters and gauges.
 *
 * @category models
 * @since 0.1.0
 */
export interface PoolStats {
  /** Times `get` found a healthy idle connection (counter). */
  readonly hits: number
  /** Times `get` found no idle connection and dialled (counter). */
  readonly misses: number
  /** Times `get` failed with `PoolTimeout` (counter). */
  readonly timeouts: number
  /** Times `get` had to wait for a turn and got one (counter). */
  readonly waitCount: number
  /** Total time those `waitCount` waits took (counter). */
  readonly waitDuration: Duration.Duration
  /** Open connections, idle and in use, `newConn` ones included (gauge). */
  readonly totalConns: number
  /** Idle connections (gauge). */
  readonly idleConns: number
  /**
   * Connections closed because they were stale: past `connMaxIdleTime` or
   * their lifetime, or closed by their peer (counter): `closes.stale +
   * closes.lifetime`. Unlike go-redis v9 (go-redis#3359) it does not count
   * connections callers removed.
   */
  readonly staleConns: number
  /**
   * Connections a hook found unusable and closed (counter): go-redis v9's
   * `Unusable`, the same as `closes.validate`.
   */
  readonly unusable: number
  /** Every connection the pool closed, by reason (counters). */
  readonly closes: Closes
  /** `get` calls still waiting for a turn or a dial (gauge). */
  readonly pendingRequests: number
  /**
   * `put`, `remove` or `closeConn` calls with a handle that was not out: given
   * back already, or from another pool (counter). Each was ignored and logged
   * at debug level.
   */
  readonly staleHandles: number
  /**
   * Dials nobody waits for any more (timed out, their caller gave up, or the
   * pool closed) that have not ended yet (gauge). An interruptible dial ends
   * at once, or by `dialTimeout` after its caller gave up; one that stays
   * here longer has an acquire that ignores interruption.
   */
  readonly abandonedDials: number
}

/**
 * The pool's mutable counters. The pool runs on one JS thread, so plain
 * fields are enough.
 *
 * @category models
 * @since 0.1.0
 */
export class Counters {
  hits = 0
  misses = 0
  timeouts = 0
  waitCount = 0
  waitMillis = 0
  pendingRequests = 0
  staleHandles = 0
  readonly closes: { [R in CloseReason]: number } = {
    stale: 0,
    lifetime: 0,
    validate: 0,
    filter: 0,
    remove: 0,
    close: 0,
    excess: 0
  }
}

/**
 * Builds an immutable snapshot from the counters and the current gauges.
 *
 * @category constructors
 * @since 0.1.0
 */
export const snapshot = (
  counters: Counters,
  totalConns: number,
  idleConns: number,
  abandonedDials: number
): PoolStats => ({
  hits: counters.hits,
  misses: counters.misses,
  timeouts: counters.timeouts,
  waitCount: counters.waitCount,
  waitDuration: Duration.millis(counters.waitMillis),
  totalConns,
  idleConns,
  staleConns: counters.closes.stale + counters.closes.lifetime,
  unusable: counters.closes.validate,
  closes: { ...counters.closes },
  pendingRequests: counters.pendingRequests,
  staleHandles: counters.staleHandles,
  abandonedDials
})

const closeReasons: ReadonlyArray<CloseReason> = ["stale", "lifetime", "validate", "filter", "remove", "close", "excess"]

/**
 * Field by field sum of two snapshots: the totals over the pools of a keyed
 * pool.
 *
 * @category combinators
 * @since 0.1.0
 */
export const sum = (a: PoolStats, b: PoolStats): PoolStats => {
  const closes = {} as { [R in CloseReason]: number }
  for (const reason of closeReasons) closes[reason] = a.closes[reason] + b.closes[reason]
  return {
    hits: a.hits + b.hits,
    misses: a.misses + b.misses,
    timeouts: a.timeouts + b.timeouts,
    waitCount: a.waitCount + b.waitCount,
    waitDuration: Duration.sum(a.waitDuration, b.waitDuration),
    totalConns: a.totalConns + b.totalConns,
    idleConns: a.idleConns + b.idleConns,
    staleConns: a.staleConns + b.staleConns,
    unusable: a.unusable + b.unusable,
    closes,
    pendingRequests: a.pendingRequests + b.pendingRequests,
    staleHandles: a.staleHandles + b.staleHandles,
    abandonedDials: a.abandonedDials + b.abandonedDials
  }
}

/**
 * The snapshot of a pool that has no connection and has counted nothing.
 *
 * @category constructors
 * @since 0.1.0
 */
export const empty: PoolStats = snapshot(new Counters(), 0, 0, 0)
