/**
 * What metrics and spans cost, measured so that a loaded, shared machine does not decide the
 * answer: one process holds one pool per `observability` variant, and runs short batches of
 * calls on each in turn (off, metrics, spans, both, off, ...), reading the process's CPU time
 * around every batch. Drift in the machine's speed hits every variant alike, and each figure
 * is the median CPU time per call over its batches. Not part of `npm run bench` (whose (f) runs
 * each variant in a process of its own); this is the finer measurement behind
 * docs/observability.md.
 *
 *   node bench/observability-cpu.ts --subject a [--addr HOST:PORT] [--batches 40] [--calls 4000]
 *   node bench/observability-cpu.ts --subject c [--batches 40] [--calls 20000]
 *   node bench/observability-cpu.ts --subject b [--batches 10] [--calls 20000]
 *
 * (a) calls `Test.Echo` (32 B) with 64 callers through `RpcPool`, against the server at --addr,
 * else against the Go server it builds and starts (bench/toolchain.ts). (c) is (c)'s
 * `ConnPool.use`: 64 borrowers, a pool of 10 connections made instantly. Spans go to effect's
 * built-in tracer. (b) is the server side: one `bench/rpc-server.ts` process per variant, called
 * in turn by (a)'s client (64 callers, observability off), each server's CPU read from
 * /proc/PID/stat around each batch (Linux only). Prints one JSON line per variant, then a table.
 */
import { randomFillSync } from "node:crypto"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { procCpuUs, runJson, type Server, startServer } from "./child.ts"
import { die, flags, integer, type ObservabilityVariant, observabilityVariants } from "./cli.ts"
import { median, round } from "./stats.ts"
import { buildGo } from "./toolchain.ts"
import * as ConnPool from "../src/pool/index.ts"
import * as RpcPool from "../src/rpc/RpcPool.ts"

const f = flags(["subject", "addr", "batches", "calls", "variants"])
const subject = f.subject ?? "a"
if (subject !== "a" && subject !== "b" && subject !== "c") die(`--subject: a, b or c, got ${subject}`)
const batches = integer("batches", f.batches, 40, 1)
const calls = integer("calls", f.calls, subject === "a" ? 4000 : 20_000, 64)
const variants = (f.variants ?? "off,metrics,tracing,all").split(",") as Array<ObservabilityVariant>
for (const v of variants) if (!Object.hasOwn(observabilityVariants, v)) die(`--variants: off, metrics, tracing, all; got ${v}`)
const concurrency = 64

/** Runs `total` operations with `concurrency` fibers, `op` each. */
const load = (op: Effect.Effect<unknown, unknown>, total: number) =>
  Effect.suspend(() => {
    let next = 0
    const worker = Effect.whileLoop({
      while: () => next++ < total,
      body: () => op,
      step: () => {}
    })
    return Effect.forEach(Array.from({ length: concurrency }), () => worker, { concurrency: "unbounded", discard: true })
  })

/** One operation per variant: a call on that variant's pool. */
const rpcOps = (address: string) =>
  Effect.gen(function*() {
    const ops = new Map<ObservabilityVariant, Effect.Effect<unknown, unknown>>()
    const args = { Payload: randomFillSync(new Uint8Array(32)), Seq: 1, Note: "bench" }
    for (const v of variants) {
      const pool = yield* RpcPool.make({ observability: observabilityVariants[v], name: `bench-${v}` })
      ops.set(v, pool.rpc(address, "Test.Echo", args))
    }
    return ops
  })

const acquireOps = Effect.gen(function*() {
  const ops = new Map<ObservabilityVariant, Effect.Effect<unknown, unknown>>()
  for (const v of variants) {
    const pool = yield* ConnPool.make({
      dial: Effect.succeed({}),
      poolSize: 10,
      name: `bench-${v}`,
      observability: observabilityVariants[v]
    })
    ops.set(v, ConnPool.use(pool, () => Effect.void))
  }
  return ops
})

/** (b): a server per variant, each its own process; (a)'s client calls them in turn. */
const serverSide = async (): Promise<Map<ObservabilityVariant, Array<number>>> => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  const servers = new Map<ObservabilityVariant, Server>()
  for (const v of variants) {
    servers.set(v, await startServer(process.execPath, [path.join(here, "rpc-server.ts"), "--observability", v]))
  }
  const run = async (v: ObservabilityVariant) => {
    const s = servers.get(v)!
    const before = procCpuUs(s.pid)
    const o = await runJson(process.execPath, [
      path.join(here, "rpc-client.ts"), "--addr", s.address, "--concurrency", "64", "--size", "32",
      "--calls", String(calls), "--observability", "off"
    ], 10 * 60_000)
    if (!o.ok) return die(`rpc-client: ${o.error}`, 1)
    return (procCpuUs(s.pid) - before) / calls
  }
  for (const v of variants) await run(v)
  const perCall = new Map<ObservabilityVariant, Array<number>>(variants.map((v) => [v, []]))
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + b) % variants.length]!
      perCall.get(v)!.push(await run(v))
    }
  }
  for (const s of servers.values()) await s.stop()
  return perCall
}

let server: Server | undefined
const address = subject !== "a" ? "" : f.addr ?? await (async () => {
  const go = await buildGo()
  if ("unavailable" in go) return die(`no --addr and no Go server: ${go.unavailable}`, 1)
  server = await startServer(go.server, ["-addr", "127.0.0.1:0"])
  return server.address
})()

const program = Effect.gen(function*() {
  const ops = yield* (subject === "a" ? rpcOps(address) : acquireOps)
  const perCall = new Map<ObservabilityVariant, Array<number>>(variants.map((v) => [v, []]))
  // Warm-up: every variant tiers up before anything counts.
  for (let i = 0; i < 5; i++) for (const v of variants) yield* load(ops.get(v)!, calls)
  for (let b = 0; b < batches; b++) {
    // Rotate the first variant of each batch, so none always runs after the same one.
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + b) % variants.length]!
      const cpu0 = process.cpuUsage()
      yield* load(ops.get(v)!, calls)
      const cpu = process.cpuUsage(cpu0)
      perCall.get(v)!.push((cpu.user + cpu.system) / calls)
    }
  }
  return perCall
}).pipe(Effect.scoped)

const perCall = subject === "b" ? await serverSide() : await Effect.runPromise(program)
await server?.stop()
const base = median(perCall.get("off") ?? [])
const rows: Array<string> = []
for (const v of variants) {
  const us = median(perCall.get(v)!)!
  const costPct = base === undefined ? undefined : round((us / base - 1) * 100, 1)
  process.stdout.write(`${JSON.stringify({ subject, variant: v, batches, calls, cpuUsPerCall: round(us, 3), costPct })}\n`)
  rows.push(`| ${v} | ${us.toFixed(2)} | ${costPct === undefined || v === "off" ? "" : `${costPct > 0 ? "+" : ""}${costPct} %`} |`)
}
process.stdout.write(["", "| observability | CPU µs per call | over off |", "| --- | --- | --- |", ...rows, ""].join("\n"))
process.exit(0)
