/**
 * `connpool bench ADDR`: `Test.Echo` calls through the pool (or, for several
 * servers, through a cluster), each reply checked, failures counted by
 * reason without stopping.
 *
 * @since 0.1.0
 */
import { randomFillSync } from "node:crypto"
import { Cause, Clock, Console, Duration, Effect, Exit, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { asBytes } from "../msgpackrpc/Decoder.ts"
import type { ClusterError } from "../cluster/ClusterError.ts"
import * as RpcPool from "../rpc/RpcPool.ts"
import type { RpcError } from "../rpc/RpcError.ts"
import { addresses, hold, route, target } from "./cluster.ts"
import type { Route } from "./cluster.ts"
import { CliExit, ExitRemote, UsageError } from "./exit.ts"
import { clientTlsFlags, optionalDuration, protocol, timeout, toClientTls } from "./flags.ts"
import { table } from "./json.ts"
import * as Progress from "./progress.ts"

/** Calls when neither `--calls` nor `--duration` is given: 10000. */
export const DefaultCalls = 10_000

/** `--concurrency` default: 16 calls in flight. */
export const DefaultConcurrency = 16

/** `--size` default: 1024 payload bytes. */
export const DefaultSize = 1024

/** The `Note` field of every bench call. */
export const BenchNote = "connpool bench"

export interface BenchOptions {
  readonly address: string
  /** Several servers: calls go through a cluster of them instead of straight to `address`. */
  readonly route?: Route | undefined
  /** Stop after this many calls (when `duration` is not given). */
  readonly calls?: number | undefined
  /** Stop starting calls after this long. */
  readonly duration?: Duration.Duration | undefined
  readonly concurrency: number
  /** Payload bytes per call. */
  readonly size: number
  readonly timeout: Duration.Duration
  /** Draw progress on stderr. */
  readonly progress: boolean
}

/** What `--json` prints, in this key order. */
export interface BenchResult {
  readonly calls: number
  readonly ok: number
  readonly failed: number
  /** Failed calls by `RpcError` reason (or error tag); `ReplyMismatch` for a wrong echo. */
  readonly errors: Readonly<Record<string, number>>
  readonly seconds: number
  readonly callsPerSec: number
  /** Payload bytes of successful calls, one way, in 10^6 bytes per second. */
  readonly mbPerSec: number
  /** Latency percentiles of successful calls. */
  readonly p50Ms: number
  readonly p99Ms: number
  /** Attempts after the first (a cluster's failovers; 0 straight to one server). */
  readonly retries: number
  /** Calls (attempts, through a cluster) by server. */
  readonly perServer: Readonly<Record<string, number>>
}

// Payloads are windows into one random block, so consecutive calls carry
// different bytes without generating `size` random bytes per call.
const PayloadShift = 256

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))

/** Same Seq and same bytes; an empty payload may come back as nil. */
export const echoMatches = (reply: unknown, seq: number, payload: Uint8Array): boolean => {
  if (typeof reply !== "object" || reply === null) return false
  const r = reply as Record<string, unknown>
  const s = r["Seq"]
  if (!(s === seq || (typeof s === "bigint" && s === BigInt(seq)))) return false
  const p = r["Payload"]
  if (p === null || p === undefined) return payload.byteLength === 0
  if (typeof p !== "string" && !(p instanceof Uint8Array)) return false
  return bytesEqual(asBytes(p), payload)
}

/** Nearest-rank percentile of ascending `sorted`, 0 when empty. */
export const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)))
  return sorted[rank - 1]!
}

const round = (n: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

const errorKey = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const e = error as { readonly reason?: unknown; readonly _tag?: unknown }
    if (typeof e.reason === "string") return e.reason
    if (typeof e._tag === "string") return e._tag
  }
  return "Unknown"
}

const causeKey = (cause: Cause.Cause<unknown>): string => {
  const failure = cause.reasons.find(Cause.isFailReason)
  if (failure !== undefined) return errorKey(failure.error)
  return cause.reasons.some(Cause.isDieReason) ? "Defect" : "Interrupted"
}

/**
 * Runs the bench against `options.address` with the pool in context. A
 * `Status.Ping` first fails fast (with its `RpcError`) when the server cannot
 * be reached, and warms the connection so the numbers measure calls, not the
 * dial.
 */
export const runBench = (options: BenchOptions): Effect.Effect<BenchResult, RpcError | ClusterError, RpcPool.RpcPool> =>
  Effect.scoped(Effect.gen(function*() {
    const calls = yield* target(
      options.route ?? route({ servers: [options.address], profile: "consul", hold: Option.none(), idempotent: false })
    )
    yield* calls.rpc("Status.Ping", {}, options.timeout)

    const total = options.duration === undefined ? options.calls ?? DefaultCalls : undefined
    const block = randomFillSync(new Uint8Array(options.size + PayloadShift))
    const payloadFor = (seq: number) => block.subarray(seq % PayloadShift, (seq % PayloadShift) + options.size)
    const latencies: Array<number> = []
    const errors: Record<string, number> = {}
    let started = 0
    let ok = 0
    let failed = 0

    const progress = options.progress
      ? yield* Progress.make({ label: "bench", total, duration: options.duration })
      : { record: (_ok: boolean) => {} }

    const start = yield* Clock.currentTimeNanos
    const deadline = options.duration === undefined
      ? undefined
      : start + BigInt(Math.round(Duration.toMillis(options.duration) * 1e6))

    const worker = Effect.gen(function*() {
      while (true) {
        if (total !== undefined) {
          if (started >= total) return
        } else if ((yield* Clock.currentTimeNanos) >= deadline!) {
          return
        }
        const seq = ++started
        const payload = payloadFor(seq)
        const t0 = yield* Clock.currentTimeNanos
        const exit = yield* Effect.exit(
          calls.rpc("Test.Echo", { Payload: payload, Seq: seq, Note: BenchNote }, options.timeout)
        )
        const t1 = yield* Clock.currentTimeNanos
        if (Exit.isSuccess(exit) && echoMatches(exit.value, seq, payload)) {
          ok++
          latencies.push(Number(t1 - t0) / 1e6)
          progress.record(true)
        } else {
          const key = Exit.isSuccess(exit) ? "ReplyMismatch" : causeKey(exit.cause)
          errors[key] = (errors[key] ?? 0) + 1
          failed++
          progress.record(false)
        }
      }
    })

    yield* Effect.forEach(Array.from({ length: options.concurrency }), () => worker, {
      concurrency: "unbounded",
      discard: true
    })
    const end = yield* Clock.currentTimeNanos

    const seconds = Math.max(Number(end - start) / 1e9, 1e-9)
    const sorted = Float64Array.from(latencies).sort()
    const made = ok + failed
    return {
      calls: made,
      ok,
      failed,
      errors,
      seconds: round(seconds, 3),
      callsPerSec: round(made / seconds, 1),
      mbPerSec: round((ok * options.size) / 1e6 / seconds, 3),
      p50Ms: round(percentile(sorted, 0.5), 3),
      p99Ms: round(percentile(sorted, 0.99), 3),
      retries: yield* calls.retries,
      perServer: yield* calls.perServer
    }
  }))

/** One JSON line, keys in the documented order. */
export const formatJson = (r: BenchResult): string =>
  JSON.stringify({
    calls: r.calls,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
    seconds: r.seconds,
    callsPerSec: r.callsPerSec,
    mbPerSec: r.mbPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    retries: r.retries,
    perServer: r.perServer
  })

/** The human summary table. */
export const formatTable = (r: BenchResult, options: { readonly size: number; readonly concurrency: number }): string =>
  table([
    ["calls", String(r.calls)],
    ["ok", String(r.ok)],
    ["failed", String(r.failed)],
    ...Object.entries(r.errors).map(([k, n]) => [`  ${k}`, String(n)] as const),
    ["concurrency", String(options.concurrency)],
    ["payload", `${options.size} B`],
    ["seconds", r.seconds.toFixed(3)],
    ["calls/s", r.callsPerSec.toFixed(1)],
    ["MB/s", r.mbPerSec.toFixed(3)],
    ["p50", `${r.p50Ms.toFixed(3)} ms`],
    ["p99", `${r.p99Ms.toFixed(3)} ms`],
    ["retries", String(r.retries)],
    ...Object.entries(r.perServer).map(([server, n]) => [`  ${server}`, String(n)] as const)
  ])

/** Fails with exit 1 (message on stderr) when any call failed. */
export const failOnFailures = (r: BenchResult): Effect.Effect<void, CliExit> =>
  r.failed === 0
    ? Effect.void
    : Effect.fail(
      new CliExit({
        code: ExitRemote,
        message: `${r.failed} of ${r.calls} calls failed (${
          Object.entries(r.errors).map(([k, n]) => `${k}: ${n}`).join(", ")
        })`
      })
    )

const positive = (n: number): Option.Option<number> => n >= 1 ? Option.some(n) : Option.none()

export const bench = Command.make(
  "bench",
  {
    addresses,
    calls: Flag.Int("calls").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription(`Number of calls (default ${DefaultCalls} unless --duration is given)`),
      Flag.filterMap(positive, () => "an integer of at least 1"),
      Flag.optional
    ),
    duration: optionalDuration("duration", "Keep starting calls for this long instead of a fixed number"),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withMetavar("C"),
      Flag.withDescription(`Calls in flight at once (default ${DefaultConcurrency})`),
      Flag.withDefault(DefaultConcurrency),
      Flag.filterMap(positive, () => "an integer of at least 1")
    ),
    size: Flag.Int("size").pipe(
      Flag.withMetavar("BYTES"),
      Flag.withDescription(`Random payload bytes per call (default ${DefaultSize})`),
      Flag.withDefault(DefaultSize),
      Flag.filter((n) => n >= 0, () => "an integer of at least 0")
    ),
    protocol,
    timeout,
    hold,
    tls: clientTlsFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print one JSON line instead of the progress bar and table"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      if (Option.isSome(input.calls) && Option.isSome(input.duration)) {
        return yield* new UsageError({ message: "give either --calls or --duration, not both" })
      }
      // The echo may run twice, so a cluster retries it after a lost connection too.
      const r = route({ servers: input.addresses, profile: input.protocol.name, hold: input.hold, idempotent: false })
      const options: BenchOptions = {
        address: input.addresses[0]!,
        route: r.cluster ? { ...r, idempotent: true } : undefined,
        calls: Option.getOrUndefined(input.calls),
        duration: Option.getOrUndefined(input.duration),
        concurrency: input.concurrency,
        size: input.size,
        timeout: input.timeout,
        progress: !input.json
      }
      const result = yield* runBench(options).pipe(
        Effect.provide(RpcPool.PoolLayer({
          protocol: input.protocol,
          dialTimeout: input.timeout,
          callTimeout: input.timeout,
          ...(tls === undefined ? {} : { tls })
        }))
      )
      yield* Console.log(input.json ? formatJson(result) : formatTable(result, options))
      yield* failOnFailures(result)
    })
).pipe(
  Command.withShortDescription("Benchmark Test.Echo calls and check every reply"),
  Command.withDescription(
    [
      "Calls Test.Echo {Payload: random --size bytes, Seq: call number, Note} through the pool",
      "with --concurrency calls in flight, and checks each reply carries the same Seq and bytes.",
      "Failures are counted by reason (RpcError reason, or ReplyMismatch) and the run carries on.",
      "",
      "With several servers (a:8300,b:8300) the calls go through a cluster, marked idempotent,",
      "and fail over within --hold.",
      "",
      "--json prints one line: {calls, ok, failed, errors: {Reason: count}, seconds, callsPerSec,",
      "mbPerSec, p50Ms, p99Ms, retries, perServer: {ADDR: calls}}. mbPerSec counts payload bytes",
      "of successful calls one way (10^6 bytes); p50Ms/p99Ms are latencies of successful calls;",
      "retries counts a cluster's failovers and perServer its attempts by server. Without --json:",
      "a progress bar on stderr and a table on stdout.",
      "",
      "Exit status: 0 when every call succeeded; 1 when any call failed; 2 when the server",
      "cannot be reached at all (a Status.Ping is made first) or on a usage error."
    ].join("\n  ")
  )
)
