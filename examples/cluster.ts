/**
 * The example of docs/cluster.md (test/cluster/docs.test.ts checks the two
 * are the same and runs it against servers on loopback).
 *
 *   CONNPOOL_SERVERS=127.0.0.1:8300,127.0.0.1:8301 npx node examples/cluster.ts
 */
// example:start
import { Effect, Layer } from "effect"
import { RpcCluster, RpcPool } from "../src/index.ts"

// CONNPOOL_SERVERS=127.0.0.1:8300,127.0.0.2:8300,127.0.0.3:8300 names the servers;
// CONNPOOL_CLUSTER_PROFILE (consul|nomad) and CONNPOOL_HOLD_TIMEOUT are optional.
export const ClusterLive = RpcCluster.layerConfig().pipe(
  Layer.provide(RpcPool.PoolLayer({ callTimeout: "10 seconds" }))
)

// A read: running it twice is harmless, so a connection lost after the request
// went out is retried on the next server too.
export const leader = RpcCluster.rpc("Status.Leader", {}, { idempotent: true })

export const program = Effect.gen(function*() {
  const address = yield* leader
  const stats = yield* RpcCluster.stats
  return { leader: address, current: stats.current, retries: stats.retries }
}).pipe(
  // A ClusterError's message lists every attempt: server, reason, milliseconds since the start.
  Effect.tapError((error) => Effect.logError(error.message)),
  Effect.provide(ClusterLive)
)
// example:end

if (import.meta.main) {
  Effect.runPromise(program).then((result) => console.log(result), () => process.exit(1))
}
