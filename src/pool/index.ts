/**
 * The generic connection pool (go-redis's `internal/pool` in Effect form).
 *
 * @since 0.1.0
 */
export { isConnPool, layer, make, TypeId, use } from "./ConnPool.ts"
export type { ConnPool } from "./ConnPool.ts"
export * from "./KeyedPool.ts"
export type { PooledConn } from "./PooledConn.ts"
export * from "./PoolError.ts"
export type { Options } from "./PoolOptions.ts"
export {
  defaultBreakerProbe,
  defaultCloseGracePeriod,
  defaultConnMaxIdleTime,
  defaultConnMaxLifetime,
  defaultConnMaxLifetimeJitter,
  defaultDialAttempts,
  defaultDialRetry,
  defaultDialRetryBackoff,
  defaultDialTimeout,
  defaultIdleCheckFrequency,
  defaultMaxActiveConns,
  defaultMaxIdleConns,
  defaultMinIdleConns,
  defaultName,
  defaultPoolSize,
  defaultPoolTimeout,
  defaultStarvationThreshold,
  defaultValidateAfter
} from "./PoolOptions.ts"
export type { Closes, CloseReason, PoolStats } from "./PoolStats.ts"
