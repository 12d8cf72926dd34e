/**
 * Discovery from `Status.Peers` on the Clock against embedded servers: new
 * servers (pinged first, or forced), gone servers, empty and unusable
 * answers, and the seeds coming back when discovered servers all go dark.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import { parsePeers } from "../../src/cluster/Discovery.ts"
import { closedPort, clusterLayer, drive, nodes, noShuffle, settle, waitFor } from "./helpers.ts"

const discoveries = Effect.map(RpcCluster.stats, (s) => s.discoveries)
const servers = RpcCluster.RpcCluster.use((c) => c.servers)

/** The next scheduled round (every 30 s), waited for. */
const nextRound = (n: number) =>
  Effect.gen(function*() {
    yield* TestClock.adjust("30 seconds")
    yield* waitFor(Effect.map(discoveries, (d) => d >= n), `discovery round ${n}`)
    yield* settle()
  })

describe("discovery", () => {
  it("parsePeers keeps well-formed host:port strings, once each", () => {
    assert.deepStrictEqual(parsePeers(["a:1", "a:1", " b:2 ", "c", 7, null, "d:0", "[::1]:3"]), ["a:1", "b:2", "[::1]:3"])
    assert.deepStrictEqual(parsePeers("a:1"), [])
    assert.deepStrictEqual(parsePeers({ Peers: ["a:1"] }), [])
  })

  it.effect("adds answered servers after a ping, drops gone ones, and ignores empty or unusable answers", () =>
    Effect.gen(function*() {
      const [a, b, c] = yield* nodes(3)
      const dark = yield* closedPort
      a!.peers = [a!.address, b!.address]
      yield* Effect.gen(function*() {
        // The first round runs at start.
        yield* waitFor(Effect.map(discoveries, (n) => n === 1), "the first round")
        assert.deepStrictEqual(yield* servers, [a!.address, b!.address])

        // New: pinged, then appended (it gets traffic after a rebalance).
        a!.peers = [a!.address, b!.address, c!.address]
        yield* nextRound(2)
        assert.deepStrictEqual(yield* servers, [a!.address, b!.address, c!.address])
        const stats = yield* RpcCluster.stats
        assert.isDefined(stats.servers[2]!.lastPing?.rttMillis)
        assert.strictEqual(stats.discovered, 1)

        // Gone: dropped.
        a!.peers = [a!.address, c!.address]
        yield* nextRound(3)
        assert.deepStrictEqual(yield* servers, [a!.address, c!.address])
        assert.strictEqual((yield* RpcCluster.stats).departed, 1)

        // Unreachable new server: left out.
        a!.peers = [a!.address, c!.address, dark]
        yield* nextRound(4)
        assert.deepStrictEqual(yield* servers, [a!.address, c!.address])

        // Empty and unusable answers change nothing.
        for (const answer of [[], ["nonsense", 12], "a:1", { Peers: [c!.address] }]) {
          a!.peers = answer
          yield* TestClock.adjust("30 seconds")
          yield* settle(30)
          assert.deepStrictEqual(yield* servers, [a!.address, c!.address])
        }
        assert.strictEqual(yield* discoveries, 4)
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address], discovery: true })))
    }).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("force adds new servers without pinging them", () =>
    Effect.gen(function*() {
      const [a] = yield* nodes(1)
      const dark = yield* closedPort
      a!.peers = [a!.address, dark]
      yield* Effect.gen(function*() {
        yield* waitFor(Effect.map(discoveries, (n) => n === 1), "the first round")
        assert.deepStrictEqual(yield* servers, [a!.address, dark])
        assert.isUndefined((yield* RpcCluster.stats).servers[1]!.lastPing)
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address], discovery: { force: true } })))
    }).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("a list that would hold no reachable server is not adopted", () =>
    Effect.gen(function*() {
      const [a] = yield* nodes(1)
      const dark = yield* closedPort
      a!.peers = [dark]
      yield* Effect.gen(function*() {
        const cluster = yield* RpcCluster.RpcCluster
        assert.isUndefined(yield* cluster.discover)
        assert.deepStrictEqual(yield* servers, [a!.address])
      }).pipe(Effect.provide(clusterLayer({ servers: [a!.address] })))
    }).pipe(Effect.provideService(Random.Random, noShuffle)))

  it.effect("the seeds come back when no discovered server answers a rebalance", () =>
    Effect.gen(function*() {
      const [seed, x, y] = yield* nodes(3)
      seed!.peers = [x!.address, y!.address]
      yield* Effect.gen(function*() {
        const cluster = yield* RpcCluster.RpcCluster
        const found = yield* cluster.discover
        assert.deepStrictEqual(found?.added, [x!.address, y!.address])
        assert.deepStrictEqual(found?.removed, [seed!.address])
        assert.deepStrictEqual(yield* servers, [x!.address, y!.address])

        yield* x!.stop
        yield* y!.stop
        assert.isFalse(yield* cluster.rebalance)
        assert.deepStrictEqual(yield* servers, [x!.address, y!.address, seed!.address])
        assert.isTrue((yield* RpcCluster.stats).offline)
        // Calls reach the seed again.
        const call = yield* Effect.forkChild(RpcCluster.rpc("Status.Ping", {}))
        yield* drive(() => call.pollUnsafe() !== undefined, 2000)
        yield* Fiber.join(call)
        assert.strictEqual((yield* RpcCluster.stats).current, seed!.address)
      }).pipe(Effect.provide(clusterLayer({ servers: [seed!.address] })))
    }).pipe(Effect.provideService(Random.Random, noShuffle)))
})
