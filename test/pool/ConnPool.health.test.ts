/** ConnPool's connection health: idle time and lifetime, the reaper, minIdleConns, and a wall clock that steps. */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Random, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as ConnPool from "../../src/pool/index.ts"
import type { FakeConn } from "./utils.ts"
import { oneHour, onClock, steppedClock } from "../yamux/steppedClock.ts"
import { assertTurnsIntact, makeProbe, settle } from "./utils.ts"

describe("ConnPool", () => {
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
})
