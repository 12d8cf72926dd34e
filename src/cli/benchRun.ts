/**
 * The measuring part of `connpool bench` and `connpool demo`: workers making
 * calls through the pool, a warm-up excluded from the figures, failures
 * counted by reason without stopping, and a clean stop on interruption
 * (Ctrl-C) with the calls in flight let finish and the partial figures kept.
 *
 * @since 0.1.0
 */
import { randomFillSync } from "node:crypto"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Option } from "effect"
import type { ClusterError } from "../cluster/ClusterError.ts"
import { asBytes } from "../msgpackrpc/Decoder.ts"
import type { RpcError } from "../rpc/RpcError.ts"
import type * as RpcPool from "../rpc/RpcPool.ts"
import { route, target } from "./cluster.ts"
import type { Route } from "./cluster.ts"
import * as Progress from "./progress.ts"

/** Calls when neither `--calls` nor `--duration` is given: 10000. */
export const DefaultCalls = 10_000

/** `--concurrency` default: 16 calls in flight. */
export const DefaultConcurrency = 16

/** `--size` default: 1024 payload bytes. */
export const DefaultSize = 1024

/** `--method` default: the test service's echo, each reply checked. */
export const DefaultMethod = "Test.Echo"

/** `--warmup` default: 1 second of calls before measuring, as `npm run bench` warms up. */
export const DefaultWarmup = "1s"

/**
 * Longest wait, after an interruption, for the calls in flight: 5 seconds
 * (or the call timeout, if shorter). Calls still running then are cut.
 */
export const MaxDrain = Duration.seconds(5)

/** The `Note` field of every bench call. */
export const BenchNote = "connpool bench"

/** What each call sends: the checked echo, or any method with fixed arguments. */
export type BenchCall =
  | { readonly _tag: "Echo"; readonly size: number }
  | { readonly _tag: "Custom"; readonly method: string; readonly args: unknown }

export interface BenchOptions {
  readonly address: string
  /** Several servers: calls go through a cluster of them instead of straight to `address`. */
  readonly route?: Route | undefined
  /** Stop after this many measured calls (when `duration` is not given). */
  readonly calls?: number | undefined
  /** Stop starting measured calls after this long. */
  readonly duration?: Duration.Duration | undefined
  readonly concurrency: number
  /** Default: `Test.Echo` with `DefaultSize` random bytes. */
  readonly call?: BenchCall | undefined
  /** Calls made before measuring, excluded from every figure. Default: none. */
  readonly warmup?: Duration.Duration | undefined
  readonly timeout: Duration.Duration
  /** Draw progress on stderr. */
  readonly progress: boolean
}

/** The figures of a run; `null` where nothing can be said (no call succeeded, or bytes unknown). */
export interface BenchResult {
  readonly calls: number
  readonly ok: number
  readonly failed: number
  /** Failed calls by `RpcError` reason (or error tag); `ReplyMismatch` for a wrong echo. */
  readonly errors: Readonly<Record<string, number>>
  readonly seconds: number
  readonly callsPerSec: number | null
  /** Echo payload bytes of successful calls, one way, in 10^6 bytes per second; null for other methods. */
  readonly mbPerSec: number | null
  /** Latency percentiles of successful calls. */
  readonly p50Ms: number | null
  readonly p99Ms: number | null
  /** Attempts after the first (a cluster's failovers; 0 straight to one server), warm-up excluded. */
  readonly retries: number
  /** Calls (attempts, through a cluster) by server, warm-up excluded. */
  readonly perServer: Readonly<Record<string, number>>
  readonly method: string
  /** Stopped by a signal: the figures cover the calls finished until then. */
  readonly interrupted: boolean
}

// Payloads are windows into one random block, so consecutive calls carry
// different bytes without generating `size` random bytes per call.
const PayloadShift = 256

// `Buffer.compare` takes Uint8Arrays as they are: no Buffer view is made per call.
const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => a.byteLength === b.byteLength && Buffer.compare(a, b) === 0

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

/** Reasons that mean the server cannot be called at all, so a run would only count failures. */
const unreachable: ReadonlySet<string> = new Set([
  "DialFailed",
  "DialTimeout",
  "ConnectionLost",
  "StreamOpenFailed",
  "NoServers",
  "InvalidOption"
])

const nanosOf = (d: Duration.Duration): bigint => BigInt(Math.round(Duration.toMillis(d) * 1e6))

/** Counters of the measured phase. */
interface Tally {
  started: number
  ok: number
  failed: number
  readonly errors: Record<string, number>
  readonly latencies: Array<number>
  /** When measuring began (after the warm-up), and ended. */
  start: bigint | undefined
  end: bigint | undefined
  /** The target's counts when measuring began, to leave the warm-up out. */
  retriesBefore: number
  perServerBefore: Readonly<Record<string, number>>
}

/**
 * Runs the bench against `options.address` with the pool in context and
 * hands the figures to `report`.
 *
 * - The first call is made alone: when it fails because the server cannot be
 *   reached (dial, lost connection) the run fails with that `RpcError`.
 * - Then `warmup` of calls whose figures are dropped, then the measured calls.
 * - Interrupted (Ctrl-C), it starts no more calls, waits up to `MaxDrain`
 *   (or the call timeout) for those in flight, reports the partial figures
 *   with `interrupted: true`, and the interruption then stands.
 */
export const runBench = <E = never, R = never>(
  options: BenchOptions,
  report: (result: BenchResult) => Effect.Effect<void, E, R> = () => Effect.void
): Effect.Effect<BenchResult, RpcError | ClusterError | E, RpcPool.RpcPool | R> =>
  Effect.scoped(Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const calls = yield* target(
        options.route ?? route({ servers: [options.address], profile: "consul", hold: Option.none(), idempotent: false })
      )
      const spec: BenchCall = options.call ?? { _tag: "Echo", size: DefaultSize }
      const method = spec._tag === "Echo" ? DefaultMethod : spec.method
      const block = spec._tag === "Echo" ? randomFillSync(new Uint8Array(spec.size + PayloadShift)) : new Uint8Array(0)

      /**
       * One call: whether it counts as ok, or the key it failed with. `args` is the worker's own, set per call
       * (as `npm run bench`'s client reuses one per caller), so a call allocates no args object.
       */
      const once = (seq: number, args: { Payload: Uint8Array; Seq: number; Note: string }): Effect.Effect<true | string> => {
        if (spec._tag === "Custom") {
          return Effect.map(Effect.exit(calls.rpc(method, spec.args, options.timeout)), (exit) =>
            Exit.isSuccess(exit) ? true : causeKey(exit.cause))
        }
        const payload = block.subarray(seq % PayloadShift, (seq % PayloadShift) + spec.size)
        args.Payload = payload
        args.Seq = seq
        return Effect.map(
          Effect.exit(calls.rpc(method, args, options.timeout)),
          (exit) =>
            Exit.isSuccess(exit) ? (echoMatches(exit.value, seq, payload) || "ReplyMismatch") : causeKey(exit.cause)
        )
      }

      const probe = yield* restore(Effect.exit(calls.rpc(
        method,
        spec._tag === "Echo" ? { Payload: block.subarray(0, spec.size), Seq: 0, Note: BenchNote } : spec.args,
        options.timeout
      )))
      if (Exit.isFailure(probe)) {
        const error = Cause.findErrorOption(probe.cause)
        if (error._tag === "Some" && unreachable.has(error.value.reason)) return yield* Effect.fail(error.value)
        if (error._tag === "None" && Cause.hasInterrupts(probe.cause)) return yield* Effect.interrupt
      }

      const total = options.duration === undefined ? options.calls ?? DefaultCalls : undefined
      const tally: Tally = {
        started: 0,
        ok: 0,
        failed: 0,
        errors: {},
        latencies: [],
        start: undefined,
        end: undefined,
        retriesBefore: 0,
        perServerBefore: {}
      }
      let stopping = false
      let seq = 0

      // The Clock is read directly, not through an Effect per read: per call the bench does what
      // `npm run bench`'s client does (read the clock, call, check the reply, record) and nothing more.
      const clock = yield* Clock.Clock
      const now = () => clock.currentTimeNanosUnsafe()
      const worker = (until: () => boolean, record: ((ok: boolean) => void) | undefined) =>
        Effect.gen(function*() {
          const args = { Payload: block.subarray(0, 0), Seq: 0, Note: BenchNote }
          while (!stopping && !until()) {
            const n = ++seq
            if (record !== undefined) tally.started++
            const t0 = now()
            const outcome = yield* once(n, args)
            if (record === undefined) continue
            if (outcome === true) {
              tally.ok++
              tally.latencies.push(Number(now() - t0) / 1e6)
            } else {
              tally.errors[outcome] = (tally.errors[outcome] ?? 0) + 1
              tally.failed++
            }
            record(outcome === true)
          }
        })
      const workers = (until: () => boolean, record: ((ok: boolean) => void) | undefined) =>
        Effect.forEach(Array.from({ length: options.concurrency }), () => worker(until, record), {
          concurrency: "unbounded",
          discard: true
        })

      const drive = Effect.gen(function*() {
        if (options.warmup !== undefined && Duration.toMillis(options.warmup) > 0) {
          const warmEnd = now() + nanosOf(options.warmup)
          yield* workers(() => now() >= warmEnd, undefined)
          if (stopping) return
        }
        const progress = options.progress
          ? yield* Progress.make({ label: "bench", total, duration: options.duration })
          : { record: (_ok: boolean) => {} }
        tally.retriesBefore = yield* calls.retries
        tally.perServerBefore = yield* calls.perServer
        tally.start = now()
        const deadline = options.duration === undefined ? undefined : tally.start + nanosOf(options.duration)
        yield* workers(total !== undefined ? () => tally.started >= total : () => now() >= deadline!, progress.record)
        tally.end = now()
      }).pipe(Effect.scoped)

      const fiber = yield* Effect.forkChild(restore(drive))
      const finished = yield* Effect.exit(restore(Fiber.await(fiber)))
      const interrupted = Exit.isFailure(finished) && Cause.hasInterruptsOnly(finished.cause)
      if (interrupted) {
        stopping = true
        const drain = Duration.min(options.timeout, MaxDrain)
        yield* Fiber.await(fiber).pipe(Effect.timeoutOrElse({ duration: drain, orElse: () => Fiber.interrupt(fiber) }))
      }
      tally.end ??= yield* Clock.currentTimeNanos
      const perServer = Object.fromEntries(
        Object.entries(yield* calls.perServer).map(([server, n]) => [server, n - (tally.perServerBefore[server] ?? 0)])
      )
      const result = summarize(tally, method, spec, interrupted, (yield* calls.retries) - tally.retriesBefore, perServer)
      yield* report(result)
      if (interrupted) return yield* Effect.interrupt
      return result
    })
  ))

const summarize = (
  tally: Tally,
  method: string,
  spec: BenchCall,
  interrupted: boolean,
  retries: number,
  perServer: Readonly<Record<string, number>>
): BenchResult => {
  const start = tally.start ?? tally.end!
  const seconds = Math.max(Number(tally.end! - start) / 1e9, 1e-9)
  const sorted = Float64Array.from(tally.latencies).sort()
  const calls = tally.ok + tally.failed
  const none = tally.ok === 0
  return {
    calls,
    ok: tally.ok,
    failed: tally.failed,
    errors: tally.errors,
    seconds: round(tally.start === undefined ? 0 : seconds, 3),
    callsPerSec: none ? null : round(calls / seconds, 1),
    mbPerSec: none || spec._tag !== "Echo" ? null : round((tally.ok * spec.size) / 1e6 / seconds, 3),
    p50Ms: none ? null : round(percentile(sorted, 0.5), 3),
    p99Ms: none ? null : round(percentile(sorted, 0.99), 3),
    retries,
    perServer,
    method,
    interrupted
  }
}
