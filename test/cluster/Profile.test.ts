import { assert, describe, it } from "@effect/vitest"
import { Duration } from "effect"
import * as Profile from "../../src/cluster/Profile.ts"

const seconds = (d: Duration.Duration) => Duration.toSeconds(d)

describe("Profile", () => {
  describe("rebalance delay", () => {
    it("consul: 120 s plus up to 60 s of jitter for a small cluster", () => {
      assert.strictEqual(seconds(Profile.consul.rebalanceDelay(0, 0, 3)), 120)
      assert.strictEqual(seconds(Profile.consul.rebalanceDelay(0.5, 100, 3)), 150)
      assert.strictEqual(seconds(Profile.consul.rebalanceDelay(0.999, 0, 3)), 120 + 0.999 * 60)
    })

    it("consul: members / (64 x servers) seconds once that is longer", () => {
      // 100,000 members over 5 servers: 100000 / 320 = 312.5 s, above 120 s + jitter.
      assert.strictEqual(seconds(Profile.consul.rebalanceDelay(0.5, 100_000, 5)), 312.5)
      // Fewer servers, longer period: each server takes at most 64 new connections a second.
      assert.strictEqual(seconds(Profile.consul.rebalanceDelay(0, 100_000, 1)), 1562.5)
    })

    it("nomad: max(5 min, nodes / (64 x servers)) plus a stagger of up to as much again", () => {
      assert.strictEqual(seconds(Profile.nomad.rebalanceDelay(0, 0, 3)), 300)
      assert.strictEqual(seconds(Profile.nomad.rebalanceDelay(0.5, 0, 3)), 450)
      assert.strictEqual(seconds(Profile.nomad.rebalanceDelay(0.5, 192_000, 5)), 600 * 1.5)
    })

    it("the first rebalance comes after the timer's initial value", () => {
      assert.strictEqual(seconds(Profile.consul.firstRebalance), 120)
      assert.strictEqual(seconds(Profile.nomad.firstRebalance), 300)
    })

    it("rateScaledInterval never goes under its floor", () => {
      assert.strictEqual(seconds(Profile.rateScaledInterval(64, Duration.seconds(10), 64)), 10)
      assert.strictEqual(seconds(Profile.rateScaledInterval(64, Duration.seconds(10), 6400)), 100)
      assert.strictEqual(seconds(Profile.rateScaledInterval(0, Duration.seconds(10), 6400)), 10)
    })
  })

  describe("hold timeout and backoff", () => {
    it("holds 7 s for consul and 5 s for nomad", () => {
      assert.strictEqual(seconds(Profile.consul.holdTimeout), 7)
      assert.strictEqual(seconds(Profile.nomad.holdTimeout), 5)
    })

    it("the n-th backoff's ceiling is hold/16 x 2^(n-1)", () => {
      assert.deepStrictEqual([1, 2, 3, 4, 5].map((n) => Profile.backoffCeiling(7000, n)), [437, 874, 1748, 3496, 6992])
      assert.strictEqual(Profile.backoffCeiling(10, 1), 1)
    })

    it("a backoff is drawn between the previous one and the ceiling", () => {
      assert.strictEqual(Profile.backoff(7000, 1, 0, 0), 0)
      assert.strictEqual(Profile.backoff(7000, 1, 0, 0.5), 218.5)
      assert.strictEqual(Profile.backoff(7000, 2, 200, 0), 200)
      assert.strictEqual(Profile.backoff(7000, 2, 200, 0.5), 200 + (874 - 200) / 2)
      // A previous wait above the ceiling (a shorter per-call hold) is capped.
      assert.strictEqual(Profile.backoff(1600, 1, 500, 0.5), 100)
    })
  })

  describe("blocking-query time", () => {
    const nanos = (s: number) => s * 1e9

    it("is zero for a call that is not a blocking query", () => {
      assert.strictEqual(Profile.blockingMillis({}, Profile.consul), 0)
      assert.strictEqual(Profile.blockingMillis({ MaxQueryTime: nanos(60) }, Profile.consul), 0)
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 0, MaxQueryTime: nanos(60) }, Profile.consul), 0)
      assert.strictEqual(Profile.blockingMillis("x", Profile.consul), 0)
      assert.strictEqual(Profile.blockingMillis(null, Profile.consul), 0)
    })

    it("is MaxQueryTime plus a sixteenth when MinQueryIndex is set", () => {
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 7, MaxQueryTime: nanos(64) }, Profile.consul), 68_000)
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 7n, MaxQueryTime: BigInt(nanos(32)) }, Profile.nomad), 34_000)
    })

    it("caps MaxQueryTime at the profile's maximum and defaults a zero one", () => {
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 1, MaxQueryTime: nanos(3600) }, Profile.consul), 637_500)
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 1, MaxQueryTime: nanos(3600) }, Profile.nomad), 318_750)
      assert.strictEqual(Profile.blockingMillis({ MinQueryIndex: 1 }, Profile.consul), 318_750)
    })
  })
})
