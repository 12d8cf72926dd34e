/**
 * Calls through the cluster against embedded servers on loopback, under
 * TestClock: failover, the retry table through real failures, the hold
 * timeout and its backoff, blocking-query deadlines, NoServers, options and
 * Config.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Fiber, Layer, Random } from "effect"
import { TestClock } from "effect/testing"
import { ClusterError } from "../../src/cluster/ClusterError.ts"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { closedPort, clusterLayer, drive, failures, fixedRandom, nodes, noShuffle, quiet, settle, waitFor } from "./helpers.ts"

const echo = (seq: number) => ({ Payload: new Uint8Array([seq & 255]), Seq: seq, Note: "cluster" })

const failureOf = <A>(exit: Exit.Exit<A, ClusterError>): ClusterError => {
  assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.instanceOf(error?._tag === "Fail" ? error.error : undefined, ClusterError)
  return (error as { readonly error: ClusterError }).error
}

describe("RpcCluster", () => {
  describe("failover", () => {
    it.effect("sends every call to the current server", () =>
      Effect.gen(function*() {
        const [a, b, c] = yield* nodes(3)
        yield* Effect.gen(function*() {
          for (let i = 1; i <= 5; i++) yield* RpcCluster.rpc("Test.Echo", echo(i))
          const stats = yield* RpcCluster.stats
          assert.strictEqual(stats.current, a!.address)
          assert.deepStrictEqual(stats.servers.map((s) => s.calls), [5, 0, 0])
          assert.strictEqual(b!.server.stats().served + c!.server.stats().served, 0)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address, c!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))

    it.effect("shuffles the seeds at start so clients sharing a configuration spread out", () =>
      Effect.gen(function*() {
        const servers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        const order = yield* RpcCluster.RpcCluster.use((c) => c.servers).pipe(
          Effect.provide(clusterLayer({ servers })),
          Effect.provideService(Random.Random, fixedRandom(0.5))
        )
        // Fisher-Yates with every draw 0.5: swap 3rd and 2nd, keep the 1st.
        assert.deepStrictEqual(order, ["127.0.0.1:1", "127.0.0.1:3", "127.0.0.1:2"])
      }))

    it.effect("shuffle: false starts with the first server given", () =>
      Effect.gen(function*() {
        const servers = ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]
        const order = yield* RpcCluster.RpcCluster.use((c) => c.servers).pipe(
          Effect.provide(clusterLayer({ servers, shuffle: false })),
          Effect.provideService(Random.Random, fixedRandom(0.5))
        )
        assert.deepStrictEqual(order, servers)
      }))

    it.effect("a dead current server: the call goes to the next and the dead one moves to the back", () =>
      Effect.gen(function*() {
        const [a, b, c] = yield* nodes(3)
        yield* Effect.gen(function*() {
          yield* RpcCluster.rpc("Test.Echo", echo(1))
          yield* a!.stop
          yield* settle()
          const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(2)))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
          const reply = yield* Fiber.join(fiber)
          assert.strictEqual((reply as { Seq: number }).Seq, 2)
          const stats = yield* RpcCluster.stats
          assert.deepStrictEqual(stats.servers.map((s) => s.address), [b!.address, c!.address, a!.address])
          assert.strictEqual(stats.retries, 1)
          assert.strictEqual(stats.servers.find((s) => s.address === a!.address)?.rotations, 1)
          assert.strictEqual(b!.server.stats().served, 1)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address, c!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))
  })

  describe("retry table through real failures", () => {
    it.effect("an application error returns at once, with one attempt, and the server stays current", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        yield* Effect.gen(function*() {
          const error = failureOf(yield* Effect.exit(RpcCluster.rpc("Test.Fail", { Message: "Permission denied" })))
          assert.strictEqual(error.reason, "RemoteError")
          assert.strictEqual(error.detail, "Permission denied")
          assert.match(error.message, /^Test\.Fail on .*: Permission denied \(1 attempt: .* RemoteError at 0 ms\)$/)
          assert.strictEqual(error.attempts.length, 1)
          assert.isFalse(error.isRetryable)
          assert.strictEqual((yield* RpcCluster.stats).current, a!.address)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))

    it.effect("a connection lost after sending is not retried unless the call is idempotent", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        yield* Effect.gen(function*() {
          a!.mode = "drop"
          const error = failureOf(yield* Effect.exit(RpcCluster.rpc("Test.Echo", echo(1))))
          assert.strictEqual(error.reason, "ConnectionLost")
          assert.isTrue(error.sent)
          assert.deepStrictEqual(error.attempts.map((t) => [t.server, t.reason, t.sent]), [[a!.address, "ConnectionLost", true]])
          assert.strictEqual(b!.server.stats().served, 0)
          // The server that dropped the call moved to the back all the same.
          assert.strictEqual((yield* RpcCluster.stats).current, b!.address)

          b!.mode = "drop"
          a!.mode = "ok"
          const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(2), { idempotent: true }))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
          assert.strictEqual(((yield* Fiber.join(fiber)) as { Seq: number }).Seq, 2)
          assert.strictEqual((yield* RpcCluster.stats).retries, 1)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))

    it.effect("No cluster leader is retried on the next server", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        yield* Effect.gen(function*() {
          a!.mode = "noLeader"
          const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(1)))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
          assert.strictEqual(((yield* Fiber.join(fiber)) as { Seq: number }).Seq, 1)
          assert.strictEqual(b!.server.stats().served, 1)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))
  })

  describe("hold timeout and backoff", () => {
    // Every draw 0.5: each wait is the midpoint between the previous one and hold/16 x 2^(n-1).
    const waits = [218.5, 546.25, 1147.125, 2321.5625]

    it.effect("retries with staggered exponential backoff until the hold timeout, then lists every attempt", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        a!.mode = "noLeader"
        b!.mode = "noLeader"
        yield* Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Echo", echo(1))))
          yield* waitFor(Effect.map(failures, (n) => n === 1), "the first attempt")
          for (const [i, wait] of waits.entries()) {
            yield* TestClock.adjust(wait - 1)
            yield* settle()
            assert.strictEqual(yield* failures, i + 1, `no attempt ${i + 2} before its backoff`)
            yield* TestClock.adjust(1)
            yield* waitFor(Effect.map(failures, (n) => n === i + 2), `attempt ${i + 2}`)
          }
          // The fifth backoff (4656.8 ms) would pass the 7 s hold: the last attempt starts at 7 s.
          yield* TestClock.adjust(7000 - 4233.4375)
          yield* waitFor(Effect.sync(() => fiber.pollUnsafe() !== undefined), "the call to end")
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(error.reason, "RemoteError")
          assert.strictEqual(error.detail, "No cluster leader")
          assert.isTrue(error.exhausted)
          assert.isTrue(error.isRetryable)
          const expected = [0, 218.5, 764.75, 1911.875, 4233.4375, 7000]
          assert.strictEqual(error.attempts.length, expected.length)
          error.attempts.forEach((t, i) => assert.closeTo(t.at, expected[i]!, 0.001))
          // Each failure rotated the server: the attempts alternate.
          assert.deepStrictEqual(error.attempts.map((t) => t.server), [a, b, a, b, a, b].map((n) => n!.address))
          assert.strictEqual((yield* RpcCluster.stats).retries, 5)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address] })))
      }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

    it.effect("a leader back within the hold timeout: the call succeeds and its retries are counted", () =>
      Effect.gen(function*() {
        const all = yield* nodes(3)
        for (const n of all) n.mode = "noLeader"
        yield* Effect.gen(function*() {
          const fibers = yield* Effect.forEach(
            Array.from({ length: 16 }, (_, i) => i),
            (i) => Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(i), { idempotent: i % 2 === 0 }))
          )
          yield* drive(() => false, 3000)
          for (const n of all) n.mode = "ok"
          yield* drive(() => fibers.every((f) => f.pollUnsafe() !== undefined), 5000)
          const replies = yield* Fiber.joinAll(fibers)
          assert.deepStrictEqual(replies.map((r) => (r as { Seq: number }).Seq), Array.from({ length: 16 }, (_, i) => i))
          const stats = yield* RpcCluster.stats
          assert.strictEqual(stats.failed, 0)
          assert.isAtLeast(stats.retries, 16 * 3)
        }).pipe(Effect.provide(clusterLayer({ servers: all.map((n) => n.address) })))
      }))

    it.effect("a per-call hold timeout overrides the cluster's", () =>
      Effect.gen(function*() {
        const [a] = yield* nodes(1)
        a!.mode = "noLeader"
        yield* Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Echo", echo(1), { holdTimeout: "1 second" })))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 3000, 10)
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(error.attempts.at(-1)!.at, 1000)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address] })))
      }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))
  })

  describe("blocking queries", () => {
    const seconds = (s: number) => s * 1e9

    it.effect("retry until hold + MaxQueryTime + MaxQueryTime/16", () =>
      Effect.gen(function*() {
        const [a] = yield* nodes(1)
        a!.mode = "noLeader"
        yield* Effect.gen(function*() {
          const args = { MinQueryIndex: 42, MaxQueryTime: seconds(16) }
          const fiber = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Echo", args)))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 30_000, 100)
          const error = failureOf(yield* Fiber.join(fiber))
          // 7 s hold + 16 s + 1 s.
          assert.strictEqual(error.attempts.at(-1)!.at, 24_000)
          assert.isAbove(error.attempts.filter((t) => t.at > 7000).length, 1)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address] })))
      }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))

    it.effect("get wait + hold as their call timeout, so a long wait is not cut at the pool's 60 s", () =>
      Effect.gen(function*() {
        const [a] = yield* nodes(1)
        yield* Effect.gen(function*() {
          const blocking = { Millis: 65_000, MinQueryIndex: 1, MaxQueryTime: seconds(64) }
          const slow = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Sleep", blocking)))
          const plain = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Sleep", { Millis: 65_000 })))
          yield* drive(() => slow.pollUnsafe() !== undefined && plain.pollUnsafe() !== undefined, 70_000, 1000)
          assert.isTrue(Exit.isSuccess(yield* Fiber.join(slow)))
          const error = failureOf(yield* Fiber.join(plain))
          assert.strictEqual(error.reason, "CallTimeout")
          assert.strictEqual(error.attempts.length, 1)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))
  })

  describe("NoServers", () => {
    it.effect("no server reachable: fails within the hold timeout with every server's attempts listed", () =>
      Effect.gen(function*() {
        const all = yield* nodes(3)
        yield* Effect.gen(function*() {
          yield* RpcCluster.rpc("Status.Ping", {})
          yield* Effect.forEach(all, (n) => n.stop)
          yield* settle()
          const fiber = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Echo", echo(1))))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 10_000)
          const error = failureOf(yield* Fiber.join(fiber))
          assert.strictEqual(error.reason, "NoServers")
          assert.isTrue(error.isRetryable)
          assert.isFalse(error.sent)
          assert.deepStrictEqual(new Set(error.attempts.map((t) => t.server)), new Set(all.map((n) => n.address)))
          assert.isAtMost(error.attempts.at(-1)!.at, 7000)
          assert.match(error.message, /^NoServers \(Test\.Echo on .*\): no server reachable within 7000 ms \(\d+ attempts: .* DialFailed at 0 ms; /)
        }).pipe(Effect.provide(clusterLayer({ servers: all.map((n) => n.address) })))
      }).pipe(Effect.provideService(Random.Random, fixedRandom(0.5))))
  })

  describe("ping", () => {
    it.effect("pings the current server through the retry loop", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        yield* Effect.gen(function*() {
          yield* a!.stop
          const fiber = yield* Effect.forkChild(RpcCluster.ping())
          yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
          const rtt = yield* Fiber.join(fiber)
          assert.isTrue(Duration.isGreaterThanOrEqualTo(rtt, Duration.zero))
          assert.strictEqual((yield* RpcCluster.stats).current, b!.address)
        }).pipe(Effect.provide(clusterLayer({ servers: [a!.address, b!.address] })))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))
  })

  describe("options", () => {
    const refused = (options: RpcCluster.RpcCluster.Options, option: string) =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(RpcCluster.stats.pipe(Effect.provide(clusterLayer(options))))
        const error = failureOf(exit)
        assert.strictEqual(error.reason, "InvalidOption")
        assert.isTrue(error.detail?.startsWith(`${option}:`), error.detail)
        assert.isFalse(error.isRetryable)
      })

    it.effect("are checked when the cluster is built", () =>
      Effect.gen(function*() {
        yield* refused({ servers: [] }, "servers")
        yield* refused({ servers: ["no-port"] }, "servers")
        yield* refused({ servers: ["a:0"] }, "servers")
        yield* refused({ servers: ["a:65536"] }, "servers")
        yield* refused({ servers: ["::1:8300"] }, "servers")
        yield* refused({ servers: ["a:1"], holdTimeout: 0 }, "holdTimeout")
        yield* refused({ servers: ["a:1"], pingTimeout: "-1 seconds" }, "pingTimeout")
        yield* refused({ servers: ["a:1"], members: -1 }, "members")
        yield* refused({ servers: ["a:1"], profile: "etcd" as "consul" }, "profile")
        yield* refused({ servers: ["a:1"], rebalance: "etcd" as "consul" }, "rebalance")
      }))

    it.effect("a per-call hold timeout that is not a positive duration fails the call with InvalidOption", () =>
      Effect.gen(function*() {
        const holds: ReadonlyArray<Duration.Input> = [0, "-1 seconds", "soon" as Duration.Input]
        for (const holdTimeout of holds) {
          const error = failureOf(yield* Effect.exit(RpcCluster.rpc("Status.Ping", {}, { holdTimeout })))
          assert.strictEqual(error.reason, "InvalidOption")
        }
        assert.strictEqual((yield* RpcCluster.stats).failed, 3)
      }).pipe(Effect.provide(clusterLayer({ servers: ["127.0.0.1:8"] }))))

    it.effect("accepts IPv6 servers in brackets and drops duplicates", () =>
      Effect.gen(function*() {
        const servers = yield* RpcCluster.RpcCluster.use((c) => c.servers).pipe(
          Effect.provide(clusterLayer({ servers: ["[::1]:8300", " [::1]:8300 ", "h:08300"] })),
          Effect.provideService(Random.Random, noShuffle)
        )
        assert.deepStrictEqual(servers, ["[::1]:8300", "h:8300"])
      }))

    it.effect("layerConfig reads CONNPOOL_SERVERS, CONNPOOL_CLUSTER_PROFILE and CONNPOOL_HOLD_TIMEOUT", () =>
      Effect.gen(function*() {
        const [a, b] = yield* nodes(2)
        a!.mode = "noLeader"
        b!.mode = "noLeader"
        const env = {
          CONNPOOL_SERVERS: `${a!.address}, ${b!.address}`,
          CONNPOOL_CLUSTER_PROFILE: "nomad",
          CONNPOOL_HOLD_TIMEOUT: "2 seconds"
        }
        const layer = RpcCluster.layerConfig({ discovery: false, rebalance: false }).pipe(
          Layer.provide(RpcPool.PoolLayer({ session: quiet })),
          Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(env)))
        )
        yield* Effect.gen(function*() {
          assert.deepStrictEqual(yield* RpcCluster.RpcCluster.use((c) => c.servers), [a!.address, b!.address])
          const fiber = yield* Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Echo", echo(1))))
          yield* drive(() => fiber.pollUnsafe() !== undefined, 5000, 10)
          assert.strictEqual(failureOf(yield* Fiber.join(fiber)).attempts.at(-1)!.at, 2000)
        }).pipe(Effect.provide(layer))

        const missing = yield* Effect.exit(
          RpcCluster.stats.pipe(
            Effect.provide(RpcCluster.layerConfig().pipe(
              Layer.provide(RpcPool.PoolLayer({ session: quiet })),
              Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({})))
            ))
          )
        )
        assert.isTrue(Exit.isFailure(missing))
      }).pipe(Effect.provideService(Random.Random, noShuffle)))

    it.effect("addServer checks the address and appends it", () =>
      Effect.gen(function*() {
        const cluster = yield* RpcCluster.RpcCluster
        assert.isTrue(yield* cluster.addServer("127.0.0.1:9"))
        assert.isFalse(yield* cluster.addServer("127.0.0.1:9"))
        assert.strictEqual(failureOf(yield* Effect.exit(cluster.addServer("nonsense"))).reason, "InvalidOption")
        assert.deepStrictEqual(yield* cluster.servers, ["127.0.0.1:8", "127.0.0.1:9"])
        assert.isTrue(yield* cluster.removeServer("127.0.0.1:8"))
        assert.isFalse(yield* cluster.removeServer("127.0.0.1:9"))
      }).pipe(Effect.provide(clusterLayer({ servers: ["127.0.0.1:8"] }))))
  })

  it.effect("a closed port in the list is skipped by calls", () =>
    Effect.gen(function*() {
      const dead = yield* closedPort
      const [a] = yield* nodes(1)
      yield* Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(RpcCluster.rpc("Test.Echo", echo(7)))
        yield* drive(() => fiber.pollUnsafe() !== undefined, 2000)
        assert.strictEqual(((yield* Fiber.join(fiber)) as { Seq: number }).Seq, 7)
        const stats = yield* RpcCluster.stats
        assert.deepStrictEqual(stats.servers.map((s) => [s.address, s.calls, s.failures]), [[a!.address, 1, 0], [dead, 1, 1]])
      }).pipe(Effect.provide(clusterLayer({ servers: [dead, a!.address] })))
    }).pipe(Effect.provideService(Random.Random, noShuffle)))
})
