/**
 * `npm run bench` (d): what RpcPool keeps on the V8 heap, against the Go server.
 *
 *   node --expose-gc bench/memory.ts --addr 127.0.0.1:8300 [--sessions 100] [--streams 64]
 *                                    [--calls 1000000] [--warm-calls 100000] [--concurrency 64]
 *
 * - per idle session: `--sessions` K pools each make one call, so each holds one idle session
 *   (with the one stream client that call leaves on its free list); heapUsed after a full GC,
 *   minus the same K pools before their call, divided by K. K pools rather than K servers
 *   because a pool keeps one session per address.
 * - per pooled stream: one pool with maxStreams S; S concurrent `Test.Sleep` calls force S
 *   streams, which all land on the free list; the heap then, minus the heap after a single
 *   call (one stream), divided by S - 1.
 * - growth over many calls: `--concurrency` callers make `Test.Echo` calls with 32 B payloads;
 *   heapUsed after a full GC once `--warm-calls` are done (the JIT, caches and free lists have
 *   settled) against the same after `--calls`; the callers pause at each sample, so in-flight
 *   calls are not counted.
 *
 * Prints one JSON line; `{"fatal": ...}` and exit status 1 when the server cannot be reached.
 */
import { randomFillSync } from "node:crypto"
import { Cause, Effect, Exit, Scope } from "effect"
import { RpcPool } from "../src/index.ts"
import { die, flags, integer, messageOf } from "./cli.ts"
import { round } from "./stats.ts"

const gc = (globalThis as { gc?: () => void }).gc ?? die("bench/memory.ts needs node --expose-gc")

const f = flags(["addr", "sessions", "streams", "calls", "warm-calls", "concurrency"])
const address = f.addr ?? die("--addr host:port is required")
const sessions = integer("sessions", f.sessions, 100, 1)
const streams = integer("streams", f.streams, 64, 2)
const calls = integer("calls", f.calls, 1_000_000, 1)
const warmCalls = integer("warm-calls", f["warm-calls"], 100_000, 1)
const concurrency = integer("concurrency", f.concurrency, 64, 1)
/** Calls between two samples of the growth curve. */
const sampleEvery = Math.max(warmCalls, Math.ceil(calls / 10))

/** heapUsed after full collections, letting pending callbacks and finalizers run in between. */
const settledHeap = Effect.promise(async () => {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external, rss: m.rss }
})

/** A pool in a Scope of its own, so the measurement decides when it closes. */
const openPool = (options: RpcPool.RpcPool.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const pool = yield* RpcPool.make(options).pipe(Scope.provide(scope))
    return { pool, close: Scope.close(scope, Exit.void) }
  })

const perSession = Effect.gen(function*() {
  // maxTime 0: no reaping while the sessions sit idle between the two samples.
  const pools = yield* Effect.forEach(Array.from({ length: sessions }), () => openPool({ maxTime: 0 }))
  const before = yield* settledHeap
  yield* Effect.forEach(pools, ({ pool }) => pool.rpc(address, "Status.Ping", {}), { concurrency: 16, discard: true })
  const after = yield* settledHeap
  yield* Effect.forEach(pools, ({ close }) => close, { discard: true })
  return {
    sessions,
    heapPerSessionBytes: Math.round((after.heapUsed - before.heapUsed) / sessions),
    externalPerSessionBytes: Math.round((after.external - before.external) / sessions)
  }
})

const perStream = Effect.gen(function*() {
  const { pool, close } = yield* openPool({ maxTime: 0, maxStreams: streams })
  yield* pool.rpc(address, "Status.Ping", {})
  const before = yield* settledHeap
  // Sleeping calls overlap, so each needs a stream of its own.
  yield* Effect.forEach(Array.from({ length: streams }), () => pool.rpc(address, "Test.Sleep", { Millis: 50 }), {
    concurrency: "unbounded",
    discard: true
  })
  const idle = (yield* pool.stats).streamsIdle
  const after = yield* settledHeap
  yield* close
  return {
    streams: idle,
    heapPerStreamBytes: Math.round((after.heapUsed - before.heapUsed) / Math.max(idle - 1, 1)),
    externalPerStreamBytes: Math.round((after.external - before.external) / Math.max(idle - 1, 1))
  }
})

const growth = Effect.gen(function*() {
  const { pool, close } = yield* openPool({})
  yield* pool.rpc(address, "Status.Ping", {})
  let done = 0
  let failed = 0
  let firstError: string | undefined
  const payloads = Array.from({ length: concurrency }, () => randomFillSync(new Uint8Array(32)))
  const runTo = (target: number) => {
    let next = done
    return Effect.forEach(payloads, (payload) =>
      Effect.gen(function*() {
        const args = { Payload: payload, Seq: 0, Note: "bench" }
        while (next < target) {
          args.Seq = ++next
          const exit = yield* Effect.exit(pool.rpc(address, "Test.Echo", args))
          if (Exit.isFailure(exit)) {
            failed++
            firstError ??= messageOf(Cause.squash(exit.cause))
          }
        }
      }), { concurrency: "unbounded", discard: true }).pipe(Effect.andThen(Effect.sync(() => {
        done = target
      })))
  }
  const started = performance.now()
  yield* runTo(warmCalls)
  const warm = yield* settledHeap
  const samples: Array<{ readonly calls: number; readonly heapUsed: number }> = [{ calls: done, heapUsed: warm.heapUsed }]
  while (done < calls) {
    yield* runTo(Math.min(calls, done + sampleEvery))
    samples.push({ calls: done, heapUsed: (yield* settledHeap).heapUsed })
  }
  const seconds = (performance.now() - started) / 1000
  yield* close
  const end = samples[samples.length - 1]!.heapUsed
  return {
    calls: done,
    warmCalls,
    failed,
    ...(firstError === undefined ? {} : { error: firstError }),
    callsPerSec: round(done / seconds, 1),
    heapAtWarmBytes: warm.heapUsed,
    heapAtEndBytes: end,
    heapGrowthPct: round(((end - warm.heapUsed) / warm.heapUsed) * 100, 2),
    samples
  }
})

const exit = await Effect.runPromiseExit(Effect.gen(function*() {
  return { ...(yield* perSession), ...(yield* perStream), growth: yield* growth }
}))
if (Exit.isSuccess(exit)) {
  process.stdout.write(`${JSON.stringify(exit.value)}\n`)
  process.exit(0)
}
const fatal = messageOf(Cause.squash(exit.cause))
process.stdout.write(`${JSON.stringify({ fatal })}\n`)
process.stderr.write(`memory: ${fatal}\n`)
process.exit(1)
