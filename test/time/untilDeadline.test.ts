import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import { untilDeadline } from "../../src/time/untilDeadline.ts"

describe("untilDeadline", () => {
  it("is zero for a deadline that is due or past", () => {
    assert.isTrue(Duration.isZero(untilDeadline(0)))
    assert.isTrue(Duration.isZero(untilDeadline(-5)))
  })

  it("rounds a deadline under a nanosecond away up to one nanosecond, never to zero", () => {
    // 2656.0000010000003 - 2656.000001: a float rounding error, not a wait anyone meant.
    assert.strictEqual(Duration.toNanosUnsafe(untilDeadline(2656.0000010000003 - 2656.000001)), 1n)
    assert.strictEqual(Duration.toNanosUnsafe(untilDeadline(0.0000015)), 2n)
  })

  it("keeps whole milliseconds as they are", () => {
    assert.strictEqual(Duration.toMillis(untilDeadline(880)), 880)
  })
})
