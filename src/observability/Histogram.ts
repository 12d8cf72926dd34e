/**
 * A histogram its owner updates itself, read by effect's metric registry
 * through `Observed`. effect's own `Metric.histogram` finds its series in the
 * registry on every update (the context's attributes, then a map lookup by
 * key), which measured about 80 ns a value; this is a bucket scan and four
 * additions, about 10 ns, and a value of 0 (a `get` that did not wait) is
 * one branch. It reports the same `HistogramState` effect's does, so every
 * exporter reads it as one of effect's.
 *
 * @since 0.1.0
 */
import type { Metric } from "effect"

export class Histogram {
  private readonly bounds: ReadonlyArray<number>
  /** Values per bucket, the last one past every bound. */
  private readonly counts: Array<number>
  count = 0
  sum = 0
  // As effect's histogram starts them, so an empty one reads the same.
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE

  /** `bounds` ascending, each the inclusive upper bound of its bucket. */
  constructor(bounds: ReadonlyArray<number>) {
    this.bounds = bounds
    this.counts = new Array<number>(bounds.length + 1).fill(0)
  }

  /** `record(0)`, for the commonest value of a wait (none): three updates, no scan. */
  recordZero(): void {
    this.counts[0]!++
    this.count++
    if (this.min > 0) this.min = 0
    if (this.max < 0) this.max = 0
  }

  record(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  /** What effect's histogram reports: cumulative counts per bound. */
  state(): Metric.HistogramState {
    const buckets: Array<[number, number]> = []
    let cumulative = 0
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i]!
      buckets.push([this.bounds[i]!, cumulative])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}
