/**
 * What `npm run bench` measures, and the targets of issues 5, 12 and 16, in one place: the loads of
 * (a), (b) and (e), the contenders of (c), the sizes of (d), and how long each run lasts in a full
 * and in a `--quick` run.
 */

export type ScenarioId = "a" | "b" | "c" | "d" | "e" | "f" | "g"
export const scenarioIds: ReadonlyArray<ScenarioId> = ["a", "b", "c", "d", "e", "f", "g"]

export const scenarioTitles: Readonly<Record<ScenarioId, string>> = {
  a: "(a) RPC client: RpcPool against the Go client, both calling the Go server",
  b: "(b) RPC server: our RpcServer against the Go server, both called by the Go client",
  c: "(c) ConnPool acquire/release against effect's Pool.use, generic-pool and tarn",
  d: "(d) Memory of RpcPool",
  e: "(e) RpcCluster: calls through a three-server cluster against calls straight to one server",
  f: "(f) Streaming RPC: RpcPool.stream against the Go client, both reading the Go server's endless Test.Fill",
  g: "(g) Observability: what metrics and spans cost, (a) at 64 callers and (c), each off and on"
}

/** One load of (a) and (b): callers in flight and `Test.Echo` payload bytes. */
export interface Load {
  readonly callers: number
  readonly size: number
}

export const loads: ReadonlyArray<Load> = [
  { callers: 1, size: 32 },
  { callers: 16, size: 32 },
  { callers: 64, size: 32 },
  { callers: 256, size: 32 },
  { callers: 8, size: 64 * 1024 },
  { callers: 8, size: 1024 * 1024 },
  { callers: 8, size: 8 * 1024 * 1024 }
]

export const loadKey = (load: Load): string => `${load.callers}x${load.size}`

export const sizeLabel = (bytes: number): string =>
  bytes >= 1 << 20 && bytes % (1 << 20) === 0
    ? `${bytes >> 20} MiB`
    : bytes >= 1024 && bytes % 1024 === 0
    ? `${bytes >> 10} KiB`
    : `${bytes} B`

/** (a): RpcPool calls/s over the Go client's, at least this, by load (issue 16). Loads not listed have no target. */
export const clientTargets: Readonly<Record<string, number>> = {
  [loadKey({ callers: 1, size: 32 })]: 1,
  [loadKey({ callers: 64, size: 32 })]: 1,
  [loadKey({ callers: 8, size: 64 * 1024 })]: 1,
  [loadKey({ callers: 8, size: 1024 * 1024 })]: 1
}

/** (b): our server's calls/s over the Go server's, at least this at the loads of issue 5... */
export const serverTarget = 0.5

/** ...by load: 1 MiB raised by issue 16; 8 MiB (added by issue 16) has none. */
export const serverTargets: Readonly<Record<string, number>> = Object.fromEntries(
  loads
    .filter((load) => load.size < 8 * 1024 * 1024)
    .map((load) => [loadKey(load), load.size === 1024 * 1024 ? 1 : serverTarget])
)

/** (c): the contenders, as bench/acquire.ts names them; ConnPool's ops/s over theirs must reach the target. */
export const acquireContenders = ["connpool", "effect-pool", "generic-pool", "tarn"] as const
export type AcquireContender = typeof acquireContenders[number]
export const acquireNames: Readonly<Record<AcquireContender, string>> = {
  "connpool": "ConnPool.use",
  "effect-pool": "effect Pool.use",
  "generic-pool": "generic-pool",
  "tarn": "tarn"
}
export const acquireTargets: Readonly<Partial<Record<AcquireContender, number>>> = {
  "effect-pool": 1,
  "generic-pool": 1
}
/** (c): ConnPool's p99 wait for a connection must be no worse than these contenders' (issue 11). */
export const acquireWaitTargets: ReadonlyArray<AcquireContender> = ["generic-pool"]

/**
 * (c): how the borrowers behave, as bench/acquire.ts's `--start` and `--hold` (issue 11): queued
 * behind every connection at the start or not, holding a connection across a yield to the event
 * loop or not.
 */
export interface AcquireVariant {
  readonly start: "held" | "free"
  readonly hold: "none" | "yield"
}
export const acquireVariants: ReadonlyArray<AcquireVariant> = [
  { start: "held", hold: "none" },
  { start: "free", hold: "none" },
  { start: "free", hold: "yield" }
]
export const variantLabel = (v: AcquireVariant): string =>
  `start ${v.start}${v.hold === "yield" ? ", yield while holding" : ""}`

/** (e): the loads, calls through the cluster against calls straight to its current server. */
export const clusterLoads: ReadonlyArray<Load> = [
  { callers: 1, size: 32 },
  { callers: 64, size: 32 }
]

/** (e): the cluster's calls/s over the pool's, at least this (an overhead of at most 5 %), at every load. */
export const clusterTarget = 0.95

/**
 * (f): the payloads of Nomad's frames. `binary` is not UTF-8 and decodes straight to bytes;
 * `text` (ASCII, as plain-text logs are) decodes as a string first, since go-msgpack writes
 * `[]byte` in the str family.
 */
export type StreamPayload = "binary" | "text"
export const streamPayloads: ReadonlyArray<StreamPayload> = ["binary", "text"]

/** (f): payload bytes per frame, the most Nomad's log streamer puts in one (64 KiB). */
export const streamFrameSize = 64 * 1024

/** (f): our MB/s over the Go client's, at least this, for every payload. */
export const streamingTarget = 0.8

/** (d): heap growth between the warm point and the end, in percent, below this. */
export const heapGrowthTargetPct = 5

export interface Mode {
  readonly quick: boolean
  readonly rounds: number
  /** Go-style durations, passed to both RPC clients as they are. */
  readonly warmup: string
  readonly duration: string
  /** The same in ms, for time estimates and child timeouts. */
  readonly warmupMs: number
  readonly durationMs: number
  /** `--ops` for bench/acquire.ts: a fixed count that keeps each run to a few seconds; undefined keeps its default. */
  readonly acquireOps: number | undefined
  /** (g): calls per run of (a)'s client after its warm-up; CPU per call is measured over them. */
  readonly observabilityCalls: number
  readonly memory: {
    readonly sessions: number
    readonly streams: number
    readonly calls: number
    readonly warmCalls: number
    readonly concurrency: number
  }
}

/**
 * A full run: 1 s of warm-up (V8 needs it to tier up; Go gets the same) and 2 s measured per
 * run, three rounds, 1 M calls for the heap growth, as the issue asks.
 */
export const fullMode = (rounds: number): Mode => ({
  quick: false,
  rounds,
  warmup: "1s",
  duration: "2s",
  warmupMs: 1000,
  durationMs: 2000,
  acquireOps: 500_000,
  observabilityCalls: 200_000,
  memory: { sessions: 100, streams: 64, calls: 1_000_000, warmCalls: 100_000, concurrency: 64 }
})

/** A smoke run: proves every piece works in about a minute; its numbers are not to be quoted. */
export const quickMode = (rounds: number): Mode => ({
  quick: true,
  rounds,
  warmup: "200ms",
  duration: "500ms",
  warmupMs: 200,
  durationMs: 500,
  acquireOps: 200_000,
  observabilityCalls: 30_000,
  memory: { sessions: 20, streams: 16, calls: 100_000, warmCalls: 20_000, concurrency: 64 }
})
