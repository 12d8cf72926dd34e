/**
 * What `call`, `ping` and `bench` share to reach one server or a cluster:
 * the `ADDR` argument (one `host:port`, or a comma-separated list), the
 * `--idempotent` and `--hold` flags, and a `Target` that makes calls either
 * straight through the pool or through `RpcCluster` over it.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import { Argument, Flag } from "effect/cli"
import type { ClusterError } from "../cluster/ClusterError.ts"
import * as RpcCluster from "../cluster/RpcCluster.ts"
import type { ProfileName } from "../cluster/Profile.ts"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { RpcError } from "../rpc/RpcError.ts"
import { RpcPool } from "../rpc/RpcPool.ts"
import { isAddress, optionalDuration } from "./flags.ts"

/** `a:8300` or `a:8300,b:8300,...`: the servers, in order, duplicates dropped. */
export const parseAddresses = (text: string): ReadonlyArray<string> | undefined => {
  const items = text.split(",").map((s) => s.trim())
  if (items.length === 0 || !items.every(isAddress)) return undefined
  return [...new Set(items)]
}

/** The `ADDR` argument of the client commands. */
export const addresses: Argument.Argument<ReadonlyArray<string>> = Argument.String("ADDR").pipe(
  Argument.withDescription("Server address host:port, or a comma-separated list (a:8300,b:8300) to call as a cluster"),
  Argument.filterMap(
    (text) => Option.fromUndefinedOr(parseAddresses(text)),
    () => "host:port, or host:port,host:port,..."
  )
)

export const idempotent: Flag.Flag<boolean> = Flag.Boolean("idempotent").pipe(
  Flag.withDescription(
    "The call may run twice (a read): a connection lost after sending is retried on the next server too"
  ),
  Flag.withDefault(false)
)

export const hold: Flag.Flag<Option.Option<Duration.Duration>> = optionalDuration(
  "hold",
  "With several servers, keep retrying on the next one for this long (default 7s, nomad 5s)"
)

/** How a command reaches its servers. */
export interface Route {
  readonly servers: ReadonlyArray<string>
  /** Through `RpcCluster`: several servers, or `--hold`/`--idempotent` given. */
  readonly cluster: boolean
  readonly profile: ProfileName
  readonly holdTimeout: Duration.Duration | undefined
  readonly idempotent: boolean
}

export const route = (input: {
  readonly servers: ReadonlyArray<string>
  readonly profile: string
  readonly hold: Option.Option<Duration.Duration>
  readonly idempotent: boolean
}): Route => ({
  servers: input.servers,
  cluster: input.servers.length > 1 || Option.isSome(input.hold) || input.idempotent,
  profile: input.profile === "nomad" ? "nomad" : "consul",
  holdTimeout: Option.getOrUndefined(input.hold),
  idempotent: input.idempotent
})

/** Calls to the route's servers, and what they did. */
export interface Target {
  readonly rpc: (method: string, args: unknown, timeout: Duration.Duration) => Effect.Effect<Value, RpcError | ClusterError>
  /** Calls that went to each server (attempts, through a cluster). */
  readonly perServer: Effect.Effect<Readonly<Record<string, number>>>
  /** Attempts after the first, over all calls (0 straight to one server). */
  readonly retries: Effect.Effect<number>
  /** The server calls go to now. */
  readonly current: Effect.Effect<string>
}

/**
 * The route as a `Target` over the pool in context. A cluster here starts
 * with the first server given and has neither discovery nor rebalancing:
 * the command is short-lived and the user named the servers, in order.
 */
export const target = (r: Route): Effect.Effect<Target, ClusterError, RpcPool | Scope.Scope> =>
  Effect.gen(function*() {
    if (!r.cluster) {
      const pool = yield* RpcPool
      const address = r.servers[0]!
      let calls = 0
      return {
        rpc: (method, args, timeout) =>
          Effect.suspend(() => {
            calls++
            return pool.rpc(address, method, args, { timeout })
          }),
        perServer: Effect.sync(() => ({ [address]: calls })),
        retries: Effect.succeed(0),
        current: Effect.succeed(address)
      } satisfies Target
    }
    const cluster = yield* RpcCluster.make({
      servers: r.servers,
      profile: r.profile,
      holdTimeout: r.holdTimeout,
      // The servers are tried in the order the user gave them.
      shuffle: false,
      discovery: false,
      rebalance: false
    })
    return {
      rpc: (method, args, timeout) => cluster.rpc(method, args, { timeout, idempotent: r.idempotent }),
      perServer: Effect.map(cluster.stats, (s) => Object.fromEntries(s.servers.map((x) => [x.address, x.calls]))),
      retries: Effect.map(cluster.stats, (s) => s.retries),
      current: Effect.map(cluster.stats, (s) => s.current ?? r.servers[0]!)
    } satisfies Target
  })
