/**
 * `ConnPool.make`'s options (go-redis's names, camelCase), their defaults as
 * named constants, and their normalisation into the `Config` the pool runs
 * on: every default applied, every duration turned into millis, every bound
 * checked, once, before the pool exists.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { Duration, Schedule } from "effect"
import type * as Observability from "../observability/Observability.ts"
import { readOptions } from "./OptionReader.ts"
import type { DialError, InvalidOption } from "./PoolError.ts"

/** Default `name`: `"ConnPool"`. @since 0.1.0 */
export const defaultName = "ConnPool"
/** Default `poolSize`: 10 turns. @since 0.1.0 */
export const defaultPoolSize = 10
/** Default `poolTimeout`: 4 seconds. @since 0.1.0 */
export const defaultPoolTimeout: Duration.Duration = Duration.seconds(4)
/** Default `dialTimeout`: 5 seconds per attempt. @since 0.1.0 */
export const defaultDialTimeout: Duration.Duration = Duration.seconds(5)
/** Default number of dial attempts: 5 (go-redis `DialerRetries`). @since 0.1.0 */
export const defaultDialAttempts = 5
/** Default pause between dial attempts: 100 ms (go-redis `DialerRetryTimeout`). @since 0.1.0 */
export const defaultDialRetryBackoff: Duration.Duration = Duration.millis(100)
/**
 * Default `dialRetry`: `defaultDialAttempts` attempts in all, `defaultDialRetryBackoff` apart.
 * @since 0.1.0
 */
export const defaultDialRetry: Schedule.Schedule<unknown, DialError> = Schedule.spaced(defaultDialRetryBackoff).pipe(
  Schedule.upTo({ times: defaultDialAttempts - 1 })
)
/** Default `minIdleConns`: 0, no warm-up. @since 0.1.0 */
export const defaultMinIdleConns = 0
/** Default `maxIdleConns`: no cap (`Infinity`). @since 0.1.0 */
export const defaultMaxIdleConns = Infinity
/** Default `maxActiveConns`: no cap (`Infinity`). @since 0.1.0 */
export const defaultMaxActiveConns = Infinity
/** Default `connMaxIdleTime`: 30 minutes. @since 0.1.0 */
export const defaultConnMaxIdleTime: Duration.Duration = Duration.minutes(30)
/** Default `connMaxLifetime`: none (`Duration.infinity`). @since 0.1.0 */
export const defaultConnMaxLifetime: Duration.Duration = Duration.infinity
/** Default `connMaxLifetimeJitter`: none. @since 0.1.0 */
export const defaultConnMaxLifetimeJitter: Duration.Duration = Duration.zero
/** Default `idleCheckFrequency`: the reaper runs every minute. @since 0.1.0 */
export const defaultIdleCheckFrequency: Duration.Duration = Duration.minutes(1)
/**
 * Default `starvationThreshold`: 10 ms. A waiter that has waited this long
 * is handed the next freed turn. Go's `sync.Mutex` uses 1 ms, but an Effect
 * fiber runs for up to 2048 operations before it yields and a woken waiter
 * waits for the fibers scheduled before it, so with 1 ms most waiters count
 * as starved by the time they run and the hand-offs bring the convoy back:
 * in `bench/acquire.ts` (64 borrowers, 10 connections) 1 ms gave 0.4-0.7M
 * acquires/s with a p99 wait of milliseconds, 10 ms 0.8-0.9M with a p99 of
 * microseconds (docs/pool.md).
 * @since 0.1.0
 */
export const defaultStarvationThreshold: Duration.Duration = Duration.millis(10)
/** Default `closeGracePeriod`: 0, borrowed connections close with the pool (go-redis). @since 0.1.0 */
export const defaultCloseGracePeriod: Duration.Duration = Duration.zero
/** Default `validateAfter`: never (`Duration.infinity`), `validate` does not run. @since 0.1.0 */
export const defaultValidateAfter: Duration.Duration = Duration.infinity
/** Default `breakerProbe`: the breaker's probe redials every second. @since 0.1.0 */
export const defaultBreakerProbe: Schedule.Schedule<unknown, DialError> = Schedule.spaced(Duration.seconds(1))

/**
 * Options of `ConnPool.make`.
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<A, E, R> {
  /**
   * Opens one connection. It runs with the connection's own `Scope`: closing
   * that scope (which the pool does when it drops the connection) closes it,
   * so acquire the socket with `Effect.acquireRelease`. Its other services
   * come from where `make` ran, overridden by the caller's.
   */
  readonly dial: Effect.Effect<A, E, R>
  /**
   * An Effect that completes (either way) when the connection closes by
   * itself, e.g. when its socket emits `close`. The pool watches it: a
   * connection that dies while idle is dropped at once (counted in
   * `staleConns`), one that dies in use is closed when it comes back.
   * Default: none, so a dead idle connection is found by its user.
   */
  readonly closeSignal?: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /** Names the pool in its errors, usually the server address. Default `"ConnPool"`. */
  readonly name?: string | undefined
  /**
   * Turns: connections in use (and dials for `get`) at once. `Infinity`
   * makes the pool a plain free list that never waits. Default 10.
   */
  readonly poolSize?: number | undefined
  /** Hand out the longest-idle connection first instead of the most recent. Default false (LIFO). */
  readonly poolFIFO?: boolean | undefined
  /** Longest wait for a turn before `get` fails with `PoolTimeout`. 0 never waits. Default 4 s. */
  readonly poolTimeout?: Duration.Input | undefined
  /**
   * Fairness of the turns, as Go's `sync.Mutex`: a freed turn goes back to
   * the pool, where a running fiber may take it before the woken head waiter
   * does (no lock convoy), until the head has waited this long or has lost
   * such a race once; then freed turns are handed to the waiters in order
   * until one is served sooner. 0 hands every freed turn to the oldest
   * waiter (strict FIFO); `Infinity` never does. Default 10 ms (Go's 1 ms is
   * too short for Effect's scheduler; see `defaultStarvationThreshold`).
   */
  readonly starvationThreshold?: Duration.Input | undefined
  /** Longest one dial attempt may take before it fails with `DialTimeout`. Default 5 s. */
  readonly dialTimeout?: Duration.Input | undefined
  /**
   * Retries of a failed dial attempt; its input is the attempt's error.
   * Default: 5 attempts in all, 100 ms apart.
   */
  readonly dialRetry?: Schedule.Schedule<unknown, DialError> | undefined
  /** Idle connections kept open in the background, never past `poolSize` in all. Default 0. */
  readonly minIdleConns?: number | undefined
  /** Most idle connections kept; a put beyond it closes the connection (0 keeps none). Default no cap. */
  readonly maxIdleConns?: number | undefined
  /**
   * Hard cap on open connections, dials in progress included. `get` waits
   * (up to `poolTimeout`) rather than fail there, since turns never exceed it;
   * `newConn` fails with `PoolExhausted`. Default no cap.
   */
  readonly maxActiveConns?: number | undefined
  /** Dials in progress at once; further dials wait. Default and maximum `poolSize`. */
  readonly maxConcurrentDials?: number | undefined
  /** An idle connection unused this long is stale: closed, never handed out. 0 disables. Default 30 min. */
  readonly connMaxIdleTime?: Duration.Input | undefined
  /** A connection this old is stale: closed, never handed out. 0 disables. Default none. */
  readonly connMaxLifetime?: Duration.Input | undefined
  /**
   * Each connection's lifetime is `connMaxLifetime` ± a uniform random
   * amount up to this (capped at the lifetime, drawn from Effect's
   * `Random`), so connections dialled together do not all expire together.
   * Default 0.
   */
  readonly connMaxLifetimeJitter?: Duration.Input | undefined
  /**
   * Period of the reaper closing stale idle connections; `Infinity` disables
   * it. Not started when neither idle time nor lifetime is limited. Default 1 min.
   */
  readonly idleCheckFrequency?: Duration.Input | undefined
  /**
   * Consecutive failed dials that open the breaker; `Infinity` disables it.
   * Default `poolSize` (10 when `poolSize` is `Infinity`).
   */
  readonly breakerThreshold?: number | undefined
  /**
   * When the open breaker's probe redials; its first successful dial closes
   * the breaker, and so does the schedule ending. Default every second.
   */
  readonly breakerProbe?: Schedule.Schedule<unknown, DialError> | undefined
  /**
   * How long `close` lets borrowed connections come back by themselves
   * before it closes them under their borrowers. Default 0: closed at once,
   * as go-redis does.
   */
  readonly closeGracePeriod?: Duration.Input | undefined
  /**
   * Runs on every hand-out (a hit, after `validate`, or a fresh dial) before
   * the borrower gets the connection (go-redis v9's `OnGet` hook). If it
   * fails or dies, the connection is closed and counted `unusable`; `get`
   * tries the next idle one, and a freshly dialled one fails the `get` with
   * `DialFailed`. Default none.
   */
  readonly onGet?: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Runs on every `put` (and every `use` that succeeds) before the connection
   * is pooled (go-redis v9's `OnPut`): reset per-borrower state here, e.g.
   * discard a Redis MULTI. If it fails or dies, the connection is closed
   * instead and counted `unusable`. Default none.
   */
  readonly onPut?: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /**
   * Checks an idle connection before it is handed out, when it has been
   * idle `validateAfter` or longer (generic-pool's `testOnBorrow`). If it
   * fails or dies, the connection is closed and counted `unusable`, and
   * `get` tries the next one. Default none.
   */
  readonly validate?: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /** Idle time after which `validate` runs on hand-out; 0 runs it every time. Default never. */
  readonly validateAfter?: Duration.Input | undefined
  /**
   * Metrics and spans (docs/observability.md): `db.client.connection.*` and
   * `connpool.*` with `db.client.connection.pool.name` = `name`, and spans for
   * a `get` that waited for a turn (`connpool.wait`) or dialled
   * (`connpool.dial`). Default: metrics on, spans off.
   */
  readonly observability?: Observability.Options | undefined
}

/**
 * The normalised options. Durations are millis (`Infinity` for none).
 *
 * @category models
 * @since 0.1.0
 */
export interface Config {
  readonly name: string
  readonly poolSize: number
  /** `min(poolSize, maxActiveConns)`: the number of turns. */
  readonly turns: number
  readonly poolFIFO: boolean
  readonly poolTimeout: Duration.Duration
  readonly poolTimeoutMillis: number
  readonly starvationMillis: number
  readonly dialTimeout: Duration.Duration
  readonly dialRetry: Schedule.Schedule<unknown, DialError>
  readonly minIdleConns: number
  readonly maxIdleConns: number
  readonly maxActiveConns: number
  readonly maxConcurrentDials: number
  readonly connMaxIdleTimeMillis: number
  readonly connMaxLifetimeMillis: number
  readonly connMaxLifetimeJitterMillis: number
  readonly idleCheckFrequency: Duration.Duration
  readonly breakerThreshold: number
  readonly breakerProbe: Schedule.Schedule<unknown, DialError>
  readonly closeGracePeriod: Duration.Duration
  readonly validateAfterMillis: number
  readonly observability: Observability.Config
}

/**
 * Applies defaults and checks every option's type and range (see
 * `OptionReader`). Clamps only where go-redis clamps valid values
 * (`maxConcurrentDials` and `minIdleConns` to the turns, the jitter to the
 * lifetime); everything else out of range, `NaN` or of the wrong type is an
 * `InvalidOption`. Never throws.
 *
 * @category constructors
 * @since 0.1.0
 */
export const normalize = <A, E, R>(options: Options<A, E, R>): Config | InvalidOption =>
  readOptions(options, defaultName, (read): Config => {
    const name = read.text("name", defaultName)
    read.effect("dial")
    read.fn("closeSignal")
    read.fn("onGet")
    read.fn("onPut")
    read.fn("validate")
    const poolSize = read.count("poolSize", defaultPoolSize, 1, true)
    const maxActiveConns = read.count("maxActiveConns", defaultMaxActiveConns, 1, true)
    const turns = Math.min(poolSize, maxActiveConns)
    const minIdleConns = read.count("minIdleConns", defaultMinIdleConns, 0, false)
    const maxIdleConns = read.count("maxIdleConns", defaultMaxIdleConns, 0, true)
    const maxConcurrentDials = read.count("maxConcurrentDials", turns, 1, true)
    const breakerThreshold = read.count(
      "breakerThreshold",
      Number.isFinite(poolSize) ? poolSize : defaultPoolSize,
      1,
      true
    )
    const poolTimeout = read.duration("poolTimeout", defaultPoolTimeout)
    const starvationThreshold = read.duration("starvationThreshold", defaultStarvationThreshold)
    const dialTimeout = read.duration("dialTimeout", defaultDialTimeout)
    const connMaxIdleTime = read.duration("connMaxIdleTime", defaultConnMaxIdleTime)
    const connMaxLifetime = read.duration("connMaxLifetime", defaultConnMaxLifetime)
    const jitter = read.duration("connMaxLifetimeJitter", defaultConnMaxLifetimeJitter)
    const idleCheckFrequency = read.duration("idleCheckFrequency", defaultIdleCheckFrequency, true)
    const lifetimeMillis = Duration.toMillis(connMaxLifetime)
    return {
      name,
      poolSize,
      turns,
      poolFIFO: read.flag("poolFIFO", false),
      poolTimeout,
      poolTimeoutMillis: Duration.toMillis(poolTimeout),
      starvationMillis: Duration.toMillis(starvationThreshold),
      dialTimeout,
      dialRetry: read.schedule("dialRetry", defaultDialRetry),
      minIdleConns: Math.min(minIdleConns, turns),
      maxIdleConns,
      maxActiveConns,
      maxConcurrentDials: Math.min(maxConcurrentDials, turns),
      connMaxIdleTimeMillis: Duration.isZero(connMaxIdleTime) ? Infinity : Duration.toMillis(connMaxIdleTime),
      connMaxLifetimeMillis: lifetimeMillis === 0 ? Infinity : lifetimeMillis,
      connMaxLifetimeJitterMillis: Math.min(Duration.toMillis(jitter), lifetimeMillis === 0 ? 0 : lifetimeMillis),
      idleCheckFrequency,
      breakerThreshold,
      breakerProbe: read.schedule("breakerProbe", defaultBreakerProbe),
      closeGracePeriod: read.duration("closeGracePeriod", defaultCloseGracePeriod),
      validateAfterMillis: Duration.toMillis(read.duration("validateAfter", defaultValidateAfter)),
      observability: read.observability("observability")
    }
  })
