import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import type { Config } from "../../src/pool/PoolOptions.ts"
import { normalize } from "../../src/pool/PoolOptions.ts"

const dial = Effect.succeed(1)

const config = (options: Omit<Parameters<typeof normalize<number, never, never>>[0], "dial">): Config => {
  const result = normalize({ dial, ...options })
  if (!("turns" in result)) throw new Error(result.message)
  return result
}

const invalid = (options: Omit<Parameters<typeof normalize<number, never, never>>[0], "dial">): string => {
  const result = normalize({ dial, ...options })
  if ("turns" in result) throw new Error("expected InvalidOption")
  return result.option
}

describe("PoolOptions", () => {
  it("applies go-redis's defaults", () => {
    const c = config({})
    assert.strictEqual(c.name, "ConnPool")
    assert.strictEqual(c.poolSize, 10)
    assert.strictEqual(c.turns, 10)
    assert.isFalse(c.poolFIFO)
    assert.strictEqual(c.poolTimeoutMillis, 4000)
    assert.strictEqual(c.starvationMillis, 10)
    assert.strictEqual(Duration.toMillis(c.dialTimeout), 5000)
    assert.strictEqual(c.minIdleConns, 0)
    assert.strictEqual(c.maxIdleConns, Infinity)
    assert.strictEqual(c.maxActiveConns, Infinity)
    assert.strictEqual(c.maxConcurrentDials, 10)
    assert.strictEqual(c.connMaxIdleTimeMillis, 30 * 60 * 1000)
    assert.strictEqual(c.connMaxLifetimeMillis, Infinity)
    assert.strictEqual(c.connMaxLifetimeJitterMillis, 0)
    assert.strictEqual(Duration.toMillis(c.idleCheckFrequency), 60_000)
    assert.strictEqual(c.breakerThreshold, 10)
  })

  it("caps the turns, minIdleConns and maxConcurrentDials at min(poolSize, maxActiveConns)", () => {
    const c = config({ poolSize: 8, maxActiveConns: 5, minIdleConns: 7, maxConcurrentDials: 20 })
    assert.strictEqual(c.turns, 5)
    assert.strictEqual(c.minIdleConns, 5)
    assert.strictEqual(c.maxConcurrentDials, 5)
    assert.strictEqual(c.breakerThreshold, 8)
  })

  it("reads 0 as none for connMaxIdleTime and connMaxLifetime, as go-redis does", () => {
    const c = config({ connMaxIdleTime: 0, connMaxLifetime: 0, connMaxLifetimeJitter: "1 second" })
    assert.strictEqual(c.connMaxIdleTimeMillis, Infinity)
    assert.strictEqual(c.connMaxLifetimeMillis, Infinity)
    assert.strictEqual(c.connMaxLifetimeJitterMillis, 0)
  })

  it("caps the lifetime jitter at the lifetime", () => {
    assert.strictEqual(config({ connMaxLifetime: "1 second", connMaxLifetimeJitter: "1 minute" }).connMaxLifetimeJitterMillis, 1000)
  })

  it("rejects out-of-range values with the option's name", () => {
    assert.strictEqual(invalid({ poolSize: 0 }), "poolSize")
    assert.strictEqual(invalid({ poolSize: -Infinity }), "poolSize")
    assert.strictEqual(invalid({ poolSize: 2.5 }), "poolSize")
    assert.strictEqual(invalid({ maxActiveConns: 0 }), "maxActiveConns")
    assert.strictEqual(invalid({ minIdleConns: -1 }), "minIdleConns")
    assert.strictEqual(invalid({ maxIdleConns: Number.NaN }), "maxIdleConns")
    assert.strictEqual(invalid({ maxConcurrentDials: 0 }), "maxConcurrentDials")
    assert.strictEqual(invalid({ breakerThreshold: 0 }), "breakerThreshold")
    assert.strictEqual(invalid({ poolTimeout: -1 }), "poolTimeout")
    assert.strictEqual(invalid({ dialTimeout: "soon" as Duration.Input }), "dialTimeout")
    assert.strictEqual(invalid({ idleCheckFrequency: 0 }), "idleCheckFrequency")
    assert.strictEqual(invalid({ starvationThreshold: -1 }), "starvationThreshold")
  })

  it("rejects NaN, non-finite and negative values instead of clamping or reading them as 0", () => {
    assert.strictEqual(invalid({ poolSize: Number.NaN }), "poolSize")
    assert.strictEqual(invalid({ breakerThreshold: Number.NaN }), "breakerThreshold")
    assert.strictEqual(invalid({ maxConcurrentDials: -Infinity }), "maxConcurrentDials")
    assert.strictEqual(invalid({ minIdleConns: Infinity }), "minIdleConns")
    assert.strictEqual(invalid({ poolTimeout: Number.NaN }), "poolTimeout")
    assert.strictEqual(invalid({ dialTimeout: -Infinity }), "dialTimeout")
    assert.strictEqual(invalid({ connMaxIdleTime: [Number.NaN, 0] }), "connMaxIdleTime")
    assert.strictEqual(invalid({ connMaxLifetime: [-1, 0] }), "connMaxLifetime")
    assert.strictEqual(invalid({ connMaxLifetimeJitter: BigInt(-1) }), "connMaxLifetimeJitter")
    assert.strictEqual(invalid({ idleCheckFrequency: "-1 seconds" }), "idleCheckFrequency")
  })

  it("rejects values of the wrong type, naming the option and what it got", () => {
    const wrong = <K extends string>(key: K, value: unknown) => ({ [key]: value }) as never
    assert.strictEqual(invalid(wrong("poolSize", "10")), "poolSize")
    assert.strictEqual(invalid(wrong("poolTimeout", {})), "poolTimeout")
    assert.strictEqual(invalid(wrong("dialTimeout", true)), "dialTimeout")
    assert.strictEqual(invalid(wrong("poolFIFO", "yes")), "poolFIFO")
    assert.strictEqual(invalid(wrong("name", 6379)), "name")
    assert.strictEqual(invalid(wrong("closeSignal", "socket")), "closeSignal")
    assert.strictEqual(invalid(wrong("dialRetry", { times: 3 })), "dialRetry")
    assert.strictEqual(invalid(wrong("breakerProbe", 1000)), "breakerProbe")
    const result = normalize({ dial, poolSize: "10" as never })
    assert.isFalse("turns" in result)
    if (!("turns" in result)) assert.include(result.message, `got "10"`)
  })

  it("rejects a dial that is not an Effect, and options that are not an object or throw when read", () => {
    const noDial = normalize({ dial: (() => 1) as never })
    assert.strictEqual("option" in noDial && noDial.option, "dial")
    const notObject = normalize(null as never)
    assert.strictEqual("option" in notObject && notObject.option, "options")
    const throwing = new Proxy({ dial }, {
      get: (target, key) => {
        if (key === "poolSize") throw new Error("getter exploded")
        return Reflect.get(target, key)
      }
    })
    const thrown = normalize(throwing)
    assert.strictEqual("option" in thrown && thrown.option, "options")
    assert.include("detail" in thrown ? thrown.detail : "", "getter exploded")
  })

  it("accepts an unbounded poolSize: a plain free list whose breaker still defaults to 10 failures", () => {
    const c = config({ poolSize: Infinity })
    assert.strictEqual(c.turns, Infinity)
    assert.strictEqual(c.maxConcurrentDials, Infinity)
    assert.strictEqual(c.breakerThreshold, 10)
  })

  it("accepts Infinity for the caps that default to none", () => {
    const c = config({ maxIdleConns: Infinity, maxActiveConns: Infinity, poolTimeout: Duration.infinity })
    assert.strictEqual(c.maxIdleConns, Infinity)
    assert.strictEqual(c.poolTimeoutMillis, Infinity)
  })
})
