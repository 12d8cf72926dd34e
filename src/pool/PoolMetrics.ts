/**
 * ConnPool's metrics under OpenTelemetry's connection-pool names
 * (`db.client.connection.*`, each with `db.client.connection.pool.name` =
 * the pool's `name`) and its own under `connpool.*` (docs/observability.md).
 *
 * The counts (connections idle and used, waiters, timeouts, hits, misses,
 * closes by reason, the breaker) are the ones the pool keeps for `stats`,
 * read when the metrics are read. The three durations are recorded where
 * the pool already reads the clock: a `get` that takes an idle connection at
 * once records a wait of 0 (`Histogram.record`'s cheapest value), a put
 * records the time since checkout, a dial attempt that opens records how
 * long it took. Every series exists, at zero, from the pool's creation.
 *
 * @since 0.1.0
 */
import type { Clock, Context } from "effect"
import type { Histogram } from "../observability/Histogram.ts"
import { Observed } from "../observability/Observed.ts"
import type { Attributes } from "../observability/Observed.ts"
import * as S from "../observability/Semconv.ts"
import type { Core } from "./Core.ts"
import type { DialObserver } from "./Dialer.ts"
import type { CloseReason } from "./PoolStats.ts"

const closeReasons: ReadonlyArray<CloseReason> = ["stale", "lifetime", "validate", "filter", "remove", "close", "excess"]

export class PoolMetrics implements DialObserver {
  private readonly observed: Observed
  private readonly clock: Clock.Clock
  private readonly attributes: Attributes
  /** `db.client.connection.wait_time`: from `get` to a connection in hand, dials and hooks included. */
  readonly waitTime: Histogram
  /** `db.client.connection.use_time`: from checkout to put (or remove). */
  readonly useTime: Histogram
  /** `db.client.connection.create_time`: one dial attempt that opened a connection. */
  private readonly createTime: Histogram
  /** Dial attempts that failed (not those interrupted): `connpool.dial.failures`. */
  private dialFailures = 0

  constructor(context: Context.Context<never>, name: string, clock: Clock.Clock) {
    const observed = new Observed(context)
    this.observed = observed
    this.clock = clock
    const own = { [S.DB_POOL_NAME]: name }
    this.attributes = own
    const seconds = { ...own, [S.UNIT]: S.SECONDS }
    this.waitTime = observed.histogram(
      "db.client.connection.wait_time",
      "The time it took to obtain an open connection from the pool, in seconds.",
      seconds,
      S.poolDurationBoundaries
    )
    this.useTime = observed.histogram(
      "db.client.connection.use_time",
      "The time between borrowing a connection and returning it to the pool, in seconds.",
      seconds,
      S.poolDurationBoundaries
    )
    this.createTime = observed.histogram(
      "db.client.connection.create_time",
      "The time it took to create a new connection, in seconds.",
      seconds,
      S.poolDurationBoundaries
    )
    observed.counter("connpool.dial.failures", "Dial attempts that failed.", own, () => this.dialFailures)
  }

  /** Registers the series read from the pool's own state. */
  observe<A>(core: Core<A>): void {
    const observed = this.observed
    const own = this.attributes
    const { config, counters } = core
    const count = "The number of connections that are currently in the state described by the state attribute."
    observed.upDown("db.client.connection.count", count, { ...own, [S.DB_CONNECTION_STATE]: "idle" }, () => core.idle.size)
    observed.upDown("db.client.connection.count", count, { ...own, [S.DB_CONNECTION_STATE]: "used" }, () =>
      core.conns.size - core.idle.size)
    // Connections opened for `get` never outnumber the turns, so an unbounded maxIdleConns is bounded by them.
    const idleMax = Math.min(config.maxIdleConns, config.turns)
    const limit = (metric: string, description: string, value: number) => {
      // An unbounded limit has no number to report: no series, rather than one reading Infinity.
      if (Number.isFinite(value)) observed.upDown(metric, description, own, () => value)
    }
    limit("db.client.connection.idle.max", "The maximum number of idle open connections allowed.", idleMax)
    limit("db.client.connection.idle.min", "The minimum number of idle open connections allowed.", config.minIdleConns)
    limit("db.client.connection.max", "The maximum number of open connections allowed.", config.turns)
    observed.upDown(
      "db.client.connection.pending_requests",
      "The number of current pending requests for an open connection.",
      own,
      () => counters.pendingRequests
    )
    observed.counter(
      "db.client.connection.timeouts",
      "The number of connection timeouts that have occurred trying to obtain a connection from the pool.",
      own,
      () => counters.timeouts
    )
    observed.counter("connpool.hits", "Gets that found a healthy idle connection.", own, () => counters.hits)
    observed.counter("connpool.misses", "Gets that found no idle connection and dialled.", own, () => counters.misses)
    for (const reason of closeReasons) {
      observed.counter(
        "connpool.connection.closed",
        "Connections the pool closed, by reason.",
        { ...own, "connpool.close.reason": reason },
        () => counters.closes[reason]
      )
    }
    observed.upDown("connpool.breaker.open", "1 while the dial-error breaker is open, else 0.", own, () =>
      core.breaker.isOpen ? 1 : 0)
    observed.upDown(
      "connpool.dial.abandoned",
      "Dials nobody waits for any more that have not ended yet.",
      own,
      () => core.dialer.abandoned()
    )
  }

  /** Monotonic millis, the pool's time. */
  now(): number {
    return Number(this.clock.monotonicTimeNanosUnsafe()) / 1_000_000
  }

  created(start: number): void {
    this.createTime.record((this.now() - start) / 1000)
  }

  failed(): void {
    this.dialFailures++
  }

  /** The pool closed: its series leave the registry. */
  remove(): void {
    this.observed.remove()
  }
}
