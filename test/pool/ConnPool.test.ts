import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Fiber, Random, Ref, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import { wakeupsPerTask } from "../../src/pool/Wakeups.ts"
import type { FakeConn } from "./utils.ts"
import { oneHour, onClock, steppedClock } from "../yamux/steppedClock.ts"
import { assertTurnsIntact, makeProbe, reasonOf, settle } from "./utils.ts"

const once = Schedule.recurs(0)

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

  describe("health", () => {
    it.effect("connMaxIdleTime: a connection idle that long is closed instead of handed out, and counted stale", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          connMaxIdleTime: "10 seconds",
          idleCheckFrequency: Duration.infinity
        })
        const first = yield* pool.get
        yield* pool.put(first)
        yield* TestClock.adjust("9999 millis")
        const again = yield* pool.get
        assert.strictEqual(again.conn.id, first.conn.id)
        yield* pool.put(again)
        yield* TestClock.adjust("10 seconds")
        const fresh = yield* pool.get
        assert.notStrictEqual(fresh.conn.id, first.conn.id)
        assert.strictEqual(yield* probe.closed, 1)
        const stats = yield* pool.stats
        assert.strictEqual(stats.staleConns, 1)
        assert.strictEqual(stats.totalConns, 1)
      }))

    it.effect("connMaxIdleTime: every stale idle connection is skipped, the healthy one after them is handed out", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          connMaxIdleTime: "10 seconds",
          idleCheckFrequency: Duration.infinity,
          poolFIFO: true
        })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        yield* TestClock.adjust("10 seconds")
        yield* pool.put(c)
        assert.strictEqual((yield* pool.get).conn.id, c.conn.id)
        assert.strictEqual(yield* probe.closed, 2)
        assert.strictEqual((yield* pool.stats).staleConns, 2)
      }))

    it.effect("connMaxLifetime: a connection that old is never handed out, and a put closes it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, connMaxLifetime: "1 minute" })
        const first = yield* pool.get
        yield* pool.put(first)
        yield* TestClock.adjust("59 seconds")
        const held = yield* pool.get
        assert.strictEqual(held.conn.id, first.conn.id)
        yield* TestClock.adjust("1 second")
        yield* pool.put(held)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 0)
        const second = yield* pool.get
        yield* pool.put(second)
        yield* TestClock.adjust("1 minute")
        assert.notStrictEqual((yield* pool.get).conn.id, second.conn.id)
        assert.strictEqual((yield* pool.stats).staleConns, 2)
      }))

    it.effect("connMaxLifetimeJitter: each lifetime is connMaxLifetime plus or minus a random share of the jitter", () =>
      Effect.gen(function*() {
        const run = (draw: number) =>
          Effect.gen(function*() {
            const probe = yield* makeProbe
            const pool = yield* ConnPool.make({
              dial: probe.dial,
              connMaxLifetime: "1 minute",
              connMaxLifetimeJitter: "10 seconds",
              idleCheckFrequency: Duration.infinity
            }).pipe(Effect.provideService(Random.Random, { nextIntUnsafe: () => 0, nextDoubleUnsafe: () => draw }))
            const conn = yield* pool.get
            yield* pool.put(conn)
            const lifetime = Effect.gen(function*() {
              for (let s = 1; s <= 80; s++) {
                yield* TestClock.adjust("1 second")
                if ((yield* pool.reapStaleConns) > 0) return s
              }
              return -1
            })
            return yield* lifetime
          }).pipe(Effect.scoped)
        assert.strictEqual(yield* run(0), 50)
        assert.strictEqual(yield* run(0.5), 60)
        assert.strictEqual(yield* run(0.95), 69)
      }))

    it.effect("closeSignal: a connection closed by its peer while idle is dropped at once and counted stale", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, closeSignal: probe.closeSignal })
        const conn = yield* pool.get
        yield* pool.put(conn)
        yield* settle
        yield* probe.kill(conn.conn)
        yield* settle
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).staleConns, 1)
        assert.notStrictEqual((yield* pool.get).conn.id, conn.conn.id)
      }))

    it.effect("closeSignal: a connection closed by its peer while in use is closed when it comes back", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, closeSignal: probe.closeSignal, poolSize: 1 })
        const conn = yield* pool.get
        yield* settle
        yield* probe.kill(conn.conn)
        yield* settle
        assert.strictEqual(yield* pool.len, 1)
        assert.strictEqual(yield* probe.closed, 0)
        yield* pool.put(conn)
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).staleConns, 1)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("closeSignal: the watcher stops when the pool closes the connection", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, closeSignal: probe.closeSignal })
        const conn = yield* pool.get
        yield* settle
        yield* pool.remove(conn)
        yield* probe.kill(conn.conn)
        yield* settle
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).staleConns, 0)
      }))
  })

  describe("reaper", () => {
    it.effect("idleCheckFrequency: the reaper closes stale idle connections every period", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, connMaxIdleTime: "30 seconds" })
        const [a, b] = [yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* TestClock.adjust("40 seconds")
        yield* pool.put(b)
        yield* TestClock.adjust("19 seconds")
        assert.strictEqual(yield* pool.idleLen, 2)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* probe.closed, 1)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* pool.idleLen, 0)
        assert.strictEqual((yield* pool.stats).staleConns, 2)
      }))

    it.effect("idleCheckFrequency: a custom period", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          connMaxIdleTime: "1 second",
          idleCheckFrequency: "5 seconds"
        })
        yield* pool.put(yield* pool.get)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(yield* pool.idleLen, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* pool.idleLen, 0)
      }))

    it.effect("reapStaleConns closes the stale idle connections now and returns how many", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          connMaxIdleTime: "10 seconds",
          idleCheckFrequency: Duration.infinity
        })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        yield* pool.put(a)
        yield* pool.put(b)
        yield* TestClock.adjust("10 seconds")
        yield* pool.put(c)
        assert.strictEqual(yield* pool.reapStaleConns, 2)
        assert.strictEqual(yield* pool.reapStaleConns, 0)
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* probe.closed, 2)
      }))
  })

  describe("dialling", () => {
    it.effect("dialTimeout: each attempt gets dialTimeout; a dial that never opens fails with DialTimeout", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          dialTimeout: "5 seconds",
          dialRetry: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 2 }))
        })
        yield* probe.delayBy("1 hour")
        const getter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("5 seconds")
        assert.strictEqual(yield* probe.attempts, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 2)
        yield* TestClock.adjust("10999 millis")
        assert.isUndefined(getter.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = yield* Fiber.join(getter)
        assert.strictEqual(error.reason._tag, "DialTimeout")
        assert.strictEqual(yield* probe.attempts, 3)
        assert.strictEqual(yield* probe.opened, 0)
        assert.strictEqual(yield* pool.len, 0)
        yield* probe.delayBy(undefined)
        yield* assertTurnsIntact(pool, 10)
      }))

    it.effect("dialRetry default: a failing dial is attempted 5 times, 100 ms apart, then fails with DialFailed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* probe.failWith("ECONNREFUSED")
        const getter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        assert.strictEqual(yield* probe.attempts, 1)
        yield* TestClock.adjust("399 millis")
        assert.strictEqual(yield* probe.attempts, 4)
        assert.isUndefined(getter.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = yield* Fiber.join(getter)
        assert.strictEqual(yield* probe.attempts, 5)
        assert.strictEqual(error.reason._tag, "DialFailed")
        assert.strictEqual(error.reason._tag === "DialFailed" && error.reason.cause, "ECONNREFUSED")
        assert.include(error.message, "ECONNREFUSED")
      }))

    it.effect("dialRetry: a dial that succeeds on a retry hands out that connection", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* probe.failWith("ECONNREFUSED")
        const getter = yield* Effect.forkChild(pool.get)
        yield* TestClock.adjust("150 millis")
        yield* probe.failWith(undefined)
        yield* TestClock.adjust("50 millis")
        const conn = yield* Fiber.join(getter)
        assert.strictEqual(conn.conn.id, 1)
        assert.strictEqual(yield* probe.attempts, 3)
      }))

    it.effect("a dial whose caller gave up is kept idle for the next get instead of closed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2 })
        yield* probe.delayBy("1 second")
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        assert.strictEqual(yield* pool.len, 0, "nothing open yet")
        yield* TestClock.adjust("1 second")
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 1)
        assert.strictEqual(yield* probe.closed, 0)
        const conn = yield* pool.get
        assert.strictEqual(conn.conn.id, 1)
        assert.strictEqual((yield* pool.stats).hits, 1)
        assert.strictEqual(yield* probe.attempts, 1)
        yield* pool.put(conn)
        yield* probe.delayBy(undefined)
        yield* assertTurnsIntact(pool, 2)
      }))

    it.effect("a dial attempt that timed out is closed if it opens later", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          dialTimeout: "1 second",
          dialRetry: Schedule.spaced("10 millis")
        })
        yield* probe.delayBy("1500 millis")
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* probe.delayBy(undefined)
        yield* TestClock.adjust("1010 millis")
        const conn = yield* Fiber.join(getter)
        assert.strictEqual(yield* probe.attempts, 2)
        assert.strictEqual(conn.conn.id, 1, "the retry opened first")
        yield* TestClock.adjust("500 millis")
        yield* settle
        assert.strictEqual(yield* probe.opened, 2)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 1)
        yield* pool.put(conn)
        yield* assertTurnsIntact(pool, 10)
      }))

    it.effect("a dial whose caller gave up is closed when the pool has no room for it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        yield* probe.delayBy("1 second")
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        yield* probe.delayBy(undefined)
        const conn = yield* pool.get
        yield* TestClock.adjust("1 second")
        yield* settle
        assert.strictEqual(yield* probe.opened, 2)
        assert.strictEqual(yield* probe.closed, 1, "one turn, its connection in use: no room")
        assert.strictEqual(yield* pool.len, 1)
        yield* pool.put(conn)
        yield* assertTurnsIntact(pool, 1)
      }))

    it.effect("a dial whose caller gave up is closed when the pool closed meanwhile", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* probe.delayBy("1 second")
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        yield* pool.close
        yield* TestClock.adjust("1 second")
        yield* settle
        assert.strictEqual(yield* probe.opened, 1)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 0)
      }))

    it.effect("a dial whose caller gave up is still interrupted at dialTimeout", () =>
      Effect.gen(function*() {
        let opened = 0
        const dial = Effect.andThen(Effect.sleep("1 hour"), Effect.sync(() => ({ id: ++opened })))
        const pool = yield* ConnPool.make({ dial, dialTimeout: "1 second" })
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        yield* TestClock.adjust("1 hour")
        yield* settle
        assert.strictEqual(opened, 0)
        assert.strictEqual(yield* pool.len, 0)
      }))

    it.effect("a dial whose caller gave up and that cannot be interrupted is closed if it opens past dialTimeout", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, dialTimeout: "1 second" })
        yield* probe.delayBy("1 hour")
        const getter = yield* Effect.forkChild(pool.get)
        yield* settle
        yield* Fiber.interrupt(getter)
        assert.strictEqual((yield* pool.stats).abandonedDials, 1)
        // The probe's dial sleeps inside an uninterruptible acquire, so it
        // only notices the timeout when it opens: then it closes, not pools.
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* pool.stats).abandonedDials, 1, "interrupted at dialTimeout, but its acquire ignores that")
        yield* TestClock.adjust("1 hour")
        yield* settle
        assert.strictEqual(yield* probe.opened, 1)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* pool.len, 0)
        assert.strictEqual((yield* pool.stats).abandonedDials, 0)
      }))

    it.effect("an interruptible dial that times out is interrupted for real: its connect ends at the timeout", () =>
      Effect.gen(function*() {
        let connects = 0
        let cancelled = 0
        const connect = Effect.onInterrupt(
          Effect.andThen(Effect.sync(() => connects++), Effect.never),
          () => Effect.sync(() => cancelled++)
        )
        const dial = Effect.acquireRelease(connect, () => Effect.void, { interruptible: true })
        const pool = yield* ConnPool.make({ dial, dialTimeout: "1 second", dialRetry: Schedule.recurs(1) })
        const getter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(cancelled, 1, "the first attempt's connect was cancelled at its timeout")
        assert.strictEqual((yield* pool.stats).abandonedDials, 0, "and nothing of it lingers")
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(getter)).reason._tag, "DialTimeout")
        assert.deepStrictEqual([connects, cancelled], [2, 2])
        assert.strictEqual((yield* pool.stats).abandonedDials, 0)
      }))

    it.effect("the pool closing interrupts dials in progress; their callers fail with PoolClosed at once", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, dialTimeout: "1 hour" })
        yield* probe.delayBy("10 minutes")
        const getters = yield* Effect.forkChild(Effect.all([Effect.flip(pool.get), Effect.flip(pool.newConn)], {
          concurrency: 2
        }))
        yield* settle
        assert.strictEqual(yield* probe.attempts, 2)
        yield* pool.close
        // No time passes: the callers do not wait for the dials, whose acquire ignores interruption.
        const errors = yield* Fiber.join(getters)
        assert.deepStrictEqual(errors.map((e) => e.reason._tag), ["PoolClosed", "PoolClosed"])
        assert.strictEqual((yield* pool.stats).abandonedDials, 2)
        yield* TestClock.adjust("10 minutes")
        yield* settle
        assert.strictEqual(yield* probe.opened, 2)
        assert.strictEqual(yield* probe.closed, 2, "what the dials opened after the close was closed")
        assert.strictEqual((yield* pool.stats).abandonedDials, 0)
        assert.strictEqual(yield* probe.attempts, 2, "no retry after the close")
      }))

    it.effect("maxConcurrentDials: dials beyond it wait for a slot", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, maxConcurrentDials: 1 })
        yield* probe.delayBy("1 second")
        const getters = yield* Effect.forkChild(Effect.all([pool.get, pool.get, pool.get], { concurrency: 3 }))
        yield* settle
        assert.strictEqual(yield* probe.attempts, 1)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 2)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 3)
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(getters)).length, 3)
        assert.strictEqual(yield* probe.opened, 3)
      }))

    it.effect("maxConcurrentDials: defaults to poolSize, so poolSize dials run at once", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 4 })
        yield* probe.delayBy("1 second")
        yield* Effect.forkChild(Effect.all([pool.get, pool.get, pool.get, pool.get], { concurrency: 4 }))
        yield* settle
        assert.strictEqual(yield* probe.attempts, 4)
      }))
  })

  describe("minIdleConns", () => {
    it.effect("keeps minIdleConns idle connections open in the background", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, minIdleConns: 3 })
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 3)
        const conn = yield* pool.get
        assert.strictEqual((yield* pool.stats).hits, 1)
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 3)
        assert.strictEqual(yield* pool.len, 4)
        yield* pool.remove(conn)
        yield* settle
        assert.strictEqual(yield* pool.len, 3)
      }))

    it.effect("never opens more than poolSize connections in all", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, minIdleConns: 5, poolSize: 3 })
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 3)
        const held = [yield* pool.get, yield* pool.get]
        yield* settle
        assert.strictEqual(yield* pool.len, 3)
        assert.strictEqual(yield* probe.opened, 3)
        for (const conn of held) yield* pool.put(conn)
        yield* assertTurnsIntact(pool, 3)
      }))

    it.effect("replaces idle connections the reaper closed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, minIdleConns: 2, connMaxIdleTime: "30 seconds" })
        yield* settle
        yield* TestClock.adjust("1 minute")
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 2)
        assert.strictEqual(yield* probe.opened, 4)
        assert.strictEqual(yield* probe.closed, 2)
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

  describe("breaker", () => {
    it.effect("after poolSize dials fail in a row, get fails at once with the last dial error and does not dial", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 3, dialRetry: once, name: "db:5432" })
        yield* probe.failWith("ECONNREFUSED")
        for (let i = 0; i < 3; i++) assert.strictEqual(yield* reasonOf(pool.get), "DialFailed")
        yield* settle
        const attempts = yield* probe.attempts
        assert.strictEqual(attempts, 4, "three gets and the probe's first dial")
        const error = yield* Effect.flip(pool.get)
        assert.strictEqual(error.reason._tag, "BreakerOpen")
        assert.isTrue(error.reason._tag === "BreakerOpen" && error.reason.lastError._tag === "DialFailed")
        assert.include(error.message, "ECONNREFUSED")
        assert.strictEqual(error.pool, "db:5432")
        assert.strictEqual(yield* probe.attempts, attempts)
        assert.strictEqual((yield* pool.stats).pendingRequests, 0)
      }))

    it.effect("one probe redials every second and closes the breaker when a dial succeeds", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, dialRetry: once })
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.get)
        yield* Effect.flip(pool.get)
        yield* settle
        assert.strictEqual(yield* probe.attempts, 3)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 4)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 5)
        assert.strictEqual(yield* reasonOf(pool.get), "BreakerOpen")
        yield* probe.failWith(undefined)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 6)
        assert.strictEqual(yield* probe.opened, 1)
        assert.strictEqual(yield* probe.closed, 1, "the probe's connection is closed")
        const conn = yield* pool.get
        assert.strictEqual(conn.conn.id, 2)
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* probe.attempts, 7, "the probe stopped")
      }))

    it.effect("idle connections are still handed out while the breaker is open", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, dialRetry: once })
        yield* pool.put(yield* pool.get)
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.newConn)
        yield* Effect.flip(pool.newConn)
        assert.strictEqual(yield* reasonOf(pool.newConn), "BreakerOpen")
        const conn = yield* pool.get
        assert.strictEqual(conn.conn.id, 1)
      }))

    it.effect("a successful dial resets the count: only consecutive failures open it", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, dialRetry: once })
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.newConn)
        yield* probe.failWith(undefined)
        yield* pool.newConn
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.newConn)
        assert.strictEqual(yield* reasonOf(pool.newConn), "DialFailed")
        assert.strictEqual(yield* reasonOf(pool.newConn), "BreakerOpen")
      }))

    it.effect("breakerThreshold and breakerProbe set the count and the probe's schedule", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          dialRetry: once,
          breakerThreshold: 1,
          breakerProbe: Schedule.spaced("5 seconds")
        })
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.get)
        assert.strictEqual(yield* reasonOf(pool.get), "BreakerOpen")
        yield* settle
        assert.strictEqual(yield* probe.attempts, 2)
        yield* TestClock.adjust("4 seconds")
        assert.strictEqual(yield* probe.attempts, 2)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* probe.attempts, 3)
      }))

    it.effect("the breaker closes when the probe's schedule ends", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          dialRetry: once,
          breakerThreshold: 1,
          breakerProbe: Schedule.spaced("1 second").pipe(Schedule.upTo({ times: 1 }))
        })
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.get)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* reasonOf(pool.get), "DialFailed")
      }))
  })

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

  describe("close", () => {
    it.effect("get after close fails with PoolClosed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* pool.close
        const error = yield* Effect.flip(pool.get)
        assert.strictEqual(error.reason._tag, "PoolClosed")
        assert.isFalse(error.isRetryable)
        assert.strictEqual(yield* reasonOf(pool.newConn), "PoolClosed")
        assert.strictEqual(yield* reasonOf(ConnPool.use(pool, () => Effect.void)), "PoolClosed")
      }))

    it.effect("closes every connection, borrowed ones included, as go-redis does; later put and remove do nothing", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        const [a, b, c] = [yield* pool.get, yield* pool.get, yield* pool.get]
        const extra = yield* pool.newConn
        yield* pool.put(a)
        yield* pool.close
        assert.strictEqual(yield* probe.closed, 4, "the idle one, the two borrowed and the newConn one")
        assert.isTrue(probe.isClosed(b.conn.id) && probe.isClosed(c.conn.id) && probe.isClosed(extra.conn.id))
        assert.strictEqual(yield* pool.len, 0)
        yield* pool.put(b)
        yield* pool.remove(c)
        yield* pool.closeConn(extra)
        const stats = yield* pool.stats
        assert.strictEqual(stats.closes.close, 4)
        assert.strictEqual(stats.staleHandles, 0, "a give-back after close is a no-op, not a misuse")
        yield* pool.close
      }))

    it.effect("a use running when the pool closes sees its connection closed under it, and gives nothing back twice", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        const user = yield* Effect.forkChild(ConnPool.use(pool, (conn) =>
          Effect.andThen(Effect.sleep("1 second"), Effect.sync(() => probe.isClosed(conn.id)))))
        yield* settle
        yield* pool.close
        assert.strictEqual(yield* probe.closed, 1)
        yield* TestClock.adjust("1 second")
        assert.isTrue(yield* Fiber.join(user), "closed while it was borrowed")
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).closes.close, 1)
      }))

    it.effect("closeGracePeriod: borrowed connections may come back until it ends, then they are closed under their borrowers", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 2, closeGracePeriod: "5 seconds" })
        const [a, b] = [yield* pool.get, yield* pool.get]
        const waiter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        const closing = yield* Effect.forkChild(pool.close)
        yield* settle
        assert.strictEqual((yield* Fiber.join(waiter)).reason._tag, "PoolClosed", "waiters fail at once")
        assert.strictEqual(yield* reasonOf(pool.get), "PoolClosed", "so does a new get")
        assert.strictEqual(yield* probe.closed, 0, "borrowed connections are left to their borrowers for now")
        yield* TestClock.adjust("2 seconds")
        yield* pool.put(a)
        assert.isTrue(probe.isClosed(a.conn.id), "one that comes back is closed, not pooled")
        assert.isUndefined(closing.pollUnsafe())
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(closing)
        assert.isTrue(probe.isClosed(b.conn.id), "at 5 s the one still out is closed under its borrower")
        assert.strictEqual(yield* pool.len, 0)
        yield* pool.put(b)
        assert.strictEqual((yield* pool.stats).closes.close, 2)
      }))

    it.effect("closeGracePeriod: close returns as soon as the last borrowed connection is back", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, closeGracePeriod: "1 minute" })
        const a = yield* pool.get
        const closing = yield* Effect.forkChild(pool.close)
        yield* TestClock.adjust("1 second")
        assert.isUndefined(closing.pollUnsafe())
        yield* pool.remove(a)
        yield* settle
        assert.isDefined(closing.pollUnsafe(), "done at 1 s, not at 1 minute")
        assert.strictEqual(yield* probe.closed, 1)
      }))

    it.effect("returns once every connection's scope has closed; a second close waits for the first", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* pool.get
        yield* probe.closeDelayBy("1 second")
        const first = yield* Effect.forkChild(pool.close)
        yield* settle
        const second = yield* Effect.forkChild(pool.close)
        yield* settle
        assert.isUndefined(first.pollUnsafe())
        assert.isUndefined(second.pollUnsafe(), "the second close waits too")
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(first)
        yield* Fiber.join(second)
        assert.strictEqual(yield* probe.closed, 1)
      }))

    it.effect("fails queued waiters with PoolClosed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
        yield* pool.get
        const waiter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        yield* pool.close
        assert.strictEqual((yield* Fiber.join(waiter)).reason._tag, "PoolClosed")
        assert.strictEqual((yield* pool.stats).pendingRequests, 0)
      }))

    it.effect("closes a connection whose dial finishes after the pool closed", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const pool = yield* ConnPool.make({ dial: probe.dial })
        yield* probe.delayBy("1 second")
        const getter = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        yield* pool.close
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* Fiber.join(getter)).reason._tag, "PoolClosed")
        assert.strictEqual(yield* probe.opened, 1)
        assert.strictEqual(yield* probe.closed, 1)
      }))

    it.effect("closing the pool's scope closes the pool and leaves no background fiber running", () =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const scope = yield* Scope.make()
        const pool = yield* ConnPool.make({
          dial: probe.dial,
          poolSize: 2,
          minIdleConns: 1,
          dialRetry: once,
          closeSignal: probe.closeSignal,
          connMaxIdleTime: "1 second"
        }).pipe(Scope.provide(scope))
        yield* settle
        assert.strictEqual(yield* pool.idleLen, 1)
        yield* probe.failWith("ECONNREFUSED")
        yield* Effect.flip(pool.newConn)
        yield* Effect.flip(pool.newConn)
        yield* settle
        const attempts = yield* probe.attempts
        yield* Scope.close(scope, Exit.void)
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual(yield* reasonOf(pool.get), "PoolClosed")
        yield* probe.failWith(undefined)
        yield* TestClock.adjust("1 hour")
        assert.strictEqual(yield* probe.attempts, attempts, "no probe, warm-up or reaper dials after close")
        assert.strictEqual(yield* probe.opened, yield* probe.closed)
      }))
  })

  describe("a wall clock that steps", () => {
    /** A pool on a wall clock that `step` moves, as NTP or a VM resume would. */
    const steppingPool = (options: Omit<ConnPool.Options<FakeConn, string, Scope.Scope>, "dial">) =>
      Effect.gen(function*() {
        const probe = yield* makeProbe
        const stepped = yield* steppedClock
        const pool = yield* ConnPool.make({ dial: probe.dial, ...options }).pipe(onClock(stepped))
        return { probe, pool, step: stepped.step }
      })

    it.effect("stepping back an hour does not delay poolTimeout, nor stepping forward bring it early", () =>
      Effect.gen(function*() {
        const { pool, step } = yield* steppingPool({ poolSize: 1, poolTimeout: "2 seconds" })
        yield* pool.get
        const back = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        step(-oneHour)
        yield* TestClock.adjust("1999 millis")
        assert.isUndefined(back.pollUnsafe(), "not before its 2 s")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* Fiber.join(back)).reason._tag, "PoolTimeout")
        const forward = yield* Effect.forkChild(Effect.flip(pool.get))
        yield* settle
        step(2 * oneHour)
        yield* TestClock.adjust("1999 millis")
        assert.isUndefined(forward.pollUnsafe(), "not before its 2 s")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* Fiber.join(forward)).reason._tag, "PoolTimeout")
        assert.strictEqual((yield* pool.stats).timeouts, 2)
      }))

    it.effect("stepping does not age idle connections: connMaxIdleTime and the reaper count real time", () =>
      Effect.gen(function*() {
        const { pool, probe, step } = yield* steppingPool({ connMaxIdleTime: "1 minute", idleCheckFrequency: "1 minute" })
        yield* pool.put(yield* pool.get)
        step(oneHour)
        yield* TestClock.adjust("30 seconds")
        assert.strictEqual(yield* pool.reapStaleConns, 0, "30 s idle is not stale, whatever the wall clock says")
        const again = yield* pool.get
        assert.strictEqual(again.conn.id, 1)
        yield* pool.put(again)
        step(-2 * oneHour)
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual(yield* pool.idleLen, 1, "the reaper at 1 min saw 59 s of idle time")
        yield* TestClock.adjust("1 second")
        assert.strictEqual(yield* pool.idleLen, 1)
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(yield* pool.idleLen, 0, "the reaper at 2 min saw 61 s of idle time")
        assert.strictEqual(yield* probe.closed, 1)
        assert.strictEqual((yield* pool.stats).staleConns, 1)
      }))

    it.effect("stepping does not shorten or stretch connMaxLifetime", () =>
      Effect.gen(function*() {
        const { pool, step } = yield* steppingPool({ connMaxLifetime: "10 minutes", idleCheckFrequency: Duration.infinity })
        yield* pool.put(yield* pool.get)
        step(oneHour)
        const young = yield* pool.get
        assert.strictEqual(young.conn.id, 1, "an hour on the wall clock is not an hour of life")
        yield* pool.put(young)
        step(-2 * oneHour)
        yield* TestClock.adjust("10 minutes")
        const old = yield* pool.get
        assert.strictEqual(old.conn.id, 2, "ten minutes of life are ten minutes, the wall clock stepped back or not")
      }))

    it.effect("stepping back does not shrink the measured wait, and handles report wall-clock times", () =>
      Effect.gen(function*() {
        const { pool, step } = yield* steppingPool({ poolSize: 1 })
        const held = yield* pool.get
        const waiter = yield* Effect.forkChild(pool.get)
        yield* settle
        step(-oneHour)
        yield* TestClock.adjust("1 second")
        yield* pool.put(held)
        const got = yield* Fiber.join(waiter)
        assert.strictEqual(Duration.toMillis((yield* pool.stats).waitDuration), 1000)
        assert.strictEqual(got.createdAt, -oneHour, "dialled 1 s ago on a wall clock now at -1 h + 1 s")
        assert.strictEqual(got.usedAt, 1000 - oneHour)
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
