import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import * as Config from "../../src/yamux/Config.ts"

describe("Config", () => {
  it("defaults to hashicorp/yamux DefaultConfig", () => {
    const c = Config.make()
    assert.strictEqual(c.acceptBacklog, 256)
    assert.isTrue(c.enableKeepAlive)
    assert.strictEqual(Duration.toMillis(c.keepAliveInterval), 30_000)
    assert.strictEqual(Duration.toMillis(c.connectionWriteTimeout), 10_000)
    assert.strictEqual(c.maxStreamWindowSize, 256 * 1024)
    assert.strictEqual(Duration.toMillis(c.streamCloseTimeout), 300_000)
    assert.strictEqual(Duration.toMillis(c.streamOpenTimeout), 75_000)
    assert.strictEqual(c.maxStreams, 8192)
    assert.strictEqual(c.maxWriteBuffer, 1024 * 1024)
  })

  it("takes durations in any Duration.Input form", () => {
    const c = Config.make({ keepAliveInterval: "5 seconds", streamOpenTimeout: 1500, streamCloseTimeout: Duration.minutes(1) })
    assert.strictEqual(Duration.toMillis(c.keepAliveInterval), 5000)
    assert.strictEqual(Duration.toMillis(c.streamOpenTimeout), 1500)
    assert.strictEqual(Duration.toMillis(c.streamCloseTimeout), 60_000)
  })

  it("clamps values the protocol or the session cannot work with", () => {
    const c = Config.make({ acceptBacklog: 0, maxStreamWindowSize: 1024, maxStreams: -5, maxWriteBuffer: 10 })
    assert.strictEqual(c.acceptBacklog, 1)
    // Go refuses windows below the initial 256 KiB; we clamp up to it.
    assert.strictEqual(c.maxStreamWindowSize, Config.initialStreamWindow)
    assert.strictEqual(c.maxStreams, 1)
    assert.strictEqual(c.maxWriteBuffer, 64 * 1024)
    assert.strictEqual(Config.make({ maxStreamWindowSize: 16 * 1024 * 1024 }).maxStreamWindowSize, 16 * 1024 * 1024)
    assert.isFalse(Config.make({ enableKeepAlive: false }).enableKeepAlive)
  })
})

describe("Config.check", () => {
  it("accepts the defaults and any in-range value, clamped ones included", () => {
    assert.isUndefined(Config.check())
    assert.isUndefined(Config.check({ acceptBacklog: 0, maxWriteBuffer: 10, keepAliveInterval: "5 seconds", streamOpenTimeout: 0 }))
  })

  it("names the first option make could not use: NaN, negative, fractional or infinite counts, bad durations", () => {
    const cases: ReadonlyArray<readonly [Config.Options, string]> = [
      [{ acceptBacklog: Number.NaN }, "acceptBacklog"],
      [{ maxStreams: -5 }, "maxStreams"],
      [{ maxStreamWindowSize: 1.5 }, "maxStreamWindowSize"],
      [{ maxWriteBuffer: Infinity }, "maxWriteBuffer"],
      [{ keepAliveInterval: "banana" as Duration.Input }, "keepAliveInterval"],
      [{ keepAliveInterval: 0 }, "keepAliveInterval"],
      [{ connectionWriteTimeout: -1 }, "connectionWriteTimeout"],
      [{ streamCloseTimeout: Number.NaN }, "streamCloseTimeout"],
      [{ streamOpenTimeout: "-1 second" }, "streamOpenTimeout"]
    ]
    for (const [options, option] of cases) {
      const problem = Config.check(options)
      assert.strictEqual(problem?.option, option, JSON.stringify(options))
      assert.isString(problem?.detail)
    }
  })
})
