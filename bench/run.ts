/**
 * `npm run bench`: the comparison of issue 5, written to BENCHMARKS.md and
 * bench/results/latest.json.
 *
 *   npm run bench                       # everything, 3 rounds (about 5-8 minutes on 2 cores)
 *   npm run bench -- --quick            # a smoke run of every piece, about a minute
 *   npm run bench -- --only a,c --rounds 5
 *   npm run bench -- --quick --only f     # the streaming row alone
 *
 * (a) RpcPool against the Go client, (b) our server against the Go server, (e) RpcCluster
 * against RpcPool straight to one of its three Go servers and (f) RpcPool.stream against the Go
 * client reading the same streaming RPC need Go and
 * Debian's HashiCorp packages (see README); without them they are skipped with a note, and (d)
 * runs against our own server instead of the Go one. Each contender run is a child process;
 * the contenders of a load alternate within every round and the report gives medians.
 */
import * as os from "node:os"
import * as path from "node:path"
import { type Outcome, runJson, type Server, startServer } from "./child.ts"
import {
  acquireArgs,
  clusterClient,
  commandsFor,
  goStreamArgs,
  here,
  memoryArgs,
  observedAcquire,
  observedClient,
  rel,
  root,
  rpcFlags,
  tsClient,
  tsStreamClient
} from "./commands.ts"
import {
  acquireContenders,
  acquireNames,
  acquireVariants,
  clusterLoads,
  type Load,
  loads,
  type ScenarioId,
  sizeLabel,
  variantLabel,
  streamPayloads
} from "./plan.ts"
import * as Observability from "./observability.ts"
import * as Options from "./options.ts"
import * as Progress from "./progress.ts"
import { json, markdown, writeAtomically } from "./report.ts"
import type { StreamRow } from "./streamReport.ts"
import { type AcquireRow, type Ran, type Results, type RpcRow, summarize } from "./summary.ts"
import { buildGo, type GoBinaries } from "./toolchain.ts"

const resultsDir = path.join(here, "results")
const node = process.execPath

const { only, rounds, mode } = Options.parse()
const wants = (id: ScenarioId) => only.includes(id)

// ---------------------------------------------------------------------------------------------
// Runs

const RpcTimeoutMs = mode.warmupMs + mode.durationMs + 60_000
const AcquireTimeoutMs = 5 * 60_000
const MemoryTimeoutMs = 20 * 60_000

const fmt = (n: unknown) => (typeof n === "number" ? Math.round(n).toLocaleString("en-US") : "?")
const headline = (outcome: Outcome, key: string, unit: string): string =>
  outcome.ok ? `${fmt(outcome.value[key])} ${unit}` : `error: ${outcome.error}`

/** Expected length of each kind of run, for the progress bar's time-left estimate. */
const estimate = {
  rpc: mode.warmupMs + mode.durationMs + 800,
  acquire: mode.quick ? 2000 : 6000,
  memory: 8000 + mode.memory.calls / 8
}

/** Our side first in odd rounds, Go's first in even ones, so neither always runs on a warmer machine. */
const ordered = <A>(round: number, ours: A, theirs: A): ReadonlyArray<A> => (round % 2 === 1 ? [ours, theirs] : [theirs, ours])

const tryStart = async (command: string, args: ReadonlyArray<string>): Promise<Server | string> => {
  try {
    return await startServer(command, args)
  } catch (error) {
    return error instanceof Error ? error.message : String(error)
  }
}

// ---------------------------------------------------------------------------------------------
// Main

const started = new Date()
const loadStart = os.loadavg()
let goBinaries: GoBinaries | undefined
let goUnavailable: string | undefined
if (wants("a") || wants("b") || wants("d") || wants("e") || wants("f") || wants("g")) {
  process.stderr.write("building the Go client and server...\n")
  const built = await buildGo()
  if ("unavailable" in built) {
    goUnavailable = built.unavailable
    process.stderr.write(`(a), (b), (e) and (f) skipped: ${goUnavailable}\n`)
  } else {
    goBinaries = built
  }
}

/** Every run of the bench in order, so the bar knows the total up front. */
interface Step {
  readonly estimateMs: number
}

const steps: Array<Step> = []
const plan = (n: number, estimateMs: number) => {
  for (let i = 0; i < n; i++) steps.push({ estimateMs })
}
const rpcRuns = rounds * loads.length * 2
if (wants("a") && goBinaries !== undefined) plan(rpcRuns, estimate.rpc)
if (wants("b") && goBinaries !== undefined) plan(rpcRuns, estimate.rpc)
if (wants("c")) plan(rounds * acquireVariants.length * acquireContenders.length, estimate.acquire)
if (wants("d")) plan(1, estimate.memory)
const clusterRuns = rounds * clusterLoads.length * 2
if (wants("e") && goBinaries !== undefined) plan(clusterRuns, estimate.rpc)
const streamRuns = rounds * streamPayloads.length * 2
if (wants("f") && goBinaries !== undefined) plan(streamRuns, estimate.rpc)
const observedRuns = rounds * Observability.variants.length
if (wants("g") && goBinaries !== undefined) plan(observedRuns, mode.warmupMs + mode.observabilityCalls / 20 + 800)
if (wants("g")) plan(observedRuns, estimate.acquire)

const progress = Progress.make(steps.length, (i) => steps[i]?.estimateMs ?? 0)

const step = async (label: string, run: () => Promise<Outcome>, note: (o: Outcome) => string): Promise<Outcome> => {
  progress.start(label)
  const outcome = await run()
  progress.done(note(outcome))
  return outcome
}

const rpcScenario = async (
  id: "a" | "b" | "e",
  names: { readonly ours: string; readonly go: string },
  runOurs: (load: Load) => Promise<Outcome>,
  runGo: (load: Load) => Promise<Outcome>,
  scenarioLoads: ReadonlyArray<Load> = loads
): Promise<Ran<ReadonlyArray<RpcRow>>> => {
  const rows: Array<RpcRow> = scenarioLoads.map((load) => ({ load, ours: [], go: [] }))
  for (let round = 1; round <= rounds; round++) {
    for (const row of rows) {
      const label = (who: string) => `(${id}) ${row.load.callers} x ${sizeLabel(row.load.size)} ${who}, round ${round}/${rounds}`
      for (const which of ordered(round, "ours", "go") as ReadonlyArray<"ours" | "go">) {
        const run = which === "ours" ? runOurs : runGo
        row[which].push(await step(label(names[which]), () => run(row.load), (o) => headline(o, "callsPerSec", "calls/s")))
      }
    }
  }
  return { data: rows }
}

const servers: Array<Server> = []
const goServer = goBinaries === undefined ? undefined : await tryStart(goBinaries.server, ["-addr", "127.0.0.1:0"])
if (typeof goServer === "string") progress.say(`the Go server did not start: ${goServer}`)
else if (goServer !== undefined) servers.push(goServer)

const results: {
  a?: Ran<ReadonlyArray<RpcRow>>
  b?: Ran<ReadonlyArray<RpcRow>>
  c?: Ran<ReadonlyArray<AcquireRow>>
  d?: Ran<{ readonly outcome: Outcome; readonly server: string }>
  e?: Ran<ReadonlyArray<RpcRow>>
  f?: Ran<ReadonlyArray<StreamRow>>
  g?: Ran<ReadonlyArray<Observability.Row>>
} = {}
const goMissing = goUnavailable ?? (typeof goServer === "string" ? `the Go server did not start: ${goServer}` : undefined)

if (wants("a")) {
  if (goBinaries === undefined || goServer === undefined || typeof goServer === "string") {
    results.a = { skipped: goMissing ?? "Go unavailable" }
    if (goBinaries !== undefined) progress.skip(rpcRuns)
  } else {
    const address = goServer.address
    const client = goBinaries.client
    results.a = await rpcScenario(
      "a",
      { ours: "RpcPool", go: "Go client" },
      (load) => runJson(node, tsClient(mode, address, load), RpcTimeoutMs),
      (load) => runJson(client, rpcFlags(mode, address, load), RpcTimeoutMs)
    )
  }
}

if (wants("b")) {
  const ours = goBinaries === undefined ? undefined : await tryStart(node, [path.join(here, "rpc-server.ts")])
  if (goBinaries === undefined || goServer === undefined || typeof goServer === "string") {
    results.b = { skipped: goMissing ?? "Go unavailable" }
    if (goBinaries !== undefined) progress.skip(rpcRuns)
  } else if (ours === undefined || typeof ours === "string") {
    results.b = { skipped: `our server did not start: ${ours ?? "?"}` }
    progress.skip(rpcRuns)
  } else {
    const client = goBinaries.client
    const goAddress = goServer.address
    results.b = await rpcScenario(
      "b",
      { ours: "RpcServer", go: "Go server" },
      (load) => runJson(client, rpcFlags(mode, ours.address, load), RpcTimeoutMs),
      (load) => runJson(client, rpcFlags(mode, goAddress, load), RpcTimeoutMs)
    )
  }
  if (ours !== undefined && typeof ours !== "string") await ours.stop()
}

if (wants("c")) {
  const rows: Array<AcquireRow> = acquireVariants.flatMap((variant) =>
    acquireContenders.map((contender) => ({ contender, variant, runs: [] }))
  )
  for (let round = 1; round <= rounds; round++) {
    for (const variant of acquireVariants) {
      const variantRows = rows.filter((r) => r.variant === variant)
      // Rotate the starting contender each round, so none always runs first.
      for (let i = 0; i < variantRows.length; i++) {
        const row = variantRows[(i + round - 1) % variantRows.length]!
        row.runs.push(
          await step(
            `(c) ${acquireNames[row.contender]}, ${variantLabel(variant)}, round ${round}/${rounds}`,
            () => runJson(node, acquireArgs(mode, row.contender, variant), AcquireTimeoutMs),
            (o) => headline(o, "opsPerSec", "ops/s")
          )
        )
      }
    }
  }
  results.c = { data: rows }
}

if (wants("d")) {
  // Without Go, our own server stands in: it runs in its own process, so the client's heap is still all there is to see.
  const server = goServer !== undefined && typeof goServer !== "string"
    ? { address: goServer.address, name: "the Go server", stop: async () => {} }
    : await (async () => {
      const ours = await tryStart(node, [path.join(here, "rpc-server.ts")])
      return typeof ours === "string" ? ours : { address: ours.address, name: "our server (no Go server)", stop: ours.stop }
    })()
  if (typeof server === "string") {
    results.d = { skipped: `no server to call: ${server}` }
    progress.skip(1)
  } else {
    const outcome = await step(
      `(d) memory: ${mode.memory.sessions} sessions, ${mode.memory.streams} streams, ${fmt(mode.memory.calls)} calls`,
      () => runJson(node, memoryArgs(mode, server.address), MemoryTimeoutMs),
      (o) => {
        if (!o.ok) return `error: ${o.error}`
        const g = o.value["growth"] as Record<string, unknown> | undefined
        return `heap growth ${String(g?.["heapGrowthPct"] ?? "?")} %`
      }
    )
    results.d = { data: { outcome, server: server.name } }
    await server.stop()
  }
}

if (wants("e")) {
  if (goBinaries === undefined || goServer === undefined || typeof goServer === "string") {
    results.e = { skipped: goMissing ?? "Go unavailable" }
    if (goBinaries !== undefined) progress.skip(clusterRuns)
  } else {
    // Two more Go servers make the cluster; the first listed (the shared one) is its current server.
    const extra = await Promise.all([1, 2].map(() => tryStart(goBinaries!.server, ["-addr", "127.0.0.1:0"])))
    const failed = extra.find((x): x is string => typeof x === "string")
    const started = extra.filter((x): x is Server => typeof x !== "string")
    servers.push(...started)
    if (failed !== undefined) {
      results.e = { skipped: `a cluster Go server did not start: ${failed}` }
      progress.skip(clusterRuns)
    } else {
      const members = [goServer.address, ...started.map((x) => x.address)]
      results.e = await rpcScenario(
        "e",
        { ours: "RpcCluster", go: "RpcPool" },
        (load) => runJson(node, clusterClient(mode, members, load), RpcTimeoutMs),
        (load) => runJson(node, tsClient(mode, members[0]!, load), RpcTimeoutMs),
        clusterLoads
      )
    }
  }
}

if (wants("f")) {
  // Streaming RPC is Nomad's: a server of its own with Nomad's type bytes.
  const nomad = goBinaries === undefined ? undefined : await tryStart(goBinaries.server, ["-addr", "127.0.0.1:0", "-protocol", "nomad"])
  if (goBinaries === undefined || nomad === undefined) {
    results.f = { skipped: goMissing ?? "Go unavailable" }
  } else if (typeof nomad === "string") {
    results.f = { skipped: `the Go server did not start: ${nomad}` }
    progress.skip(streamRuns)
  } else {
    servers.push(nomad)
    const client = goBinaries.client
    const rows: Array<StreamRow> = streamPayloads.map((payload) => ({ payload, ours: [], go: [] }))
    for (let round = 1; round <= rounds; round++) {
      for (const row of rows) {
        for (const which of ordered(round, "ours", "go") as ReadonlyArray<"ours" | "go">) {
          const who = which === "ours" ? "RpcPool.stream" : "Go client"
          const run = which === "ours"
            ? () => runJson(node, tsStreamClient(mode, nomad.address, row.payload), RpcTimeoutMs)
            : () => runJson(client, goStreamArgs(mode, nomad.address, row.payload), RpcTimeoutMs)
          row[which].push(
            await step(`(f) ${row.payload} payloads, ${who}, round ${round}/${rounds}`, run, (o) => headline(o, "mbPerSec", "MB/s"))
          )
        }
      }
    }
    results.f = { data: rows }
  }
}

if (wants("g")) {
  const rows: Array<Observability.Row> = []
  const goAddress = goServer !== undefined && typeof goServer !== "string" ? goServer.address : undefined
  if (goAddress === undefined) {
    progress.say(`(g) without (a)'s part: ${goMissing ?? "Go unavailable"}`)
    if (goBinaries !== undefined) progress.skip(observedRuns)
  }
  const subjects: ReadonlyArray<Observability.Subject> = goAddress === undefined ? ["c"] : ["a", "c"]
  for (const subject of subjects) {
    const mine = Observability.variants.map((variant) => ({ subject, variant, runs: [] as Array<Outcome> }))
    rows.push(...mine)
    for (let round = 1; round <= rounds; round++) {
      // Rotate the starting variant each round, so none always runs first.
      for (let i = 0; i < mine.length; i++) {
        const row = mine[(i + round - 1) % mine.length]!
        const label = `(g) ${subject === "a" ? "RpcPool" : "ConnPool.use"}, ${Observability.variantNames[row.variant]}, round ${round}/${rounds}`
        row.runs.push(
          await step(
            label,
            () =>
              subject === "a"
                ? runJson(node, observedClient(mode, goAddress!, row.variant), RpcTimeoutMs)
                : runJson(node, observedAcquire(mode, row.variant), AcquireTimeoutMs),
            (o) => headline(o, subject === "a" ? "cpuUsPerCall" : "opsPerSec", subject === "a" ? "CPU µs/call" : "ops/s")
          )
        )
      }
    }
  }
  results.g = { data: rows }
}

for (const server of servers) await server.stop()
progress.finish()

const full: Results = {
  started,
  finished: new Date(),
  mode,
  only,
  machine: {
    cpu: os.cpus()[0]?.model.trim() ?? "unknown CPU",
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadStart: loadStart.map((l) => Math.round(l * 100) / 100),
    loadEnd: os.loadavg().map((l) => Math.round(l * 100) / 100)
  },
  node: process.version,
  go: goBinaries?.version,
  commands: commandsFor(mode, wants, goBinaries),
  ...results
}
const summary = summarize(full)
writeAtomically(path.join(resultsDir, "latest.json"), json(full, summary), resultsDir)
writeAtomically(path.join(root, "BENCHMARKS.md"), markdown(full, summary), resultsDir)

const width = Math.max(...summary.targets.map((t) => t.what.length))
process.stdout.write(
  [
    ...summary.targets.map((t) => `(${t.scenario}) ${t.what.padEnd(width)}  ${t.measured.padStart(7)}  ${t.verdict}`),
    "",
    `written: BENCHMARKS.md, ${rel(path.join(resultsDir, "latest.json"))}${mode.quick ? " (quick run: numbers not to be quoted)" : ""}`,
    ""
  ].join("\n")
)
