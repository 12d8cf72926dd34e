import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { echoMatches, formatJson, percentile, runBench } from "../../src/cli/bench.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { lines, runCli, serve } from "./helpers.ts"

describe("connpool bench", () => {
  it.live("--json prints one parseable line with every call ok", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--calls", "300", "--concurrency", "8", "--size", "2000", "--json")
      assert.strictEqual(result.code, 0, result.stderr)
      const out = lines(result.stdout)
      assert.lengthOf(out, 1)
      const r = JSON.parse(out[0]!)
      assert.deepStrictEqual(Object.keys(r), [
        "calls", "ok", "failed", "errors", "seconds", "callsPerSec", "mbPerSec", "p50Ms", "p99Ms", "retries", "perServer"
      ])
      assert.strictEqual(r.calls, 300)
      assert.strictEqual(r.ok, r.calls)
      assert.strictEqual(r.failed, 0)
      assert.deepStrictEqual(r.errors, {})
      assert.isAbove(r.callsPerSec, 0)
      assert.isAtMost(r.p50Ms, r.p99Ms)
      assert.strictEqual(r.retries, 0)
      // The warm-up Status.Ping is a call too.
      assert.deepStrictEqual(r.perServer, { [server.address]: 301 })
    }))

  it.live("checks empty payloads and stops after --duration", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--duration", "300ms", "--size", "0", "--json")
      assert.strictEqual(result.code, 0, result.stderr)
      const r = JSON.parse(result.stdout)
      assert.isAbove(r.ok, 0)
      assert.strictEqual(r.ok, r.calls)
      assert.isBelow(r.seconds, 5)
    }))

  it.live("without --json prints a table on stdout and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--calls", "50")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^calls\s+50$/m)
      assert.match(result.stdout, /^ok\s+50$/m)
      assert.match(result.stdout, /^p99\s+[\d.]+ ms$/m)
    }))

  it.live("exits non-zero with one line when calls fail", () =>
    Effect.gen(function*() {
      const address = yield* Effect.scoped(Effect.map(serve(), (s) => s.address))
      const result = yield* runCli("bench", address, "--calls", "10", "--json")
      assert.notStrictEqual(result.code, 0)
      assert.lengthOf(lines(result.stderr), 1)
    }))

  it.live("exits 2 when both --calls and --duration are given", () =>
    Effect.gen(function*() {
      const result = yield* runCli("bench", "127.0.0.1:1", "--calls", "10", "--duration", "1s")
      assert.strictEqual(result.code, 2)
      assert.lengthOf(lines(result.stderr), 1)
    }))

  it.effect("counts failures by reason, and wrong echoes as ReplyMismatch, without stopping", () =>
    Effect.gen(function*() {
      // Every 5th call times out, every 7th (not 5th) comes back with the wrong Seq.
      const pool = Layer.succeed(RpcPool.RpcPool, {
        rpc: (address, method, args) => {
          if (method === "Status.Ping") return Effect.succeed({})
          const { Payload, Seq } = args as { Payload: Uint8Array; Seq: number }
          if (Seq % 5 === 0) return Effect.fail(new RpcError({ reason: "CallTimeout", address, method, sent: true }))
          return Effect.succeed({ Payload, Seq: Seq % 7 === 0 ? Seq + 1 : Seq, Note: "", Served: Seq })
        },
        ping: () => Effect.succeed(Duration.zero),
        stats: Effect.die("unused")
      })
      const r = yield* runBench({
        address: "127.0.0.1:1",
        calls: 70,
        concurrency: 4,
        size: 16,
        timeout: Duration.seconds(1),
        progress: false
      }).pipe(Effect.provide(pool))
      assert.strictEqual(r.calls, 70)
      assert.deepStrictEqual(r.errors, { CallTimeout: 14, ReplyMismatch: 8 })
      assert.strictEqual(r.failed, 22)
      assert.strictEqual(r.ok, 48)
    }))

  it.effect("echoMatches wants the same Seq and the same bytes, as bytes or text", () =>
    Effect.sync(() => {
      const payload = new TextEncoder().encode("abc")
      assert.isTrue(echoMatches({ Seq: 3, Payload: payload }, 3, payload))
      assert.isTrue(echoMatches({ Seq: 3n, Payload: "abc" }, 3, payload))
      assert.isFalse(echoMatches({ Seq: 4, Payload: payload }, 3, payload))
      assert.isFalse(echoMatches({ Seq: 3, Payload: "abd" }, 3, payload))
      assert.isFalse(echoMatches({ Seq: 3, Payload: payload.subarray(1) }, 3, payload))
      assert.isTrue(echoMatches({ Seq: 1, Payload: null }, 1, new Uint8Array(0)))
      assert.isFalse(echoMatches("nope", 1, payload))
    }))

  it.effect("percentile is nearest-rank and 0 for no samples", () =>
    Effect.sync(() => {
      const sorted = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      assert.strictEqual(percentile(sorted, 0.5), 5)
      assert.strictEqual(percentile(sorted, 0.99), 10)
      assert.strictEqual(percentile([], 0.5), 0)
    }))

  it.effect("formatJson keeps the documented key order", () =>
    Effect.sync(() => {
      const line = formatJson({
        perServer: { "a:1": 2 }, retries: 1,
        p99Ms: 2, p50Ms: 1, mbPerSec: 0, callsPerSec: 1, seconds: 1, errors: { CallTimeout: 1 }, failed: 1, ok: 0,
        calls: 1
      })
      assert.strictEqual(
        line,
        "{\"calls\":1,\"ok\":0,\"failed\":1,\"errors\":{\"CallTimeout\":1},\"seconds\":1,\"callsPerSec\":1,\"mbPerSec\":0,\"p50Ms\":1,\"p99Ms\":2,\"retries\":1,\"perServer\":{\"a:1\":2}}"
      )
    }))
})
