/**
 * Transport decision bench (docs/decisions.md): node:net as src/yamux/Session.ts uses it
 * versus @effect/platform-node NodeSocket, over loopback against a node:net echo server
 * running in a child process (bench/decisions/echo-server.ts).
 *
 *   npx node bench/decisions/transport.ts                 # 5 runs of every case, 2 s each
 *   npx node bench/decisions/transport.ts --runs 3 --ms 1000
 *   npx node bench/decisions/transport.ts --json out.json # also write raw samples
 *
 * Cases: `pingpong-1` (one 64-byte message in flight), `pingpong-64` (64 in flight),
 * `bulk-64KiB` (64 KiB writes as fast as backpressure allows, echoed back).
 *
 * Variants:
 *   net           plain callbacks: `data` listener, writes queued and flushed once per
 *                 microtask under cork()/uncork(), `drain` for bulk.
 *   net+effect    the shape of our session: the same socket code, but every caller is an
 *                 Effect fiber parked in Effect.callback and woken from the `data` listener;
 *                 bulk writer waits on `writableLength` > 1 MiB (maxWriteBuffer) for `drain`.
 *   net+effect/readable  diagnostic: as net+effect, but reading the way NodeSocket does
 *                 (paused socket, `readable` + read()); ping-pong only.
 *   net+effect+q  diagnostic: as net+effect, but writing the way nodesocket+q does (Queue,
 *                 one writer fiber, cork/write/uncork per takeAll batch); ping-pong only.
 *   nodesocket    NodeSocket.makeNet: a reader fiber loops on `reader.pull`, callers use
 *                 `writer.write` directly (one conn.write per message).
 *   nodesocket+q  as nodesocket, but callers offer to a Queue and one writer fiber sends
 *                 `Queue.takeAll` batches with `writer.writeAll` (which corks).
 *
 * The last column is the median over runs of (variant rate / net+effect rate in the same run):
 * on a shared machine, load shifts between runs move every variant alike, so the paired ratio
 * is steadier than the medians.
 *
 * Every trial opens a fresh connection, warms up for a quarter of the measuring time, then
 * counts for `--ms`. Reported: the median of the runs; calls/s for ping-pong (mean round
 * trip = 1/rate for pingpong-1), MB/s (10^6 bytes echoed back per second) for bulk, and
 * client CPU (user+sys) as a percentage of one core.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Queue } from "effect"

const here = path.dirname(fileURLToPath(import.meta.url))

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const RUNS = Number(arg("--runs") ?? 5)
const MS = Number(arg("--ms") ?? 2000)
const WARM_MS = Math.round(MS / 4)
const JSON_OUT = arg("--json")
const ONLY = arg("--only")

const MSG = 64
const CHUNK = 64 * 1024
const MAX_WRITE_BUFFER = 1024 * 1024

type CaseName = "pingpong-1" | "pingpong-64" | "bulk-64KiB"
type VariantName = "net" | "net+effect" | "net+effect/readable" | "net+effect+q" | "nodesocket" | "nodesocket+q"

interface Sample {
  readonly calls: number
  readonly bytes: number
  readonly ms: number
  readonly cpuMs: number
}

/** Shared counters: the measuring window resets them after the warm-up. */
class Counter {
  calls = 0
  bytes = 0
  reset(): void {
    this.calls = 0
    this.bytes = 0
  }
}

const message = Buffer.alloc(MSG, 0x61)
const chunk = Buffer.alloc(CHUNK, 0x62)

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Warm-up, then a timed window; `stop` is called once the window ends. */
const measure = async (counter: Counter, stop: () => Promise<void> | void): Promise<Sample> => {
  await sleep(WARM_MS)
  counter.reset()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await sleep(MS)
  const calls = counter.calls
  const bytes = counter.bytes
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  await stop()
  return { calls, bytes, ms, cpuMs: (cpu.user + cpu.system) / 1000 }
}

const connect = (port: number) =>
  new Promise<net.Socket>((resolve, reject) => {
    const socket = net.createConnection({ host: "127.0.0.1", port, noDelay: true })
    socket.once("connect", () => resolve(socket))
    socket.once("error", reject)
  })

// -------------------------------------------------------------------------------------------
// net: callbacks only

/** The session's writer: queue, flush once per microtask, cork around batches. */
class CorkWriter {
  private out: Array<Uint8Array> = []
  private scheduled = false
  readonly socket: net.Socket
  constructor(socket: net.Socket) {
    this.socket = socket
  }
  enqueue(buf: Uint8Array): void {
    this.out.push(buf)
    if (!this.scheduled) {
      this.scheduled = true
      queueMicrotask(this.flush)
    }
  }
  private readonly flush = (): void => {
    this.scheduled = false
    const out = this.out
    if (out.length === 0 || this.socket.destroyed) return
    this.out = []
    if (out.length === 1) {
      this.socket.write(out[0]!)
      return
    }
    this.socket.cork()
    for (const b of out) this.socket.write(b)
    this.socket.uncork()
  }
}

const netPingPong = async (port: number, inflight: number): Promise<Sample> => {
  const socket = await connect(port)
  const counter = new Counter()
  const writer = new CorkWriter(socket)
  let running = true
  let received = 0
  let completed = 0
  socket.on("data", (data: Buffer) => {
    received += data.length
    counter.bytes += data.length
    const done = Math.floor(received / MSG)
    for (; completed < done; completed++) {
      counter.calls++
      if (running) writer.enqueue(message)
    }
  })
  for (let i = 0; i < inflight; i++) writer.enqueue(message)
  return measure(counter, () => {
    running = false
    socket.destroy()
  })
}

const netBulk = async (port: number): Promise<Sample> => {
  const socket = await connect(port)
  const counter = new Counter()
  let running = true
  socket.on("data", (data: Buffer) => {
    counter.bytes += data.length
    counter.calls++
  })
  const pump = () => {
    while (running && socket.write(chunk)) {}
  }
  socket.on("drain", pump)
  pump()
  return measure(counter, () => {
    running = false
    socket.destroy()
  })
}

// -------------------------------------------------------------------------------------------
// net+effect: the socket code above, with Effect fibers as callers (our session's shape)

const netEffectPingPong = async (
  port: number,
  inflight: number,
  paused: boolean,
  queued = false
): Promise<Sample> => {
  const socket = await connect(port)
  const counter = new Counter()
  const writer = new CorkWriter(socket)
  const queue = Effect.runSync(Queue.unbounded<Uint8Array>())
  const waiters: Array<() => void> = []
  let received = 0
  let completed = 0
  const onData = (data: Buffer) => {
    received += data.length
    counter.bytes += data.length
    const done = Math.floor(received / MSG)
    for (; completed < done; completed++) {
      counter.calls++
      waiters.shift()?.()
    }
  }
  if (paused) {
    // Diagnostic: NodeSocket's read mode (paused, `readable` + read()) with our write path.
    socket.pause()
    socket.on("readable", () => {
      let data: Buffer | null
      while ((data = socket.read() as Buffer | null) !== null) onData(data)
    })
  } else {
    socket.on("data", onData)
  }
  const call = Effect.callback<void>((resume) => {
    waiters.push(() => resume(Effect.void))
    if (queued) Queue.offerUnsafe(queue, message)
    else writer.enqueue(message)
  })
  // Diagnostic: NodeSocket+q's write path (Queue -> one writer fiber -> cork/write/uncork) on node:net.
  const drainQueue = Effect.forever(Effect.map(Queue.takeAll(queue), (bufs) => {
    socket.cork()
    for (const b of bufs) socket.write(b)
    socket.uncork()
  }))
  // One runtime for all callers, as in the pool: fibers forked from one parent share its dispatcher.
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    if (queued) yield* Effect.forkChild(drainQueue)
    for (let i = 0; i < inflight; i++) yield* Effect.forkChild(Effect.forever(call))
    return yield* Effect.promise(() => measure(counter, () => {}))
  })))
}

const netEffectBulk = async (port: number): Promise<Sample> => {
  const socket = await connect(port)
  const counter = new Counter()
  socket.on("data", (data: Buffer) => {
    counter.bytes += data.length
    counter.calls++
  })
  const awaitDrain = Effect.callback<void>((resume) => {
    const onDrain = () => resume(Effect.void)
    socket.once("drain", onDrain)
    return Effect.sync(() => socket.off("drain", onDrain))
  })
  const write = Effect.suspend(() => {
    socket.write(chunk)
    return socket.writableLength > MAX_WRITE_BUFFER ? awaitDrain : Effect.void
  })
  return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    yield* Effect.forkChild(Effect.forever(write))
    return yield* Effect.promise(() => measure(counter, () => {}))
  })))
}

// -------------------------------------------------------------------------------------------
// nodesocket: @effect/platform-node NodeSocket.makeNet, reader.pull / writer.write

const nodeSocketPingPong = (port: number, inflight: number, batched: boolean): Promise<Sample> => {
  const counter = new Counter()
  const program = Effect.gen(function*() {
    const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port, noDelay: true })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    // A reply can be processed before its caller parks (the fiber may yield between the
    // write and the wait), so completions without a waiter are kept as credits.
    const waiters: Array<() => void> = []
    let credits = 0
    let received = 0
    let completed = 0
    yield* Effect.forkChild(Effect.forever(Effect.map(reader.pull, (chunks) => {
      for (const c of chunks) {
        received += c.length
        counter.bytes += c.length
      }
      const done = Math.floor(received / MSG)
      for (; completed < done; completed++) {
        counter.calls++
        const waiter = waiters.shift()
        if (waiter === undefined) credits++
        else waiter()
      }
    })))
    const awaitReply = Effect.callback<void>((resume) => {
      if (credits > 0) {
        credits--
        resume(Effect.void)
      } else {
        waiters.push(() => resume(Effect.void))
      }
    })
    let send: Effect.Effect<void, unknown>
    if (batched) {
      const queue = yield* Queue.unbounded<Uint8Array>()
      yield* Effect.forkChild(Effect.forever(Effect.flatMap(Queue.takeAll(queue), (bufs) => writer.writeAll(bufs))))
      send = Effect.sync(() => {
        Queue.offerUnsafe(queue, message)
      })
    } else {
      send = writer.write(message)
    }
    const call = Effect.andThen(send, awaitReply)
    for (let i = 0; i < inflight; i++) yield* Effect.forkChild(Effect.forever(call))
    return yield* Effect.promise(() => measure(counter, () => {}))
  })
  return Effect.runPromise(Effect.scoped(program))
}

const nodeSocketBulk = (port: number): Promise<Sample> => {
  const counter = new Counter()
  const program = Effect.gen(function*() {
    const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port, noDelay: true })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    yield* Effect.forkChild(Effect.forever(Effect.map(reader.pull, (chunks) => {
      for (const c of chunks) counter.bytes += c.length
      counter.calls++
    })))
    yield* Effect.forkChild(Effect.forever(writer.write(chunk)))
    return yield* Effect.promise(() => measure(counter, () => {}))
  })
  return Effect.runPromise(Effect.scoped(program))
}

// -------------------------------------------------------------------------------------------

const trial = (variant: VariantName, kase: CaseName, port: number): Promise<Sample> => {
  const inflight = kase === "pingpong-1" ? 1 : 64
  switch (variant) {
    case "net":
      return kase === "bulk-64KiB" ? netBulk(port) : netPingPong(port, inflight)
    case "net+effect":
      return kase === "bulk-64KiB" ? netEffectBulk(port) : netEffectPingPong(port, inflight, false)
    case "net+effect/readable":
      return netEffectPingPong(port, inflight, true)
    case "net+effect+q":
      return netEffectPingPong(port, inflight, false, true)
    case "nodesocket":
      return kase === "bulk-64KiB" ? nodeSocketBulk(port) : nodeSocketPingPong(port, inflight, false)
    case "nodesocket+q":
      // writeAll batching only matters with many messages; bulk is one chunk per write anyway.
      return kase === "bulk-64KiB" ? nodeSocketBulk(port) : nodeSocketPingPong(port, inflight, true)
  }
}

const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const startEcho = () =>
  new Promise<{ port: number; stop: () => void }>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, "echo-server.ts")], { stdio: ["pipe", "pipe", "inherit"] })
    child.once("error", reject)
    child.stdout.once("data", (d: Buffer) => resolve({ port: Number(d.toString().trim()), stop: () => child.stdin.end() }))
  })

const main = async () => {
  const echo = await startEcho()
  const cases: ReadonlyArray<CaseName> = ["pingpong-1", "pingpong-64", "bulk-64KiB"]
  const variants: ReadonlyArray<VariantName> = [
    "net",
    "net+effect",
    "net+effect/readable",
    "net+effect+q",
    "nodesocket",
    "nodesocket+q"
  ]
  const samples = new Map<string, Array<Sample>>()
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(" ")
  console.log(
    `node ${process.version}, ${os.cpus().length} cpus, load ${load()}; ${RUNS} runs x ${MS} ms (+${WARM_MS} ms warm-up); echo server in a child process`
  )
  // Interleave variants inside each run so drift (thermal, other load) hits all of them alike.
  for (let run = 1; run <= RUNS; run++) {
    for (const kase of cases) {
      for (const variant of variants) {
        const key = `${kase} ${variant}`
        if (ONLY !== undefined && !key.includes(ONLY)) continue
        if (kase === "bulk-64KiB" && (variant === "nodesocket+q" || variant === "net+effect/readable" || variant === "net+effect+q")) continue
        const s = await trial(variant, kase, echo.port)
        const list = samples.get(key) ?? []
        list.push(s)
        samples.set(key, list)
        const rate = (s.calls / s.ms) * 1000
        const mbs = s.bytes / s.ms / 1000
        console.log(
          `run ${run} ${key.padEnd(26)} ${Math.round(rate).toString().padStart(9)} calls/s ${
            mbs.toFixed(1).padStart(8)
          } MB/s cpu ${((s.cpuMs / s.ms) * 100).toFixed(0)}%`
        )
      }
    }
  }
  echo.stop()
  console.log(`\nload at end ${load()}`)
  console.log("medians")
  console.log(
    "| case | variant | calls/s (median) | calls/s range | mean RTT µs | MB/s (median) | MB/s range | client CPU % | vs net+effect (paired) |"
  )
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|")
  const summary: Array<Record<string, unknown>> = []
  for (const [key, list] of samples) {
    const [kase, variant] = key.split(" ") as [CaseName, VariantName]
    const rate = median(list.map((s) => (s.calls / s.ms) * 1000))
    const mbs = median(list.map((s) => s.bytes / s.ms / 1000))
    const cpu = median(list.map((s) => (s.cpuMs / s.ms) * 100))
    const bulk = kase === "bulk-64KiB"
    const rates = list.map((s) => (s.calls / s.ms) * 1000)
    const mbss = list.map((s) => s.bytes / s.ms / 1000)
    const k = (x: number) => Math.round(x).toLocaleString("en-US")
    // Paired: this variant's rate over net+effect's in the same run, so load shifts between runs cancel.
    const base = samples.get(`${kase} net+effect`) ?? []
    const ratios = list.flatMap((s, i) => {
      const b = base[i]
      return b === undefined ? [] : [(s.bytes / s.ms) / (b.bytes / b.ms)]
    })
    const paired = ratios.length > 0 ? `${median(ratios).toFixed(2)}×` : "—"
    console.log(
      `| ${kase} | ${variant} | ${bulk ? "—" : k(rate)} | ${bulk ? "—" : `${k(Math.min(...rates))}–${k(Math.max(...rates))}`} | ${
        kase === "pingpong-1" ? (1e6 / rate).toFixed(1) : "—"
      } | ${mbs.toFixed(1)} | ${Math.min(...mbss).toFixed(0)}–${Math.max(...mbss).toFixed(0)} | ${cpu.toFixed(0)} | ${paired} |`
    )
    summary.push({ case: kase, variant, callsPerSec: rate, mbPerSec: mbs, cpuPercent: cpu, samples: list })
  }
  if (JSON_OUT !== undefined) {
    fs.writeFileSync(JSON_OUT, JSON.stringify({ node: process.version, runs: RUNS, ms: MS, summary }, null, 2))
  }
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
