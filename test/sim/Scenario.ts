/**
 * What one seed builds: the size of the world, the pool's and the servers'
 * options, the workload and the fault plan, all drawn from the seed. Values
 * are small on purpose (a handful of stream slots, sub-second timeouts,
 * keepalives of a second or two) so limits, timers and faults meet within a
 * few hundred simulated milliseconds.
 */
import type { Prng } from "./Prng.ts"

export type FaultKind =
  | "reset"
  | "destroy"
  | "sever"
  | "restart"
  | "dark"
  | "goAway"
  | "slowReader"
  | "wallStep"
  | "stall"
  | "kvReset"
  | "kvDown"

export interface Scenario {
  readonly servers: number
  readonly callers: number
  readonly callsPerCaller: number
  readonly maxThinkMillis: number
  readonly pool: {
    readonly callTimeout: number
    readonly dialTimeout: number
    readonly maxTime: number
    readonly reapInterval: number
    readonly maxStreams: number
    readonly maxStreamsPerSession: number
    readonly maxPendingCalls: number
    readonly maxMessageSize: number
    readonly keepAlive: boolean
    readonly keepAliveInterval: number
    readonly writeTimeout: number
    readonly streamOpenTimeout: number
    readonly streamCloseTimeout: number
  }
  readonly server: {
    readonly maxStreamsPerSession: number
    readonly acceptBacklog: number
    readonly keepAlive: boolean
    readonly keepAliveInterval: number
    readonly streamCloseTimeout: number
    /** Serve the session in a fiber forked after the dial returns (the client may write first). */
    readonly lateAccept: boolean
  }
  readonly link: {
    readonly highWaterMark: number
    /** Chance a delivered chunk is cut, and chance a cut chunk is cut at every byte. */
    readonly splitChance: number
    readonly everyByteChance: number
  }
  /** Chance a call is given its own timeout instead of the pool's. */
  readonly ownTimeoutChance: number
  /** Per scheduler step: chance a call in flight is interrupted there. */
  readonly interruptChance: number
  readonly faults: ReadonlyArray<FaultKind>
  readonly faultGapMillis: number
  readonly kv: {
    readonly enabled: boolean
    readonly poolSize: number
    readonly poolTimeout: number
    readonly callers: number
    readonly opTimeout: number
  }
  /** The `RpcCluster` workload (ClusterLoad.ts), over a pool of its own. */
  readonly cluster: {
    readonly enabled: boolean
    /** Servers the list starts with; discovery (when on) learns the rest from `Status.Peers`. */
    readonly seeds: number
    readonly callers: number
    readonly callsPerCaller: number
    readonly holdMillis: number
    readonly idempotentChance: number
    /** Chance a server answers an attempt `No cluster leader` instead of running it. */
    readonly noLeaderChance: number
    /** The longest a handler runs (so restarts and resets land after sending). */
    readonly maxHandlerMillis: number
    /** Rebalance every so many millis; undefined: never. */
    readonly rebalanceMillis: number | undefined
    /** Discovery every so many millis (after a first round at start); undefined: off. */
    readonly discoveryMillis: number | undefined
    readonly pingTimeout: number
  }
}

const allFaults: ReadonlyArray<FaultKind> = [
  "reset",
  "destroy",
  "sever",
  "restart",
  "dark",
  "goAway",
  "slowReader",
  "wallStep",
  "stall",
  "kvReset",
  "kvDown"
]

export const draw = (prng: Prng): Scenario => {
  const callTimeout = prng.range(50, 2000)
  const calm = prng.chance(0.15)
  return {
    servers: prng.range(1, 3),
    callers: prng.range(1, 8),
    callsPerCaller: prng.range(1, 5),
    maxThinkMillis: prng.pick([0, 5, 50, 500]),
    pool: {
      callTimeout,
      dialTimeout: prng.range(20, 1000),
      maxTime: prng.pick([0, 100, 500, 2000]),
      reapInterval: prng.range(20, 500),
      maxStreams: prng.range(0, 4),
      maxStreamsPerSession: prng.range(1, 6),
      maxPendingCalls: prng.pick([1, 3, 10, 10_000]),
      maxMessageSize: prng.pick([1024, 64 * 1024 * 1024]),
      keepAlive: prng.chance(0.7),
      keepAliveInterval: prng.range(100, 3000),
      writeTimeout: prng.range(50, 1000),
      streamOpenTimeout: prng.range(50, 3000),
      streamCloseTimeout: prng.range(10, 2000)
    },
    server: {
      maxStreamsPerSession: prng.pick([1, 2, 4, 2048]),
      acceptBacklog: prng.pick([1, 2, 256]),
      keepAlive: prng.chance(0.5),
      keepAliveInterval: prng.range(100, 3000),
      streamCloseTimeout: prng.range(10, 2000),
      lateAccept: prng.chance(0.5)
    },
    link: {
      highWaterMark: prng.pick([16, 256, 16 * 1024]),
      splitChance: prng.pick([0, 0.2, 1]),
      everyByteChance: prng.pick([0, 0.1, 1])
    },
    ownTimeoutChance: prng.pick([0, 0.3]),
    interruptChance: prng.pick([0, 0.002, 0.01]),
    faults: calm ? [] : allFaults.filter(() => prng.chance(0.5)),
    faultGapMillis: prng.pick([10, 50, 200]),
    kv: {
      enabled: prng.chance(0.5),
      poolSize: prng.range(1, 4),
      poolTimeout: prng.range(10, 500),
      callers: prng.range(1, 6),
      opTimeout: prng.range(20, 500)
    },
    // Drawn last, so the seeds without a cluster build the same world as before it existed.
    cluster: drawCluster(prng)
  }
}

const drawCluster = (prng: Prng): Scenario["cluster"] => ({
  enabled: prng.chance(0.25),
  seeds: prng.range(1, 3),
  callers: prng.range(1, 4),
  callsPerCaller: prng.range(1, 3),
  // Consul's 7 s now and then; shorter holds mostly, so a seed's world does not outlive its faults by seconds.
  holdMillis: prng.pick([50, 300, 300, 1500, 7000]),
  idempotentChance: prng.pick([0, 0.5, 1]),
  noLeaderChance: prng.pick([0, 0.1, 0.5]),
  maxHandlerMillis: prng.pick([0, 20, 300]),
  rebalanceMillis: prng.pick([undefined, 50, 500]),
  discoveryMillis: prng.pick([undefined, 100, 1000]),
  pingTimeout: prng.range(20, 1000)
})
