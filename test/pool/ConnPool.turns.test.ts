/** ConnPool's turns (poolSize, poolTimeout, barging and hand-off) and maxActiveConns. */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import { wakeupsPerTask } from "../../src/pool/Wakeups.ts"
import type { FakeConn } from "./utils.ts"
import { assertTurnsIntact, makeProbe, reasonOf, settle } from "./utils.ts"

describe("ConnPool", () => {
  describe("turns", () => {
    it.effect("poolSize: hands out poolSize connections without waiting; the next get waits for a put", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 3 })
        const held = [yield* pool.get, yield* pool.get, yield* pool.get]
        assert.strictEqual((yield* pool.stats).waitCount, 0)
        const waiter = yield* Effect.forkChild(pool.get)
        yield* settle
        assert.isUndefined(waiter.pollUnsafe())
        assert.strictEqual((yield* pool.stats).pendingRequests, 1)
        yield* pool.put(held[1]!)
        const got = yield* Fiber.join(waiter)
        assert.strictEqual(got.conn.id, held[1]!.conn.id)
        assert.strictEqual(yield* probe.opened, 3)
        assert.strictEqual((yield* pool.stats).waitCount, 1)
      }))

    it.effect("poolSize Infinity: a free list that never waits", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: Infinity, maxIdleConns: 8 })
        const held = yield* Effect.all(Array.from({ length: 100 }, () => pool.get))
        assert.strictEqual((yield* pool.stats).waitCount, 0)
        for (const conn of held) yield* pool.put(conn)
        assert.strictEqual(yield* pool.idleLen, 8)
        assert.strictEqual(yield* probe.closed, 92)
      }))

    it.effect("serves waiters in arrival order", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const order = yield* Ref.make<Array<string>>([])
        const first = yield* pool.get
        const waiters: Array<Fiber.Fiber<ConnPool.PooledConn<FakeConn>, ConnPool.PoolError>> = []
        for (const label of ["a", "b", "c"]) {
          waiters.push(yield* Effect.forkChild(Effect.tap(pool.get, () => Ref.update(order, (o) => [...o, label]))))
          yield* settle
        }
        let conn = first
        for (const waiter of waiters) {
          yield* pool.put(conn)
          conn = yield* Fiber.join(waiter)
        }
        assert.deepStrictEqual(yield* Ref.get(order), ["a", "b", "c"])
      }))

    it.effect("a freed turn goes back to the pool: the fiber that freed it may take it again before a woken waiter runs", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const held = yield* pool.get
        const waiter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* pool.put(held)
        // No convoy: the running fiber's next get takes the turn on the fast path.
        const again = yield* pool.get
        assert.strictEqual(again.conn, held.conn)
        yield* settle
        assert.isUndefined(waiter.pollUnsafe(), "the woken waiter lost the turn and waits on")
        assert.strictEqual((yield* pool.stats).waitCount, 0)
        yield* pool.put(again)
        const got = yield* Fiber.join(waiter)
        assert.strictEqual(got.conn, held.conn)
        yield* pool.put(got)
        yield* assertTurnsIntact(pool, 1)
      }))

    /** A fiber that borrows in a loop, holding each connection `hold`, and starts its next borrow at once. */
    const looper = (pool: ConnPool.ConnPool<FakeConn>, hold: Duration.Input, count: { n: number }) =>
      Effect.forever(ConnPool.use(pool, () => Effect.andThen(Effect.sleep(hold), Effect.sync(() => count.n++))), {
        disableYield: true
      })

    it.effect("starvationThreshold: a waiter at the head waits at most the threshold plus one hold while others barge", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, starvationThreshold: "15 millis" })
        const loops = { n: 0 }
        const loop = yield* Effect.forkChild(looper(pool, "10 millis", loops))
        yield* settle
        const waiter = yield* Effect.forkChild(Effect.andThen(pool.get, Clock.currentTimeMillis))
        yield* settle
        yield* TestClock.adjust("10 millis")
        assert.isUndefined(waiter.pollUnsafe(), "at 10 ms the looper barged: the waiter had waited under 15 ms")
        assert.strictEqual(loops.n, 1)
        yield* TestClock.adjust("10 millis")
        assert.strictEqual(yield* Fiber.join(waiter), 20, "at 20 ms it had waited past 15 ms: the turn was handed to it")
        assert.strictEqual(loops.n, 2)
        yield* Fiber.interrupt(loop)
      }))

    it.effect("starvationThreshold: by default a waiter that has waited 10 ms is handed the next freed turn", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const loop = yield* Effect.forkChild(looper(pool, "6 millis", { n: 0 }))
        yield* settle
        const waiter = yield* Effect.forkChild(Effect.andThen(pool.get, Clock.currentTimeMillis))
        yield* settle
        yield* TestClock.adjust("6 millis")
        assert.isUndefined(waiter.pollUnsafe(), "6 ms of waiting: the looper barges")
        yield* TestClock.adjust("6 millis")
        assert.strictEqual(yield* Fiber.join(waiter), 12)
        yield* Fiber.interrupt(loop)
      }))

    it.effect("starvationThreshold Infinity: a borrower looping without a pause starves a waiter until poolTimeout", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          poolSize: 1,
          poolTimeout: "1 second",
          starvationThreshold: Duration.infinity
        })
        const loop = yield* Effect.forkChild(looper(pool, "10 millis", { n: 0 }))
        yield* settle
        const waiter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(waiter)).reason._tag, "PoolTimeout")
        yield* Fiber.interrupt(loop)
      }))

    it.effect("under contention, a chain of hand-offs leaves the thread to other fibers now and then", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        // Strict hand-off (threshold 0), so every borrow waits and the chain never breaks.
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, starvationThreshold: 0 })
        const total = 20 * wakeupsPerTask
        let done = 0
        // Each borrower queues again as soon as it hands its turn on, so the
        // hand-offs form one chain that never runs out by itself.
        const borrower: Effect.Effect<void, ConnPool.PoolError> = Effect.suspend(() =>
          done >= total
            ? Effect.void
            : Effect.flatMap(ConnPool.use(pool, () => Effect.sync(() => done++)), () => borrower)
        )
        const held = yield* pool.get
        const borrowers = yield* Effect.forkChild(
          Effect.all(Array.from({ length: 8 }, () => borrower), { concurrency: 8 })
        )
        yield* settle
        const ticker = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 0; i < 3; i++) yield* Effect.yieldNow
          return done
        }))
        yield* pool.put(held)
        const doneWhenTicked = yield* Fiber.join(ticker)
        assert.isBelow(doneWhenTicked, total / 2, "the ticker ran while the chain went on")
        yield* Fiber.join(borrowers)
        assert.isAtLeast(done, total)
        assert.strictEqual((yield* pool.stats).waitCount, done, "every borrow waited: the chain held")
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("poolTimeout: a wait longer than poolTimeout fails with PoolTimeout, counted in timeouts", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, name: "cache:6379" })
        yield* pool.get
        const waiter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust(Duration.millis(3999))
        assert.isUndefined(waiter.pollUnsafe())
        yield* TestClock.adjust(Duration.millis(1))
        const error = yield* Fiber.join(waiter)
        assert.strictEqual(error.reason._tag, "PoolTimeout")
        assert.strictEqual(error.pool, "cache:6379")
        assert.isTrue(error.isRetryable)
        const stats = yield* pool.stats
        assert.strictEqual(stats.timeouts, 1)
        assert.strictEqual(stats.pendingRequests, 0)
      }))

    it.effect("poolTimeout: a custom timeout applies to each waiter from when it queued", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, poolTimeout: "1 second" })
        yield* pool.get
        const first = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("600 millis")
        const second = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("400 millis")
        assert.strictEqual((yield* Fiber.join(first)).reason._tag, "PoolTimeout")
        assert.isUndefined(second.pollUnsafe())
        yield* TestClock.adjust("600 millis")
        assert.strictEqual((yield* Fiber.join(second)).reason._tag, "PoolTimeout")
        assert.strictEqual((yield* pool.stats).timeouts, 2)
      }))

    it.effect("poolTimeout Infinity: a waiter waits as long as it takes", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, poolTimeout: Duration.infinity })
        const held = yield* pool.get
        const waiter = yield* Effect.forkChild(pool.get)
        yield* TestClock.adjust("1 day")
        assert.isUndefined(waiter.pollUnsafe())
        yield* pool.put(held)
        assert.strictEqual((yield* Fiber.join(waiter)).conn.id, held.conn.id)
      }))

    it.effect("poolTimeout 0: get fails at once when no turn is free", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, poolTimeout: 0 })
        yield* pool.get
        assert.strictEqual(yield* reasonOf(pool.get), "PoolTimeout")
        assert.strictEqual((yield* pool.stats).timeouts, 1)
      }))

    it.effect("a put frees exactly one turn, a second put of the same connection frees none", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2 })
        const conn = yield* pool.get
        yield* pool.put(conn)
        yield* pool.put(conn)
        yield* pool.remove(conn)
        yield* pool.closeConn(conn)
        yield* assertTurnsIntact(pool, 2)
      }))
  })

  describe("maxActiveConns", () => {
    it.effect("get waits, up to poolTimeout, once maxActiveConns connections are out", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 10, maxActiveConns: 2 })
        const held = [yield* pool.get, yield* pool.get]
        const waiter = yield* Effect.forkChild(pool.get)
        yield* settle
        assert.isUndefined(waiter.pollUnsafe())
        yield* pool.put(held[0]!)
        assert.strictEqual((yield* Fiber.join(waiter)).conn.id, held[0]!.conn.id)
        assert.strictEqual(yield* probe.opened, 2)
        const third = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual((yield* Fiber.join(third)).reason._tag, "PoolTimeout")
      }))

    it.effect("newConn fails with PoolExhausted at maxActiveConns, and so does a get that would dial past it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 4, maxActiveConns: 2 })
        const extra = [yield* pool.newConn, yield* pool.newConn]
        const error = yield* Effect.flip(pool.newConn)
        assert.strictEqual(error.reason._tag, "PoolExhausted")
        assert.isTrue(error.isRetryable)
        assert.strictEqual(yield* reasonOf(pool.get), "PoolExhausted")
        assert.strictEqual(yield* probe.opened, 2)
        for (const conn of extra) yield* pool.put(conn)
        yield* assertTurnsIntact(pool, 2)
      }))
  })
})
