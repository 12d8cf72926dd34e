import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { echoMatches, formatJson, formatTable, percentile, runBench } from "../../src/cli/bench.ts"
import type { BenchResult } from "../../src/cli/bench.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { lines, runCli, serve, startCli } from "./helpers.ts"

const keys = [
  "calls", "ok", "failed", "errors", "seconds", "callsPerSec", "mbPerSec", "p50Ms", "p99Ms", "retries", "perServer",
  "method", "interrupted"
]

/** A pool whose every call takes `millis` on the Clock and echoes its arguments; counts the calls. */
const slowEcho = (millis: number) => {
  const seen = { calls: 0 }
  const layer = Layer.succeed(RpcPool.RpcPool, {
    rpc: (_address, _method, args) => {
      seen.calls++
      return Effect.as(Effect.sleep(Duration.millis(millis)), { ...(args as object), Served: seen.calls })
    },
    ping: () => Effect.succeed(Duration.zero),
    stats: Effect.die("unused"),
    streamingRpc: () => Effect.die("unused"),
    stream: () => Stream.die("unused")
  })
  return { seen, layer }
}

describe("connpool bench", () => {
  it.live("--json prints one parseable line with every call ok", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli(
        "bench", server.address, "--calls", "300", "--concurrency", "8", "--size", "2000", "--warmup", "200ms", "--json"
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const out = lines(result.stdout)
      assert.lengthOf(out, 1)
      const r = JSON.parse(out[0]!)
      assert.deepStrictEqual(Object.keys(r), keys)
      assert.strictEqual(r.method, "Test.Echo")
      assert.isFalse(r.interrupted)
      assert.strictEqual(r.retries, 0)
      // The first call alone and the warm-up's are left out.
      assert.deepStrictEqual(r.perServer, { [server.address]: 300 })
      assert.strictEqual(r.calls, 300)
      assert.strictEqual(r.ok, r.calls)
      assert.strictEqual(r.failed, 0)
      assert.deepStrictEqual(r.errors, {})
      assert.isAbove(r.callsPerSec, 0)
      assert.isAtMost(r.p50Ms, r.p99Ms)
    }))

  it.live("--metrics --json adds the pool's metric snapshot as the last key, under OpenTelemetry's names", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli(
        "bench", server.address, "--calls", "200", "--concurrency", "4", "--size", "16", "--warmup", "0s", "--json", "--metrics"
      )
      assert.strictEqual(result.code, 0, result.stderr)
      const r = JSON.parse(lines(result.stdout)[0]!)
      assert.deepStrictEqual(Object.keys(r), [...keys, "metrics"])
      const [host, port] = server.address.split(":")
      const durations = r.metrics.filter((m: { name: string }) => m.name === "rpc.client.call.duration")
      assert.deepStrictEqual(durations.map((m: { attributes: unknown }) => m.attributes), [
        { "rpc.method": "Test.Echo", "rpc.system.name": "consul", "server.address": host, "server.port": port }
      ])
      assert.strictEqual(durations[0].count, 201, "the first call, made alone, and the 200 measured")
      assert.isAbove(durations[0].sum, 0)
      const dials = r.metrics.find((m: { name: string }) => m.name === "connpool.rpc.dials")
      assert.deepStrictEqual(dials, {
        name: "connpool.rpc.dials",
        attributes: { "connpool.pool.name": "RpcPool", "server.address": host, "server.port": port },
        value: 1
      })
    }))

  it.live("--metrics without --json prints the snapshot after the table, one line per series", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--calls", "50", "--warmup", "0s", "--metrics")
      assert.strictEqual(result.code, 0, result.stderr)
      const out = lines(result.stdout)
      const at = out.indexOf("metrics:")
      assert.isAbove(at, 0, "after the table")
      assert.isTrue(out.slice(at).some((l) => /^ {2}rpc\.client\.call\.duration\{.*rpc\.method=Test\.Echo.*\} +count 51 mean /.test(l)))
      assert.isTrue(out.slice(at).some((l) => /^ {2}connpool\.rpc\.sessions\{.*\} +1$/.test(l)))
    }))

  it.live("checks empty payloads and stops after --duration", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--duration", "300ms", "--size", "0", "--warmup", "0s", "--json")
      assert.strictEqual(result.code, 0, result.stderr)
      const r = JSON.parse(result.stdout)
      assert.isAbove(r.ok, 0)
      assert.strictEqual(r.ok, r.calls)
      assert.isBelow(r.seconds, 5)
    }))

  it.live("without --json prints a table on stdout and nothing else", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("bench", server.address, "--calls", "50", "--warmup", "0s")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, /^method\s+Test\.Echo$/m)
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
        stats: Effect.die("unused"),
        streamingRpc: () => Effect.die("unused"),
        stream: () => Stream.die("unused")
      })
      const r = yield* runBench({
        address: "127.0.0.1:1",
        calls: 70,
        concurrency: 4,
        call: { _tag: "Echo", size: 16 },
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
        interrupted: false, method: "M", perServer: { "a:1": 2 }, retries: 1, p99Ms: 2, p50Ms: 1, mbPerSec: 0, callsPerSec: 1, seconds: 1,
        errors: { CallTimeout: 1 }, failed: 1, ok: 1, calls: 2
      })
      assert.strictEqual(
        line,
        "{\"calls\":2,\"ok\":1,\"failed\":1,\"errors\":{\"CallTimeout\":1},\"seconds\":1,\"callsPerSec\":1,\"mbPerSec\":0,\"p50Ms\":1,\"p99Ms\":2,\"retries\":1,\"perServer\":{\"a:1\":2},\"method\":\"M\",\"interrupted\":false}"
      )
    }))

  it.live("--method and --args call any method, replies unchecked, with bytes given as {\"$bytes\"}", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const leader = yield* runCli("bench", server.address, "--method", "Status.Leader", "--calls", "40", "--warmup", "0s", "--json")
      assert.strictEqual(leader.code, 0, leader.stderr)
      const r = JSON.parse(leader.stdout)
      assert.deepStrictEqual([r.method, r.calls, r.ok, r.mbPerSec], ["Status.Leader", 40, 40, null])
      const bytes = yield* runCli(
        "bench", server.address, "--args", "{\"Payload\":{\"$bytes\":\"AP8BAg==\"},\"Seq\":1,\"Note\":\"\"}", "--calls", "10",
        "--warmup", "0s"
      )
      assert.strictEqual(bytes.code, 0, bytes.stderr)
      assert.match(bytes.stdout, /^ok\s+10$/m)
      assert.notMatch(bytes.stdout, /^payload/m)
    }))

  it.live("prints n/a for rates and latencies when every call fails, and exits 1", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const args = ["bench", server.address, "--method", "Test.Fail", "--args", "{\"Message\":\"no\"}", "--calls", "20", "--warmup", "0s"]
      const table = yield* runCli(...args)
      assert.strictEqual(table.code, 1)
      assert.match(table.stdout, /^calls\/s\s+n\/a$/m)
      assert.match(table.stdout, /^p50\s+n\/a$/m)
      assert.match(table.stdout, /^p99\s+n\/a$/m)
      assert.match(table.stdout, /^\s+RemoteError\s+20$/m)
      const json = JSON.parse((yield* runCli(...args, "--json")).stdout)
      assert.deepStrictEqual([json.callsPerSec, json.mbPerSec, json.p50Ms, json.p99Ms, json.failed], [null, null, null, null, 20])
    }))

  it.live("exits 2 on --size with --method, or on --args that are not JSON", () =>
    Effect.gen(function*() {
      for (
        const args of [
          ["--method", "Status.Ping", "--size", "10"],
          ["--args", "{nope"],
          ["--args", "{\"$bytes\":\"not base64!\"}"]
        ]
      ) {
        const result = yield* runCli("bench", "127.0.0.1:1", ...args)
        assert.strictEqual(result.code, 2, args.join(" "))
        assert.lengthOf(lines(result.stderr), 1, result.stderr)
      }
    }))

  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    it.live(`on ${signal} stops starting calls, lets those in flight finish, prints the partial figures and exits ${code}`, () =>
      Effect.gen(function*() {
        const server = yield* serve()
        // Slow calls, so some are in flight when the signal lands; the first progress line says it is measuring.
        const bench = yield* startCli(
          "bench", server.address, "--method", "Test.Sleep", "--args", "{\"Millis\":50}", "--duration", "60s",
          "--warmup", "0s", "--concurrency", "4"
        )
        yield* bench.stderrLine(/^bench: \d+ calls/)
        bench.child.kill(signal)
        const finished = yield* bench.finished
        assert.strictEqual(finished.code, code, finished.stderr)
        assert.match(finished.stdout, /^stopped\s+by a signal: partial figures$/m)
        const figure = (name: string) => Number(new RegExp(`^${name}\\s+(\\S+)`, "m").exec(finished.stdout)?.[1])
        assert.isAbove(figure("ok"), 0)
        assert.strictEqual(figure("failed"), 0, "calls in flight were let finish")
        assert.isBelow(figure("seconds"), 30)
      }))
  }

  it.effect("leaves the warm-up's calls out of every figure", () =>
    Effect.gen(function*() {
      const { layer, seen } = slowEcho(10)
      const fiber = yield* Effect.forkChild(
        runBench({
          address: "127.0.0.1:1",
          calls: 50,
          concurrency: 1,
          warmup: Duration.seconds(1),
          call: { _tag: "Echo", size: 8 },
          timeout: Duration.seconds(1),
          progress: false
        }).pipe(Effect.provide(layer))
      )
      for (let i = 0; i < 200 && fiber.pollUnsafe() === undefined; i++) yield* TestClock.adjust("10 millis")
      const r = yield* Fiber.join(fiber)
      // The probe, 100 warm-up calls of 10 ms, then 50 measured ones.
      assert.strictEqual(seen.calls, 1 + 100 + 50)
      assert.strictEqual(r.calls, 50)
      assert.strictEqual(r.seconds, 0.5)
      assert.strictEqual(r.p50Ms, 10)
    }))

  it.effect("the table says n/a, and that the figures are partial after a signal", () =>
    Effect.sync(() => {
      const r: BenchResult = {
        calls: 3, ok: 0, failed: 3, errors: { RemoteError: 3 }, seconds: 1, callsPerSec: null, mbPerSec: null,
        p50Ms: null, p99Ms: null, retries: 0, perServer: {}, method: "Test.Echo", interrupted: true
      }
      const table = formatTable(r, { concurrency: 1, call: { _tag: "Echo", size: 4 } })
      assert.match(table, /^stopped\s+by a signal: partial figures$/m)
      assert.match(table, /^MB\/s\s+n\/a$/m)
      assert.match(table, /^payload\s+4 B$/m)
    }))
})
