/**
 * CPU time per call of each side of (a) and (b), the figure that stays comparable on a loaded,
 * shared machine where calls/s does not: every run makes a fixed number of calls, and the CPU its
 * process (a: the client; b: the server) spent on them is divided by the count. Our side and Go's
 * alternate, and each figure is the median over the rounds.
 *
 *   node bench/cpu.ts --only a --loads 1x32,64x32,8x65536,8x1048576 --calls 20000 --rounds 5
 *
 * (a): both clients call the Go server and report their own CPU over the measured calls
 * (`cpuUsPerCall`, from `process.cpuUsage` and `getrusage`). (b): the Go client calls our server
 * and the Go server in turn, and each server's CPU is read from /proc/PID/stat around the run.
 * Prints one JSON line per load and side, then a table. Not part of `npm run bench`.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { procCpuUs, runJson, startServer } from "./child.ts"
import { die, flags, integer } from "./cli.ts"
import { type Load, loadKey } from "./plan.ts"
import { median, round } from "./stats.ts"
import { buildGo } from "./toolchain.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const f = flags(["only", "loads", "calls", "rounds", "bytes"])
const only = (f.only ?? "a,b").split(",")
const rounds = integer("rounds", f.rounds, 5, 1)
/** Calls per run: `--calls` for 32 B; larger payloads make about `--bytes` of payload per run. */
const baseCalls = integer("calls", f.calls, 20_000, 1)
const bytesPerRun = integer("bytes", f.bytes, 512 * 1024 * 1024, 1)
const loads: Array<Load> = (f.loads ?? "1x32,64x32,8x65536,8x1048576").split(",").map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim())
  if (m === null) return die(`--loads: expected CALLERSxBYTES, got ${s}`)
  return { callers: Number(m[1]), size: Number(m[2]) }
})
const callsFor = (load: Load) => Math.max(200, Math.min(baseCalls, Math.floor(bytesPerRun / load.size)))


const go = await buildGo()
if ("unavailable" in go) die(go.unavailable, 1)
const { client, server } = go as Exclude<typeof go, { unavailable: string }>
const node = process.execPath

const goServer = await startServer(server, ["-addr", "127.0.0.1:0"])
const args = (addr: string, load: Load, warmup = "1s") => [
  "--addr", addr, "--concurrency", String(load.callers), "--size", String(load.size),
  "--calls", String(callsFor(load)), "--warmup", warmup
]
const rows: Array<string> = []
const report = (what: string, load: Load, ours: Array<number>, theirs: Array<number>) => {
  const o = median(ours)
  const g = median(theirs)
  const line = { what, load: loadKey(load), calls: callsFor(load), oursUs: o, goUs: g, ratio: o && g ? round(g / o, 3) : undefined, ours, go: theirs }
  process.stdout.write(`${JSON.stringify(line)}\n`)
  rows.push(`| ${what} | ${load.callers} x ${load.size} | ${o?.toFixed(1)} | ${g?.toFixed(1)} | ${line.ratio?.toFixed(2)}x |`)
}
const perCall = async (command: string, a: ReadonlyArray<string>): Promise<number> => {
  const o = await runJson(command, a, 10 * 60_000)
  if (!o.ok) return die(`${command}: ${o.error}`, 1)
  return o.value["cpuUsPerCall"] as number
}

if (only.includes("a")) {
  for (const load of loads) {
    const ours: Array<number> = []
    const theirs: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      ours.push(await perCall(node, [path.join(here, "rpc-client.ts"), ...args(goServer.address, load)]))
      theirs.push(await perCall(client, args(goServer.address, load)))
    }
    report("client (a)", load, ours, theirs)
  }
}
if (only.includes("b")) {
  const ourServer = await startServer(node, [path.join(here, "rpc-server.ts")])
  const goServer2 = await startServer(server, ["-addr", "127.0.0.1:0"])
  // No warm-up inside a run: the server's CPU is read around the whole run, so every call counts.
  const serverCpu = async (s: { address: string; pid: number }, load: Load) => {
    const before = procCpuUs(s.pid)
    const o = await runJson(client, args(s.address, load, "0s"), 10 * 60_000)
    if (!o.ok) return die(`Go client: ${o.error}`, 1)
    return (procCpuUs(s.pid) - before) / (o.value["calls"] as number)
  }
  for (const load of loads) {
    const ours: Array<number> = []
    const theirs: Array<number> = []
    // One unmeasured run each first, so both servers are warm for this load.
    await serverCpu(ourServer, load)
    await serverCpu(goServer2, load)
    for (let r = 0; r < rounds; r++) {
      ours.push(round(await serverCpu(ourServer, load), 2))
      theirs.push(round(await serverCpu(goServer2, load), 2))
    }
    report("server (b)", load, ours, theirs)
  }
  await ourServer.stop()
  await goServer2.stop()
}
await goServer.stop()
process.stdout.write(["", "| side | load | ours µs/call | Go µs/call | Go/ours |", "| --- | --- | --- | --- | --- |", ...rows, ""].join("\n"))
process.exit(0)
