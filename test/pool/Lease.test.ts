/**
 * Interruption at every point where an acquisition can wait: each test
 * interrupts there and then checks that every turn is free exactly once
 * (`assertTurnsIntact`) and that no connection leaked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import type { FakeConn } from "./utils.ts"
import { assertTurnsIntact, makeProbe, settle } from "./utils.ts"

describe("Lease", () => {
  it.effect("interrupted while queued for a turn, it leaves the queue and takes nothing", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      const held = yield* pool.get
      const waiter = yield* Effect.forkChild(pool.get)
      yield* settle
      assert.strictEqual((yield* pool.stats).pendingRequests, 1)
      yield* Fiber.interrupt(waiter)
      assert.strictEqual((yield* pool.stats).pendingRequests, 0)
      yield* pool.put(held)
      yield* assertTurnsIntact(pool, 1)
      assert.strictEqual(yield* pool.idleLen, 1)
    }))

  it.effect("interrupted after a turn was handed to it but before it ran, it passes the turn on", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      const held = yield* pool.get
      const first = yield* Effect.forkChild(pool.get)
      yield* settle
      const second = yield* Effect.forkChild(pool.get)
      yield* settle
      yield* pool.put(held)
      assert.isUndefined(first.pollUnsafe(), "handed the turn, not resumed yet")
      yield* Fiber.interrupt(first)
      const got = yield* Fiber.join(second)
      assert.strictEqual(got.conn.id, held.conn.id)
      yield* pool.put(got)
      yield* assertTurnsIntact(pool, 1)
      assert.strictEqual(yield* probe.opened, 1)
    }))

  it.effect("interrupted in the middle of the queue, the others keep their order", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      let conn = yield* pool.get
      const fibers: Array<Fiber.Fiber<ConnPool.PooledConn<FakeConn>, ConnPool.PoolError>> = []
      for (let i = 0; i < 4; i++) {
        fibers.push(yield* Effect.forkChild(pool.get))
        yield* settle
      }
      yield* Fiber.interrupt(fibers[1]!)
      yield* Fiber.interrupt(fibers[2]!)
      yield* pool.put(conn)
      conn = yield* Fiber.join(fibers[0]!)
      assert.isUndefined(fibers[3]!.pollUnsafe())
      yield* pool.put(conn)
      conn = yield* Fiber.join(fibers[3]!)
      yield* pool.put(conn)
      yield* assertTurnsIntact(pool, 1)
    }))

  it.effect("a waiter timing out while another is interrupted: both leave, nothing is freed twice", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, poolTimeout: "1 second" })
      const held = yield* pool.get
      const timedOut = yield* Effect.forkChild(Effect.flip(pool.get))
      const interrupted = yield* Effect.forkChild(pool.get)
      yield* settle
      yield* Fiber.interrupt(interrupted)
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(timedOut)).reason._tag, "PoolTimeout")
      yield* pool.put(held)
      yield* assertTurnsIntact(pool, 1)
      assert.strictEqual((yield* pool.stats).timeouts, 1)
    }))

  it.effect("the pool closing while a waiter holds a turn it has not used yet fails it and frees the turn", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      const held = yield* pool.get
      const waiter = yield* Effect.forkChild(Effect.flip(pool.get))
      yield* settle
      yield* pool.put(held)
      yield* pool.close
      assert.strictEqual((yield* Fiber.join(waiter)).reason._tag, "PoolClosed")
      assert.strictEqual(yield* probe.closed, 1)
      assert.strictEqual((yield* pool.stats).pendingRequests, 0)
    }))

  it.effect("interrupted while waiting for a dial slot, it frees its turn and the slot queue", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 3, maxConcurrentDials: 1 })
      yield* probe.delayBy("1 second")
      const dialling = yield* Effect.forkChild(pool.get)
      const queued = yield* Effect.forkChild(pool.get)
      yield* settle
      assert.strictEqual(yield* probe.attempts, 1)
      yield* Fiber.interrupt(queued)
      yield* TestClock.adjust("1 second")
      const conn = yield* Fiber.join(dialling)
      assert.strictEqual(yield* probe.attempts, 1)
      yield* pool.put(conn)
      yield* probe.delayBy(undefined)
      yield* assertTurnsIntact(pool, 3)
    }))

  it.effect("interrupted while its dial runs, it frees turn and slot at once; the late connection is closed", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, maxConcurrentDials: 1 })
      yield* probe.delayBy("10 seconds")
      const getter = yield* Effect.forkChild(pool.get)
      yield* settle
      yield* Fiber.interrupt(getter)
      yield* probe.delayBy(undefined)
      yield* assertTurnsIntact(pool, 1)
      assert.strictEqual(yield* pool.len, 1, "the next get dialled: the dial slot was free")
      // The interrupted dial was inside acquireRelease's uninterruptible acquire.
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.strictEqual(yield* probe.opened, 2)
      assert.strictEqual(yield* probe.closed, 1)
      assert.strictEqual(yield* pool.len, 1)
    }))

  it.effect("interrupted between dial retries, it stops dialling and frees its turn", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1, dialRetry: Schedule.spaced("1 second") })
      yield* probe.failWith("ECONNREFUSED")
      const getter = yield* Effect.forkChild(pool.get)
      yield* TestClock.adjust("1500 millis")
      assert.strictEqual(yield* probe.attempts, 2)
      yield* Fiber.interrupt(getter)
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(yield* probe.attempts, 2)
      yield* probe.failWith(undefined)
      yield* assertTurnsIntact(pool, 1)
    }))

  it.effect("interrupted while it closes stale connections, the closes finish and its turn is freed", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({
        dial: probe.dial,
        poolSize: 1,
        connMaxIdleTime: "10 seconds",
        idleCheckFrequency: Duration.infinity
      })
      yield* pool.put(yield* pool.get)
      yield* TestClock.adjust("10 seconds")
      yield* probe.closeDelayBy("1 second")
      const getter = yield* Effect.forkChild(pool.get)
      yield* settle
      const interrupt = yield* Effect.forkChild(Fiber.interrupt(getter))
      yield* settle
      assert.strictEqual(yield* probe.closed, 0, "the close is still running")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(interrupt)
      assert.strictEqual(yield* probe.closed, 1)
      yield* probe.closeDelayBy(undefined)
      yield* assertTurnsIntact(pool, 1)
    }))

  it.effect("newConn interrupted while dialling leaves nothing open", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      yield* probe.delayBy("1 second")
      const fiber = yield* Effect.forkChild(pool.newConn)
      yield* settle
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(yield* pool.len, 0)
      assert.strictEqual(yield* probe.opened, yield* probe.closed)
    }))

  it.effect("use interrupted while queued removes no connection", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      const held = yield* pool.get
      const user = yield* Effect.forkChild(ConnPool.use(pool, () => Effect.void))
      yield* settle
      yield* Fiber.interrupt(user)
      yield* pool.put(held)
      assert.strictEqual(yield* probe.closed, 0)
      yield* assertTurnsIntact(pool, 1)
    }))

  it.effect("many users interrupted, timed out and failing at random points leave every turn free once", () =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({
        dial: probe.dial,
        poolSize: 4,
        poolTimeout: "3 seconds",
        maxConcurrentDials: 2,
        connMaxIdleTime: "5 seconds",
        idleCheckFrequency: "2 seconds",
        minIdleConns: 1
      })
      yield* probe.delayBy("100 millis")
      // A fixed linear congruential sequence: the same interleaving every run.
      let seed = 42
      const next = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2147483648
        return seed % n
      }
      const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
      for (let round = 0; round < 40; round++) {
        for (let i = 0; i < 6; i++) {
          const work = next(6)
          const body = (_: FakeConn) =>
            work === 0 ? Effect.fail("bad reply") : Effect.sleep(Duration.millis(200 * (1 + next(10))))
          fibers.push(yield* Effect.forkChild(Effect.exit(ConnPool.use(pool, body))))
        }
        yield* TestClock.adjust(Duration.millis(50 * (1 + next(8))))
        for (let i = 0; i < 3; i++) {
          const victim = fibers[next(fibers.length)]!
          if (victim.pollUnsafe() === undefined) yield* Fiber.interrupt(victim)
        }
        if (round % 10 === 5) {
          const getAndPut = Effect.flatMap(pool.get, (conn) => Effect.andThen(Effect.sleep("300 millis"), pool.put(conn)))
          fibers.push(yield* Effect.forkChild(Effect.exit(getAndPut)))
        }
      }
      yield* TestClock.adjust("1 minute")
      for (const fiber of fibers) yield* Fiber.await(fiber)
      yield* settle
      const stats = yield* pool.stats
      assert.strictEqual(stats.pendingRequests, 0)
      assert.isAbove(stats.timeouts + stats.hits, 0)
      assert.strictEqual(yield* probe.opened, (yield* probe.closed) + (yield* pool.len))
      yield* probe.delayBy(undefined)
      yield* assertTurnsIntact(pool, 4)
    }))
})
