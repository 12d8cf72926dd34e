/**
 * Scenario (g) of `npm run bench`: what metrics and spans cost (issue 14). The same client runs
 * with `observability` off, with metrics only, with spans only and with both, alternating
 * within every round: RpcPool at 64 callers against the Go server, as (a) runs it, and
 * `ConnPool.use`, as (c) runs it. The figure that decides is CPU time per call (per
 * acquire/release in (c)), which stays comparable on a loaded, shared machine where calls/s
 * does not; calls/s is shown beside it. A default may be on only if its cost is at most
 * `observabilityBudgetPct` percent.
 *
 * This module is the plan and the report of (g); bench/run.ts runs it.
 */
import type { Outcome } from "./child.ts"
import { median, round } from "./stats.ts"

/** The `--observability` values compared, `off` first: every cost is against it. */
export const variants = ["off", "metrics", "tracing", "all"] as const
export type Variant = typeof variants[number]

export const variantNames: Readonly<Record<Variant, string>> = {
  off: "off",
  metrics: "metrics",
  tracing: "spans",
  all: "metrics + spans"
}

/** The subjects of (g): (a)'s client at 64 callers and 32 B, and (c)'s ConnPool.use. */
export const subjects = ["a", "c"] as const
export type Subject = typeof subjects[number]

export const subjectNames: Readonly<Record<Subject, string>> = {
  a: "RpcPool, 64 callers x 32 B against the Go server (as (a))",
  c: "ConnPool.use, 64 borrowers, pool size 10 (as (c))"
}

/** A default may be on when it costs at most this much CPU per call: 5 %, issue 14's bound. */
export const observabilityBudgetPct = 5

export interface Row {
  readonly subject: Subject
  readonly variant: Variant
  readonly runs: Array<Outcome>
}

export interface VariantSummary {
  readonly variant: Variant
  /** Calls (or acquire/release pairs) per second, median. */
  readonly perSec: number | undefined
  /** CPU µs per call (or per acquire/release), median. */
  readonly cpuUs: number | undefined
  /** CPU per call over `off`'s, minus one, in percent. */
  readonly costPct: number | undefined
  readonly errors: ReadonlyArray<string>
}

export interface SubjectSummary {
  readonly subject: Subject
  readonly variants: ReadonlyArray<VariantSummary>
}

const num = (o: Outcome, key: string): number | undefined =>
  o.ok && typeof o.value[key] === "number" ? o.value[key] : undefined

/** CPU µs per call: (a) reports it; (c) reports acquire/release pairs per CPU second. */
const cpuUsOf = (subject: Subject, o: Outcome): number | undefined => {
  if (subject === "a") return num(o, "cpuUsPerCall")
  const ops = num(o, "opsPerSec")
  return ops === undefined || ops === 0 ? undefined : 1e6 / ops
}

const medianOf = (values: ReadonlyArray<number | undefined>): number | undefined =>
  median(values.filter((v): v is number => v !== undefined))

export const summarize = (rows: ReadonlyArray<Row>): Array<SubjectSummary> =>
  subjects.flatMap((subject) => {
    const mine = rows.filter((r) => r.subject === subject)
    if (mine.length === 0) return []
    const cpu = (row: Row | undefined) => row === undefined ? undefined : medianOf(row.runs.map((o) => cpuUsOf(subject, o)))
    const base = cpu(mine.find((r) => r.variant === "off"))
    return [{
      subject,
      variants: mine.map((row): VariantSummary => {
        const cpuUs = cpu(row)
        return {
          variant: row.variant,
          perSec: medianOf(row.runs.map((o) => num(o, subject === "a" ? "callsPerSec" : "opsPerSec"))),
          cpuUs: cpuUs === undefined ? undefined : round(cpuUs, 3),
          costPct: cpuUs === undefined || base === undefined ? undefined : round((cpuUs / base - 1) * 100, 1),
          errors: row.runs.flatMap((o, i) => (o.ok ? [] : [`round ${i + 1}: ${o.error}`]))
        }
      })
    }]
  })

const fmt = (n: number | undefined, digits = 0): string =>
  n === undefined ? "n/a" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

/** The markdown section of (g). */
export const section = (title: string, summaries: ReadonlyArray<SubjectSummary>): string => {
  const lines = [`## ${title}`, ""]
  for (const s of summaries) {
    lines.push(
      `${subjectNames[s.subject]}:`,
      "",
      "| observability | calls/s | CPU µs per call | CPU cost over off | within 5 % |",
      "| --- | --- | --- | --- | --- |",
      ...s.variants.map((v) =>
        `| ${variantNames[v.variant]} | ${fmt(v.perSec)} | ${fmt(v.cpuUs, 2)} | ${
          v.variant === "off" ? "" : v.costPct === undefined ? "n/a" : `${v.costPct > 0 ? "+" : ""}${v.costPct.toFixed(1)} %`
        } | ${v.variant === "off" || v.costPct === undefined ? "" : v.costPct <= observabilityBudgetPct ? "yes" : "no"} |`
      ),
      ""
    )
    const errors = s.variants.flatMap((v) => v.errors.map((e) => `${variantNames[v.variant]}, ${e}`))
    if (errors.length > 0) lines.push("Failed runs:", "", ...errors.map((e) => `- ${e}`), "")
  }
  lines.push(
    "CPU per call is the client process's user + system time over the measured calls divided by their count " +
      "(for (c), per acquire/release pair); spans go to effect's built-in tracer, which keeps them in memory " +
      "and exports nothing, so an exporter's own cost comes on top."
  )
  return lines.join("\n")
}
