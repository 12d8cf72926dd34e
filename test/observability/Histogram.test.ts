/**
 * The pools' own histogram reads exactly as effect's `Metric.histogram` does
 * for the same values, so every exporter sees one of effect's.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Metric } from "effect"
import { Histogram } from "../../src/observability/Histogram.ts"
import { poolDurationBoundaries, rpcDurationBoundaries } from "../../src/observability/Semconv.ts"

const effects = (bounds: ReadonlyArray<number>, values: ReadonlyArray<number>): Metric.HistogramState => {
  const context = Context.make(Metric.MetricRegistry, new Map())
  const metric = Metric.histogram("h", { boundaries: bounds })
  for (const v of values) metric.updateUnsafe(v, context)
  return metric.valueUnsafe(context)
}

const ours = (bounds: ReadonlyArray<number>, values: ReadonlyArray<number>): Metric.HistogramState => {
  const h = new Histogram(bounds)
  for (const v of values) h.record(v)
  return h.state()
}

describe("Histogram", () => {
  it("reads as effect's histogram when empty", () => {
    assert.deepStrictEqual(ours(rpcDurationBoundaries, []), effects(rpcDurationBoundaries, []))
  })

  it("reads as effect's histogram for values on, between, below and beyond the bounds", () => {
    const values = [0, 0, 0.00001, 0.0001, 0.00011, 0.001, 0.0049, 0.005, 0.3, 1, 9.99, 10, 11, 3600]
    for (const bounds of [rpcDurationBoundaries, poolDurationBoundaries]) {
      assert.deepStrictEqual(ours(bounds, values), effects(bounds, values))
    }
  })

  it("recordZero reads as record(0)", () => {
    const a = new Histogram(poolDurationBoundaries)
    const b = new Histogram(poolDurationBoundaries)
    for (const v of [0.5, 0, 0.00002]) a.record(v)
    b.record(0.5)
    b.recordZero()
    b.record(0.00002)
    assert.deepStrictEqual(b.state(), a.state())
    const zeros = new Histogram([1])
    zeros.recordZero()
    assert.deepStrictEqual(zeros.state(), ours([1], [0]))
  })

  it("a value equal to a bound counts in that bound's bucket, as the conventions' upper-inclusive buckets", () => {
    const state = ours([1, 2], [1, 2, 2.5])
    assert.deepStrictEqual(state.buckets, [[1, 1], [2, 2]])
    assert.strictEqual(state.count, 3)
  })
})
