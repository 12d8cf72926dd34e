/**
 * Interruption at every point where an acquisition can wait: each test
 * interrupts there and then checks that every turn is free exactly once
 * (`assertTurnsIntact`) and that no connection leaked.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
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

/**
 * Lease-bound handles under random interleavings: many fibers get, use, give
 * back (put, remove, closeConn) and misuse handles (stale ones already given
 * back, foreign ones from another pool), waiters time out and are
 * interrupted, the pool may close midway. Checked at every hand-out and at
 * the end: turns in use never exceed poolSize, a connection never has two
 * holders, a closed connection is never handed out, and once the pool is
 * closed every dialled connection is closed.
 */
describe("lease-bound handles (property)", () => {
  type How = "put" | "remove" | "closeConn"
  type Step =
    | { readonly op: "get"; readonly actor: number }
    | { readonly op: "use"; readonly hold: number }
    | { readonly op: "giveBack"; readonly actor: number; readonly how: How; readonly pick: number }
    | { readonly op: "stale"; readonly how: How; readonly pick: number }
    | { readonly op: "interrupt"; readonly pick: number }
    | { readonly op: "advance"; readonly millis: number }
    | { readonly op: "close" }

  const actors = 4
  const how = fc.constantFrom<How>("put", "remove", "closeConn")
  const step: fc.Arbitrary<Step> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant("get" as const), actor: fc.nat(actors - 1) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("use" as const), hold: fc.nat(3) }) },
    {
      weight: 4,
      arbitrary: fc.record({ op: fc.constant("giveBack" as const), actor: fc.nat(actors - 1), how, pick: fc.nat() })
    },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("stale" as const), how, pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("interrupt" as const), pick: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), millis: fc.integer({ min: 0, max: 1500 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: "close" as const }) }
  )
  const scenario = fc.record({
    poolSize: fc.integer({ min: 1, max: 3 }),
    dialMillis: fc.constantFrom(0, 50),
    yields: fc.array(fc.nat(6), { minLength: 1, maxLength: 8 }),
    steps: fc.array(step, { minLength: 10, maxLength: 60 })
  })

  const run = (s: typeof scenario extends fc.Arbitrary<infer T> ? T : never) =>
    Effect.gen(function*() {
      const probe = yield* makeProbe
      const pool = yield* ConnPool.make({ dial: probe.dial, poolSize: s.poolSize, poolTimeout: "1 second" })
      const other = yield* ConnPool.make({ dial: probe.dial, poolSize: 1 })
      const foreign = yield* other.get
      if (s.dialMillis > 0) yield* probe.delayBy(Duration.millis(s.dialMillis))
      const violations: Array<string> = []
      const holders = new Map<number, number>()
      let holding = 0
      let closed = false
      const hold = (id: number) =>
        Effect.sync(() => {
          if (!closed && probe.isClosed(id)) violations.push(`handed out closed connection ${id}`)
          if ((holders.get(id) ?? 0) > 0) violations.push(`connection ${id} has two holders`)
          holders.set(id, (holders.get(id) ?? 0) + 1)
          if (++holding > s.poolSize) violations.push(`${holding} turns in use, poolSize ${s.poolSize}`)
        })
      const unhold = (id: number) =>
        Effect.sync(() => {
          holders.set(id, (holders.get(id) ?? 1) - 1)
          holding--
        })
      const live: Array<Array<ConnPool.PooledConn<FakeConn>>> = Array.from({ length: actors }, () => [])
      const returned: Array<ConnPool.PooledConn<FakeConn>> = [foreign]
      const pending: Array<Fiber.Fiber<unknown, unknown>> = []
      const giveBack = (handle: ConnPool.PooledConn<FakeConn>, how: How) =>
        how === "put" ? pool.put(handle) : how === "remove" ? pool.remove(handle, "test") : pool.closeConn(handle)

      let i = 0
      for (const step of s.steps) {
        switch (step.op) {
          case "get": {
            const mine = live[step.actor]!
            const got = Effect.flatMap(pool.get, (h) => Effect.andThen(hold(h.conn.id), Effect.sync(() => mine.push(h))))
            pending.push(yield* Effect.forkChild(Effect.exit(got)))
            break
          }
          case "use": {
            const body = (conn: FakeConn) =>
              Effect.andThen(hold(conn.id), Effect.ensuring(Effect.sleep(Duration.millis(step.hold * 100)), unhold(conn.id)))
            pending.push(yield* Effect.forkChild(Effect.exit(ConnPool.use(pool, body))))
            break
          }
          case "giveBack": {
            const mine = live[step.actor]!
            if (mine.length === 0) break
            const [handle] = mine.splice(step.pick % mine.length, 1)
            yield* unhold(handle!.conn.id)
            returned.push(handle!)
            yield* giveBack(handle!, step.how)
            break
          }
          case "stale":
            yield* giveBack(returned[step.pick % returned.length]!, step.how)
            break
          case "interrupt": {
            const fiber = pending[step.pick % Math.max(pending.length, 1)]
            if (fiber !== undefined) yield* Fiber.interrupt(fiber)
            break
          }
          case "advance":
            yield* TestClock.adjust(Duration.millis(step.millis))
            break
          case "close":
            closed = true
            yield* pool.close
            break
        }
        const yields = s.yields[i++ % s.yields.length]!
        for (let y = 0; y < yields; y++) yield* Effect.yieldNow
      }

      // Let every hold end and every waiter settle, then give back what is still held.
      yield* TestClock.adjust("1 minute")
      for (const fiber of pending) yield* Fiber.await(fiber)
      for (const mine of live) {
        for (const handle of mine.splice(0)) {
          yield* unhold(handle.conn.id)
          yield* pool.put(handle)
        }
      }
      yield* settle
      assert.deepStrictEqual(violations, [])
      yield* probe.delayBy(undefined)
      if (!closed) yield* assertTurnsIntact(pool, s.poolSize)
      yield* pool.close
      yield* other.put(foreign)
      yield* other.close
      yield* settle
      assert.strictEqual(yield* probe.opened, yield* probe.closed, "every dialled connection is closed")
      assert.strictEqual((yield* pool.stats).pendingRequests, 0)
    }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))

  it("random interleavings with stale and foreign handles keep turns <= poolSize and one holder per connection", async () => {
    await fc.assert(
      fc.asyncProperty(scenario, (s) => Effect.runPromise(run(s))),
      { numRuns: 150, timeout: 5_000 }
    )
  }, 60_000)
})
