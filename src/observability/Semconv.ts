/**
 * OpenTelemetry's semantic-convention names this library reports under, and
 * its own (`connpool.` prefix) where the conventions have none. Every name is
 * listed, with its meaning, in docs/observability.md.
 *
 * Sources: `open-telemetry/semantic-conventions` `model/rpc` (v1.39: the
 * `rpc.*.call.duration` histograms, `rpc.system.name`) and `model/db` (the
 * connection-pool metrics, `db.client.connection.*`).
 *
 * @since 0.1.0
 */
import { Cause } from "effect"

export const RPC_SYSTEM_NAME = "rpc.system.name"
export const RPC_METHOD = "rpc.method"
/** On a span whose `rpc.method` is `_OTHER`: the name the peer actually sent. */
export const RPC_METHOD_ORIGINAL = "rpc.method_original"
export const SERVER_ADDRESS = "server.address"
export const SERVER_PORT = "server.port"
export const CLIENT_ADDRESS = "client.address"
export const CLIENT_PORT = "client.port"
export const ERROR_TYPE = "error.type"
export const DB_POOL_NAME = "db.client.connection.pool.name"
export const DB_CONNECTION_STATE = "db.client.connection.state"
/** Our own: the `name` of an `RpcPool` on its `connpool.rpc.*` series and log lines. */
export const CONNPOOL_POOL_NAME = "connpool.pool.name"

/**
 * The conventions' value for a method or error outside the known set: a
 * method no handler serves, a client's method names past its bound, a
 * failure with no reason of ours.
 */
export const OTHER = "_OTHER"

/**
 * The `error.type` of a failure: the `reason` of our errors (`RpcError`,
 * `ClusterError`; the tag of `PoolError`'s reason), `Interrupted` when the
 * caller gave up, `_OTHER` for anything else (a defect, a user's error).
 */
export const errorTypeOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.findErrorOption(cause)
  if (error._tag === "None") return Cause.hasInterruptsOnly(cause) ? "Interrupted" : OTHER
  const reason = (error.value as { readonly reason?: unknown } | null | undefined)?.reason
  if (typeof reason === "string") return reason
  const tag = (reason as { readonly _tag?: unknown } | null | undefined)?._tag
  return typeof tag === "string" ? tag : OTHER
}

/**
 * effect's carrier for a metric's unit: its OTLP exporter writes `unit` into
 * the metric's unit field and its Prometheus exporter leaves it out of the
 * labels. The conventions fix seconds (`s`) for every duration here.
 */
export const UNIT = "unit"
export const SECONDS = "s"

/**
 * Buckets of `rpc.*.call.duration`, in seconds: the conventions' advice
 * (5 ms to 10 s) with five finer buckets below it, since a pooled call on a
 * LAN takes 0.1 to 2 ms and would otherwise all fall in the first bucket.
 * A superset of the advice, so series from other instrumentations still
 * aggregate with these exactly.
 */
export const rpcDurationBoundaries: ReadonlyArray<number> = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025,
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10
]

/**
 * Buckets of `db.client.connection.{create,wait,use}_time`, in seconds: the
 * conventions' advice (1 ms to 10 s) with three finer buckets below it, since
 * a wait for a free connection or a hold of one usually lasts microseconds.
 */
export const poolDurationBoundaries: ReadonlyArray<number> = [
  0.00001, 0.0001, 0.0005,
  0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10
]
