/**
 * Turns the runs of `npm run bench` into medians, ratios and verdicts, and writes them twice:
 * bench/results/latest.json (every run, for tools) and BENCHMARKS.md (tables, for people).
 * Only what the runs produced is written: a scenario that did not run says why, a failed run
 * shows its error, and a ratio with a missing side is "n/a", never a guess.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Outcome } from "./child.ts"
import {
  type AcquireContender,
  acquireNames,
  acquireTargets,
  type AcquireVariant,
  acquireWaitTargets,
  clientTargets,
  clusterTarget,
  heapGrowthTargetPct,
  type Load,
  loadKey,
  type Mode,
  type ScenarioId,
  scenarioTitles,
  serverTargets,
  sizeLabel,
  variantLabel
} from "./plan.ts"
import * as Observability from "./observability.ts"
import { median, round } from "./stats.ts"
import { type StreamRow, streamSection, type StreamSummary, summarizeStream } from "./streamReport.ts"

/** Profiles of the targets known to be at risk, copied into the report when one is missed. */
const missesFile = new URL("./misses.md", import.meta.url)

// ---------------------------------------------------------------------------------------------
// What run.ts collects

export interface RpcRow {
  readonly load: Load
  /** Our side's runs (RpcPool in (a), RpcServer in (b)), in round order. */
  readonly ours: Array<Outcome>
  /** The Go side's runs (the Go client in (a), the Go server in (b)). */
  readonly go: Array<Outcome>
}

export interface AcquireRow {
  readonly contender: AcquireContender
  readonly variant: AcquireVariant
  readonly runs: Array<Outcome>
}

/** A scenario that ran has rows (or an outcome); one that could not run says why. */
export type Ran<A> = { readonly skipped: string } | { readonly skipped?: undefined; readonly data: A }

export interface Results {
  readonly started: Date
  readonly finished: Date
  readonly mode: Mode
  readonly only: ReadonlyArray<ScenarioId>
  readonly machine: Machine
  readonly node: string
  readonly go: string | undefined
  /** The commands that reproduce the report, in order. */
  readonly commands: ReadonlyArray<string>
  readonly a?: Ran<ReadonlyArray<RpcRow>> | undefined
  readonly b?: Ran<ReadonlyArray<RpcRow>> | undefined
  readonly c?: Ran<ReadonlyArray<AcquireRow>> | undefined
  readonly d?: Ran<{ readonly outcome: Outcome; readonly server: string }> | undefined
  /** (e): `ours` through RpcCluster, `go` straight to the same server through RpcPool. */
  readonly e?: Ran<ReadonlyArray<RpcRow>> | undefined
  /** (f): `RpcPool.stream` and the Go client reading the same streaming RPC. */
  readonly f?: Ran<ReadonlyArray<StreamRow>> | undefined
  /** (g): each subject with each observability variant. */
  readonly g?: Ran<ReadonlyArray<Observability.Row>> | undefined
}

export interface Machine {
  readonly cpu: string
  readonly cores: number
  readonly memoryGiB: number
  readonly os: string
  readonly loadStart: ReadonlyArray<number>
  readonly loadEnd: ReadonlyArray<number>
}

// ---------------------------------------------------------------------------------------------
// Summaries

export type Verdict = "PASS" | "MISS" | "n/a"

interface Side {
  readonly callsPerSec: number | undefined
  readonly p50Ms: number | undefined
  readonly p99Ms: number | undefined
  readonly runs: number
  readonly errors: ReadonlyArray<string>
}

const num = (outcome: Outcome, key: string): number | undefined => {
  if (!outcome.ok) return undefined
  const v = outcome.value[key]
  return typeof v === "number" ? v : undefined
}

const medianOf = (outcomes: ReadonlyArray<Outcome>, key: string): number | undefined =>
  median(outcomes.map((o) => num(o, key)).filter((v): v is number => v !== undefined))

const errorsOf = (outcomes: ReadonlyArray<Outcome>): Array<string> =>
  outcomes.flatMap((o, i) => (o.ok ? [] : [`round ${i + 1}: ${o.error}`]))

const side = (outcomes: ReadonlyArray<Outcome>): Side => ({
  callsPerSec: medianOf(outcomes, "callsPerSec"),
  p50Ms: medianOf(outcomes, "p50Ms"),
  p99Ms: medianOf(outcomes, "p99Ms"),
  runs: outcomes.filter((o) => o.ok).length,
  errors: errorsOf(outcomes)
})

const ratioOf = (ours: number | undefined, theirs: number | undefined): number | undefined =>
  ours === undefined || theirs === undefined || theirs === 0 ? undefined : round(ours / theirs, 3)

const verdict = (ratio: number | undefined, target: number | undefined): Verdict =>
  ratio === undefined || target === undefined ? "n/a" : ratio >= target ? "PASS" : "MISS"

export interface RpcSummary {
  readonly callers: number
  readonly size: number
  readonly ours: Side
  readonly go: Side
  /** Ratio of the medians: our calls/s over Go's. */
  readonly ratio: number | undefined
  readonly target: number | undefined
  readonly verdict: Verdict
}

const summarizeRpc = (rows: ReadonlyArray<RpcRow>, target: (load: Load) => number | undefined): Array<RpcSummary> =>
  rows.map((row) => {
    const ours = side(row.ours)
    const go = side(row.go)
    const ratio = ratioOf(ours.callsPerSec, go.callsPerSec)
    const t = target(row.load)
    return { ...row.load, ours, go, ratio, target: t, verdict: verdict(ratio, t) }
  })

export interface AcquireSummary {
  readonly contender: AcquireContender
  readonly variant: AcquireVariant
  readonly opsPerSec: number | undefined
  /** Medians over the runs of the sampled waits' p50, p99 and maximum, in µs. */
  readonly waitP50Us: number | undefined
  readonly waitP99Us: number | undefined
  readonly waitMaxUs: number | undefined
  readonly runs: number
  readonly errors: ReadonlyArray<string>
  /** ConnPool's median ops/s over this contender's (undefined for ConnPool itself). */
  readonly ratio: number | undefined
  readonly target: number | undefined
  readonly verdict: Verdict
  /** Whether ConnPool's p99 wait must be no worse than this contender's, and whether it is. */
  readonly waitVerdict: Verdict | undefined
  /** ConnPool's p99 wait in the same variant, for the target line. */
  readonly oursP99Us: number | undefined
}

const summarizeAcquire = (rows: ReadonlyArray<AcquireRow>): Array<AcquireSummary> =>
  rows.map((row) => {
    const ours = rows.find((r) => r.contender === "connpool" && r.variant === row.variant)
    const oursOps = ours === undefined ? undefined : medianOf(ours.runs, "opsPerSec")
    const oursP99Us = ours === undefined ? undefined : medianOf(ours.runs, "waitP99Us")
    const theirs = medianOf(row.runs, "opsPerSec")
    const waitP99Us = medianOf(row.runs, "waitP99Us")
    const ratio = row.contender === "connpool" ? undefined : ratioOf(oursOps, theirs)
    const target = acquireTargets[row.contender]
    const waitVerdict: Verdict | undefined = !acquireWaitTargets.includes(row.contender)
      ? undefined
      : oursP99Us === undefined || waitP99Us === undefined
      ? "n/a"
      : oursP99Us <= waitP99Us
      ? "PASS"
      : "MISS"
    return {
      contender: row.contender,
      variant: row.variant,
      opsPerSec: theirs,
      waitP50Us: medianOf(row.runs, "waitP50Us"),
      waitP99Us,
      waitMaxUs: medianOf(row.runs, "waitMaxUs"),
      runs: row.runs.filter((o) => o.ok).length,
      errors: errorsOf(row.runs),
      ratio,
      target,
      verdict: verdict(ratio, target),
      waitVerdict,
      oursP99Us
    }
  })

export interface MemorySummary {
  readonly server: string
  readonly error: string | undefined
  readonly sessions: number | undefined
  readonly heapPerSessionBytes: number | undefined
  readonly streams: number | undefined
  readonly heapPerStreamBytes: number | undefined
  readonly calls: number | undefined
  readonly warmCalls: number | undefined
  readonly heapGrowthPct: number | undefined
  readonly verdict: Verdict
  readonly raw: Readonly<Record<string, unknown>> | undefined
}

const summarizeMemory = ({ outcome, server }: { readonly outcome: Outcome; readonly server: string }): MemorySummary => {
  const v = outcome.ok ? outcome.value : undefined
  const n = (o: Readonly<Record<string, unknown>> | undefined, k: string) =>
    o !== undefined && typeof o[k] === "number" ? o[k] : undefined
  const growth = v !== undefined && typeof v["growth"] === "object" && v["growth"] !== null
    ? v["growth"] as Record<string, unknown>
    : undefined
  const pct = n(growth, "heapGrowthPct")
  const failed = n(growth, "failed")
  return {
    server,
    error: outcome.ok
      ? failed !== undefined && failed > 0 ? `${failed} calls failed: ${String(growth?.["error"] ?? "")}` : undefined
      : outcome.error,
    sessions: n(v, "sessions"),
    heapPerSessionBytes: n(v, "heapPerSessionBytes"),
    streams: n(v, "streams"),
    heapPerStreamBytes: n(v, "heapPerStreamBytes"),
    calls: n(growth, "calls"),
    warmCalls: n(growth, "warmCalls"),
    heapGrowthPct: pct,
    verdict: pct === undefined ? "n/a" : pct < heapGrowthTargetPct ? "PASS" : "MISS",
    raw: v
  }
}

export interface TargetLine {
  readonly scenario: ScenarioId
  readonly what: string
  readonly measured: string
  readonly verdict: Verdict | "skipped"
}

export interface Summary {
  readonly a?: Ran<ReadonlyArray<RpcSummary>> | undefined
  readonly b?: Ran<ReadonlyArray<RpcSummary>> | undefined
  readonly c?: Ran<ReadonlyArray<AcquireSummary>> | undefined
  readonly d?: Ran<MemorySummary> | undefined
  readonly e?: Ran<ReadonlyArray<RpcSummary>> | undefined
  readonly f?: Ran<ReadonlyArray<StreamSummary>> | undefined
  readonly g?: Ran<ReadonlyArray<Observability.SubjectSummary>> | undefined
  readonly targets: ReadonlyArray<TargetLine>
}

const mapRan = <A, B>(ran: Ran<A> | undefined, f: (a: A) => B): Ran<B> | undefined =>
  ran === undefined ? undefined : ran.skipped !== undefined ? { skipped: ran.skipped } : { data: f(ran.data) }

const ratioText = (r: number | undefined): string => (r === undefined ? "n/a" : `${r.toFixed(2)}x`)

const loadText = (load: Load): string => `${load.callers} caller${load.callers === 1 ? "" : "s"}, ${sizeLabel(load.size)}`

export const summarize = (results: Results): Summary => {
  const a = mapRan(results.a, (rows) => summarizeRpc(rows, (load) => clientTargets[loadKey(load)]))
  const b = mapRan(results.b, (rows) => summarizeRpc(rows, (load) => serverTargets[loadKey(load)]))
  const c = mapRan(results.c, summarizeAcquire)
  const d = mapRan(results.d, summarizeMemory)
  const e = mapRan(results.e, (rows) => summarizeRpc(rows, () => clusterTarget))
  const f = mapRan(results.f, summarizeStream)
  const g = mapRan(results.g, Observability.summarize)
  const targets: Array<TargetLine> = []
  const skippedLine = (scenario: ScenarioId, what: string, ran: { readonly skipped?: string | undefined } | undefined) =>
    ran?.skipped !== undefined ? targets.push({ scenario, what, measured: ran.skipped, verdict: "skipped" }) : undefined

  /** A line per RPC row with a target, or the reason the scenario did not run. */
  const rpcTargets = (
    scenario: "a" | "b" | "e",
    ran: Ran<ReadonlyArray<RpcSummary>> | undefined,
    name: string,
    what: (row: RpcSummary) => string
  ) => {
    if (ran === undefined) return
    if (ran.skipped !== undefined) return skippedLine(scenario, name, ran)
    for (const row of ran.data.filter((r) => r.target !== undefined)) {
      targets.push({ scenario, what: `${what(row)}, ${loadText(row)}`, measured: ratioText(row.ratio), verdict: row.verdict })
    }
  }

  rpcTargets("a", a, "RpcPool against the Go client", (row) => `RpcPool >= ${row.target}x the Go client`)
  rpcTargets("b", b, "our server against the Go server", (row) => `RpcServer >= ${row.target}x the Go server`)
  if (c !== undefined) {
    if (c.skipped !== undefined) skippedLine("c", "ConnPool acquire/release", c)
    else {
      for (const row of c.data.filter((r) => r.target !== undefined)) {
        targets.push({
          scenario: "c",
          what: `ConnPool.use >= ${row.target}x ${acquireNames[row.contender]}, ${variantLabel(row.variant)}`,
          measured: ratioText(row.ratio),
          verdict: row.verdict
        })
      }
      for (const row of c.data.filter((r) => r.waitVerdict !== undefined)) {
        targets.push({
          scenario: "c",
          what: `ConnPool.use p99 wait <= ${acquireNames[row.contender]}'s, ${variantLabel(row.variant)}`,
          measured: `${fmtUs(row.oursP99Us)} / ${fmtUs(row.waitP99Us)} µs`,
          verdict: row.waitVerdict!
        })
      }
    }
  }
  if (d !== undefined) {
    if (d.skipped !== undefined) skippedLine("d", "heap growth", d)
    else {
      const m = d.data
      targets.push({
        scenario: "d",
        what: `heap growth < ${heapGrowthTargetPct} % over ${m.calls === undefined ? "the" : m.calls.toLocaleString("en-US")} calls`,
        measured: m.heapGrowthPct === undefined ? "n/a" : `${m.heapGrowthPct.toFixed(2)} %`,
        verdict: m.verdict
      })
    }
  }
  rpcTargets(
    "e",
    e,
    "RpcCluster against RpcPool straight to one server",
    () => `RpcCluster >= ${clusterTarget}x RpcPool straight to its server`
  )
  if (f !== undefined) {
    if (f.skipped !== undefined) skippedLine("f", "RpcPool.stream against the Go client", f)
    else {
      for (const row of f.data) {
        targets.push({
          scenario: "f",
          what: `RpcPool.stream >= ${row.target}x the Go client's MB/s, ${row.payload} payloads`,
          measured: ratioText(row.ratio),
          verdict: row.verdict
        })
      }
    }
  }
  if (g !== undefined) {
    if (g.skipped !== undefined) skippedLine("g", "observability cost", g)
    else {
      for (const s of g.data) {
        const metrics = s.variants.find((v) => v.variant === "metrics")
        targets.push({
          scenario: "g",
          what: `metrics (on by default) cost <= ${Observability.observabilityBudgetPct} % CPU per call, ${
            s.subject === "a" ? "RpcPool" : "ConnPool.use"
          }`,
          measured: metrics?.costPct === undefined ? "n/a" : `${metrics.costPct.toFixed(1)} %`,
          verdict: metrics?.costPct === undefined
            ? "n/a"
            : metrics.costPct <= Observability.observabilityBudgetPct
            ? "PASS"
            : "MISS"
        })
      }
    }
  }
  return { a, b, c, d, e, f, g, targets }
}

// ---------------------------------------------------------------------------------------------
// Writing

const fmtInt = (n: number | undefined): string => (n === undefined ? "n/a" : Math.round(n).toLocaleString("en-US"))
const fmtMs = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(3))
const fmtUs = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(1))
const fmtBytes = (n: number | undefined): string =>
  n === undefined ? "n/a" : Math.abs(n) >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`
const mark = (v: Verdict | "skipped"): string => (v === "PASS" ? "**PASS**" : v === "MISS" ? "**MISS**" : v)

const table = (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${r.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`)
  ].join("\n")

const errorList = (lines: ReadonlyArray<string>): string =>
  lines.length === 0 ? "" : `\nFailed runs:\n\n${lines.map((l) => `- ${l}`).join("\n")}\n`

const rpcSection = (
  id: "a" | "b" | "e",
  ran: Ran<ReadonlyArray<RpcSummary>>,
  names: { readonly ours: string; readonly go: string },
  sides = "ours / Go"
): string => {
  if (ran.skipped !== undefined) return `## ${scenarioTitles[id]}\n\nSkipped: ${ran.skipped}.\n`
  const rows = ran.data.map((r) => [
    String(r.callers),
    sizeLabel(r.size),
    fmtInt(r.ours.callsPerSec),
    fmtInt(r.go.callsPerSec),
    ratioText(r.ratio),
    r.target === undefined ? "" : `>= ${r.target}x ${mark(r.verdict)}`,
    `${fmtMs(r.ours.p50Ms)} / ${fmtMs(r.go.p50Ms)}`,
    `${fmtMs(r.ours.p99Ms)} / ${fmtMs(r.go.p99Ms)}`
  ])
  const errors = ran.data.flatMap((r) => [
    ...r.ours.errors.map((e) => `${names.ours}, ${loadText(r)}, ${e}`),
    ...r.go.errors.map((e) => `${names.go}, ${loadText(r)}, ${e}`)
  ])
  return [
    `## ${scenarioTitles[id]}`,
    "",
    table(
      ["callers", "payload", `${names.ours} calls/s`, `${names.go} calls/s`, "ratio", "target", `p50 ms (${sides})`, `p99 ms (${sides})`],
      rows
    ),
    errorList(errors)
  ].join("\n")
}

const acquireSection = (ran: Ran<ReadonlyArray<AcquireSummary>>): string => {
  if (ran.skipped !== undefined) return `## ${scenarioTitles.c}\n\nSkipped: ${ran.skipped}.\n`
  const rows = ran.data.map((r) => [
    variantLabel(r.variant),
    acquireNames[r.contender],
    fmtInt(r.opsPerSec),
    r.contender === "connpool" ? "" : ratioText(r.ratio),
    r.target === undefined ? "" : `>= ${r.target}x ${mark(r.verdict)}`,
    `${fmtUs(r.waitP50Us)} / ${fmtUs(r.waitP99Us)} / ${fmtUs(r.waitMaxUs)}`
  ])
  const errors = ran.data.flatMap((r) =>
    r.errors.map((e) => `${acquireNames[r.contender]}, ${variantLabel(r.variant)}, ${e}`)
  )
  return [
    `## ${scenarioTitles.c}`,
    "",
    "64 concurrent borrowers, pool size 10, connections made instantly; each borrower acquires and releases in a loop. " +
    "\"start held\": the borrowers start queued behind every connection; \"start free\": every connection starts idle; " +
    "\"yield while holding\": each borrower yields to the event loop while it holds its connection. " +
    "Waits are the wall-clock time from asking for a connection to holding it, from every 8th acquire.",
    "",
    table(["borrowers", "contender", "acquire+release/s", "ConnPool.use over it", "target", "wait p50 / p99 / max µs"], rows),
    errorList(errors)
  ].join("\n")
}

const memorySection = (ran: Ran<MemorySummary>): string => {
  if (ran.skipped !== undefined) return `## ${scenarioTitles.d}\n\nSkipped: ${ran.skipped}.\n`
  const m = ran.data
  if (m.raw === undefined) return `## ${scenarioTitles.d}\n\nFailed: ${m.error ?? "no result"}.\n`
  const rows = [
    [`heap per idle session (${m.sessions ?? "?"} pools, one session each)`, fmtBytes(m.heapPerSessionBytes), "", ""],
    [`heap per pooled stream (${m.streams ?? "?"} idle streams on one session)`, fmtBytes(m.heapPerStreamBytes), "", ""],
    [
      `heap growth from call ${fmtInt(m.warmCalls)} to call ${fmtInt(m.calls)} (64 callers, 32 B)`,
      m.heapGrowthPct === undefined ? "n/a" : `${m.heapGrowthPct.toFixed(2)} %`,
      `< ${heapGrowthTargetPct} %`,
      mark(m.verdict)
    ]
  ]
  return [
    `## ${scenarioTitles.d}`,
    "",
    `V8 heapUsed after full GCs, in one process, against ${m.server}.`,
    "",
    table(["measure", "value", "target", "result"], rows),
    m.error === undefined ? "" : `\nError: ${m.error}\n`
  ].join("\n")
}

const methodNotes = (results: Results): string => {
  const perRun = `${results.mode.warmup} of unmeasured warm-up, then ${results.mode.duration} measured`
  return `## Method

- Every contender runs in a child process of its own; servers run in theirs. Within each round the contenders of a load run back to back, in an order that alternates from round to round, and each figure is the median over ${results.mode.rounds} round${results.mode.rounds === 1 ? "" : "s"}; a ratio is the ratio of the two medians.
- (a) and (b) call \`Test.Echo {Payload, Seq, Note}\` with one random payload per caller, for ${perRun} per run. Both clients do the same per call: set Seq, call, check the reply's Seq and payload length, record the latency. Payloads are Go \`[]byte\`, which go-msgpack with the interop peers' handle (\`RawToString\`, \`WriteExt\` off) and our encoder both write in the msgpack str family.
- Both clients keep at most 64 idle stream clients (Consul's default and RpcPool's). With 256 callers, a stream returned while 64 are idle is closed, so most calls at that load open and close a stream.
- The TypeScript client (\`bench/rpc-client.ts\`) uses \`RpcPool\` through the public API with default options (one session, up to 64 idle stream clients, a 60 s call timeout) and one fiber per caller.
- The Go client (\`bench/go/client\`) is written the way Consul's \`agent/pool\` uses HashiCorp's libraries: one TCP connection, one yamux session (\`DefaultConfig\`), net-rpc-msgpackrpc codecs on a LIFO free list of at most 64 (streams shrunk when returned, closed after an error), one goroutine per caller. GOMAXPROCS is Go's default (all cores).
- The Go server is the interop suite's peer (\`test/interop/go/server\`): \`net/rpc\` with the msgpack codec on yamux streams. It wraps its socket in a frame tracker used for fault injection, which costs an uncontended mutex and a 12-byte header scan per socket write.
- (c) is \`bench/acquire.ts\`; (d) is \`bench/memory.ts\`, run once (not per round).
- (g) runs (a)'s client (64 callers, 32 B, a fixed number of calls after the warm-up, against the Go server) and (c)'s \`ConnPool.use\` with \`--observability off|metrics|tracing|all\`, alternating within each round; the cost is the median CPU time per call over \`off\`'s (see bench/observability.ts).
- (e) runs \`bench/rpc-client.ts\` twice per load: with \`--cluster\` over three Go servers (calls marked idempotent, discovery off, the first server listed current) and with \`--addr\` straight to that same first server. Every call succeeds, so the ratio is the cost of the cluster's retry loop on the path every call takes.
- (f) reads one endless \`Test.Fill\` streaming RPC per run from a Go server started with \`-protocol nomad\`, for ${perRun}: \`bench/stream-client.ts\` through \`RpcPool.stream\` (heartbeats dropped, each payload's bytes counted), and \`bench/go/client -stream\`, which reads the same frames with go-msgpack from a 64 KiB \`bufio.Reader\` on the stream (faster than Nomad's own decoder, which reads the stream unbuffered). Both use yamux's default 256 KiB window.
- The machine may be shared: the load average at the start and end of the run is in the header. Compare ratios from the same run, not absolute numbers across runs.
`
}

export const markdown = (results: Results, summary: Summary): string => {
  const m = results.machine
  const header = table(["", ""], [
    ["date", results.started.toISOString().replace(/\.\d+Z$/, "Z")],
    ["machine", `${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}`],
    ["load average (1 min) at start / end", `${m.loadStart[0]?.toFixed(2) ?? "?"} / ${m.loadEnd[0]?.toFixed(2) ?? "?"}`],
    ["Node", results.node],
    ["Go", results.go ?? "not available"],
    ["run", `${results.mode.quick ? "quick (smoke run: numbers not to be quoted)" : "full"}, ${results.mode.rounds} round${results.mode.rounds === 1 ? "" : "s"}, scenarios ${results.only.join(", ")}, ${Math.round((results.finished.getTime() - results.started.getTime()) / 1000)} s`]
  ])
  const targets = table(
    ["", "target", "measured", "result"],
    summary.targets.map((t) => [`(${t.scenario})`, t.what, t.measured, mark(t.verdict)])
  )
  const sections = [
    summary.a === undefined ? undefined : rpcSection("a", summary.a, { ours: "RpcPool", go: "Go client" }),
    summary.b === undefined ? undefined : rpcSection("b", summary.b, { ours: "RpcServer", go: "Go server" }),
    summary.c === undefined ? undefined : acquireSection(summary.c),
    summary.d === undefined ? undefined : memorySection(summary.d),
    summary.e === undefined
      ? undefined
      : rpcSection("e", summary.e, { ours: "RpcCluster", go: "RpcPool" }, "cluster / straight"),
    summary.f === undefined ? undefined : streamSection(summary.f.skipped !== undefined ? summary.f : summary.f.data, table, mark),
    summary.g === undefined
      ? undefined
      : summary.g.skipped !== undefined
      ? `## ${scenarioTitles.g}\n\nSkipped: ${summary.g.skipped}.\n`
      : Observability.section(scenarioTitles.g, summary.g.data)
  ].filter((s): s is string => s !== undefined)
  return [
    "# Benchmarks",
    "",
    `Written by \`npm run bench\` (bench/run.ts); do not edit by hand. Every number below comes from the run described here${results.mode.quick ? ", a quick smoke run whose numbers are not representative" : ""}.`,
    "",
    header,
    "",
    "## Targets (issues 5, 12 and 16)",
    "",
    targets,
    "",
    ...(summary.targets.some((t) => t.verdict === "MISS") && fs.existsSync(missesFile)
      ? [fs.readFileSync(missesFile, "utf8").trimEnd(), ""]
      : []),
    ...sections.flatMap((s) => [s.trimEnd(), ""]),
    "## Reproduce",
    "",
    "```sh",
    ...results.commands,
    "```",
    "",
    methodNotes(results)
  ].join("\n")
}

export const json = (results: Results, summary: Summary): string =>
  `${JSON.stringify({
    date: results.started.toISOString(),
    seconds: Math.round((results.finished.getTime() - results.started.getTime()) / 1000),
    machine: results.machine,
    node: results.node,
    go: results.go ?? null,
    mode: results.mode,
    only: results.only,
    commands: results.commands,
    targets: summary.targets,
    summary: { a: summary.a, b: summary.b, c: summary.c, d: summary.d, e: summary.e, f: summary.f, g: summary.g },
    runs: { a: results.a, b: results.b, c: results.c, d: results.d, e: results.e, f: results.f, g: results.g }
  }, null, 2)}\n`

/** Writes `text` to `file` through a temporary file in `tmpDir`, so a reader never sees half of it. */
export const writeAtomically = (file: string, text: string, tmpDir: string): void => {
  fs.mkdirSync(tmpDir, { recursive: true })
  const tmp = path.join(tmpDir, `${path.basename(file)}.${process.pid}.tmp`)
  fs.writeFileSync(tmp, text)
  fs.renameSync(tmp, file)
}
