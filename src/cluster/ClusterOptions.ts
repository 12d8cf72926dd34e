/**
 * `RpcCluster.make`'s options, their defaults as named constants, and their
 * normalisation: every default applied and every bound checked once, before
 * the cluster exists.
 *
 * @since 0.1.0
 */
import { Duration, Option, Schedule } from "effect"
import * as Observability from "../observability/Observability.ts"
import { ClusterError } from "./ClusterError.ts"
import type { Profile, ProfileName } from "./Profile.ts"
import { byName } from "./Profile.ts"

/** Default `profile`: `"consul"` (7 s hold, rebalance every 120-180 s). */
export const defaultProfile: ProfileName = "consul"
/** Default `members`: 0, so the rebalance period is the profile's floor. */
export const defaultMembers = 0
/**
 * Default `pingTimeout`: 10 seconds, Consul's dial timeout; its ping has no
 * deadline of its own, and a live server answers in milliseconds.
 */
export const defaultPingTimeout = Duration.seconds(10)
/**
 * Default discovery period: every 30 seconds. A server that joins gets its
 * first traffic within one period plus one rebalance; a thousand clients
 * cost the cluster about 33 `Status.Peers` calls a second.
 */
export const defaultDiscoveryInterval = Duration.seconds(30)
/** Default discovery method: `Status.Peers` (the raft peers' RPC addresses, in Consul and Nomad). */
export const defaultDiscoveryMethod = "Status.Peers"

export interface DiscoveryOptions {
  /** When to refresh the list after the first refresh at start. Default every 30 seconds. */
  readonly schedule?: Schedule.Schedule<unknown> | undefined
  /** Add new servers without pinging them first (Nomad's `force`). Default false. */
  readonly force?: boolean | undefined
  /** The method answering the server list. Default `Status.Peers`. */
  readonly method?: string | undefined
}

export interface Options {
  /** Seed servers, `host:port` (`[v6]:port` for IPv6), at least one. */
  readonly servers: ReadonlyArray<string>
  /**
   * Shuffle the seeds at start, so clients sharing one configuration spread
   * over the servers from their first call. `false` starts with the first
   * seed (a command line naming its servers in order). Default true.
   */
  readonly shuffle?: boolean | undefined
  /** Consul's or Nomad's timers and limits. Default `"consul"`. */
  readonly profile?: ProfileName | undefined
  /** How long a call keeps retrying after its first attempt. Default 7 s (consul) or 5 s (nomad). */
  readonly holdTimeout?: Duration.Input | undefined
  /**
   * When to rebalance: the profile's timer (Consul: first after 120 s, then
   * `max(120 s + U[0, 60 s), members / (64 × servers) s)`; Nomad: first after
   * 5 min, then `d + U[0, d)` with `d = max(5 min, members / (64 × servers) s)`),
   * another profile's, a `Schedule`, or `false` for never. Default the profile's.
   */
  readonly rebalance?: ProfileName | Schedule.Schedule<unknown> | false | undefined
  /** Cluster members (clients and servers) for the rate-scaled rebalance period. Default 0. */
  readonly members?: number | undefined
  /** Refresh the list from the servers. Default on, every 30 s, with `Status.Peers`; `false` turns it off. */
  readonly discovery?: boolean | DiscoveryOptions | undefined
  /** Deadline of a rebalance or discovery ping. Default 10 seconds. */
  readonly pingTimeout?: Duration.Input | undefined
  /** Cap on a blocking query's `MaxQueryTime`. Default 600 s (consul) or 300 s (nomad). */
  readonly maxQueryTime?: Duration.Input | undefined
  /** A blocking query's wait when its `MaxQueryTime` is 0. Default 300 s. */
  readonly defaultQueryTime?: Duration.Input | undefined
  /**
   * Metrics and spans (docs/observability.md): `connpool.cluster.*` counts, and
   * with spans on a `connpool.cluster.call` span over each call's attempts,
   * a failover event per retry. Default: metrics on, spans off.
   */
  readonly observability?: Observability.Options | undefined
  /**
   * Names the cluster on its metrics (`connpool.cluster.name`) and log lines.
   * Default the profile's name (`consul` or `nomad`); give two clusters of one
   * profile in one process different names, or their series mix.
   */
  readonly name?: string | undefined
}

export interface Config {
  readonly servers: ReadonlyArray<string>
  readonly shuffle: boolean
  readonly profile: Profile
  readonly holdMillis: number
  /** undefined: never rebalance. */
  readonly rebalance: Profile | Schedule.Schedule<unknown> | undefined
  readonly members: number
  /** undefined: no discovery. */
  readonly discovery: { readonly schedule: Schedule.Schedule<unknown>; readonly force: boolean; readonly method: string } | undefined
  readonly pingTimeout: Duration.Duration
  readonly blocking: Pick<Profile, "maxQueryTime" | "defaultQueryTime">
  readonly observability: Observability.Config
  readonly name: string
}

/**
 * `host:port` with a port in 1..65535 and a non-empty host, trimmed; the
 * canonical form the pool keys sessions by. undefined when malformed.
 */
export const parseServer = (text: string): string | undefined => {
  const s = text.trim()
  const colon = s.lastIndexOf(":")
  if (colon <= 0) return undefined
  const host = s.slice(0, colon)
  const port = s.slice(colon + 1)
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return undefined
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  if (bare === "" || /[\s/]/.test(bare) || (bare.includes(":") && bare === host)) return undefined
  return `${host}:${Number(port)}`
}

/** Splits `a:8300,b:8300` (what `CONNPOOL_SERVERS` and the CLI take), dropping empty items. */
export const splitServers = (text: string): Array<string> =>
  text.split(",").map((s) => s.trim()).filter((s) => s !== "")

/** The error of a refused option. */
export const invalidOption = (option: string, detail: string): ClusterError =>
  new ClusterError({ reason: "InvalidOption", address: "", method: "", attempts: [], exhausted: false, detail: `${option}: ${detail}` })

const duration = (option: string, value: Duration.Input | undefined, fallback: Duration.Duration, positive: boolean) => {
  const d = value === undefined ? Option.some(fallback) : Duration.fromInput(value)
  if (Option.isNone(d) || Duration.isNegative(d.value) || (positive && Duration.isZero(d.value))) {
    return invalidOption(option, `expected a duration ${positive ? "> 0" : ">= 0"}`)
  }
  return d.value
}

/** Applies defaults and checks bounds; a bad option is a `ClusterError` with reason `InvalidOption`. */
export const normalize = (options: Options): Config | ClusterError => {
  const servers: Array<string> = []
  for (const text of options.servers) {
    const server = parseServer(text)
    if (server === undefined) return invalidOption("servers", `expected host:port, got ${JSON.stringify(text)}`)
    if (!servers.includes(server)) servers.push(server)
  }
  if (servers.length === 0) return invalidOption("servers", "at least one host:port")
  const name = options.profile ?? defaultProfile
  const profile = byName[name]
  if (profile === undefined) return invalidOption("profile", `expected consul or nomad, got ${String(name)}`)
  const hold = duration("holdTimeout", options.holdTimeout, profile.holdTimeout, true)
  if (hold instanceof ClusterError) return hold
  const pingTimeout = duration("pingTimeout", options.pingTimeout, defaultPingTimeout, true)
  if (pingTimeout instanceof ClusterError) return pingTimeout
  const maxQueryTime = duration("maxQueryTime", options.maxQueryTime, profile.maxQueryTime, false)
  if (maxQueryTime instanceof ClusterError) return maxQueryTime
  const defaultQueryTime = duration("defaultQueryTime", options.defaultQueryTime, profile.defaultQueryTime, false)
  if (defaultQueryTime instanceof ClusterError) return defaultQueryTime
  const observability = Observability.normalize(options.observability)
  if (Observability.isProblem(observability)) return invalidOption(observability.option, observability.detail)
  const clusterName = options.name ?? name
  if (typeof clusterName !== "string") return invalidOption("name", `expected a string, got ${typeof clusterName}`)
  const members = options.members ?? defaultMembers
  if (!Number.isFinite(members) || members < 0) return invalidOption("members", `expected a number >= 0, got ${members}`)

  const r = options.rebalance ?? name
  let rebalance: Config["rebalance"]
  if (r === false) rebalance = undefined
  else if (typeof r === "string") {
    rebalance = byName[r]
    if (rebalance === undefined) return invalidOption("rebalance", `expected consul, nomad, a Schedule or false, got ${r}`)
  } else if (Schedule.isSchedule(r)) rebalance = r
  else return invalidOption("rebalance", "expected consul, nomad, a Schedule or false")

  const d = options.discovery ?? true
  const discovery = d === false ? undefined : {
    schedule: (d === true ? undefined : d.schedule) ?? Schedule.spaced(defaultDiscoveryInterval),
    force: d === true ? false : d.force ?? false,
    method: (d === true ? undefined : d.method) ?? defaultDiscoveryMethod
  }

  return {
    servers,
    shuffle: options.shuffle ?? true,
    profile,
    holdMillis: Duration.toMillis(hold),
    rebalance,
    members,
    discovery,
    pingTimeout,
    blocking: { maxQueryTime, defaultQueryTime },
    observability,
    name: clusterName
  }
}
