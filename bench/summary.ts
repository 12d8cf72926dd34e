/**
 * What `npm run bench` collects (`Results`, filled by run.ts) and what it makes of it: medians,
 * ratios and verdicts against the targets of plan.ts (`summarize`). Writing them out is
 * report.ts. A ratio with a missing side is "n/a", never a guess.
 */
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
  serverTargets,
  sizeLabel,
  variantLabel
} from "./plan.ts"
import * as Observability from "./observability.ts"
import { median, round } from "./stats.ts"
import { type StreamRow, type StreamSummary, summarizeStream } from "./streamReport.ts"

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

/** Microseconds to one decimal, "n/a" for a missing figure. */
export const fmtUs = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(1))

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
    // By value: rows read back from latest.json (bench/rewrite.ts) share no objects.
    const ours = rows.find((r) =>
      r.contender === "connpool" && r.variant.start === row.variant.start && r.variant.hold === row.variant.hold
    )
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

export const ratioText = (r: number | undefined): string => (r === undefined ? "n/a" : `${r.toFixed(2)}x`)

export const loadText = (load: Load): string => `${load.callers} caller${load.callers === 1 ? "" : "s"}, ${sizeLabel(load.size)}`

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
