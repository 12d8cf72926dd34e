/**
 * The one error `ConnPool` fails with: a `PoolError` wrapping a tagged
 * `reason`. Every reason names the pool it came from (`pool`, the `name`
 * option, usually the server address) and says whether retrying can help.
 *
 * @since 0.1.0
 */
import { Data, Duration } from "effect"

/**
 * No turn became free within `poolTimeout`. Counted in `stats.timeouts`.
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolTimeout extends Data.TaggedError("PoolTimeout")<{
  readonly pool: string
  readonly timeout: Duration.Duration
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.pool}: connection pool timeout: no connection free within ${Duration.format(this.timeout)}`
  }
}

/**
 * The pool is closed: `get` after `close`, or a waiter still queued when it
 * closed.
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolClosed extends Data.TaggedError("PoolClosed")<{
  readonly pool: string
}> {
  get isRetryable(): boolean {
    return false
  }
  override get message(): string {
    return `${this.pool}: connection pool is closed`
  }
}

/**
 * `maxActiveConns` connections are open (or being dialled) and a new one was
 * needed. `get` only meets this when connections from `newConn` fill the cap;
 * otherwise it waits for a turn instead (turns never exceed `maxActiveConns`).
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolExhausted extends Data.TaggedError("PoolExhausted")<{
  readonly pool: string
  readonly maxActiveConns: number
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.pool}: connection pool exhausted: ${this.maxActiveConns} connections already open`
  }
}

/**
 * The dial failed on every attempt its retry schedule allowed. `cause` is the
 * dial's own error from the last attempt.
 *
 * @category errors
 * @since 0.1.0
 */
export class DialFailed extends Data.TaggedError("DialFailed")<{
  readonly pool: string
  readonly cause: unknown
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    const cause = this.cause
    const detail = cause instanceof Error ? cause.message : String(cause)
    return `${this.pool}: dial failed: ${detail}`
  }
}

/**
 * The last dial attempt did not finish within `dialTimeout`.
 *
 * @category errors
 * @since 0.1.0
 */
export class DialTimeout extends Data.TaggedError("DialTimeout")<{
  readonly pool: string
  readonly timeout: Duration.Duration
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.pool}: dial timed out after ${Duration.format(this.timeout)}`
  }
}

/**
 * The dial error of a failed dial: what `DialFailed` and `DialTimeout` share.
 *
 * @category errors
 * @since 0.1.0
 */
export type DialError = DialFailed | DialTimeout

/**
 * The dial-error breaker is open: `breakerThreshold` dials in a row failed,
 * so `get` fails at once instead of dialling, while one background probe
 * redials. `lastError` is the most recent dial error (the probe's included).
 *
 * @category errors
 * @since 0.1.0
 */
export class BreakerOpen extends Data.TaggedError("BreakerOpen")<{
  readonly pool: string
  readonly lastError: DialError
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.pool}: not dialling while the server is unreachable: ${this.lastError.message}`
  }
}

/**
 * An option given to `ConnPool.make` is out of range.
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidOption extends Data.TaggedError("InvalidOption")<{
  readonly pool: string
  readonly option: string
  readonly detail: string
}> {
  get isRetryable(): boolean {
    return false
  }
  override get message(): string {
    return `${this.pool}: invalid option ${this.option}: ${this.detail}`
  }
}

/**
 * A keyed pool holds `capacity` keys' pools, none of them idle enough to
 * close for a new key.
 *
 * @category errors
 * @since 0.1.0
 */
export class TooManyKeys extends Data.TaggedError("TooManyKeys")<{
  readonly pool: string
  readonly capacity: number
}> {
  get isRetryable(): boolean {
    return true
  }
  override get message(): string {
    return `${this.pool}: ${this.capacity} keys in use, the keyed pool's capacity`
  }
}

/**
 * Why a pool operation failed.
 *
 * @category errors
 * @since 0.1.0
 */
export type PoolErrorReason =
  | PoolTimeout
  | PoolClosed
  | PoolExhausted
  | DialFailed
  | DialTimeout
  | BreakerOpen
  | InvalidOption
  | TooManyKeys

/**
 * The error of every failing `ConnPool` operation.
 *
 * **Details**
 *
 * Match on `reason._tag`; `pool` is the pool's `name` and `isRetryable` says
 * whether trying again later can succeed (false only for `PoolClosed` and
 * `InvalidOption`).
 *
 * @category errors
 * @since 0.1.0
 */
export class PoolError extends Data.TaggedError("PoolError")<{
  readonly reason: PoolErrorReason
}> {
  get pool(): string {
    return this.reason.pool
  }
  get isRetryable(): boolean {
    return this.reason.isRetryable
  }
  override get message(): string {
    return this.reason.message
  }
}
