/**
 * RpcCluster's metrics, spans and logs (docs/observability.md). Its counts
 * are the ones `ClusterStats` keeps, read when the metrics are read. With
 * spans on, a call is an INTERNAL `connpool.cluster.call` span whose children
 * are the pool's CLIENT spans, one per attempt, and each failover is an event
 * on it (the server that failed, why, the backoff before the next attempt);
 * a failover is also a debug log line.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Context } from "effect"
import { Observed } from "../observability/Observed.ts"
import * as S from "../observability/Semconv.ts"
import * as Spans from "../observability/Spans.ts"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { RpcError } from "../rpc/RpcError.ts"
import { parseAddress } from "../wire/Transport.ts"
import type { ClusterError } from "./ClusterError.ts"
import type { StatsRecorder } from "./ClusterStats.ts"
import type { ServerList } from "./ServerList.ts"

/** The cluster's `name` on its series and log lines. */
export const CLUSTER_NAME = "connpool.cluster.name"

/** Registers the cluster's series, at zero; the returned `Observed` removes them when the cluster goes. */
export const register = (
  context: Context.Context<never>,
  name: string,
  stats: StatsRecorder,
  list: ServerList
): Observed => {
  const observed = new Observed(context)
  const own = { [CLUSTER_NAME]: name }
  const totals = stats.totals
  observed.counter("connpool.cluster.calls", "Calls made on the cluster (each may take several attempts).", own, () => totals.calls)
  observed.counter("connpool.cluster.failures", "Calls that failed after their last attempt.", own, () => totals.failed)
  observed.counter("connpool.cluster.retries", "Attempts after the first, over all calls (failovers).", own, () => totals.retries)
  observed.counter(
    "connpool.cluster.rotations",
    "Times a failure moved the current server to the back of the list.",
    own,
    () => stats.rotations
  )
  observed.counter("connpool.cluster.rebalances", "Rebalances run.", own, () => totals.rebalances)
  observed.counter("connpool.cluster.discoveries", "Discovery rounds answered.", own, () => totals.discoveries)
  observed.upDown("connpool.cluster.servers", "Servers in the list.", own, () => list.size)
  observed.upDown("connpool.cluster.offline", "1 when no server answered the last rebalance's pings, else 0.", own, () =>
    list.offline ? 1 : 0)
  return observed
}

/** The span over one call's attempts. */
export const call = (
  name: string,
  system: string,
  method: string,
  effect: Effect.Effect<Value, ClusterError>
): Effect.Effect<Value, ClusterError> =>
  // Current inside, so the pool's CLIENT span of each attempt nests under it.
  Spans.around(effect, "connpool.cluster.call", {
    kind: "internal",
    attributes: { [CLUSTER_NAME]: name, [S.RPC_SYSTEM_NAME]: system, [S.RPC_METHOD]: method }
  }, S.errorTypeOf)

/**
 * A failed attempt on `server` that will be retried after `waitMillis`: a
 * debug line, and (with spans on) an event on the call's span.
 */
export const failover = (options: {
  readonly name: string
  readonly tracing: boolean
  readonly method: string
  readonly server: string
  readonly error: RpcError
  readonly retry: number
  readonly waitMillis: number
  readonly rotated: boolean
}): Effect.Effect<void> => {
  const { error, server } = options
  const target = parseAddress(server)
  const where = {
    [S.SERVER_ADDRESS]: target?.host ?? server,
    [S.SERVER_PORT]: target?.port ?? 0
  }
  const log = Effect.annotateLogs(
    Effect.logDebug(
      `${options.name}: ${options.method} on ${server} failed (${error.reason}); retry ${options.retry} in ${
        Math.round(options.waitMillis)
      } ms${options.rotated ? ", on the next server" : ""}`
    ),
    { [CLUSTER_NAME]: options.name, [S.RPC_METHOD]: options.method, ...where, [S.ERROR_TYPE]: error.reason }
  )
  if (!options.tracing) return log
  return Effect.andThen(
    Spans.event("connpool.cluster.failover", {
      ...where,
      [S.ERROR_TYPE]: error.reason,
      "connpool.cluster.retry": options.retry,
      "connpool.cluster.backoff": options.waitMillis / 1000,
      "connpool.cluster.rotated": options.rotated
    }),
    log
  )
}
