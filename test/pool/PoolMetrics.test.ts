/**
 * ConnPool's metrics, spans and debug lines under TestClock with a fake dial
 * (test/pool/utils.ts): exact names, attributes and counts, every series at
 * zero from the pool's creation, durations in seconds on the Clock.
 * test/pool/redisMetrics.integration.test.ts reads the same after real
 * Redis traffic.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import {
  attributesOf,
  capturingLogs,
  count,
  freshRegistry,
  histogramCount,
  named,
  parentId,
  recordingTracer,
  series,
  seriesOf
} from "../observability/helpers.ts"
import { makeProbe, settle } from "./utils.ts"

const once = Schedule.recurs(0)
const pool = { "db.client.connection.pool.name": "db:6379" }
const seconds = { ...pool, unit: "s" }
const histogram = (snapshot: ReadonlyArray<Metric.Metric.Snapshot>, name: string) =>
  series(snapshot, name, seconds).state as Metric.HistogramState

describe("PoolMetrics", () => {
  it.effect("every series exists, at zero, from the pool's creation; limits read their options", () =>
    freshRegistry(Effect.gen(function*() {
      const probe = yield* makeProbe
      yield* ConnPool.make({ dial: probe.dial, name: "db:6379", poolSize: 4, maxIdleConns: 3, minIdleConns: 0 })
      const s = yield* Metric.snapshot
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })), 0)
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...pool, "db.client.connection.state": "used" })), 0)
      assert.strictEqual(count(series(s, "db.client.connection.idle.max", pool)), 3)
      assert.strictEqual(count(series(s, "db.client.connection.idle.min", pool)), 0)
      assert.strictEqual(count(series(s, "db.client.connection.max", pool)), 4)
      assert.strictEqual(count(series(s, "db.client.connection.pending_requests", pool)), 0)
      assert.strictEqual(count(series(s, "db.client.connection.timeouts", pool)), 0)
      for (const name of ["db.client.connection.create_time", "db.client.connection.wait_time", "db.client.connection.use_time"]) {
        assert.strictEqual(histogramCount(series(s, name, seconds)), 0, name)
      }
      for (const name of ["connpool.hits", "connpool.misses", "connpool.dial.failures", "connpool.breaker.open", "connpool.dial.abandoned"]) {
        assert.strictEqual(count(series(s, name, pool)), 0, name)
      }
      const closed = seriesOf(s, "connpool.connection.closed")
      assert.deepStrictEqual(
        closed.map((c) => c.attributes?.["connpool.close.reason"]).sort(),
        ["close", "excess", "filter", "lifetime", "remove", "stale", "validate"]
      )
      assert.isTrue(closed.every((c) => count(c) === 0))
      assert.strictEqual(s.length, 7 + 3 + 5 + 7, "and nothing else")
    })))

  it.effect("an unbounded limit has no series: maxIdleConns is bounded by the turns, an infinite poolSize by nothing", () =>
    freshRegistry(Effect.gen(function*() {
      const probe = yield* makeProbe
      yield* ConnPool.make({ dial: probe.dial, name: "db:6379", poolSize: 5 })
      assert.strictEqual(count(series(yield* Metric.snapshot, "db.client.connection.idle.max", pool)), 5)
      const free = yield* ConnPool.make({ dial: probe.dial, name: "free", poolSize: Infinity })
      const s = yield* Metric.snapshot
      const mine = (name: string) => seriesOf(s, name).filter((x) => x.attributes?.["db.client.connection.pool.name"] === free.name)
      assert.strictEqual(mine("db.client.connection.max").length, 0)
      assert.strictEqual(mine("db.client.connection.idle.max").length, 0)
      assert.strictEqual(mine("db.client.connection.idle.min").length, 1)
    })))

  it.effect("create, wait and use times in seconds on the Clock; a get that takes an idle connection waits 0", () =>
    freshRegistry(Effect.gen(function*() {
      const probe = yield* makeProbe
      yield* probe.delayBy("100 millis")
      const p = yield* ConnPool.make({ dial: probe.dial, name: "db:6379", poolSize: 2 })
      const first = yield* Effect.forkChild(ConnPool.use(p, () => Effect.sleep("250 millis")))
      yield* TestClock.adjust("100 millis")
      yield* settle
      const during = yield* Metric.snapshot
      assert.strictEqual(count(series(during, "db.client.connection.count", { ...pool, "db.client.connection.state": "used" })), 1)
      yield* TestClock.adjust("250 millis")
      yield* Fiber.join(first)
      yield* ConnPool.use(p, () => Effect.void)

      const s = yield* Metric.snapshot
      const create = histogram(s, "db.client.connection.create_time")
      assert.strictEqual(create.count, 1)
      assert.strictEqual(create.sum, 0.1)
      const wait = histogram(s, "db.client.connection.wait_time")
      assert.strictEqual(wait.count, 2)
      assert.strictEqual(wait.min, 0, "the hit waited 0")
      assert.strictEqual(wait.max, 0.1, "the miss waited for its dial")
      const use = histogram(s, "db.client.connection.use_time")
      assert.strictEqual(use.count, 2)
      assert.strictEqual(use.sum, 0.25)
      assert.deepStrictEqual(use.buckets.find(([bound]) => bound === 0.1), [0.1, 1], "the second use held it 0 s")
      assert.strictEqual(count(series(s, "connpool.hits", pool)), 1)
      assert.strictEqual(count(series(s, "connpool.misses", pool)), 1)
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...pool, "db.client.connection.state": "idle" })), 1)
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...pool, "db.client.connection.state": "used" })), 0)
    })))

  it.effect("a waiter is pending, a wait past poolTimeout is a timeout, a removed connection is closed for remove (a debug line)", () =>
    freshRegistry(Effect.gen(function*() {
      const probe = yield* makeProbe
      const p = yield* ConnPool.make({ dial: probe.dial, name: "db:6379", poolSize: 1, poolTimeout: "1 second" })
      const held = yield* p.get
      const waiter = yield* Effect.forkChild(Effect.flip(p.get))
      yield* settle
      assert.strictEqual(count(series(yield* Metric.snapshot, "db.client.connection.pending_requests", pool)), 1)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(waiter)).reason._tag, "PoolTimeout")
      const logs = capturingLogs()
      yield* logs.provide(p.remove(held))
      assert.deepStrictEqual(logs.lines.map((l) => l.message), ["db:6379: connection closed: remove"])
      const s = yield* Metric.snapshot
      assert.strictEqual(count(series(s, "db.client.connection.pending_requests", pool)), 0)
      assert.strictEqual(count(series(s, "db.client.connection.timeouts", pool)), 1)
      assert.strictEqual(count(series(s, "connpool.connection.closed", { ...pool, "connpool.close.reason": "remove" })), 1)
      assert.strictEqual(histogram(s, "db.client.connection.wait_time").count, 1, "a wait that timed out obtained nothing")
    })))

  it.effect("failed dials are counted, the breaker reads 1 while open, and its transitions are debug lines", () =>
    freshRegistry(Effect.gen(function*() {
      const logs = capturingLogs()
      const probe = yield* makeProbe
      const p = yield* logs.provide(ConnPool.make({ dial: probe.dial, name: "db:6379", poolSize: 2, dialRetry: once }))
      yield* probe.failWith("ECONNREFUSED")
      yield* logs.provide(Effect.flip(p.get))
      yield* logs.provide(Effect.flip(p.get))
      yield* settle
      let s = yield* Metric.snapshot
      assert.strictEqual(count(series(s, "connpool.breaker.open", pool)), 1)
      assert.strictEqual(count(series(s, "connpool.dial.failures", pool)), 3, "two gets and the probe's first dial")
      yield* probe.failWith(undefined)
      yield* TestClock.adjust("1 second")
      yield* settle
      s = yield* Metric.snapshot
      assert.strictEqual(count(series(s, "connpool.breaker.open", pool)), 0)
      const lines = logs.lines.filter((l) => l.level === "Debug").map((l) => l.message)
      assert.include(lines, "db:6379: dial breaker open after 2 failed dials in a row: db:6379: dial failed: ECONNREFUSED; probing")
      assert.include(lines, "db:6379: dial breaker closed")
      assert.isTrue(lines.some((l) => l.startsWith("db:6379: dial failed: ")))
      assert.isTrue(lines.some((l) => l === "db:6379: connection dialled"), "the probe's dial")
      for (const line of logs.lines) assert.strictEqual(line.annotations["db.client.connection.pool.name"], "db:6379")
    })))

  it.effect("a closed pool leaves no series; with metrics off it never had any", () =>
    freshRegistry(Effect.gen(function*() {
      const probe = yield* makeProbe
      const scope = yield* Scope.make()
      yield* Scope.provide(ConnPool.make({ dial: probe.dial, name: "db:6379" }), scope)
      assert.isAbove((yield* Metric.snapshot).length, 0)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual(yield* Metric.snapshot, [])
      yield* ConnPool.make({ dial: probe.dial, name: "off", observability: { metrics: false } })
      assert.deepStrictEqual(yield* Metric.snapshot, [])
    })))

  it.effect("a keyed pool's pools each report under their own name, from their creation until their key expires", () =>
    freshRegistry(Effect.gen(function*() {
      const keyed = yield* ConnPool.makeKeyed({
        dial: (key: string) => Effect.succeed({ key }),
        name: (key) => `redis://${key}`,
        idleTimeToLive: "1 minute"
      })
      yield* ConnPool.useKeyed(keyed, "a:1", () => Effect.void)
      yield* ConnPool.useKeyed(keyed, "b:2", () => Effect.void)
      yield* ConnPool.useKeyed(keyed, "b:2", () => Effect.void)
      const s = yield* Metric.snapshot
      const of = (key: string) => ({ "db.client.connection.pool.name": `redis://${key}` })
      assert.strictEqual(count(series(s, "connpool.misses", of("a:1"))), 1)
      assert.strictEqual(count(series(s, "connpool.hits", of("a:1"))), 0)
      assert.strictEqual(count(series(s, "connpool.hits", of("b:2"))), 1)
      assert.strictEqual(seriesOf(s, "db.client.connection.max").length, 2)
      yield* TestClock.adjust("2 minutes")
      yield* settle
      assert.deepStrictEqual(yield* Metric.snapshot, [], "an expired key's pool closed, and its series went with it")
    })))

  it.effect("spans: connpool.wait when a get waited for a turn, connpool.dial when it dialled, none on the fast path", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const probe = yield* makeProbe
      const p = yield* ConnPool.make({
        dial: probe.dial,
        name: "db:6379",
        poolSize: 1,
        poolTimeout: "1 second",
        observability: { tracing: true }
      })
      yield* Effect.withSpan(ConnPool.use(p, () => Effect.void), "first").pipe(Effect.withTracer(tracer))
      yield* Effect.withSpan(ConnPool.use(p, () => Effect.void), "hit").pipe(Effect.withTracer(tracer))
      const held = yield* p.get
      const waiter = yield* Effect.forkChild(
        Effect.withSpan(Effect.flip(p.get), "waiter").pipe(Effect.withTracer(tracer))
      )
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(waiter)
      yield* p.put(held)

      const [first] = named(spans, "first")
      const [hit] = named(spans, "hit")
      const [waiting] = named(spans, "waiter")
      const dials = named(spans, "connpool.dial")
      assert.strictEqual(dials.length, 1)
      assert.strictEqual(parentId(dials[0]!), first!.spanId)
      assert.strictEqual(dials[0]!.kind, "internal")
      assert.deepStrictEqual(attributesOf(dials[0]!), { "db.client.connection.pool.name": "db:6379" })
      assert.isFalse(spans.some((s) => parentId(s) === hit!.spanId), "the fast path made no span")
      const waits = named(spans, "connpool.wait")
      assert.strictEqual(waits.length, 1)
      assert.strictEqual(parentId(waits[0]!), waiting!.spanId)
      assert.deepStrictEqual(attributesOf(waits[0]!), {
        "db.client.connection.pool.name": "db:6379",
        "error.type": "PoolTimeout"
      })
      assert.isTrue(waits[0]!.status._tag === "Ended" && Exit.isFailure(waits[0]!.status.exit))
    }))

  it.effect("an observability option that is not a boolean fails make with InvalidOption naming it", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const error = yield* Effect.flip(
        ConnPool.make({ dial: probe.dial, name: "db:6379", observability: { metrics: "no" as unknown as boolean } })
      )
      assert.strictEqual(error.reason._tag, "InvalidOption")
      assert.isTrue(error.reason._tag === "InvalidOption" && error.reason.option === "observability.metrics")
    }))
})
