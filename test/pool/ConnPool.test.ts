/**
 * ConnPool's API: make, handles, the idle list, newConn/closeConn, remove and filter, stats, use and
 * the layer. The other concerns have their own files: turns, health, dial, hooks, close.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import type { FakeConn } from "./utils.ts"
import { assertTurnsIntact, makeProbe, once, settle } from "./utils.ts"

describe("ConnPool", () => {
  describe("make", () => {
    it.effect("dials nothing until a connection is needed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* settle
        assert.strictEqual(yield* probe.attempts, 0)
        assert.strictEqual(yield* pool.len, 0)
      }))

    it.effect("fails with InvalidOption for an option out of range", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const error = yield* Effect.flip(ConnPool.make({ dial: probe.dial, name: "redis:6379", poolSize: 0 }))
        assert.strictEqual(error.reason._tag, "InvalidOption")
        assert.strictEqual(error.pool, "redis:6379")
        assert.isFalse(error.isRetryable)
        assert.strictEqual((yield* Effect.flip(ConnPool.make({ dial: probe.dial, poolTimeout: -1 }))).reason._tag, "InvalidOption")
        assert.strictEqual((yield* Effect.flip(ConnPool.make({ dial: probe.dial, minIdleConns: 1.5 }))).reason._tag, "InvalidOption")
      }))

    it.effect("fails typed, never throws or dies, for NaN, wrong types or options that are not an object", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const nan = yield* Effect.flip(ConnPool.make({ dial: probe.dial, poolTimeout: Number.NaN }))
        assert.strictEqual(nan.reason._tag === "InvalidOption" && nan.reason.option, "poolTimeout")
        const wrongType = yield* Effect.flip(ConnPool.make({ dial: probe.dial, poolSize: "10" as never }))
        assert.strictEqual(wrongType.reason._tag === "InvalidOption" && wrongType.reason.option, "poolSize")
        const none = yield* Effect.flip(ConnPool.make(undefined as unknown as ConnPool.Options<FakeConn, string, Scope.Scope>))
        assert.strictEqual(none.reason._tag === "InvalidOption" && none.reason.option, "options")
        assert.strictEqual(yield* probe.attempts, 0)
      }))

    it.effect("runs the dial with the connection's own scope: closing the connection runs its release", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const conn = yield* pool.get
        assert.strictEqual(yield* probe.closed, 0)
        yield* pool.remove(conn, "broken")
        assert.strictEqual(yield* probe.closed, 1)
      }))
  })

  describe("handles", () => {
    it.effect("carry the connection, when it was dialled and when it was last handed out or put back", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* TestClock.adjust("1 second")
        const first = yield* pool.get
        assert.strictEqual(first.conn.id, 1)
        assert.strictEqual(first.createdAt, 1000)
        assert.strictEqual(first.usedAt, 1000)
        yield* TestClock.adjust("1 second")
        yield* pool.put(first)
        assert.strictEqual(first.usedAt, 2000)
        yield* TestClock.adjust("1 second")
        const again = yield* pool.get
        assert.strictEqual(again.conn, first.conn)
        assert.notStrictEqual(again, first, "each get hands out a lease of its own")
        assert.strictEqual(again.createdAt, 1000)
        assert.strictEqual(again.usedAt, 3000)
      }))

    it.effect("a stale handle never acts on the connection's current lease: put, remove and closeConn ignore it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const a = yield* pool.get
        yield* pool.put(a)
        const b = yield* pool.get
        assert.strictEqual(b.conn, a.conn, "B holds the connection A gave back")
        yield* pool.put(a)
        const third = yield* Effect.forkChild(pool.get)
        yield* settle
        assert.isUndefined(third.pollUnsafe(), "A's second put did not hand B's connection to a third caller")
        yield* pool.remove(a, "stale")
        yield* pool.closeConn(a)
        assert.strictEqual(yield* probe.closed, 0, "A's remove and closeConn did not close B's connection")
        assert.strictEqual(yield* pool.len, 1)
        assert.isUndefined(third.pollUnsafe(), "nor free B's turn")
        assert.strictEqual((yield* pool.stats).staleHandles, 3)
        yield* pool.put(b)
        const c = yield* Fiber.join(third)
        assert.strictEqual(c.conn, a.conn)
        yield* pool.put(c)
        yield* assertTurnsIntact(pool, 1)
      }))
  })

  describe("idle list", () => {
    it.effect("is LIFO by default: get hands out the connection put back last", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        for (const conn of [a, b, c]) yield* pool.put(conn)
        assert.strictEqual((yield* pool.get).conn.id, c.conn.id)
        assert.strictEqual((yield* pool.get).conn.id, b.conn.id)
      }))

    it.effect("poolFIFO: get hands out the connection idle longest", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolFIFO: true })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        for (const conn of [a, b, c]) yield* pool.put(conn)
        assert.strictEqual((yield* pool.get).conn.id, a.conn.id)
        assert.strictEqual((yield* pool.get).conn.id, b.conn.id)
      }))

    it.effect("maxIdleConns: a put beyond the cap closes the connection", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, maxIdleConns: 1 })
        const [a, b] = [yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* pool.len, 1)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).staleConns, 0)
        yield* assertTurnsIntact(pool, 10)
      }))

    it.effect("a get that finds an idle connection is a hit, one that dials is a miss", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* pool.put(yield* pool.get)
        yield* pool.put(yield* pool.get)
        const stats = yield* pool.stats
        assert.strictEqual(stats.misses, 1)
        assert.strictEqual(stats.hits, 1)
        assert.strictEqual(yield* probe.opened, 1)
      }))
  })

  describe("newConn and closeConn", () => {
    it.effect("newConn dials outside the turns; put closes it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const pooled = yield* pool.get
        const extra = yield* pool.newConn
        assert.strictEqual(yield* pool.len, 2)
        yield* pool.put(extra)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 1)
        yield* pool.put(pooled)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("closeConn of a handle already given back does nothing: the idle connection stays", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const conn = yield* pool.get
        yield* pool.put(conn)
        yield* pool.closeConn(conn)
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* probe.closed, 0)
        assert.strictEqual((yield* pool.stats).staleHandles, 1)
      }))

    it.effect("closeConn closes a newConn connection now", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const conn = yield* pool.newConn
        yield* pool.closeConn(conn)
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual(yield* probe.closed, 1)
      }))

    it.effect("closeConn of a connection from get closes it and frees its turn once", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2 })
        const conn = yield* pool.get
        yield* pool.closeConn(conn)
        yield* pool.put(conn)
        assert.strictEqual(yield* probe.closed, 1)
        yield* assertTurnsIntact(pool, 2)
      }))

    it.effect("a connection from another pool is ignored", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const other = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const foreign = yield* other.get
        yield* pool.put(foreign)
        yield* pool.remove(foreign)
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual(yield* other.len, 1)
        assert.strictEqual((yield* pool.stats).staleHandles, 2, "counted where it was misused")
        assert.strictEqual((yield* other.stats).staleHandles, 0)
        yield* assertTurnsIntact(pool, 1)
      }))
  })

  describe("remove and filter", () => {
    it.effect("remove closes the connection and frees its turn", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const conn = yield* pool.get
        yield* pool.remove(conn, new Error("protocol error"))
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual((yield* pool.stats).staleConns, 0)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("filter closes matching idle connections now, matching in-use ones when they come back", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        const matched = yield* pool.filter((conn) => conn.conn.id !== b.conn.id)
        assert.strictEqual(matched, 2)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 2)
        yield* pool.put(c)
        assert.strictEqual(yield* probe.closed, 2)
        assert.strictEqual(yield* pool.len, 1)
        assert.strictEqual(yield* pool.filter(() => false), 0)
        yield* assertTurnsIntact(pool, 10)
      }))
  })

  describe("stats", () => {
    it.effect("reports go-redis v9's counters and gauges", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, connMaxIdleTime: "1 minute" })
        const a = yield* pool.get
        const b = yield* pool.get
        const waiter = yield* Effect.forkChild(pool.get)
        yield* settle
        assert.strictEqual((yield* pool.stats).pendingRequests, 1)
        yield* TestClock.adjust("2 seconds")
        yield* pool.put(a)
        const c = yield* Fiber.join(waiter)
        yield* Effect.flip(Effect.forkChild(pool.get).pipe(
          Effect.tap(() => TestClock.adjust("4 seconds")),
          Effect.flatMap(Fiber.join)
        ))
        yield* pool.put(b)
        yield* pool.put(c)
        // The reaper runs at 1 and 2 minutes; by the second both have been idle a minute.
        yield* TestClock.adjust("2 minutes")
        const stats = yield* pool.stats
        assert.deepStrictEqual({ ...stats, waitDuration: Duration.toMillis(stats.waitDuration) }, {
          hits: 1,
          misses: 2,
          timeouts: 1,
          waitCount: 1,
          waitDuration: 2000,
          totalConns: 0,
          idleConns: 0,
          staleConns: 2,
          unusable: 0,
          closes: { stale: 2, lifetime: 0, validate: 0, filter: 0, remove: 0, close: 0, excess: 0 },
          pendingRequests: 0,
          staleHandles: 0,
          abandonedDials: 0
        })
      }))

    it.effect("len and idleLen count open and idle connections", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const [a] = [yield* pool.get, yield* pool.get]
        yield* pool.put(a!)
        assert.strictEqual(yield* pool.len, 2)
        assert.strictEqual(yield* pool.idleLen, 1)
        const stats = yield* pool.stats
        assert.strictEqual(stats.totalConns, 2)
        assert.strictEqual(stats.idleConns, 1)
      }))
  })

  describe("use", () => {
    it.effect("puts the connection back when f succeeds", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        assert.strictEqual(yield* ConnPool.use(pool, (conn) => Effect.succeed(conn.id)), 1)
        assert.strictEqual(yield* pool.pipe(ConnPool.use((conn: FakeConn) => Effect.succeed(conn.id))), 1)
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* probe.opened, 1)
      }))

    it.effect("removes the connection when f fails", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const error = yield* Effect.flip(ConnPool.use(pool, () => Effect.fail("bad reply" as const)))
        assert.strictEqual(error, "bad reply")
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 0)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("removes the connection when f dies or throws", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const exit = yield* Effect.exit(ConnPool.use(pool, (): Effect.Effect<void> => {
          throw new Error("bug")
        }))
        assert.isTrue(Exit.isFailure(exit))
        assert.strictEqual(yield* probe.closed, 1)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("removes the connection when f is interrupted", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const fiber = yield* Effect.forkChild(ConnPool.use(pool, () => Effect.never))
        yield* settle
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* probe.closed, 1)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("fails with the pool's error when no connection can be had", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, dialRetry: once })
        yield* probe.failWith("ECONNREFUSED")
        const error = yield* Effect.flip(ConnPool.use(pool, () => Effect.succeed(1)))
        assert.strictEqual(error._tag, "PoolError")
      }))

    it.effect("the same use effect can run again, and on several fibers at once", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 3 })
        const borrow = ConnPool.use(pool, (conn) => Effect.as(Effect.sleep("1 second"), conn.id))
        const together = yield* Effect.forkChild(Effect.all([borrow, borrow, borrow], { concurrency: 3 }))
        yield* settle
        assert.strictEqual((yield* pool.stats).totalConns, 3)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual([...(yield* Fiber.join(together))].sort(), [1, 2, 3])
        assert.strictEqual(yield* pool.idleLen, 3)
        const again = yield* Effect.forkChild(borrow)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* Fiber.join(again), 3, "LIFO: the connection put back last")
        assert.strictEqual(yield* probe.closed, 0)
        yield* assertTurnsIntact(pool, 3)
      }))
  })

  describe("layer", () => {
    class TestPool extends Context.Service<TestPool, ConnPool.ConnPool<FakeConn>>()("test/TestPool") {}

    it.effect("provides a pool that closes with the layer", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const id = yield* Effect.gen(function*() {
          const pool = yield* TestPool
          return yield* ConnPool.use(pool, (conn) => Effect.succeed(conn.id))
        }).pipe(Effect.provide(ConnPool.layer(TestPool, { dial: probe.dial, name: "layer" })))
        assert.strictEqual(id, 1)
        assert.strictEqual(yield* probe.closed, 1)
      }))
  })
})
