import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import {
  BreakerOpen,
  DialFailed,
  DialTimeout,
  InvalidOption,
  PoolClosed,
  PoolError,
  PoolExhausted,
  PoolTimeout
} from "../../src/pool/PoolError.ts"

describe("PoolError", () => {
  const pool = "127.0.0.1:6379"
  const refused = new DialFailed({ pool, cause: new Error("connect ECONNREFUSED 127.0.0.1:6379") })

  it("carries the pool's name and says which reasons are worth retrying", () => {
    const cases: Array<[PoolError, boolean]> = [
      [new PoolError({ reason: new PoolTimeout({ pool, timeout: Duration.seconds(4) }) }), true],
      [new PoolError({ reason: new PoolClosed({ pool }) }), false],
      [new PoolError({ reason: new PoolExhausted({ pool, maxActiveConns: 5 }) }), true],
      [new PoolError({ reason: refused }), true],
      [new PoolError({ reason: new DialTimeout({ pool, timeout: Duration.seconds(5) }) }), true],
      [new PoolError({ reason: new BreakerOpen({ pool, lastError: refused }) }), true],
      [new PoolError({ reason: new InvalidOption({ pool, option: "poolSize", detail: "0" }) }), false]
    ]
    for (const [error, retryable] of cases) {
      assert.strictEqual(error._tag, "PoolError")
      assert.strictEqual(error.pool, pool)
      assert.strictEqual(error.isRetryable, retryable, error.reason._tag)
      assert.include(error.message, pool)
    }
  })

  it("says what happened in its message", () => {
    assert.include(new PoolError({ reason: new PoolTimeout({ pool, timeout: Duration.seconds(4) }) }).message, "4s")
    assert.include(new PoolError({ reason: refused }).message, "ECONNREFUSED")
    assert.include(new PoolError({ reason: new BreakerOpen({ pool, lastError: refused }) }).message, "ECONNREFUSED")
    assert.include(new PoolError({ reason: new DialFailed({ pool, cause: "EHOSTUNREACH" }) }).message, "EHOSTUNREACH")
  })
})
