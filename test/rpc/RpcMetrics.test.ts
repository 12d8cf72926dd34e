/**
 * The RPC pool's metrics, read with `Metric.snapshot` after real calls to the
 * test service on loopback: exact names, attributes and counts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Scope } from "effect"
import { TestClock } from "effect/testing"
import { maxMethodsPerServer } from "../../src/rpc/RpcMetrics.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as TestService from "../../src/server/TestService.ts"
import { count, freshRegistry, histogramCount, series, seriesOf } from "../observability/helpers.ts"
import { serve as serveCounting } from "../faults/helpers.ts"
import { closedPort } from "../wire/fixtures.ts"

const quiet = { enableKeepAlive: false } as const


const own = (port: number) => ({ "connpool.pool.name": "RpcPool", "server.address": "127.0.0.1", "server.port": String(port) })
const call = (port: number, method: string, extra: Record<string, string> = {}) => ({
  "rpc.system.name": "consul",
  "rpc.method": method,
  "server.address": "127.0.0.1",
  "server.port": String(port),
  unit: "s",
  ...extra
})

describe("RpcMetrics", () => {
  it.effect("after real calls: rpc.client.call.duration by method and error.type, and connpool.rpc.* per server", () =>
    freshRegistry(Effect.gen(function*() {
      const server = yield* TestService.serve({ session: quiet, observability: { metrics: false } })
      const port = server.port
      const dead = yield* closedPort
      const scope = yield* Scope.make()
      const pool = yield* Scope.provide(RpcPool.make({ session: quiet }), scope)
      assert.deepStrictEqual(yield* Metric.snapshot, [], "no server met yet, no series")

      yield* Effect.exit(pool.rpc(server.address, "Test.Fail", { Message: "no" }))
      for (let i = 0; i < 3; i++) yield* pool.rpc(server.address, "Status.Ping", {})
      yield* Effect.exit(pool.rpc(`127.0.0.1:${dead}`, "Status.Ping", {}))

      const snapshot = yield* Metric.snapshot
      const durations = seriesOf(snapshot, "rpc.client.call.duration")
      assert.strictEqual(durations.length, 3)
      assert.strictEqual(histogramCount(series(snapshot, "rpc.client.call.duration", call(port, "Status.Ping"))), 3)
      assert.strictEqual(
        histogramCount(series(snapshot, "rpc.client.call.duration", call(port, "Test.Fail", { "error.type": "RemoteError" }))),
        1
      )
      assert.strictEqual(
        histogramCount(series(snapshot, "rpc.client.call.duration", call(dead, "Status.Ping", { "error.type": "DialFailed" }))),
        1
      )
      const ping = series(snapshot, "rpc.client.call.duration", call(port, "Status.Ping")).state as Metric.HistogramState
      assert.strictEqual(ping.sum, 0, "the TestClock did not move during the pings")

      assert.strictEqual(count(series(snapshot, "connpool.rpc.sessions", own(port))), 1)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.streams", { ...own(port), "connpool.rpc.stream.state": "idle" })), 1)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.streams", { ...own(port), "connpool.rpc.stream.state": "used" })), 0)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.pending_calls", own(port))), 0)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.dials", own(port))), 1)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.dial.failures", own(port))), 0, "reads 0 before its first event")
      assert.strictEqual(count(series(snapshot, "connpool.rpc.sessions", own(dead))), 0)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.dials", own(dead))), 0)
      assert.strictEqual(count(series(snapshot, "connpool.rpc.dial.failures", own(dead))), 1)
      for (const name of ["connpool.rpc.sessions", "connpool.rpc.pending_calls", "connpool.rpc.dials", "connpool.rpc.dial.failures"]) {
        assert.strictEqual(seriesOf(snapshot, name).length, 2, `${name}: one series per server`)
      }

      yield* Scope.close(scope, Exit.void)
      const after = yield* Metric.snapshot
      assert.deepStrictEqual(
        after.filter((s) => s.id.startsWith("connpool.")).map((s) => s.id),
        [],
        "a closed pool leaves no series of its own"
      )
    })))

  it.effect("a call is timed in seconds on the Clock; while it runs its stream counts as used and the series exist, at zero", () =>
    freshRegistry(Effect.gen(function*() {
      const server = yield* serveCounting()
      const pool = yield* RpcPool.make({ session: quiet, name: "sleepy" })
      const fiber = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1000 }))
      // The dial and the stream are under way or done; nothing has ended yet.
      yield* Effect.yieldNow
      const early = yield* Metric.snapshot
      const mine = { "connpool.pool.name": "sleepy", "server.address": "127.0.0.1", "server.port": String(server.port) }
      assert.strictEqual(count(series(early, "connpool.rpc.dial.failures", mine)), 0)
      for (let i = 0; i < 2000 && server.sleeping() === 0; i++) {
        yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      }
      const during = yield* Metric.snapshot
      assert.strictEqual(count(series(during, "connpool.rpc.streams", { ...mine, "connpool.rpc.stream.state": "used" })), 1)
      assert.strictEqual(seriesOf(during, "rpc.client.call.duration").length, 0, "a call is recorded when it ends")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      const after = yield* Metric.snapshot
      const sleep = series(after, "rpc.client.call.duration", call(server.port, "Test.Sleep")).state as Metric.HistogramState
      assert.strictEqual(sleep.count, 1)
      assert.strictEqual(sleep.sum, 1, "one second, in seconds")
      assert.deepStrictEqual(sleep.buckets.find(([bound]) => bound === 0.75), [0.75, 0])
      assert.deepStrictEqual(sleep.buckets.find(([bound]) => bound === 1), [1, 1])
    })))

  it.effect(`past ${maxMethodsPerServer} method names per server, new names are recorded as _OTHER`, () =>
    freshRegistry(Effect.gen(function*() {
      const server = yield* TestService.serve({ session: quiet, observability: { metrics: false } })
      const pool = yield* RpcPool.make({ session: quiet })
      for (let i = 0; i <= maxMethodsPerServer + 1; i++) yield* Effect.exit(pool.rpc(server.address, `Made.Up${i}`, {}))
      const snapshot = yield* Metric.snapshot
      const durations = seriesOf(snapshot, "rpc.client.call.duration")
      assert.strictEqual(durations.length, maxMethodsPerServer + 1)
      const other = series(
        snapshot,
        "rpc.client.call.duration",
        call(server.port, "_OTHER", { "error.type": "RemoteError" })
      )
      assert.strictEqual(histogramCount(other), 2)
    })))

  it.effect("with observability.metrics false the pool registers nothing", () =>
    freshRegistry(Effect.gen(function*() {
      const server = yield* TestService.serve({ session: quiet, observability: { metrics: false } })
      const pool = yield* RpcPool.make({ session: quiet, observability: { metrics: false } })
      yield* pool.rpc(server.address, "Status.Ping", {})
      assert.deepStrictEqual(yield* Metric.snapshot, [])
    })))

  it.effect("an observability option that is not a boolean fails the pool's construction with InvalidOption", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(RpcPool.make({ observability: { tracing: "yes" as unknown as boolean } }))
      assert.strictEqual(error._tag, "InvalidOption")
      assert.strictEqual(error.option, "observability.tracing")
    }))
})
