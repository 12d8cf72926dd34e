import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { isAddress, parseDuration, toClientTls, toServerTls } from "../../src/cli/flags.ts"

const none = Option.none<string>()

describe("flags", () => {
  it.effect("parseDuration reads Go-style and Effect-style durations", () =>
    Effect.sync(() => {
      const ms = (text: string) => {
        const d = parseDuration(text)
        return d === undefined ? undefined : Duration.toMillis(d)
      }
      assert.strictEqual(ms("10s"), 10_000)
      assert.strictEqual(ms("250ms"), 250)
      assert.strictEqual(ms("1m30s"), 90_000)
      assert.strictEqual(ms("1.5h"), 5_400_000)
      assert.strictEqual(ms("10 seconds"), 10_000)
      assert.isUndefined(ms("10"))
      assert.isUndefined(ms("-1s"))
      assert.isUndefined(ms("soon"))
    }))

  it.effect("isAddress accepts host:port and [v6]:port only", () =>
    Effect.sync(() => {
      assert.isTrue(isAddress("127.0.0.1:8300"))
      assert.isTrue(isAddress("localhost:1"))
      assert.isTrue(isAddress("[::1]:8300"))
      assert.isFalse(isAddress("127.0.0.1"))
      assert.isFalse(isAddress("host:99999"))
      assert.isFalse(isAddress("::1:80"))
    }))

  it.effect("client TLS is off without TLS flags and verifying with any", () =>
    Effect.sync(() => {
      assert.isUndefined(toClientTls({ ca: none, cert: none, key: none, serverName: none, skipVerify: false }))
      assert.deepStrictEqual(
        toClientTls({ ca: Option.some("CA"), cert: none, key: none, serverName: none, skipVerify: false }),
        { ca: "CA", cert: undefined, key: undefined, serverName: undefined, verify: true }
      )
      const skip = toClientTls({ ca: none, cert: none, key: none, serverName: none, skipVerify: true })
      assert.isFalse(skip !== undefined && "verify" in skip && skip.verify)
      const half = toClientTls({ ca: none, cert: Option.some("C"), key: none, serverName: none, skipVerify: false })
      assert.strictEqual(half !== undefined && "_tag" in half ? half._tag : undefined, "UsageError")
    }))

  it.effect("server TLS needs both cert and key, and a CA to verify clients", () =>
    Effect.sync(() => {
      assert.isUndefined(toServerTls({ cert: none, key: none, ca: none, verifyClient: false }))
      assert.deepStrictEqual(
        toServerTls({ cert: Option.some("C"), key: Option.some("K"), ca: none, verifyClient: false }),
        { cert: "C", key: "K", ca: undefined, verifyClient: false }
      )
      for (
        const input of [
          { cert: Option.some("C"), key: none, ca: none, verifyClient: false },
          { cert: none, key: none, ca: Option.some("CA"), verifyClient: false },
          { cert: Option.some("C"), key: Option.some("K"), ca: none, verifyClient: true }
        ]
      ) {
        const r = toServerTls(input)
        assert.strictEqual(r !== undefined && "_tag" in r ? r._tag : undefined, "UsageError")
      }
    }))
})
