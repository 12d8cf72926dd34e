/** ConnPool's dials (timeouts, retries, concurrency, orphans) and the dial-error breaker. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import { assertTurnsIntact, makeProbe, once, reasonOf, settle } from "./utils.ts"

describe("ConnPool", () => {
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
})
