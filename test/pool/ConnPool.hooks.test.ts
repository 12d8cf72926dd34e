/** ConnPool's hooks (onGet, onPut, validate) and the closes counted by reason. */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import type { FakeConn } from "./utils.ts"
import { assertTurnsIntact, makeProbe, settle } from "./utils.ts"

describe("ConnPool", () => {
  describe("hooks", () => {
    /** A hook that records the connections it ran on and fails for the ids in `bad`. */
    const recorder = (bad: ReadonlySet<number> = new Set()) => {
      const seen: Array<number> = []
      const hook = (conn: FakeConn) =>
        Effect.suspend(() => {
          seen.push(conn.id)
          return bad.has(conn.id) ? Effect.fail(`connection ${conn.id} is unusable`) : Effect.void
        })
      return { seen, hook }
    }

    it.effect("validate runs on hand-out of a connection idle validateAfter or longer, not sooner", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const validate = recorder()
        const pool = yield* ConnPool.make({ dial: probe.dial, validate: validate.hook, validateAfter: "30 seconds" })
        yield* pool.put(yield* pool.get)
        yield* TestClock.adjust("29 seconds")
        yield* pool.put(yield* pool.get)
        assert.deepStrictEqual(validate.seen, [], "not for a fresh dial, nor after 29 s idle")
        yield* TestClock.adjust("30 seconds")
        const conn = yield* pool.get
        assert.deepStrictEqual(validate.seen, [1])
        assert.strictEqual(conn.conn.id, 1)
        assert.strictEqual((yield* pool.stats).unusable, 0)
      }))

    it.effect("validate: a connection that fails it is closed, counted unusable, and get tries the next one", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const validate = recorder(new Set([2]))
        const pool = yield* ConnPool.make({ dial: probe.dial, validate: validate.hook, validateAfter: 0 })
        const [a, b] = [yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        const got = yield* pool.get
        assert.deepStrictEqual(validate.seen, [2, 1], "LIFO: the last put back first, then the next")
        assert.strictEqual(got.conn.id, 1)
        assert.isTrue(probe.isClosed(2))
        const stats = yield* pool.stats
        assert.strictEqual(stats.unusable, 1)
        assert.strictEqual(stats.closes.validate, 1)
        assert.strictEqual(stats.hits, 1)
        yield* pool.put(got)
        yield* assertTurnsIntact(pool, 10)
      }))

    it.effect("validate: when every idle connection fails it, get dials", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const validate = recorder(new Set([1, 2]))
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, validate: validate.hook, validateAfter: 0 })
        const [a, b] = [yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        const got = yield* pool.get
        assert.strictEqual(got.conn.id, 3)
        assert.strictEqual((yield* pool.stats).unusable, 2)
        yield* pool.put(got)
        yield* assertTurnsIntact(pool, 2)
      }))

    it.effect("validate: a get interrupted while it validates closes that connection and frees its turn", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          poolSize: 1,
          validate: () => Effect.sleep("1 hour"),
          validateAfter: 0
        })
        yield* pool.put(yield* pool.get)
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        assert.isTrue(probe.isClosed(1), "its state after a cut-short check is unknown")
        const stats = yield* pool.stats
        assert.strictEqual(stats.closes.remove, 1)
        assert.strictEqual(stats.unusable, 0, "not the connection's fault")
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("validate: the pool closing while a connection is validated closes it and fails the get", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          validate: () => Effect.sleep("1 second"),
          validateAfter: 0
        })
        yield* pool.put(yield* pool.get)
        const getter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        yield* pool.close
        assert.isTrue(probe.isClosed(1))
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(getter)).reason._tag, "PoolClosed")
      }))

    it.effect("onGet runs on every hand-out, hits and fresh dials; one that fails on an idle connection moves on to the next", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const bad = new Set<number>()
        const onGet = recorder(bad)
        const pool = yield* ConnPool.make({ dial: probe.dial, onGet: onGet.hook })
        const [a, b] = [yield* pool.get, yield* pool.get]
        assert.deepStrictEqual(onGet.seen, [1, 2])
        yield* pool.put(a)
        yield* pool.put(b)
        bad.add(2)
        const got = yield* pool.get
        assert.strictEqual(got.conn.id, 1)
        assert.deepStrictEqual(onGet.seen, [1, 2, 2, 1])
        assert.strictEqual((yield* pool.stats).unusable, 1)
      }))

    it.effect("onGet: a fresh connection it rejects is closed and the get fails with DialFailed, its turn freed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          poolSize: 1,
          onGet: (conn) => Effect.fail(`handshake refused on ${conn.id}`)
        })
        const error = yield* Effect.flip(pool.get)
        assert.strictEqual(error.reason._tag, "DialFailed")
        assert.include(error.message, "handshake refused on 1")
        assert.isTrue(probe.isClosed(1))
        const stats = yield* pool.stats
        assert.strictEqual(stats.unusable, 1)
        assert.strictEqual(stats.totalConns, 0)
      }))

    it.effect("onPut runs on every put and successful use before pooling; a connection it fails on is closed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const bad = new Set<number>()
        const onPut = recorder(bad)
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, onPut: onPut.hook })
        const a = yield* pool.get
        yield* pool.put(a)
        assert.deepStrictEqual(onPut.seen, [1])
        assert.strictEqual(yield* pool.idleLen, 1)
        yield* ConnPool.use(pool, () => Effect.void)
        assert.deepStrictEqual(onPut.seen, [1, 1])
        yield* Effect.exit(ConnPool.use(pool, () => Effect.fail("broken")))
        assert.deepStrictEqual(onPut.seen, [1, 1], "not on a use that failed: that connection is removed")
        const b = yield* pool.get
        bad.add(b.conn.id)
        yield* pool.put(b)
        assert.isTrue(probe.isClosed(b.conn.id))
        const stats = yield* pool.stats
        assert.strictEqual(stats.unusable, 1)
        assert.strictEqual(stats.closes.remove, 1)
        yield* pool.put(b)
        assert.strictEqual((yield* pool.stats).staleHandles, 1, "the lease was given back once")
        yield* assertTurnsIntact(pool, 2)
      }))

    it.effect("onPut: a put interrupted while onPut runs closes the connection and frees its turn once", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        let slow = true
        const onPut = () => slow ? Effect.sleep("1 hour") : Effect.void
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, onPut })
        const conn = yield* pool.get
        const putting = yield* Effect.forkChild(pool.put(conn))
        yield* settle
        yield* pool.put(conn)
        assert.strictEqual((yield* pool.stats).staleHandles, 1, "a second put while the first runs is stale")
        yield* Fiber.interrupt(putting)
        assert.isTrue(probe.isClosed(conn.conn.id))
        assert.strictEqual((yield* pool.stats).closes.remove, 1)
        slow = false
        yield* assertTurnsIntact(pool, 1)
      }))
  })

  describe("closes by reason", () => {
    it.effect("counts every close once under its reason: stale, lifetime, filter, remove, excess, close", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          maxIdleConns: 2,
          connMaxIdleTime: "1 minute",
          connMaxLifetime: "10 minutes",
          idleCheckFrequency: Duration.infinity
        })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        yield* pool.put(c)
        assert.strictEqual((yield* pool.stats).closes.excess, 1, "over maxIdleConns")
        yield* pool.put(yield* pool.newConn)
        assert.strictEqual((yield* pool.stats).closes.excess, 2, "a newConn connection put back")
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* pool.reapStaleConns, 2)
        assert.strictEqual((yield* pool.stats).closes.stale, 2)
        const d = yield* pool.get
        yield* pool.remove(d)
        const e = yield* pool.get
        yield* pool.filter(() => true)
        yield* pool.put(e)
        const f = yield* pool.get
        yield* TestClock.adjust("10 minutes")
        yield* pool.put(f)
        yield* pool.put(yield* pool.get)
        yield* pool.close
        const stats = yield* pool.stats
        assert.deepStrictEqual(stats.closes, { stale: 2, lifetime: 1, validate: 0, filter: 1, remove: 1, close: 1, excess: 2 })
        assert.strictEqual(stats.staleConns, 3, "stale and lifetime, as go-redis counts StaleConns")
        assert.strictEqual(yield* probe.opened, yield* probe.closed)
        assert.strictEqual(yield* probe.closed, 8)
      }))
  })
})
