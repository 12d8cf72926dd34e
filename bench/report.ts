/**
 * Writes the runs of `npm run bench` and their summary (summary.ts) twice: bench/results/latest.json
 * (every run, for tools) and BENCHMARKS.md (tables, for people).
 * Only what the runs produced is written: a scenario that did not run says why, a failed run
 * shows its error, and a ratio with a missing side is "n/a", never a guess.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import {
  acquireNames,
  heapGrowthTargetPct,
  scenarioTitles,
  sizeLabel,
  variantLabel
} from "./plan.ts"
import * as Observability from "./observability.ts"
import { streamSection } from "./streamReport.ts"
import {
  type AcquireSummary,
  fmtUs,
  loadText,
  type MemorySummary,
  ratioText,
  type Ran,
  type Results,
  type RpcSummary,
  type Summary,
  type Verdict
} from "./summary.ts"

/** Profiles of the targets known to be at risk, copied into the report when one is missed. */
const missesFile = new URL("./misses.md", import.meta.url)

// ---------------------------------------------------------------------------------------------
// Writing

const fmtInt = (n: number | undefined): string => (n === undefined ? "n/a" : Math.round(n).toLocaleString("en-US"))
const fmtMs = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(3))
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
