/**
 * Keyed pools under TestClock: a pool per key made on first use, closed
 * after idleTimeToLive unused, capacity, per-key and total stats, close.
 * Connections are fake ones counted per key; test/pool/redis.integration.test.ts
 * runs a keyed pool against two real redis-servers.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import { settle } from "./utils.ts"

interface KeyConn {
  readonly key: string
  readonly id: number
}

/** A dial per key whose connections are counted, open and closed, per key. */
const makeKeyProbe = () => {
  let ids = 0
  const opened = new Map<string, number>()
  const closed = new Map<string, number>()
  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1)
  const dial = (key: string) =>
    Effect.acquireRelease(
      Effect.sync((): KeyConn => {
        bump(opened, key)
        return { key, id: ++ids }
      }),
      (conn) => Effect.sync(() => bump(closed, conn.key))
    )
  return {
    dial,
    opened: (key: string) => opened.get(key) ?? 0,
    closed: (key: string) => closed.get(key) ?? 0,
    allClosed: () => Array.from(opened).every(([key, n]) => (closed.get(key) ?? 0) === n)
  }
}

const keyOf = (pool: ConnPool.KeyedConnPool<string, KeyConn>, key: string) =>
  ConnPool.useKeyed(pool, key, (conn) => Effect.succeed(conn.key))

describe("KeyedPool", () => {
  it.effect("makes a key's pool on first use, with the key's dial and name, one per key", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, name: (key) => `redis://${key}`, poolSize: 2 })
      assert.deepStrictEqual(yield* pool.keys, [])
      assert.strictEqual(yield* keyOf(pool, "a:1"), "a:1")
      assert.strictEqual(yield* keyOf(pool, "b:2"), "b:2")
      assert.strictEqual(yield* keyOf(pool, "a:1"), "a:1")
      assert.deepStrictEqual([...(yield* pool.keys)].sort(), ["a:1", "b:2"])
      assert.deepStrictEqual([probe.opened("a:1"), probe.opened("b:2")], [1, 1], "the second use of a:1 was a hit")
      const a = yield* pool.pool("a:1")
      assert.strictEqual(a.name, "redis://a:1")
    }))

  it.effect("concurrent first uses of a key share one pool", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, poolSize: 10 })
      const pools = yield* Effect.all(Array.from({ length: 20 }, () => pool.pool("k")), { concurrency: "unbounded" })
      assert.isTrue(pools.every((p) => p === pools[0]))
      assert.deepStrictEqual(yield* pool.keys, ["k"])
    }))

  it.effect("idleTimeToLive: a key's pool unused that long is closed with its connections, and made anew on the next use", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, idleTimeToLive: "1 minute" })
      yield* keyOf(pool, "a")
      yield* TestClock.adjust("30 seconds")
      yield* keyOf(pool, "a")
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* pool.keys, ["a"], "59 s since its last use")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* pool.keys, [])
      assert.strictEqual(probe.closed("a"), 1, "its idle connection closed with it")
      yield* keyOf(pool, "a")
      assert.strictEqual(probe.opened("a"), 2, "a new pool, a new connection")
    }))

  it.effect("idleTimeToLive: a key's pool with a connection out is kept however long it is out", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, idleTimeToLive: "1 minute" })
      const handle = yield* pool.get("a")
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(yield* pool.keys, ["a"])
      assert.strictEqual(probe.closed("a"), 0)
      yield* pool.put(handle)
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* pool.keys, ["a"], "the minute counts from the put")
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* pool.keys, [])
    }))

  it.effect("capacity: a new key closes the pool unused longest; with every key busy it fails with TooManyKeys", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, capacity: 2 })
      yield* keyOf(pool, "a")
      yield* TestClock.adjust("1 second")
      yield* keyOf(pool, "b")
      yield* keyOf(pool, "c")
      assert.deepStrictEqual([...(yield* pool.keys)].sort(), ["b", "c"], "a was unused longest")
      assert.strictEqual(probe.closed("a"), 1)
      const held = [yield* pool.get("b"), yield* pool.get("c")]
      const error = yield* Effect.flip(pool.get("d"))
      assert.strictEqual(error.reason._tag, "TooManyKeys")
      assert.isTrue(error.isRetryable)
      for (const handle of held) yield* pool.put(handle)
      assert.strictEqual(yield* keyOf(pool, "d"), "d")
    }))

  it.effect("stats: per key, and totals that keep the counters of closed keys' pools", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, idleTimeToLive: "1 minute" })
      yield* keyOf(pool, "a")
      yield* keyOf(pool, "a")
      yield* keyOf(pool, "b")
      const before = yield* pool.stats
      assert.deepStrictEqual(
        before.keys.map(([key, s]) => [key, s.hits, s.misses, s.totalConns]).sort(),
        [["a", 1, 1, 1], ["b", 0, 1, 1]]
      )
      assert.deepStrictEqual([before.total.hits, before.total.misses, before.total.totalConns], [1, 2, 2])
      yield* TestClock.adjust("1 minute")
      const after = yield* pool.stats
      assert.deepStrictEqual(after.keys, [])
      assert.deepStrictEqual([after.total.hits, after.total.misses, after.total.totalConns], [1, 2, 0])
      assert.strictEqual(after.total.closes.close, 2, "both pools closed their idle connection")
    }))

  it.effect("put and remove give a handle back to its key's pool; a handle of another pool is ignored", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial })
      const other = yield* ConnPool.make({ dial: probe.dial("x") })
      const a = yield* pool.get("a")
      const b = yield* pool.get("b")
      yield* pool.put(a)
      yield* pool.remove(b, "broken")
      assert.strictEqual(probe.closed("b"), 1)
      const foreign = yield* other.get
      yield* pool.remove(foreign)
      assert.strictEqual(probe.closed("x"), 0)
      const stats = yield* pool.stats
      assert.deepStrictEqual(stats.keys.map(([key, s]) => [key, s.idleConns]).sort(), [["a", 1], ["b", 0]])
    }))

  it.effect("invalidate closes the key's pool now, borrowed connections included", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial })
      const handle = yield* pool.get("a")
      yield* pool.invalidate("a")
      assert.strictEqual(probe.closed("a"), 1)
      assert.deepStrictEqual(yield* pool.keys, [])
      yield* pool.put(handle)
      yield* keyOf(pool, "a")
      assert.strictEqual(probe.opened("a"), 2)
    }))

  it.effect("close closes every key's pool and every connection; later calls fail with PoolClosed", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const scope = yield* Scope.make()
      const pool = yield* ConnPool.makeKeyed({ dial: probe.dial, poolSize: 1, idleTimeToLive: "1 minute" }).pipe(
        Scope.provide(scope)
      )
      yield* keyOf(pool, "a")
      const borrowed = yield* pool.get("b")
      const waiting = yield* Effect.forkChild(Effect.flip(ConnPool.useKeyed(pool, "b", () => Effect.void)))
      yield* settle
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(probe.allClosed())
      assert.strictEqual(probe.closed("b"), 1, "the borrowed one too")
      yield* pool.put(borrowed)
      assert.strictEqual((yield* Fiber.join(waiting)).reason._tag, "PoolClosed")
      assert.strictEqual((yield* Effect.flip(pool.get("a"))).reason._tag, "PoolClosed")
      assert.strictEqual((yield* Effect.flip(keyOf(pool, "c"))).reason._tag, "PoolClosed")
      yield* TestClock.adjust("1 hour")
      assert.isTrue(probe.allClosed())
    }))

  it.effect("invalid options fail once, at makeKeyed, with InvalidOption", () =>
    Effect.gen(function*() {
      const probe = makeKeyProbe()
      const reason = (options: Partial<ConnPool.KeyedOptions<string, KeyConn, never, Scope.Scope>>) =>
        Effect.map(
          Effect.flip(ConnPool.makeKeyed({ dial: probe.dial, ...options })),
          (e) => e.reason._tag === "InvalidOption" ? e.reason.option : e.reason._tag
        )
      assert.strictEqual(yield* reason({ capacity: 0 }), "capacity")
      assert.strictEqual(yield* reason({ idleTimeToLive: Number.NaN }), "idleTimeToLive")
      assert.strictEqual(yield* reason({ poolSize: -1 }), "poolSize")
      assert.strictEqual(yield* reason({ name: "fixed" as never }), "name")
    }))

  it.effect("layerKeyed provides a keyed pool that closes with the layer", () =>
    Effect.gen(function*() {
      class Pools extends Context.Service<Pools, ConnPool.KeyedConnPool<string, KeyConn>>()("test/Pools") {}
      const probe = makeKeyProbe()
      const keys = yield* Effect.gen(function*() {
        const pools = yield* Pools
        yield* keyOf(pools, "a")
        yield* keyOf(pools, "b")
        return (yield* pools.keys).length
      }).pipe(Effect.provide(ConnPool.layerKeyed(Pools, { dial: probe.dial, idleTimeToLive: Duration.infinity })))
      assert.strictEqual(keys, 2)
      assert.isTrue(probe.allClosed())
      assert.strictEqual(probe.closed("a") + probe.closed("b"), 2)
    }))
})
