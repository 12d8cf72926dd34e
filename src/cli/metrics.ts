/**
 * `connpool bench --metrics`: the metric snapshot at the end of the run,
 * every series the pool (and the cluster) registered, under their
 * OpenTelemetry names (docs/observability.md), as a table or as JSON.
 *
 * @since 0.1.0
 */
import type { Metric } from "effect"
import { table } from "./json.ts"

/** One series as `--json` prints it: a count, or a histogram's summary (seconds for durations). */
export interface SeriesJson {
  readonly name: string
  readonly attributes: Readonly<Record<string, string>>
  readonly value?: number
  readonly count?: number
  readonly sum?: number
  readonly min?: number | null
  readonly max?: number | null
}

/** Our own series first, by name then attributes, so two runs print alike. */
const ordered = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>): Array<Metric.Metric.Snapshot> =>
  [...snapshot].sort((a, b) =>
    a.id === b.id
      ? JSON.stringify(a.attributes ?? {}).localeCompare(JSON.stringify(b.attributes ?? {}))
      : a.id.localeCompare(b.id)
  )

/** Attributes without effect's unit carrier, which is not an attribute of the series. */
const attributesOf = (s: Metric.Metric.Snapshot): Record<string, string> => {
  const { unit: _, ...rest } = s.attributes ?? {}
  return rest
}

export const seriesJson = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>): Array<SeriesJson> =>
  ordered(snapshot).flatMap((s): Array<SeriesJson> => {
    const attributes = attributesOf(s)
    switch (s.type) {
      case "Counter":
      case "Gauge": {
        const state = s.state as { readonly count?: number | bigint; readonly value?: number | bigint }
        return [{ name: s.id, attributes, value: Number(state.count ?? state.value ?? 0) }]
      }
      case "Histogram": {
        const h = s.state as Metric.HistogramState
        const empty = h.count === 0
        return [{ name: s.id, attributes, count: h.count, sum: h.sum, min: empty ? null : h.min, max: empty ? null : h.max }]
      }
      default:
        return []
    }
  })

const seconds = (n: number | null | undefined): string =>
  n === null || n === undefined ? "n/a" : n >= 1 ? `${n.toFixed(3)} s` : `${(n * 1000).toFixed(3)} ms`

/** The human form: one line per series, `name{attributes}` and its value. */
export const metricsTable = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>): string => {
  const rows = seriesJson(snapshot).map((s): readonly [string, string] => {
    const attrs = Object.entries(s.attributes).map(([k, v]) => `${k}=${v}`).join(",")
    const name = attrs === "" ? s.name : `${s.name}{${attrs}}`
    if (s.value !== undefined) return [name, String(s.value)]
    const mean = s.count === undefined || s.count === 0 ? null : s.sum! / s.count
    return [name, `count ${s.count} mean ${seconds(mean)} min ${seconds(s.min)} max ${seconds(s.max)}`]
  })
  return rows.length === 0 ? "metrics: none" : `metrics:\n${table(rows, "  ")}`
}
