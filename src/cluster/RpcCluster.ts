/**
 * A cluster of Consul or Nomad servers as one Effect service, over the
 * shared `RpcPool`: calls go to the current server and fail over with
 * Consul's retry rules, the list is rebalanced on the profile's timer and
 * refreshed from `Status.Peers`. Both background jobs are Schedules forked
 * into the Layer's Scope, so closing it stops them. docs/cluster.md has the
 * retry table, the timers and their sources.
 *
 * **Example** (Calling a three-server cluster)
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { RpcCluster, RpcPool } from "effect-connpool"
 *
 * const ClusterLive = RpcCluster.layer({ servers: ["127.0.0.1:8300", "127.0.0.2:8300", "127.0.0.3:8300"] }).pipe(
 *   Layer.provide(RpcPool.PoolLayer())
 * )
 * const leader = RpcCluster.rpc("Status.Leader", {}, { idempotent: true })
 * Effect.runPromise(leader.pipe(Effect.provide(ClusterLive)))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Duration, Effect, Layer, Random } from "effect"
import type { Scope } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { RpcPool } from "../rpc/RpcPool.ts"
import * as Call from "./Call.ts"
import * as ClusterObserver from "./ClusterObserver.ts"
import { ClusterError } from "./ClusterError.ts"
import * as ClusterOptions from "./ClusterOptions.ts"
import type { ClusterStats } from "./ClusterStats.ts"
import { StatsRecorder } from "./ClusterStats.ts"
import type { Discovered } from "./Discovery.ts"
import { discover } from "./Discovery.ts"
import type { ProfileName } from "./Profile.ts"
import type { Maintenance } from "./Rebalance.ts"
import { rebalance, rebalanceSchedule } from "./Rebalance.ts"
import { ServerList } from "./ServerList.ts"

export declare namespace RpcCluster {
  export type Options = ClusterOptions.Options
  export type CallOptions = Call.CallOptions

  export interface Service {
    /**
     * Calls `method` on the current server and fails over as docs/cluster.md's
     * table says, within the hold timeout; the final error lists every attempt.
     */
    readonly rpc: (method: string, args: unknown, options?: CallOptions) => Effect.Effect<Value, ClusterError>
    /** `Status.Ping` through the cluster (idempotent), timed from its first attempt to the reply. */
    readonly ping: (options?: CallOptions) => Effect.Effect<Duration.Duration, ClusterError>
    readonly stats: Effect.Effect<ClusterStats>
    /** The list, head (current server) first. */
    readonly servers: Effect.Effect<ReadonlyArray<string>>
    /** Rebalances now, as the timer would; true when the shuffled order was adopted. */
    readonly rebalance: Effect.Effect<boolean>
    /** Refreshes the list now, as discovery would; undefined when nothing usable came back. */
    readonly discover: Effect.Effect<Discovered | undefined>
    /** Moves `server` to the back if it is the current server and there are two or more. */
    readonly notifyFailed: (server: string) => Effect.Effect<void>
    /** Appends `server` (it gets traffic after a rebalance); false when already listed. */
    readonly addServer: (server: string) => Effect.Effect<boolean, ClusterError>
    /** Drops `server`, never the last one; false when it was not listed or is the last. */
    readonly removeServer: (server: string) => Effect.Effect<boolean>
  }
}

export class RpcCluster extends Context.Service<RpcCluster, RpcCluster.Service>()("effect-connpool/RpcCluster") {}

/**
 * Builds the cluster over the `RpcPool` in context, in the current Scope:
 * the seed list is shuffled (unless `shuffle: false`), then rebalance and
 * discovery are forked into the Scope. Fails with `InvalidOption` for a bad option.
 *
 * @category constructors
 */
export const make = (
  options: RpcCluster.Options
): Effect.Effect<RpcCluster.Service, ClusterError, RpcPool | Scope.Scope> =>
  Effect.gen(function*() {
    const config = ClusterOptions.normalize(options)
    if (config instanceof ClusterError) return yield* config
    const pool = yield* RpcPool
    const clock = yield* Clock.Clock
    const list = new ServerList(config.servers, config.shuffle ? yield* Random.shuffle(config.servers) : config.servers)
    const stats = new StatsRecorder()
    const m: Maintenance = { list, pool, stats, pingTimeout: config.pingTimeout }
    const { metrics, tracing } = config.observability
    const caller: Call.Caller = {
      list,
      pool,
      stats,
      holdMillis: config.holdMillis,
      blocking: config.blocking,
      clock,
      name: config.name,
      tracing
    }
    if (metrics) {
      const observed = ClusterObserver.register(yield* Effect.context<never>(), config.name, stats, list)
      yield* Effect.addFinalizer(() => Effect.sync(() => observed.remove()))
    }

    if (config.rebalance !== undefined) {
      yield* Effect.forkScoped(Effect.schedule(rebalance(m), rebalanceSchedule(config.rebalance, config.members, list)))
    }
    const discovery = config.discovery
    if (discovery !== undefined) {
      // First round at once, in the background: a single seed learns the rest.
      yield* Effect.forkScoped(Effect.repeat(discover(m, discovery), discovery.schedule))
    }

    const rpc = (method: string, args: unknown, callOptions?: RpcCluster.CallOptions) =>
      tracing
        ? ClusterObserver.call(config.name, config.profile.name, method, Call.call(caller, method, args, callOptions))
        : Call.call(caller, method, args, callOptions)

    return RpcCluster.of({
      rpc,
      ping: (callOptions) =>
        Effect.gen(function*() {
          const start = clock.monotonicTimeNanosUnsafe()
          yield* rpc("Status.Ping", {}, { idempotent: true, ...callOptions })
          return Duration.nanos(clock.monotonicTimeNanosUnsafe() - start)
        }),
      stats: Effect.sync(() => stats.snapshot(list.snapshot(), list.offline)),
      servers: Effect.sync(() => list.snapshot()),
      rebalance: rebalance(m),
      discover: discover(m, { method: discovery?.method ?? ClusterOptions.defaultDiscoveryMethod, force: discovery?.force ?? false }),
      notifyFailed: (server) =>
        Effect.sync(() => {
          if (list.notifyFailed(server)) stats.of(server).rotations++
        }),
      addServer: (server) =>
        Effect.suspend(() => {
          const parsed = ClusterOptions.parseServer(server)
          return parsed === undefined
            ? Effect.fail(ClusterOptions.invalidOption("server", `expected host:port, got ${JSON.stringify(server)}`))
            : Effect.succeed(list.add(parsed))
        }),
      removeServer: (server) => Effect.sync(() => list.remove(ClusterOptions.parseServer(server) ?? server))
    })
  })

/**
 * The cluster as a Layer over the `RpcPool` in context; its background jobs
 * stop when the Layer's Scope closes.
 *
 * @category layers
 */
export const layer = (options: RpcCluster.Options): Layer.Layer<RpcCluster, ClusterError, RpcPool> =>
  Layer.effect(RpcCluster, make(options))

/**
 * Options from effect's `Config` (the environment by default):
 * `CONNPOOL_SERVERS` (`a:8300,b:8300`, required), `CONNPOOL_CLUSTER_PROFILE`
 * (`consul`|`nomad`, default consul) and `CONNPOOL_HOLD_TIMEOUT` (default the
 * profile's); the rest from `overrides`.
 *
 * @category layers
 */
export const layerConfig = (
  overrides: Omit<RpcCluster.Options, "servers" | "profile" | "holdTimeout"> = {}
) =>
  Layer.effect(
    RpcCluster,
    Effect.gen(function*() {
      const config = yield* Config.all({
        servers: Config.String("CONNPOOL_SERVERS"),
        profile: Config.Literals(["consul", "nomad"], "CONNPOOL_CLUSTER_PROFILE").pipe(
          Config.withDefault<ProfileName>(ClusterOptions.defaultProfile)
        ),
        holdTimeout: Config.Duration("CONNPOOL_HOLD_TIMEOUT").pipe(Config.option)
      })
      return yield* make({
        ...overrides,
        servers: ClusterOptions.splitServers(config.servers),
        profile: config.profile,
        ...(config.holdTimeout._tag === "Some" ? { holdTimeout: config.holdTimeout.value } : {})
      })
    })
  )

/** `rpc` on the cluster in context. */
export const rpc = (
  method: string,
  args: unknown,
  options?: RpcCluster.CallOptions
): Effect.Effect<Value, ClusterError, RpcCluster> => RpcCluster.use((cluster) => cluster.rpc(method, args, options))

/** `Status.Ping` through the cluster in context, timed. */
export const ping = (options?: RpcCluster.CallOptions): Effect.Effect<Duration.Duration, ClusterError, RpcCluster> =>
  RpcCluster.use((cluster) => cluster.ping(options))

/** A snapshot of the cluster's stats. */
export const stats: Effect.Effect<ClusterStats, never, RpcCluster> = RpcCluster.use((cluster) => cluster.stats)
