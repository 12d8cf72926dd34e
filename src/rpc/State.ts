/**
 * The RPC pool's state and the operations on it that are not one call's path
 * (that is `Call.ts`): the Conn of each server, the dial limiter, the
 * per-address counters (with the pending gauge), the call deadlines, and
 * whether the pool is closed.
 *
 * ```
 *   acquire ── usable Conn ──────────────────────────────▶ Conn
 *      └── none (or GoAway'd: clear it) ── awaitDial ── limiter ── dial ──▶ Conn (mapped, counters pinned)
 *   release: a caller leaves; the last one closes a doomed Conn
 *   clear:   doom a Conn (session died, GoAway, open failed): unmapped now, closed when its callers leave
 * ```
 *
 * Everything here is synchronous over plain fields (the pool lives on one JS
 * thread); what must wait (closing a session, a dial) is returned as an
 * `Effect`. Every age and deadline is measured on `now()`, the Clock's
 * monotonic time, so a wall clock that steps moves none of them.
 *
 * @since 0.1.0
 */
import type { Clock, Context, Fiber, Tracer } from "effect"
import { Effect, Exit, Scope } from "effect"
import { CONNPOOL_POOL_NAME, SERVER_ADDRESS, SERVER_PORT } from "../observability/Semconv.ts"
import type { Connector } from "../wire/ByteTransport.ts"
import * as Session from "../yamux/Session.ts"
import { poolClosed, tooManyPending, toRpcError } from "./Classify.ts"
import { Conn } from "./Conn.ts"
import { Deadlines } from "./Deadlines.ts"
import { DialLimiter } from "./DialLimiter.ts"
import type { RpcError } from "./RpcError.ts"
import type { Config } from "./RpcOptions.ts"
import { RpcMetrics } from "./RpcMetrics.ts"
import * as RpcTracing from "./RpcTracing.ts"
import { StatsTable } from "./RpcStats.ts"
import type { Counters, RpcStats } from "./RpcStats.ts"
import type { Target } from "./Target.ts"
import { Targets } from "./Target.ts"

/**
 * @internal Each pool's State by its service object: the simulator reads it to
 * check the pool's invariants (deadlines, pending gauges). Not public API.
 */
export const stateOf = new WeakMap<object, State>()

export class State {
  readonly config: Config
  /** The live Conn of each server, by `Target.key`. A doomed Conn is no longer here. */
  readonly conns = new Map<string, Conn>()
  readonly stats: StatsTable
  readonly targets = new Targets()
  readonly deadlines: Deadlines
  /**
   * Owns every session and dial fiber. A child of the pool's Scope made before
   * the shutdown finalizer, so shutdown runs first (finalizers run in reverse)
   * and waiters and calls in flight already see `closed`.
   */
  readonly connsScope: Scope.Closeable
  readonly limiter: DialLimiter<string, Conn, RpcError>
  /** The pool's metrics; undefined when `observability.metrics` is off, so a call pays one check. */
  readonly metrics: RpcMetrics | undefined
  closed = false

  private readonly connect: Connector

  constructor(options: {
    readonly config: Config
    readonly clock: Clock.Clock
    readonly connect: Connector
    readonly connsScope: Scope.Closeable
    /** Runs a fiber detached from its caller, in the pool's context. */
    readonly runFork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
    /** Where the metrics go (its `MetricRegistry`). */
    readonly context: Context.Context<never>
    readonly maxIdleAddresses?: number | undefined
  }) {
    const config = options.config
    this.config = config
    this.connect = options.connect
    this.connsScope = options.connsScope
    const metrics = config.observability.metrics
      ? new RpcMetrics({
        context: options.context,
        pool: config.name,
        system: config.protocol.name,
        connOf: (key) => this.conns.get(key)
      })
      : undefined
    this.metrics = metrics
    this.stats = new StatsTable(options.maxIdleAddresses, metrics && ((key) => metrics.forget(key)))
    const runFork = options.runFork
    const connsScope = options.connsScope
    // The dial runs in a fiber the pool owns, so a caller giving up does not cancel it for the others.
    this.limiter = new DialLimiter((dial) => runFork(Effect.forkIn(dial, connsScope)))
    this.deadlines = new Deadlines(options.clock, runFork)
  }

  /** Monotonic milliseconds, the time of every age and deadline in the pool. */
  now(): number {
    return this.deadlines.now()
  }

  /** The counters of `key`, kept in the table while a Conn or a caller holds them. */
  countersFor(key: string): Counters {
    return this.stats.get(key)
  }

  /** The Conn new calls to `key` may use now, if there is one. */
  usableConn(key: string): Conn | undefined {
    const conn = this.closed ? undefined : this.conns.get(key)
    return conn !== undefined && conn.usable ? conn : undefined
  }

  /** Unmaps `conn` if it is still the live Conn of its server. */
  private unmap(conn: Conn): void {
    if (this.conns.get(conn.address) !== conn) return
    this.conns.delete(conn.address)
    this.stats.unpin(conn.address)
  }

  /**
   * Consul `clearConn`: doom the Conn; close it now if nobody is on it. The
   * first time, logs why (`reason`, else what the session says of itself).
   */
  clearConn(conn: Conn, reason?: string): Effect.Effect<void> {
    const first = !conn.shouldClose && !conn.closed
    conn.shouldClose = true
    this.unmap(conn)
    const close = conn.callers === 0 ? conn.close : Effect.void
    if (!first) return close
    const why = reason ??
      (conn.session.peerGoneAway ? "the server sent GoAway" : conn.session.isClosed ? "session closed" : "stream open failed")
    return Effect.andThen(this.logDebug(conn.address, `session closed: ${why}`), close)
  }

  /** A debug line about the server `key`, annotated with the pool's name and the server. */
  logDebug(key: string, message: string): Effect.Effect<void> {
    const target = this.targets.get(key)
    return Effect.annotateLogs(Effect.logDebug(`${this.config.name}: ${key}: ${message}`), {
      [CONNPOOL_POOL_NAME]: this.config.name,
      [SERVER_ADDRESS]: target?.host ?? key,
      [SERVER_PORT]: target?.port ?? 0
    })
  }

  /** Consul `releaseConn`, plus a touch so a long call does not count as idle. */
  releaseConn(conn: Conn): Effect.Effect<void> {
    conn.callers--
    conn.lastUsed = this.now()
    return conn.callers === 0 && conn.shouldClose ? conn.close : Effect.void
  }

  /**
   * The Conn for `target`, dialling through the limiter when there is none.
   * The caller marks it for use inside its uninterruptible region, so an
   * interruption can never leave a caller counted that will not release.
   */
  acquire(target: Target, span?: Tracer.Span): Effect.Effect<Conn, RpcError> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.fail(poolClosed(target.key, ""))
      const conn = this.conns.get(target.key)
      if (conn !== undefined && conn.usable) return Effect.succeed(conn)
      const fresh = this.awaitDial(target, span)
      // A Conn the server sent GoAway on is still mapped: retire it (closed once its callers leave).
      return conn === undefined ? fresh : Effect.andThen(this.clearConn(conn), fresh)
    })
  }

  /** Joins the dial for `target` as one of its `maxPendingCalls` waiters, or fails with `TooManyPending`. */
  private awaitDial(target: Target, span: Tracer.Span | undefined): Effect.Effect<Conn, RpcError> {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        const gauge = this.countersFor(target.key)
        const limit = this.config.maxPendingCalls
        if (gauge.pending >= limit) return Effect.fail(tooManyPending(target.key, gauge.pending, limit))
        gauge.pending++
        const wait = this.limiter.join(target.key, this.dial(target))
        return Effect.ensuring(
          restore(
            span === undefined ? wait : RpcTracing.dial(this.config, target, this.limiter.has(target.key), span, wait)
          ),
          Effect.sync(() => gauge.pending--)
        )
      })
    )
  }

  /** Connects, runs a client session over the transport, and maps the new Conn. */
  private dial(target: Target): Effect.Effect<Conn, RpcError> {
    const { host, key, port } = target
    const config = this.config
    return Effect.gen({ self: this }, function*() {
      const connScope = yield* Scope.fork(this.connsScope)
      const session = yield* this.connect({ host, port, protocol: config.protocol, tls: config.tls, dialTimeout: config.dialTimeout }).pipe(
        Effect.flatMap((transport) =>
          Session.make(transport, { ...config.session, role: "client", address: key, acceptInbound: false })
        ),
        Scope.provide(connScope),
        Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(connScope, exit)),
        Effect.mapError((error) => toRpcError(error, key, "", false)),
        Effect.tapError((error) =>
          Effect.andThen(
            Effect.sync(() => this.countersFor(key).dialFailures++),
            this.logDebug(key, `dial failed: ${error.message}`)
          )
        )
      )
      if (this.closed) {
        yield* Scope.close(connScope, Exit.void)
        return yield* Effect.fail(poolClosed(key, ""))
      }
      const counters = this.countersFor(key)
      const conn = new Conn({
        address: key,
        session,
        scope: connScope,
        maxStreams: config.maxStreams,
        streamByte: config.protocol.streamByte,
        decoder: config.decoder,
        now: this.now(),
        maxStreamsInUse: config.maxStreamsPerSession,
        maxPending: config.maxPendingCalls,
        pending: counters
      })
      this.conns.set(key, conn)
      this.stats.pin(key, counters)
      counters.dials++
      yield* this.logDebug(key, "session dialled")
      // A session that dies on its own (EOF, keepalive) leaves the map at once.
      yield* Effect.forkIn(
        Effect.flatMap(session.closed, (why) => Effect.suspend(() => this.clearConn(conn, why.message))),
        connScope
      )
      return conn
    })
  }

  /** Takes every Conn off the map (reaping, shutdown). */
  takeConns(filter: (conn: Conn) => boolean): Array<Conn> {
    const taken: Array<Conn> = []
    for (const conn of this.conns.values()) {
      if (filter(conn)) taken.push(conn)
    }
    for (const conn of taken) this.unmap(conn)
    return taken
  }

  /** A snapshot of the counters and the gauges of each server's live Conn. */
  snapshot(): RpcStats {
    return this.stats.snapshot((key) => {
      const conn = this.conns.get(key)
      return conn === undefined ? undefined : { idleStreams: conn.idleStreams, inUse: conn.inUse, callers: conn.callers }
    })
  }
}
