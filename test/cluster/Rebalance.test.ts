/**
 * Rebalancing on the Clock against embedded servers: when the timer fires
 * (Consul's and Nomad's formulas, or a Schedule), what it pings, what it
 * rotates, and what it keeps when nobody answers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Random, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import { clusterLayer, fixedRandom, nodes, settle, waitFor } from "./helpers.ts"

const rebalances = Effect.map(RpcCluster.stats, (s) => s.rebalances)

/** Moves the clock to `millis` after the start, in two steps so a timer due exactly then fires once. */
const at = (from: { now: number }, millis: number) =>
  Effect.gen(function*() {
    yield* TestClock.adjust(millis - from.now)
    from.now = millis
    yield* settle()
  })

describe("rebalance", () => {
  it.effect("consul: first after 120 s, then max(120 s + U[0, 60 s), members / (64 x servers)); pings the new head", () =>
    Effect.gen(function*() {
      const [a, b, c] = yield* nodes(3)
      yield* Effect.gen(function*() {
        const clock = { now: 0 }
        // Every draw 0.5: the start shuffle makes [a, c, b].
        assert.deepStrictEqual(yield* RpcCluster.RpcCluster.use((x) => x.servers), [a, c, b].map((n) => n!.address))
        yield* at(clock, 119_999)
        assert.strictEqual(yield* rebalances, 0)
        yield* at(clock, 120_000)
        yield* waitFor(Effect.map(rebalances, (n) => n === 1), "the first rebalance")
        // Shuffled [a, c, b] -> [a, b, c]; a answered its ping at 120 s.
        const first = yield* RpcCluster.stats
        assert.deepStrictEqual(first.servers.map((s) => s.address), [a, b, c].map((n) => n!.address))
        assert.strictEqual(first.servers[0]!.lastPing?.at, 120_000)
        assert.isDefined(first.servers[0]!.lastPing?.rttMillis)
        assert.isFalse(first.offline)

        // 38,400 members over 3 servers: 200 s, longer than 120 s + 30 s.
        yield* a!.stop
        yield* at(clock, 319_999)
        assert.strictEqual(yield* rebalances, 1)
        yield* at(clock, 320_000)
        yield* waitFor(Effect.map(rebalances, (n) => n === 2), "the second rebalance")
        // Shuffled [a, b, c] -> [a, c, b]; a fails its ping and goes to the back, c answers.
        const second = yield* RpcCluster.stats
        assert.deepStrictEqual(second.servers.map((s) => s.address), [c, b, a].map((n) => n!.address))
        assert.isDefined(second.servers[2]!.lastPing?.error)
        assert.strictEqual(second.current, c!.address)
      }).pipe(Effect.provide(clusterLayer({
        servers: [a!.address, b!.address, c!.address],
        rebalance: "consul",
        members: 38_400
      })))
    }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("nobody answering: the order stays and the cluster is marked offline", () =>
    Effect.gen(function*() {
      const all = yield* nodes(3)
      yield* Effect.gen(function*() {
        const before = yield* RpcCluster.RpcCluster.use((x) => x.servers)
        yield* Effect.forEach(all, (n) => n.stop)
        yield* TestClock.adjust("120 seconds")
        yield* waitFor(Effect.map(rebalances, (n) => n === 1), "the rebalance")
        const stats = yield* RpcCluster.stats
        assert.isTrue(stats.offline)
        assert.strictEqual(stats.rebalancesOffline, 1)
        assert.deepStrictEqual(stats.servers.map((s) => s.address), before)
        assert.isTrue(stats.servers.every((s) => s.lastPing?.error !== undefined))
      }).pipe(Effect.provide(clusterLayer({ servers: all.map((n) => n.address), rebalance: "consul" })))
    }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("nomad: first after 5 min, then d + U[0, d) with d = max(5 min, nodes / (64 x servers))", () =>
    Effect.gen(function*() {
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        const clock = { now: 0 }
        yield* at(clock, 299_999)
        assert.strictEqual(yield* rebalances, 0)
        yield* at(clock, 300_000)
        yield* waitFor(Effect.map(rebalances, (n) => n === 1), "the first rebalance")
        // 5 min + 0.5 x 5 min later.
        yield* at(clock, 749_999)
        assert.strictEqual(yield* rebalances, 1)
        yield* at(clock, 750_000)
        yield* waitFor(Effect.map(rebalances, (n) => n === 2), "the second rebalance")
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address], profile: "nomad", rebalance: "nomad" })))
    }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("a user Schedule replaces the profile's timer", () =>
    Effect.gen(function*() {
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        yield* TestClock.adjust("10 seconds")
        yield* waitFor(Effect.map(rebalances, (n) => n === 1), "the first rebalance")
        yield* TestClock.adjust("10 seconds")
        yield* waitFor(Effect.map(rebalances, (n) => n === 2), "the second rebalance")
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address], rebalance: Schedule.spaced("10 seconds") })))
    }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

  it.effect("rebalance: false never rebalances; rebalance on demand still works", () =>
    Effect.gen(function*() {
      const [a, b] = yield* nodes(2)
      yield* Effect.gen(function*() {
        yield* TestClock.adjust("1 hour")
        yield* settle()
        assert.strictEqual(yield* rebalances, 0)
        assert.isTrue(yield* RpcCluster.RpcCluster.use((x) => x.rebalance))
        assert.strictEqual(yield* rebalances, 1)
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address], rebalance: false })))
    }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))
})
