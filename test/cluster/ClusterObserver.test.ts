/**
 * RpcCluster's metrics, spans and failover log lines, after a real failover
 * between two embedded servers on loopback, under TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Metric, Random } from "effect"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import {
  attributesOf,
  capturingLogs,
  count,
  freshRegistry,
  named,
  parentId,
  recordingTracer,
  series
} from "../observability/helpers.ts"
import { drive, nodes, noShuffle, quiet } from "./helpers.ts"

const echo = (seq: number) => ({ Payload: new Uint8Array([seq]), Seq: seq, Note: "cluster" })
const own = { "connpool.cluster.name": "consul" }

const cluster = (servers: ReadonlyArray<string>, tracing: boolean) =>
  RpcCluster.layer({ servers, discovery: false, rebalance: false, observability: { tracing } }).pipe(
    Layer.provideMerge(Layer.orDie(RpcPool.PoolLayer({ session: quiet, observability: { tracing } })))
  )

describe("ClusterObserver", () => {
  it.effect("connpool.cluster.* read 0 from the start and count a call, its failover and the rotation", () =>
    freshRegistry(Effect.gen(function*() {
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        const before = yield* Metric.snapshot
        for (const name of ["calls", "failures", "retries", "rotations", "rebalances", "discoveries", "offline"]) {
          assert.strictEqual(count(series(before, `connpool.cluster.${name}`, own)), 0, name)
        }
        assert.strictEqual(count(series(before, "connpool.cluster.servers", own)), 2)
        a!.mode = "noLeader"
        const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(1)))
        yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
        yield* Fiber.join(fiber)
        const after = yield* Metric.snapshot
        assert.strictEqual(count(series(after, "connpool.cluster.calls", own)), 1)
        assert.strictEqual(count(series(after, "connpool.cluster.retries", own)), 1)
        assert.strictEqual(count(series(after, "connpool.cluster.rotations", own)), 1)
        assert.strictEqual(count(series(after, "connpool.cluster.failures", own)), 0)
      }).pipe(Effect.provide(cluster([a!.address, b!.address], false)))
      const closed = yield* Metric.snapshot
      assert.isFalse(closed.some((s) => s.id.startsWith("connpool.cluster.")), "the closed cluster left no series")
    })).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("a call is a connpool.cluster.call span over one CLIENT span per attempt, each failover an event on it", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        a!.mode = "noLeader"
        const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(1)).pipe(Effect.withTracer(tracer)))
        yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(cluster([a!.address, b!.address], true)))

      const [call] = named(spans, "connpool.cluster.call")
      assert.strictEqual(call?.kind, "internal")
      assert.deepStrictEqual(attributesOf(call!), {
        "connpool.cluster.name": "consul",
        "rpc.system.name": "consul",
        "rpc.method": "Test.Echo"
      })
      assert.isTrue(call!.status._tag === "Ended" && Exit.isSuccess(call!.status.exit))
      const attempts = named(spans, "Test.Echo")
      assert.strictEqual(attempts.length, 2)
      for (const attempt of attempts) assert.strictEqual(parentId(attempt), call!.spanId)
      assert.strictEqual(attributesOf(attempts[0]!)["server.port"], a!.server.port)
      assert.strictEqual(attributesOf(attempts[0]!)["error.type"], "RemoteError")
      assert.strictEqual(attributesOf(attempts[1]!)["server.port"], b!.server.port)
      assert.isUndefined(attributesOf(attempts[1]!)["error.type"])

      const events = call!.events
      assert.strictEqual(events.length, 1)
      const [name, , attributes] = events[0]!
      assert.strictEqual(name, "connpool.cluster.failover")
      assert.strictEqual(attributes["server.address"], "127.0.0.1")
      assert.strictEqual(attributes["server.port"], a!.server.port)
      assert.strictEqual(attributes["error.type"], "RemoteError")
      assert.strictEqual(attributes["connpool.cluster.retry"], 1)
      assert.strictEqual(attributes["connpool.cluster.rotated"], true)
      assert.isTrue((attributes["connpool.cluster.backoff"] as number) > 0, "the backoff, in seconds")
    }).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("a failover is a debug line naming the cluster, the method, the server and the reason", () =>
    Effect.gen(function*() {
      const logs = capturingLogs()
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        a!.mode = "noLeader"
        const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(1)))
        yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
        yield* Fiber.join(fiber)
      }).pipe(Effect.provide(cluster([a!.address, b!.address], false)), logs.provide)
      const lines = logs.lines.filter((l) => l.message.includes("retry 1"))
      assert.strictEqual(lines.length, 1)
      assert.strictEqual(lines[0]!.level, "Debug")
      assert.include(lines[0]!.message, `Test.Echo on ${a!.address} failed (RemoteError)`)
      assert.deepStrictEqual(lines[0]!.annotations, {
        "connpool.cluster.name": "consul",
        "rpc.method": "Test.Echo",
        "server.address": "127.0.0.1",
        "server.port": a!.server.port,
        "error.type": "RemoteError"
      })
    }).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("an observability option that is not a boolean fails the cluster's construction with InvalidOption", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        RpcCluster.make({ servers: ["127.0.0.1:1"], observability: { tracing: "on" as unknown as boolean } }).pipe(
          Effect.provide(Layer.orDie(RpcPool.PoolLayer()))
        )
      )
      assert.strictEqual(error.reason, "InvalidOption")
      assert.include(error.message, "observability.tracing")
    }))
})
