/**
 * The TypeScript contender of `npm run bench` (a): `Test.Echo` through `RpcPool` (the library's
 * public API) with N fibers, doing per call what bench/go/client does and nothing more: set
 * Seq, call, check the reply's Seq and payload length, record the latency.
 *
 *   node bench/rpc-client.ts --addr 127.0.0.1:8300 --concurrency 64 --size 32 --duration 3s --warmup 1s
 *
 * With `--cluster a:1,b:2,c:3` the calls go through `RpcCluster` over the same pool instead (marked
 * idempotent, discovery off, the first server listed current), for (e): the cost of the cluster's
 * retry loop on calls that succeed.
 *
 * `--observability off|metrics|tracing|all` sets the pool's (and cluster's) `observability` option
 * (default: the library's defaults), for the cost of metrics and spans.
 *
 * Prints one JSON line: {calls, ok, failed, seconds, callsPerSec, p50Ms, p99Ms, cpuUsPerCall} (plus "error",
 * the first failure, when a call failed, and "retries" and "current" through a cluster); when the server cannot
 * be reached, {"fatal": ...} and exit status 1.
 */
import { randomFillSync } from "node:crypto"
import { Cause, Effect, Exit, Layer } from "effect"
import type { Value } from "../src/msgpackrpc/Decoder.ts"
import { Protocol, RpcCluster, RpcPool } from "../src/index.ts"
import { die, durationMs, flags, integer, messageOf, observabilityFlag } from "./cli.ts"
import { percentile, round } from "./stats.ts"

/** The Note field of every call; bench/go/client sends the same string. */
const Note = "bench"

const f = flags(["addr", "cluster", "protocol", "calls", "duration", "warmup", "concurrency", "size", "observability"])
const address = f.addr ?? "127.0.0.1:8300"
const cluster = f.cluster?.split(",").map((s) => s.trim()).filter((s) => s !== "")
const protocolName = f.protocol ?? "consul"
if (protocolName !== "consul" && protocolName !== "nomad") die(`--protocol: consul or nomad, got ${protocolName}`)
const duration = durationMs("duration", f.duration, 0)
const warmup = durationMs("warmup", f.warmup, 0)
const calls = duration > 0 ? 0 : integer("calls", f.calls, 10_000, 1)
const concurrency = integer("concurrency", f.concurrency, 1, 1)
const size = integer("size", f.size, 32)
const observability = observabilityFlag(f.observability)

interface Worker {
  readonly latencies: Array<number>
  ok: number
  failed: number
  firstError: string | undefined
}

const payloadLength = (p: unknown): number =>
  p instanceof Uint8Array ? p.byteLength : typeof p === "string" ? Buffer.byteLength(p) : -1

/** One `Test.Echo`, straight to `address` or through the cluster. */
type Echo = (args: { readonly Payload: Uint8Array; readonly Seq: number; readonly Note: string }) => Effect.Effect<Value, unknown>

/**
 * Runs the callers until `total` calls have started (total > 0) or until `deadline`
 * (performance.now() ms), and returns each caller's tally with the phase's wall time.
 */
const phase = (echo: Echo, payloads: ReadonlyArray<Uint8Array>, total: number, deadline: number) =>
  Effect.suspend(() => {
    let next = 0
    const workers: Array<Worker> = []
    const start = performance.now()
    const caller = (payload: Uint8Array) =>
      Effect.gen(function*() {
        const w: Worker = { latencies: [], ok: 0, failed: 0, firstError: undefined }
        workers.push(w)
        // One args object per caller, mutated per call, as the Go client reuses its struct.
        const args = { Payload: payload, Seq: 0, Note }
        for (;;) {
          const n = ++next
          if (total > 0 ? n > total : performance.now() >= deadline) return
          args.Seq = n
          const t0 = performance.now()
          const exit = yield* Effect.exit(echo(args))
          const elapsed = performance.now() - t0
          let error: string | undefined
          if (Exit.isFailure(exit)) {
            error = messageOf(Cause.squash(exit.cause))
          } else {
            const r = exit.value as Record<string, unknown> | null
            if (r === null || typeof r !== "object" || r["Seq"] !== n || payloadLength(r["Payload"]) !== payload.byteLength) {
              error = "echo reply does not match the request (Seq or payload length)"
            }
          }
          if (error !== undefined) {
            w.failed++
            w.firstError ??= error
            continue
          }
          w.ok++
          w.latencies.push(elapsed)
        }
      })
    return Effect.map(
      Effect.forEach(payloads, caller, { concurrency: "unbounded", discard: true }),
      () => ({ workers, ms: performance.now() - start })
    )
  })

/**
 * `cpuUs`: the process's user plus system CPU time over the measured phase, in µs; the figure that
 * stays comparable on a loaded machine, where calls/s does not (bench/go/client reports the same).
 */
const summarize = (workers: ReadonlyArray<Worker>, ms: number, cpuUs: number) => {
  let ok = 0
  let failed = 0
  let error: string | undefined
  let n = 0
  for (const w of workers) n += w.latencies.length
  const all = new Float64Array(n)
  let at = 0
  for (const w of workers) {
    ok += w.ok
    failed += w.failed
    error ??= w.firstError
    all.set(w.latencies, at)
    at += w.latencies.length
  }
  all.sort()
  const seconds = ms / 1000
  return {
    calls: ok + failed,
    ok,
    failed,
    seconds: round(seconds, 3),
    callsPerSec: round((ok + failed) / seconds, 1),
    p50Ms: round(percentile(all, 0.5), 3),
    p99Ms: round(percentile(all, 0.99), 3),
    cpuUsPerCall: round(cpuUs / Math.max(1, ok + failed), 2),
    ...(error === undefined ? {} : { error })
  }
}

const poolLayer = RpcPool.PoolLayer({ protocol: Protocol.byName[protocolName as "consul" | "nomad"], observability })

const measure = (ping: Effect.Effect<Value, unknown>, echo: Echo) =>
  Effect.gen(function*() {
    // One ping first: an unreachable server is one clear error, and the dial is not measured.
    yield* ping
    const payloads = Array.from({ length: concurrency }, () => randomFillSync(new Uint8Array(size)))
    if (warmup > 0) yield* phase(echo, payloads, 0, performance.now() + warmup)
    const cpu0 = process.cpuUsage()
    const { workers, ms } = duration > 0
      ? yield* phase(echo, payloads, 0, performance.now() + duration)
      : yield* phase(echo, payloads, calls, 0)
    const cpu = process.cpuUsage(cpu0)
    return summarize(workers, ms, cpu.user + cpu.system)
  })

const straight = Effect.gen(function*() {
  const pool = yield* RpcPool.RpcPool
  return yield* measure(pool.rpc(address, "Status.Ping", {}), (args) => pool.rpc(address, "Test.Echo", args))
}).pipe(Effect.provide(poolLayer))

const throughCluster = (servers: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const c = yield* RpcCluster.RpcCluster
    const echoOptions = { idempotent: true }
    const result = yield* measure(c.rpc("Status.Ping", {}), (args) => c.rpc("Test.Echo", args, echoOptions))
    const stats = yield* c.stats
    return { ...result, retries: stats.retries, current: stats.current }
  }).pipe(
    // Not shuffled: the current server is the first listed, the one the straight contender
    // calls, so the two differ only in the cluster's code.
    Effect.provide(RpcCluster.layer({ servers, shuffle: false, discovery: false, observability }).pipe(Layer.provide(poolLayer)))
  )

const program = cluster === undefined ? straight : throughCluster(cluster)

const exit = await Effect.runPromiseExit(program)
if (Exit.isSuccess(exit)) {
  process.stdout.write(`${JSON.stringify(exit.value)}\n`)
  process.exit(0)
}
const fatal = messageOf(Cause.squash(exit.cause))
process.stdout.write(`${JSON.stringify({ calls: 0, ok: 0, failed: 0, fatal })}\n`)
process.stderr.write(`rpc-client: ${fatal}\n`)
process.exit(1)
