/**
 * Series read when the metrics are read, not pushed when things change:
 * counts the pools and servers already keep (sessions, streams, dials,
 * connections) are registered once with a function that reads them, so the
 * paths that change them pay nothing. effect's OTLP exporter sends a
 * `Counter` that is not `incremental` as a non-monotonic Sum (OpenTelemetry's
 * UpDownCounter) and an incremental one as a monotonic Sum (a Counter).
 *
 * Histograms are the owner's own (`Histogram.ts`), registered the same way.
 *
 * One `Observed` holds the series of one owner (a pool, a server, one server
 * address of a pool) and removes them all at once when the owner goes, so
 * the registry keeps no function of a closed pool alive.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"
import type { Context } from "effect"
import { Histogram } from "./Histogram.ts"

export type Attributes = Metric.Metric.AttributeSet

const noop = (): void => {}

export class Observed {
  private readonly context: Context.Context<never>
  private readonly registrations: Array<Metric.Registration> = []

  /** `context` holds the `MetricRegistry` the series go to (and `CurrentMetricAttributes`, if any). */
  constructor(context: Context.Context<never>) {
    this.context = context
  }

  /** An OpenTelemetry UpDownCounter: a count that goes up and down (connections open, callers waiting). */
  upDown(name: string, description: string, attributes: Attributes, read: () => number): void {
    const metric = Metric.counter(name, { description, attributes })
    this.registrations.push(
      Metric.registerUnsafe(metric, this.context, {
        get: () => ({ count: read(), incremental: false }),
        update: noop,
        modify: noop
      })
    )
  }

  /** An OpenTelemetry Counter: a count that only grows (dials, timeouts). */
  counter(name: string, description: string, attributes: Attributes, read: () => number): void {
    const metric = Metric.counter(name, { description, attributes, incremental: true })
    this.registrations.push(
      Metric.registerUnsafe(metric, this.context, {
        get: () => ({ count: read(), incremental: true }),
        update: noop,
        modify: noop
      })
    )
  }

  /**
   * A histogram its owner records into (`Histogram.record`), in the registry
   * from now on (reading a count of 0 until its first value).
   */
  histogram(name: string, description: string, attributes: Attributes, boundaries: ReadonlyArray<number>): Histogram {
    const histogram = new Histogram(boundaries)
    const metric = Metric.histogram(name, { description, attributes, boundaries })
    this.registrations.push(
      Metric.registerUnsafe(metric, this.context, { get: () => histogram.state(), update: noop, modify: noop })
    )
    return histogram
  }

  /** Removes every series of this owner from the registry. */
  remove(): void {
    for (const registration of this.registrations.splice(0)) registration.remove()
  }
}
