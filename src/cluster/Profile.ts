/**
 * The timers of Consul's and Nomad's clients, as pure functions of their
 * inputs (the random draw included), so tests check the formulas without a
 * clock and the cluster draws the randomness from Effect's `Random`.
 *
 * - Consul: `agent/router/manager.go` (rebalance), `agent/consul/client.go`
 *   and `rpc.go` (hold timeout, backoff), `agent/structs/structs.go`
 *   (blocking queries), `lib/cluster.go` (`RateScaledInterval`).
 * - Nomad: `client/servers/manager.go` (rebalance), `client/rpc.go` (hold
 *   timeout, blocking time).
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

export type ProfileName = "consul" | "nomad"

/** Both clients start their backoff at `hold / 16` (`structs.JitterFraction`). */
export const jitterFraction = 16

/**
 * New connections per second and per server that rebalancing may cause
 * cluster-wide (`newRebalanceConnsPerSecPerServer`, 64 in both).
 */
export const rebalanceConnsPerSecPerServer = 64

export interface Profile {
  readonly name: ProfileName
  /** How long a call keeps retrying after its first attempt (`RPCHoldTimeout`). */
  readonly holdTimeout: Duration.Duration
  /** Delay before the first rebalance: the timer's initial value. */
  readonly firstRebalance: Duration.Duration
  /**
   * The delay before each later rebalance, for a uniform draw `u` in [0, 1),
   * the cluster's member count and the servers in the list.
   */
  readonly rebalanceDelay: (u: number, members: number, servers: number) => Duration.Duration
  /** Cap on a blocking query's `MaxQueryTime` (the server's `max_query_time`). */
  readonly maxQueryTime: Duration.Duration
  /** A blocking query's wait when its `MaxQueryTime` is 0 (`default_query_time`). */
  readonly defaultQueryTime: Duration.Duration
}

/**
 * `lib.RateScaledInterval`: `n / rate` seconds, but never under `min`, so
 * `n` clients rebalancing against `servers` make at most 64 connections per
 * second per server.
 */
export const rateScaledInterval = (rate: number, min: Duration.Duration, n: number): Duration.Duration => {
  if (rate <= 0) return min
  const scaled = Duration.seconds(n / rate)
  return Duration.isGreaterThan(scaled, min) ? scaled : min
}

/** Consul's connection reuse floor: 120 s (`clientRPCMinReuseDuration`). */
const consulMinReuse = Duration.seconds(120)
/** Consul adds up to half of it again (`clientRPCJitterFraction` 2): 60 s. */
const consulReuseJitter = Duration.seconds(60)
/** Nomad's floor: 5 minutes. */
const nomadMinReuse = Duration.minutes(5)

export const consul: Profile = {
  name: "consul",
  holdTimeout: Duration.seconds(7),
  firstRebalance: consulMinReuse,
  // max(120 s + U[0, 60 s), members / (64 × servers) s)
  rebalanceDelay: (u, members, servers) =>
    rateScaledInterval(
      servers * rebalanceConnsPerSecPerServer,
      Duration.sum(consulMinReuse, Duration.times(consulReuseJitter, u)),
      members
    ),
  maxQueryTime: Duration.seconds(600),
  defaultQueryTime: Duration.seconds(300)
}

export const nomad: Profile = {
  name: "nomad",
  holdTimeout: Duration.seconds(5),
  firstRebalance: nomadMinReuse,
  // d = max(5 min, nodes / (64 × servers) s), then d + U[0, d)
  rebalanceDelay: (u, members, servers) => {
    const d = rateScaledInterval(servers * rebalanceConnsPerSecPerServer, nomadMinReuse, members)
    return Duration.sum(d, Duration.times(d, u))
  },
  // Nomad's server caps blocking queries at 5 minutes (`MaxBlockingRPCQueryTime`).
  maxQueryTime: Duration.seconds(300),
  defaultQueryTime: Duration.seconds(300)
}

export const byName: Readonly<Record<ProfileName, Profile>> = { consul, nomad }

/**
 * The ceiling of the n-th backoff (n from 1): `hold / 16 × 2^(n−1)` in
 * milliseconds (Consul's `getWaitTime`, at least 1 ms).
 */
export const backoffCeiling = (holdMillis: number, n: number): number =>
  Math.max(1, Math.floor(holdMillis / jitterFraction)) * 2 ** Math.max(0, n - 1)

/**
 * The n-th backoff, staggered as Consul's `RandomStaggerWithRange(previous,
 * ceiling)`: uniform between the previous wait and the ceiling, so waits
 * grow but callers that failed together do not retry together.
 */
export const backoff = (holdMillis: number, n: number, previousMillis: number, u: number): number => {
  const ceiling = backoffCeiling(holdMillis, n)
  const floor = Math.min(previousMillis, ceiling)
  return floor + u * (ceiling - floor)
}

const numberOf = (value: unknown): number | undefined =>
  typeof value === "number" && Number.isFinite(value) ? value : typeof value === "bigint" ? Number(value) : undefined

/**
 * How long a blocking query may wait, in milliseconds, read from its args as
 * Consul's `QueryOptions.BlockingTimeout` does: 0 unless `MinQueryIndex > 0`;
 * then `MaxQueryTime` (Go nanoseconds) capped at the profile's
 * `maxQueryTime`, or its `defaultQueryTime` when not positive, plus 1/16.
 */
export const blockingMillis = (args: unknown, profile: Pick<Profile, "maxQueryTime" | "defaultQueryTime">): number => {
  if (typeof args !== "object" || args === null) return 0
  const options = args as { readonly MinQueryIndex?: unknown; readonly MaxQueryTime?: unknown }
  const index = numberOf(options.MinQueryIndex)
  if (index === undefined || index <= 0) return 0
  const nanos = numberOf(options.MaxQueryTime) ?? 0
  const cap = Duration.toMillis(profile.maxQueryTime)
  const wait = nanos <= 0 ? Duration.toMillis(profile.defaultQueryTime) : Math.min(nanos / 1e6, cap)
  return wait + wait / jitterFraction
}
