/**
 * The streaming row of `npm run bench`, (f): medians of MB/s per payload kind, our ratio over the
 * Go client's, and its section of BENCHMARKS.md. report.ts wires it in beside the other scenarios.
 */
import type { Outcome } from "./child.ts"
import { scenarioTitles, type StreamPayload, streamFrameSize, streamingTarget, sizeLabel } from "./plan.ts"
import { median, round } from "./stats.ts"

/** What run.ts collects for one payload kind: each contender's runs in round order. */
export interface StreamRow {
  readonly payload: StreamPayload
  readonly ours: Array<Outcome>
  readonly go: Array<Outcome>
}

export type StreamVerdict = "PASS" | "MISS" | "n/a"

export interface StreamSide {
  readonly mbPerSec: number | undefined
  /** CPU time per 10^6 payload bytes over the counted frames: steadier than MB/s on a loaded machine. */
  readonly cpuMsPerMB: number | undefined
  readonly runs: number
  readonly errors: ReadonlyArray<string>
}

export interface StreamSummary {
  readonly payload: StreamPayload
  readonly ours: StreamSide
  readonly go: StreamSide
  /** Ratio of the medians: our MB/s over the Go client's. */
  readonly ratio: number | undefined
  readonly target: number
  readonly verdict: StreamVerdict
}

const medianOf = (outcomes: ReadonlyArray<Outcome>, key: string): number | undefined =>
  median(outcomes.flatMap((o) => (o.ok && typeof o.value[key] === "number" ? [o.value[key]] : [])))

const sideOf = (outcomes: ReadonlyArray<Outcome>): StreamSide => ({
  mbPerSec: medianOf(outcomes, "mbPerSec"),
  cpuMsPerMB: medianOf(outcomes, "cpuMsPerMB"),
  runs: outcomes.filter((o) => o.ok).length,
  errors: outcomes.flatMap((o, i) => (o.ok ? [] : [`round ${i + 1}: ${o.error}`]))
})

export const summarizeStream = (rows: ReadonlyArray<StreamRow>): Array<StreamSummary> =>
  rows.map((row) => {
    const ours = sideOf(row.ours)
    const go = sideOf(row.go)
    const ratio = ours.mbPerSec === undefined || go.mbPerSec === undefined || go.mbPerSec === 0
      ? undefined
      : round(ours.mbPerSec / go.mbPerSec, 3)
    const verdict: StreamVerdict = ratio === undefined ? "n/a" : ratio >= streamingTarget ? "PASS" : "MISS"
    return { payload: row.payload, ours, go, ratio, target: streamingTarget, verdict }
  })

const mb = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(1))
const ms = (n: number | undefined): string => (n === undefined ? "n/a" : n.toFixed(2))

/** The section of BENCHMARKS.md; `table` and `mark` are report.ts's, so every section looks alike. */
export const streamSection = (
  summaries: ReadonlyArray<StreamSummary> | { readonly skipped: string },
  table: (head: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>) => string,
  mark: (v: StreamVerdict) => string
): string => {
  if ("skipped" in summaries) return `## ${scenarioTitles.f}\n\nSkipped: ${summaries.skipped}.\n`
  const rows = summaries.map((s) => [
    s.payload,
    mb(s.ours.mbPerSec),
    mb(s.go.mbPerSec),
    s.ratio === undefined ? "n/a" : `${s.ratio.toFixed(2)}x`,
    `>= ${s.target}x ${mark(s.verdict)}`,
    `${ms(s.ours.cpuMsPerMB)} / ${ms(s.go.cpuMsPerMB)}`
  ])
  const errors = summaries.flatMap((s) => [
    ...s.ours.errors.map((e) => `RpcPool.stream, ${s.payload}, ${e}`),
    ...s.go.errors.map((e) => `Go client, ${s.payload}, ${e}`)
  ])
  return [
    `## ${scenarioTitles.f}`,
    "",
    `One streaming RPC per run on a Nomad-protocol session, payloads of ${sizeLabel(streamFrameSize)} per \`StreamErrWrapper\` frame; MB/s is 10^6 payload bytes a second; CPU ms/MB is each client's CPU time (every thread, user and system) over the counted frames per 10^6 bytes, which a loaded machine moves far less than MB/s.`,
    "",
    table(["payload", "RpcPool.stream MB/s", "Go client MB/s", "ratio", "target", "CPU ms/MB ours / Go"], rows),
    errors.length === 0 ? "" : `\nFailed runs:\n\n${errors.map((l) => `- ${l}`).join("\n")}\n`
  ].join("\n")
}
