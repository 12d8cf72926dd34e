/**
 * The one `observability` option: its defaults, and a typed problem naming
 * the sub-option for anything that is not a boolean.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Observability from "../../src/observability/Observability.ts"

describe("Observability.normalize", () => {
  it("defaults to metrics on and spans off", () => {
    assert.deepStrictEqual(Observability.normalize(undefined), { metrics: true, tracing: false })
    assert.deepStrictEqual(Observability.normalize({}), { metrics: true, tracing: false })
    assert.strictEqual(Observability.defaultMetrics, true)
    assert.strictEqual(Observability.defaultTracing, false)
  })

  it("takes each flag as given", () => {
    assert.deepStrictEqual(Observability.normalize({ metrics: false, tracing: true }), { metrics: false, tracing: true })
  })

  it("names the sub-option that is not a boolean, and refuses a non-object", () => {
    const bad = Observability.normalize({ metrics: "yes" as unknown as boolean })
    assert.isTrue(Observability.isProblem(bad))
    assert.deepStrictEqual(bad, { option: "observability.metrics", detail: "expected a boolean, got string" })
    assert.deepStrictEqual(Observability.normalize(1 as unknown as Observability.Options), {
      option: "observability",
      detail: "expected an object, got number"
    })
    assert.deepStrictEqual(Observability.normalize(null as unknown as Observability.Options), {
      option: "observability",
      detail: "expected an object, got null"
    })
  })
})
