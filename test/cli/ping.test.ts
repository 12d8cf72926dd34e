import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { formatRtt } from "../../src/cli/ping.ts"
import { lines, runCli, serve } from "./helpers.ts"

describe("connpool ping", () => {
  it.live("prints the round trip in milliseconds", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("ping", server.address)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^\d+\.\d\d ms\n$/)
    }))

  it.live("--json prints the address and rttMs", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("ping", server.address, "--json")
      assert.strictEqual(result.code, 0, result.stderr)
      const r = JSON.parse(result.stdout)
      assert.strictEqual(r.address, server.address)
      assert.isAtLeast(r.rttMs, 0)
    }))

  it.live("exits 2 with one line when the server is gone, the dial's own error (one server is pinged directly, not retried for --hold)", () =>
    Effect.gen(function*() {
      const address = yield* Effect.scoped(Effect.map(serve(), (s) => s.address))
      const result = yield* runCli("ping", address)
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
      assert.match(result.stderr, /^connpool: DialFailed \(/)
    }))

  it.effect("formatRtt prints two decimals", () =>
    Effect.sync(() => {
      assert.strictEqual(formatRtt(Duration.micros(1234n)), "1.23 ms")
    }))
})
