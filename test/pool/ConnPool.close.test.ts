/** ConnPool's close: waiters, dials, idle and borrowed connections, the grace period. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import { makeProbe, once, reasonOf, settle } from "./utils.ts"

describe("ConnPool", () => {
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
})
