/**
 * The one `observability` option every pool and server takes, with the same
 * shape everywhere (`RpcPool`, `ConnPool`, the keyed pool, `RpcServer`,
 * `RpcCluster`): metrics and spans, each on or off.
 *
 * **Why these defaults.** Metrics are on: with them on, a call on the RPC
 * pool's fast lane does one more clock read and one histogram update, and
 * everything else is read when the metrics are read, not when it changes;
 * the cost measured is in docs/observability.md, under the 5 % the project
 * allows for a default. Spans are off: a span per call allocates the span,
 * its attributes and a context for its children, which costs more than that
 * (measured in the same place); turn them on where traces are collected.
 *
 * @since 0.1.0
 */

/** Default `metrics`: true (measured under 5 % of a call's CPU; docs/observability.md). */
export const defaultMetrics = true
/** Default `tracing`: false (a span per call costs more than 5 %; docs/observability.md). */
export const defaultTracing = false

/**
 * What a pool or server reports. Metrics go to the `Metric.MetricRegistry` in
 * context when the pool or server is made; spans to the `Tracer` of each
 * caller (so they nest under the caller's own spans).
 */
export interface Options {
  /** Metrics under OpenTelemetry's names (docs/observability.md). Default true (`defaultMetrics`). */
  readonly metrics?: boolean | undefined
  /** A span per call (and per wait worth seeing). Default false (`defaultTracing`). */
  readonly tracing?: boolean | undefined
}

/** The option with its defaults applied. */
export interface Config {
  readonly metrics: boolean
  readonly tracing: boolean
}

/** Why the option cannot be used: the sub-option and what was wrong, for each layer's own error. */
export interface Problem {
  readonly option: string
  readonly detail: string
}

const flag = (name: "metrics" | "tracing", value: unknown, fallback: boolean): boolean | Problem =>
  value === undefined ? fallback : typeof value === "boolean"
  ? value
  : { option: `observability.${name}`, detail: `expected a boolean, got ${typeof value}` }

/** Applies the defaults, or says which part is not a boolean. */
export const normalize = (options: Options | undefined): Config | Problem => {
  if (options === undefined) return { metrics: defaultMetrics, tracing: defaultTracing }
  if (typeof options !== "object" || options === null) {
    return { option: "observability", detail: `expected an object, got ${options === null ? "null" : typeof options}` }
  }
  const metrics = flag("metrics", options.metrics, defaultMetrics)
  if (typeof metrics !== "boolean") return metrics
  const tracing = flag("tracing", options.tracing, defaultTracing)
  if (typeof tracing !== "boolean") return tracing
  return { metrics, tracing }
}

/** True when `normalize` refused the option. */
export const isProblem = (value: Config | Problem): value is Problem => "detail" in value
