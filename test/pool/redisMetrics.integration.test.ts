/**
 * ConnPool's metrics after real traffic to a real redis-server on loopback:
 * the `db.client.connection.*` series OpenTelemetry names, with the pool's
 * name, and the counts they must read after a known sequence of commands.
 *
 * Real time, real process, a few hundred milliseconds. Without redis-server the suite is
 * skipped with one line saying so (test/requirements.ts); with `CI` set it fails instead.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric } from "effect"
import * as Redis from "../../examples/redis/RedisConn.ts"
import * as RedisServer from "../../examples/redis/server.ts"
import * as ConnPool from "../../src/pool/index.ts"
import { count, freshRegistry, series } from "../observability/helpers.ts"
import { redisServer, runs } from "../requirements.ts"

describe.runIf(runs(import.meta.url, redisServer))("ConnPool metrics with redis-server", () => {
  it.live("after real commands: connections by state, hits and misses, waits, uses and creations in seconds", () =>
    freshRegistry(Effect.gen(function*() {
      const port = yield* RedisServer.freePort
      const server = yield* RedisServer.start(port)
      yield* Effect.addFinalizer(() => RedisServer.kill(server))
      const name = `127.0.0.1:${port}`
      const pool = yield* ConnPool.make({
        name,
        dial: Redis.dial({ host: "127.0.0.1", port }),
        closeSignal: (conn) => conn.closed,
        poolSize: 2,
        maxIdleConns: 2
      })
      const attributes = { "db.client.connection.pool.name": name }
      const seconds = { ...attributes, unit: "s" }
      const ping = ConnPool.use(pool, (conn) => conn.command("PING"))

      // Two borrowers at once dial two connections; then eight sequential PINGs reuse them.
      const held = yield* pool.get
      yield* ping
      yield* pool.put(held)
      for (let i = 0; i < 8; i++) assert.deepStrictEqual(yield* ping, { _tag: "Simple", value: "PONG" })
      // A third borrower waits for one of the two turns.
      const a = yield* pool.get
      const b = yield* pool.get
      const waiter = yield* Effect.forkChild(ping)
      for (let i = 0; i < 100 && (yield* pool.stats).pendingRequests === 0; i++) yield* Effect.yieldNow
      const waiting = yield* Metric.snapshot
      assert.strictEqual(count(series(waiting, "db.client.connection.pending_requests", attributes)), 1)
      assert.strictEqual(count(series(waiting, "db.client.connection.count", { ...attributes, "db.client.connection.state": "used" })), 2)
      yield* pool.put(a)
      yield* Fiber.join(waiter)
      yield* pool.remove(b)

      const s = yield* Metric.snapshot
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...attributes, "db.client.connection.state": "idle" })), 1)
      assert.strictEqual(count(series(s, "db.client.connection.count", { ...attributes, "db.client.connection.state": "used" })), 0)
      assert.strictEqual(count(series(s, "db.client.connection.max", attributes)), 2)
      assert.strictEqual(count(series(s, "db.client.connection.idle.max", attributes)), 2)
      assert.strictEqual(count(series(s, "db.client.connection.idle.min", attributes)), 0)
      assert.strictEqual(count(series(s, "db.client.connection.pending_requests", attributes)), 0)
      assert.strictEqual(count(series(s, "db.client.connection.timeouts", attributes)), 0)
      assert.strictEqual(count(series(s, "connpool.misses", attributes)), 2, "two dials")
      assert.strictEqual(count(series(s, "connpool.hits", attributes)), 11, "8 PINGs, two gets and the waiter")
      assert.strictEqual(count(series(s, "connpool.connection.closed", { ...attributes, "connpool.close.reason": "remove" })), 1)
      const create = series(s, "db.client.connection.create_time", seconds).state as Metric.HistogramState
      assert.strictEqual(create.count, 2)
      assert.isTrue(create.min > 0 && create.max < 1, `a loopback connect takes well under a second: ${create.max}`)
      const wait = series(s, "db.client.connection.wait_time", seconds).state as Metric.HistogramState
      assert.strictEqual(wait.count, 13, "every get that obtained a connection")
      assert.isAbove(wait.max, 0, "the waiter waited")
      const use = series(s, "db.client.connection.use_time", seconds).state as Metric.HistogramState
      assert.strictEqual(use.count, 13, "every connection given back, removed one included")
    })))
})
