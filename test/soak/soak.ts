/**
 * `npm run soak`: a long fault run of the RpcPool against HashiCorp's Go server and our own
 * RpcServer, each a real child process on loopback, while a chaos loop SIGKILLs and restarts
 * them on the same port, asks them for GoAway, makes them drop their sessions, and partitions
 * the link (a proxy in front of each server goes silent without FIN or RST, until keepalive
 * notices).
 *
 * At the end it checks, and prints a summary of:
 * - no hung calls: every call ended, none later than its deadline plus `--grace`;
 * - every failure typed: an RpcError with a reason (no defects), and no reply crossed;
 * - failures counted: the pool's stats agree with what the callers saw;
 * - the pool recovered: with the servers up, calls succeed again on one session each, by
 *   themselves, within one keepalive period plus its timeout;
 * - memory bounded: heap after the run within `--max-heap-growth-mb` of the heap after warm-up,
 *   RSS below `--max-rss-mb`.
 * Exit status 0 when every check passes, 1 otherwise. Not part of `npm test`.
 *
 * ```sh
 * npm run soak                                    # 3 minutes, both servers
 * npm run soak -- --duration 30s --targets ours  # a short run without Go
 * npm run soak -- --duration 20m --concurrency 64 --chaos-every 1s --json
 * ```
 * Every flag has an environment twin: SOAK_DURATION, SOAK_CONCURRENCY, SOAK_CHAOS_EVERY,
 * SOAK_CALL_TIMEOUT, SOAK_KEEPALIVE, SOAK_TARGETS, SOAK_SEED, SOAK_GRACE, SOAK_MAX_HEAP_GROWTH_MB,
 * SOAK_MAX_RSS_MB.
 *
 * `soak.ts --serve PORT` is the server child: the test service plus Test.GoAway and
 * Test.CloseSession, exiting when its stdin closes (so it cannot outlive the soak).
 */
import { spawn, type ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Duration, Effect, Exit, Fiber } from "effect"
import { parseDuration } from "../../src/cli/flags.ts"
import { asBytes, type Value } from "../../src/msgpackrpc/Decoder.ts"
import { RpcError, type RpcErrorReason } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import { proxy, type Proxy } from "../faults/helpers.ts"
import { buildGoPeer, goUnavailableReason } from "../interop/goPeer.ts"
import { inCI } from "../requirements.ts"

const self = fileURLToPath(import.meta.url)

// ---------------------------------------------------------------------------
// The server child
// ---------------------------------------------------------------------------

const serveChild = (port: number): void => {
  const server = RpcServer.serve({
    port,
    handlers: {
      ...TestService.handlers,
      "Test.GoAway": (_, { session }) => Effect.as(session.goAway, {}),
      // Reply first, then drop the whole session without a GoAway, as the Go peer does.
      "Test.CloseSession": (_, { session }) =>
        Effect.as(Effect.forkDetach(Effect.andThen(Effect.sleep("20 millis"), session.close)), {})
    }
  })
  Effect.runFork(Effect.scoped(Effect.flatMap(server, (s) => {
    process.stdout.write(`${s.address}\n`)
    return Effect.never
  })))
  process.stdin.on("end", () => process.exit(0))
  process.stdin.resume()
}

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

interface Options {
  readonly duration: number
  readonly concurrency: number
  readonly chaosEvery: number
  readonly callTimeout: number
  readonly keepAlive: number
  readonly targets: ReadonlyArray<"go" | "ours">
  /** Targets named by the user (a missing Go is then an error, not a skip). */
  readonly explicitTargets: boolean
  readonly seed: number
  readonly grace: number
  readonly maxHeapGrowthMb: number
  readonly maxRssMb: number
  readonly json: boolean
}

const usage = `usage: soak.ts [--duration 3m] [--concurrency 32] [--chaos-every 2s] [--call-timeout 2s] [--keepalive 5s]
                [--targets go,ours] [--seed 1] [--grace 1s] [--max-heap-growth-mb 64] [--max-rss-mb 1024] [--json]`

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const flags = new Map<string, string>()
  let json = process.env["SOAK_JSON"] === "1"
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--json") {
      json = true
      continue
    }
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(`${usage}\n`)
      process.exit(0)
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg)
    const value = m?.[2] ?? argv[++i]
    if (m === null || value === undefined) throw new Error(`bad argument ${arg}\n${usage}`)
    flags.set(m[1]!, value)
  }
  const get = (name: string, fallback: string) =>
    flags.get(name) ?? process.env[`SOAK_${name.toUpperCase().replace(/-/g, "_")}`] ?? fallback
  const millis = (name: string, fallback: string) => {
    const d = parseDuration(get(name, fallback))
    if (d === undefined) throw new Error(`--${name}: not a duration: ${get(name, fallback)}`)
    return Duration.toMillis(d)
  }
  const int = (name: string, fallback: string) => {
    const n = Number(get(name, fallback))
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: not a non-negative integer`)
    return n
  }
  const targets = get("targets", "go,ours").split(",").map((t) => t.trim())
  for (const t of targets) if (t !== "go" && t !== "ours") throw new Error(`--targets: unknown target ${t}`)
  return {
    duration: millis("duration", "3m"),
    concurrency: Math.max(1, int("concurrency", "32")),
    chaosEvery: millis("chaos-every", "2s"),
    callTimeout: millis("call-timeout", "2s"),
    keepAlive: millis("keepalive", "5s"),
    targets: targets as Array<"go" | "ours">,
    explicitTargets: flags.has("targets") || process.env["SOAK_TARGETS"] !== undefined,
    seed: int("seed", "1"),
    grace: millis("grace", "1s"),
    maxHeapGrowthMb: int("max-heap-growth-mb", "64"),
    maxRssMb: int("max-rss-mb", "1024"),
    json
  }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** xorshift32: the same run for the same seed. */
const prng = (seed: number) => {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Latencies in log-spaced buckets: constant memory however long the run. */
class Histogram {
  private readonly buckets = new Float64Array(1024)
  count = 0
  max = 0
  record(ms: number): void {
    this.count++
    this.max = Math.max(this.max, ms)
    this.buckets[Math.min(1023, Math.floor(Math.log2(1 + ms * 1000) * 32))]!++
  }
  percentile(p: number): number {
    let seen = 0
    const want = Math.ceil(this.count * p)
    for (let i = 0; i < this.buckets.length; i++) {
      seen += this.buckets[i]!
      if (seen >= want && seen > 0) return (2 ** ((i + 1) / 32) - 1) / 1000
    }
    return 0
  }
}

/** One server child process, restartable on the port it first got. */
class ServerProcess {
  readonly name: string
  private readonly command: (port: number) => { readonly file: string; readonly args: ReadonlyArray<string> }
  port = 0
  child: ChildProcess | undefined
  exited: Promise<void> = Promise.resolve()
  kills = 0
  stderr = ""
  static readonly all = new Set<ChildProcess>()

  constructor(name: string, command: (port: number) => { readonly file: string; readonly args: ReadonlyArray<string> }) {
    this.name = name
    this.command = command
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Starts the server, retrying while the port is still being released. */
  async start(): Promise<void> {
    for (let attempt = 0;; attempt++) {
      try {
        return await this.startOnce()
      } catch (error) {
        if (attempt >= 50) throw error
        await sleep(100)
      }
    }
  }

  private startOnce(): Promise<void> {
    const { file, args } = this.command(this.port)
    const child = spawn(file, [...args], { stdio: ["pipe", "pipe", "pipe"] })
    ServerProcess.all.add(child)
    child.stdin.on("error", () => {})
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      this.stderr = (this.stderr + d).slice(-4096)
    })
    this.exited = new Promise((resolve) => child.once("exit", () => {
      ServerProcess.all.delete(child)
      resolve()
    }))
    return new Promise((resolve, reject) => {
      let out = ""
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        if (out.includes("\n")) return
        out += d
        const nl = out.indexOf("\n")
        if (nl < 0) return
        const address = out.slice(0, nl).trim()
        this.port = Number(address.slice(address.lastIndexOf(":") + 1))
        this.child = child
        resolve()
      })
      child.once("exit", (code) => {
        if (!out.includes("\n")) reject(new Error(`${this.name} exited before listening (${code}): ${this.stderr}`))
      })
    })
  }

  async kill(): Promise<void> {
    if (!this.running) return
    this.kills++
    this.child!.kill("SIGKILL")
    await this.exited
  }
}

process.once("exit", () => {
  for (const child of ServerProcess.all) child.kill("SIGKILL")
})

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

interface TargetStats {
  calls: number
  ok: number
  failures: Partial<Record<RpcErrorReason, number>>
  examples: Partial<Record<RpcErrorReason, string>>
  untyped: number
  untypedExample: string
  crossed: number
  overdue: number
  latency: Histogram
  goAways: number
  closeSessions: number
  partitions: number
}

interface Recovery {
  /** Calls made after the run (the pool counts them too). */
  calls: number
  /** Of the 20 calls after the first success. */
  ok: number
  failed: Array<string>
  /** From the end of the run to the first successful call. */
  ms: number
}

interface Target {
  readonly name: "go" | "ours"
  readonly server: ServerProcess
  readonly stats: TargetStats
}

const payloadSizes = [0, 1, 100, 4096, 65536, 300_000]

const run = async (options: Options): Promise<number> => {
  const random = prng(options.seed)
  const targets: Array<Target> = []
  const skipped: Array<string> = []
  for (const name of options.targets) {
    if (name === "go") {
      const reason = goUnavailableReason()
      if (reason !== undefined) {
        if (inCI() || options.explicitTargets) throw new Error(`Go peer: ${reason}`)
        skipped.push(`go (${reason})`)
        continue
      }
      const bins = await buildGoPeer()
      targets.push({
        name,
        server: new ServerProcess("go", (port) => ({ file: bins.server, args: ["-addr", `127.0.0.1:${port}`] })),
        stats: emptyStats()
      })
    } else {
      targets.push({
        name,
        server: new ServerProcess("ours", (port) => ({ file: process.execPath, args: [self, "--serve", String(port)] })),
        stats: emptyStats()
      })
    }
  }
  if (targets.length === 0) throw new Error(`no target to soak: ${skipped.join(", ")}`)
  for (const t of targets) await t.server.start()

  const payloads = payloadSizes.map((size) => {
    const b = new Uint8Array(size)
    for (let i = 0; i < size; i++) b[i] = (i * 31 + size) & 0xff
    return b
  })

  const program = Effect.gen(function*() {
    const pool = yield* RpcPool.make({
      callTimeout: Duration.millis(options.callTimeout),
      dialTimeout: "1 second",
      // Keepalive well inside the run, so it runs many times and ends every partition.
      session: { keepAliveInterval: Duration.millis(options.keepAlive) }
    })
    // The pool talks to each server through a proxy that can partition the link.
    const links = new Map<Target, Proxy>()
    for (const t of targets) links.set(t, yield* proxy(t.server.port))
    const addressOf = (t: Target) => links.get(t)!.address
    const start = performance.now()
    const deadline = start + options.duration
    let stopping = false
    const inFlight = new Map<number, number>()
    let nextCall = 0

    const call = (t: Target, worker: number, n: number) =>
      Effect.gen(function*() {
        const r = random()
        const address = addressOf(t)
        const id = nextCall++
        const began = performance.now()
        inFlight.set(id, began)
        let check: ((reply: Value) => boolean) | undefined
        let effect: Effect.Effect<Value, RpcError>
        if (r < 0.6) {
          const payload = payloads[Math.floor(random() * payloads.length)]!
          const seq = worker * 1_000_000 + n
          effect = pool.rpc(address, "Test.Echo", { Payload: payload, Seq: seq, Note: t.name })
          check = (reply) => {
            const m = reply as Record<string, Value>
            const back = m["Payload"] === null ? new Uint8Array(0) : asBytes(m["Payload"] as string | Uint8Array)
            return m["Seq"] === seq && Buffer.from(back).equals(payload)
          }
        } else if (r < 0.85) {
          effect = pool.rpc(address, "Test.Sleep", { Millis: Math.floor(random() * 100) })
        } else {
          effect = pool.rpc(address, "Status.Ping", {})
        }
        const exit = yield* Effect.exit(effect)
        const took = performance.now() - began
        inFlight.delete(id)
        const s = t.stats
        s.calls++
        s.latency.record(took)
        if (took > options.callTimeout + options.grace) s.overdue++
        if (Exit.isSuccess(exit)) {
          s.ok++
          if (check !== undefined && !check(exit.value)) s.crossed++
          return true
        }
        const failure = exit.cause.reasons.find((reason) => reason._tag === "Fail")
        const error = failure?._tag === "Fail" ? failure.error : undefined
        if (error instanceof RpcError) {
          s.failures[error.reason] = (s.failures[error.reason] ?? 0) + 1
          s.examples[error.reason] ??= error.message
        } else {
          s.untyped++
          s.untypedExample ||= String(exit.cause)
        }
        return false
      })

    const worker = (t: Target, w: number) =>
      Effect.gen(function*() {
        for (let n = 0; !stopping && performance.now() < deadline; n++) {
          const ok = yield* call(t, w, n)
          // A refused dial fails at once: do not spin while the server is down.
          if (!ok) yield* Effect.sleep("10 millis")
        }
      })

    const chaos = (t: Target) =>
      Effect.gen(function*() {
        const actions = ["kill", "goaway", "kill-fast", "close-session", "goaway", "partition"] as const
        for (let i = 0; performance.now() + options.chaosEvery < deadline; i++) {
          yield* Effect.sleep(Duration.millis(options.chaosEvery))
          const action = actions[Math.floor(random() * actions.length)]!
          switch (action) {
            case "kill":
            case "kill-fast": {
              yield* Effect.promise(() => t.server.kill())
              if (action === "kill") yield* Effect.sleep(Duration.millis(Math.floor(random() * 1000)))
              yield* Effect.promise(() => t.server.start())
              break
            }
            case "goaway":
              t.stats.goAways++
              yield* Effect.ignore(pool.rpc(addressOf(t), "Test.GoAway", {}))
              break
            case "close-session":
              t.stats.closeSessions++
              yield* Effect.ignore(pool.rpc(addressOf(t), "Test.CloseSession", {}))
              break
            case "partition": {
              // The connections open now go silent; only keepalive can tell. The partition heals
              // once both ends must have given up, so a long run does not pile up sockets.
              t.stats.partitions++
              const heal = yield* links.get(t)!.blackhole
              yield* Effect.forkChild(Effect.andThen(Effect.sleep(Duration.millis(options.keepAlive + 15_000)), heal))
              break
            }
          }
        }
      })

    // Memory: sampled every second; the baseline is taken after a warm-up.
    const gc = (globalThis as { gc?: () => void }).gc
    let maxRss = 0
    let maxHeap = 0
    let baselineHeap = 0
    const warmup = Math.min(10_000, options.duration / 10)
    let tick = 0
    const sampler = Effect.gen(function*() {
      for (;;) {
        const m = process.memoryUsage()
        maxRss = Math.max(maxRss, m.rss)
        maxHeap = Math.max(maxHeap, m.heapUsed)
        if (baselineHeap === 0 && performance.now() - start >= warmup) {
          gc?.()
          baselineHeap = process.memoryUsage().heapUsed
        }
        if (!options.json && (process.stderr.isTTY || tick % 10 === 0)) {
          progress(targets, performance.now() - start, options.duration, inFlight.size)
        }
        tick++
        yield* Effect.sleep("1 second")
      }
    })

    const samplerFiber = yield* Effect.forkChild(sampler)
    const chaosFibers = yield* Effect.forEach(targets, (t) => Effect.forkChild(chaos(t)))
    const workerFibers = yield* Effect.forEach(
      targets.flatMap((t) => Array.from({ length: options.concurrency }, (_, w) => [t, w] as const)),
      ([t, w]) => Effect.forkChild(worker(t, w))
    )
    yield* Fiber.joinAll(chaosFibers)
    // The load stops at the deadline; every call still running must end within its deadline.
    yield* Effect.sleep(Duration.millis(Math.max(0, deadline - performance.now())))
    stopping = true
    const drained = yield* Effect.timeoutOption(
      Fiber.joinAll(workerFibers),
      Duration.millis(options.callTimeout + options.grace + 1000)
    )
    const hung = inFlight.size
    if (drained._tag === "None") yield* Fiber.interruptAll(workerFibers)
    if (!options.json && process.stderr.isTTY) process.stderr.write("\n")

    // Recovery: with the servers up, the pool must serve them again by itself: at once after a
    // kill or GoAway, within keepalive + its 10 s ping timeout after a partition.
    for (const t of targets) if (!t.server.running) yield* Effect.promise(() => t.server.start())
    const recovery: Record<string, Recovery> = {}
    const recoveryLimit = options.keepAlive + 10_000 + options.callTimeout + 2000
    for (const t of targets) {
      const r: Recovery = { calls: 0, ok: 0, failed: [], ms: 0 }
      const began = performance.now()
      for (;;) {
        r.calls++
        const exit = yield* Effect.exit(pool.rpc(addressOf(t), "Status.Ping", {}))
        if (Exit.isSuccess(exit) || performance.now() - began > recoveryLimit) break
        yield* Effect.sleep("100 millis")
      }
      r.ms = performance.now() - began
      for (let i = 0; i < 20; i++) {
        r.calls++
        const exit = yield* Effect.exit(pool.rpc(addressOf(t), "Test.Echo", { Payload: payloads[3]!, Seq: i, Note: "" }))
        if (Exit.isSuccess(exit)) r.ok++
        else r.failed.push(String(exit.cause))
      }
      recovery[t.name] = r
    }
    const addresses = Object.fromEntries(targets.map((t) => [t.name, addressOf(t)]))
    const poolStats = yield* pool.stats
    yield* Fiber.interrupt(samplerFiber)
    gc?.()
    const finalHeap = process.memoryUsage().heapUsed
    const kills = Object.fromEntries(targets.map((t) => [t.name, t.server.kills]))
    return { poolStats, addresses, recovery, kills, hung, maxRss, maxHeap, baselineHeap, finalHeap, elapsed: performance.now() - start }
  })

  const result = await Effect.runPromise(Effect.scoped(program))
  for (const t of targets) await t.server.kill()

  // ---- checks ----
  const checks: Array<{ readonly name: string; readonly ok: boolean; readonly detail: string }> = []
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail })
  const sum = (o: Partial<Record<string, number>>) => Object.values(o).reduce<number>((a, b) => a + (b ?? 0), 0)
  for (const t of targets) {
    const s = t.stats
    const addr = result.poolStats.addresses.find((a) => a.address === result.addresses[t.name])
    const recovery = result.recovery[t.name]!
    const kills = result.kills[t.name] ?? 0
    check(`${t.name}: no call outlived its deadline`, s.overdue === 0,
      `${s.overdue} calls took longer than ${options.callTimeout} ms + ${options.grace} ms grace; max ${s.latency.max.toFixed(1)} ms`)
    check(`${t.name}: every failure typed`, s.untyped === 0, s.untyped === 0 ? "all RpcError" : `${s.untyped} untyped, e.g. ${s.untypedExample}`)
    check(`${t.name}: no crossed replies`, s.crossed === 0, `${s.crossed} echoes did not match their request`)
    check(`${t.name}: chaos happened`, kills + s.goAways + s.closeSessions + s.partitions > 0,
      `${kills} kills, ${s.goAways} GoAways, ${s.closeSessions} session drops, ${s.partitions} partitions`)
    check(`${t.name}: pool recovered`, recovery.ok === 20 && addr?.sessions === 1,
      `first call ok ${recovery.ms.toFixed(0)} ms after the run, then ${recovery.ok}/20 calls, ${addr?.sessions ?? 0} session` +
        (recovery.failed.length > 0 ? `; ${recovery.failed[0]}` : ""))
    // The pool also counted the chaos calls (GoAway, CloseSession) and the recovery calls.
    const extra = s.goAways + s.closeSessions + recovery.calls
    check(`${t.name}: failures counted`, addr !== undefined && addr.calls === s.calls + extra &&
      addr.calls === addr.ok + sum(addr.failures) && addr.ok >= s.ok && sum(addr.failures) >= sum(s.failures),
      `pool: ${addr?.calls} calls = ${addr?.ok} ok + ${sum(addr?.failures ?? {})} failed; callers saw ${s.calls} (+${extra} chaos/recovery)`)
  }
  check("no hung calls", result.hung === 0, `${result.hung} calls still in flight ${options.callTimeout + options.grace + 1000} ms after the load stopped`)
  const growthMb = (result.finalHeap - result.baselineHeap) / 2 ** 20
  check("heap bounded", result.baselineHeap > 0 && growthMb <= options.maxHeapGrowthMb,
    `heap ${mb(result.baselineHeap)} after warm-up -> ${mb(result.finalHeap)} at the end (${growthMb.toFixed(1)} MiB, limit ${options.maxHeapGrowthMb}); peak ${mb(result.maxHeap)}`)
  check("RSS bounded", result.maxRss <= options.maxRssMb * 2 ** 20, `peak RSS ${mb(result.maxRss)} (limit ${options.maxRssMb} MiB)`)

  const summary = {
    seconds: Math.round(result.elapsed / 100) / 10,
    options: { ...options, targets: targets.map((t) => t.name) },
    skipped,
    targets: Object.fromEntries(targets.map((t) => {
      const s = t.stats
      const addr = result.poolStats.addresses.find((a) => a.address === result.addresses[t.name])
      return [t.name, {
        calls: s.calls,
        ok: s.ok,
        failures: s.failures,
        examples: s.examples,
        untyped: s.untyped,
        crossed: s.crossed,
        overdue: s.overdue,
        p50Ms: round(s.latency.percentile(0.5)),
        p99Ms: round(s.latency.percentile(0.99)),
        maxMs: round(s.latency.max),
        kills: result.kills[t.name] ?? 0,
        goAways: s.goAways,
        closeSessions: s.closeSessions,
        partitions: s.partitions,
        recoveryMs: round(result.recovery[t.name]!.ms),
        dials: addr?.dials ?? 0,
        dialFailures: addr?.dialFailures ?? 0
      }]
    })),
    memory: { baselineHeapMb: round(result.baselineHeap / 2 ** 20), finalHeapMb: round(result.finalHeap / 2 ** 20), peakHeapMb: round(result.maxHeap / 2 ** 20), peakRssMb: round(result.maxRss / 2 ** 20) },
    checks,
    ok: checks.every((c) => c.ok)
  }
  if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`)
  else printSummary(summary)
  return summary.ok ? 0 : 1
}

const emptyStats = (): TargetStats => ({
  calls: 0,
  ok: 0,
  failures: {},
  examples: {},
  untyped: 0,
  untypedExample: "",
  crossed: 0,
  overdue: 0,
  latency: new Histogram(),
  goAways: 0,
  closeSessions: 0,
  partitions: 0
})

const round = (x: number) => Math.round(x * 100) / 100
const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`

const progress = (targets: ReadonlyArray<Target>, elapsed: number, total: number, inFlight: number) => {
  const parts = targets.map((t) => `${t.name}: ${t.stats.ok} ok ${t.stats.calls - t.stats.ok} failed, ${t.server.kills} kills`)
  const line = `soak ${Math.min(100, Math.floor((elapsed / total) * 100))}% | ${parts.join(" | ")} | ${inFlight} in flight`
  process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`)
}

const printSummary = (summary: {
  readonly seconds: number
  readonly skipped: ReadonlyArray<string>
  readonly targets: Record<string, Record<string, unknown>>
  readonly memory: Record<string, number>
  readonly checks: ReadonlyArray<{ readonly name: string; readonly ok: boolean; readonly detail: string }>
  readonly ok: boolean
}) => {
  const out: Array<string> = [`soak: ${summary.seconds} s`]
  for (const s of summary.skipped) out.push(`  skipped ${s}`)
  for (const [name, t] of Object.entries(summary.targets)) {
    out.push(`  ${name}: ${t["calls"]} calls, ${t["ok"]} ok, failures ${JSON.stringify(t["failures"])}`)
    out.push(`    latency p50 ${t["p50Ms"]} ms, p99 ${t["p99Ms"]} ms, max ${t["maxMs"]} ms`)
    out.push(
      `    chaos: ${t["kills"]} kills, ${t["goAways"]} GoAways, ${t["closeSessions"]} session drops, ${t["partitions"]} partitions; ` +
        `pool dials ${t["dials"]}, failed dials ${t["dialFailures"]}; recovered ${t["recoveryMs"]} ms after the run`
    )
    for (const [reason, message] of Object.entries(t["examples"] as Record<string, string>)) out.push(`    e.g. ${reason}: ${message}`)
  }
  const m = summary.memory
  out.push(`  memory: heap ${m["baselineHeapMb"]} MiB after warm-up, ${m["finalHeapMb"]} MiB at the end, peak heap ${m["peakHeapMb"]} MiB, peak RSS ${m["peakRssMb"]} MiB`)
  for (const c of summary.checks) out.push(`  ${c.ok ? "PASS" : "FAIL"} ${c.name}: ${c.detail}`)
  out.push(summary.ok ? "soak: PASS" : "soak: FAIL")
  process.stdout.write(`${out.join("\n")}\n`)
}

if (process.argv[2] === "--serve") {
  serveChild(Number(process.argv[3] ?? 0))
} else {
  let options: Options
  try {
    options = parseOptions(process.argv.slice(2))
  } catch (error) {
    process.stderr.write(`soak: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(2)
  }
  run(options).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`soak: ${error instanceof Error ? error.stack : String(error)}\n`)
      process.exit(2)
    }
  )
}
