/**
 * What the observability tests read: a fresh metric registry per test, the
 * series of a snapshot by name and attributes, and a tracer that keeps every
 * span it makes.
 */
import { assert } from "@effect/vitest"
import { Effect, Logger, Metric, References, Tracer } from "effect"
import type { Cause } from "effect"

/** Runs `effect` with a registry of its own, so series of other tests never show. */
export const freshRegistry = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(effect, Metric.MetricRegistry, new Map())

export type Snapshot = Metric.Metric.Snapshot

/** The series named `name`, with the attributes they have. */
export const seriesOf = (snapshot: ReadonlyArray<Snapshot>, name: string): Array<Snapshot> =>
  snapshot.filter((s) => s.id === name)

/** The one series named `name` whose attributes are exactly `attributes`; fails the test otherwise. */
export const series = (snapshot: ReadonlyArray<Snapshot>, name: string, attributes: Record<string, string>): Snapshot => {
  const all = seriesOf(snapshot, name)
  const found = all.filter((s) => sameAttributes(s.attributes ?? {}, attributes))
  assert.strictEqual(
    found.length,
    1,
    `one ${name} series with ${JSON.stringify(attributes)}; have ${JSON.stringify(all.map((s) => s.attributes))}`
  )
  return found[0]!
}

const sameAttributes = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a).sort()
  const kb = Object.keys(b).sort()
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k])
}

/** A counter or up-down counter series' value. */
export const count = (s: Snapshot): number => {
  assert.strictEqual(s.type, "Counter", `${s.id} is a Counter`)
  return Number((s.state as Metric.CounterState<number>).count)
}

/** A histogram series' count of values. */
export const histogramCount = (s: Snapshot): number => {
  assert.strictEqual(s.type, "Histogram", `${s.id} is a Histogram`)
  return (s.state as Metric.HistogramState).count
}

/** A tracer that keeps its spans, and the spans so far. */
export const recordingTracer = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span(options) {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  return { tracer, spans }
}

/** The spans named `name`. */
export const named = (spans: ReadonlyArray<Tracer.NativeSpan>, name: string) => spans.filter((s) => s.name === name)

/** The span's parent span id, if any. */
export const parentId = (span: Tracer.NativeSpan): string | undefined =>
  span.parent._tag === "Some" ? span.parent.value.spanId : undefined

/** The span's attributes as a plain object. */
export const attributesOf = (span: Tracer.NativeSpan): Record<string, unknown> => Object.fromEntries(span.attributes)

/** One line a logger received. */
export interface LogLine {
  readonly level: string
  readonly message: string
  readonly cause: Cause.Cause<unknown>
  readonly annotations: Readonly<Record<string, unknown>>
}

/**
 * Runs `effect` with a logger that keeps every line at Debug and above (and no other logger),
 * and returns the lines so far.
 */
export const capturingLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make<unknown, void>((options) => {
    const message = Array.isArray(options.message) ? options.message.map(String).join(" ") : String(options.message)
    lines.push({
      level: options.logLevel,
      message,
      cause: options.cause,
      annotations: options.fiber.getRef(References.CurrentLogAnnotations)
    })
  })
  const provide = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    effect.pipe(
      Effect.provideService(References.CurrentLoggers, new Set([logger])),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
  return { lines, provide }
}
