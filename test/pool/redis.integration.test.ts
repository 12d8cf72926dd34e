/**
 * ConnPool against a real redis-server: TCP connections over loopback, PING
 * and SET/GET through the example's RESP codec; then Redis is killed under
 * load (the breaker opens, get fails fast) and restarted on the same port
 * (the pool recovers by itself).
 *
 * Real time, real process: kept to a few seconds. Without redis-server the suite is skipped
 * with one line saying so (test/requirements.ts); with `CI` set it fails instead.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Ref, Schedule } from "effect"
import type { RedisConn } from "../../examples/redis/RedisConn.ts"
import * as Redis from "../../examples/redis/RedisConn.ts"
import * as RedisServer from "../../examples/redis/server.ts"
import * as ConnPool from "../../src/pool/index.ts"
import { redisServer, runs } from "../requirements.ts"


/** Retries `effect` every 20 ms until it succeeds, for at most `within`. */
const eventually = <A, E>(effect: Effect.Effect<A, E>, within: Duration.Input) =>
  effect.pipe(
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo({ duration: within }))),
    Effect.orDie
  )

const setGet = (conn: RedisConn, key: string, value: string) =>
  Effect.gen(function*() {
    const set = yield* conn.command("SET", key, value)
    if (set._tag !== "Simple" || set.value !== "OK") return yield* Effect.die(`SET replied ${JSON.stringify(set)}`)
    const got = yield* conn.command("GET", key)
    if (got._tag !== "Bulk" || got.value !== value) return yield* Effect.die(`GET replied ${JSON.stringify(got)}`)
  })

describe.runIf(runs(import.meta.url, redisServer))("ConnPool with redis-server", () => {
  it.live(
    "pools real connections, fails fast while Redis is down and recovers when it is back",
    () =>
      Effect.gen(function*() {
        const port = yield* RedisServer.freePort
        let server = yield* RedisServer.start(port)
        yield* Effect.addFinalizer(() => RedisServer.kill(server))

        const pool = yield* ConnPool.make({
          name: `127.0.0.1:${port}`,
          dial: Redis.dial({ host: "127.0.0.1", port }),
          closeSignal: (conn) => conn.closed,
          poolSize: 8,
          poolTimeout: "2 seconds",
          dialTimeout: "1 second",
          dialRetry: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 1 }))
        })

        // PING and SET/GET through the pool.
        const pong = yield* ConnPool.use(pool, (conn) => conn.command("PING"))
        assert.deepStrictEqual(pong, { _tag: "Simple", value: "PONG" })
        yield* ConnPool.use(pool, (conn) => setGet(conn, "greeting", "hello"))

        // Load: 16 workers on 8 connections.
        const ok = yield* Ref.make(0)
        const failed = yield* Ref.make(0)
        const worker = (id: number) => {
          let n = 0
          return Effect.suspend(() => ConnPool.use(pool, (conn) => setGet(conn, `key:${id}`, `value:${n++}`))).pipe(
            Effect.matchEffect({
              onSuccess: () => Ref.update(ok, (x) => x + 1),
              onFailure: () => Effect.andThen(Ref.update(failed, (x) => x + 1), Effect.sleep("5 millis"))
            }),
            Effect.forever
          )
        }
        const load = yield* Effect.forkChild(Effect.all(Array.from({ length: 16 }, (_, id) => worker(id)), {
          concurrency: "unbounded"
        }))
        yield* Effect.sleep("300 millis")
        const beforeKill = yield* Ref.get(ok)
        assert.isAbove(beforeKill, 50, "commands flow under load")
        assert.strictEqual(yield* pool.len, 8, "the load opened every connection the pool allows")
        assert.strictEqual(yield* Ref.get(failed), 0)

        // Kill Redis: connections die, dials fail, the breaker opens.
        yield* RedisServer.kill(server)
        const breakerError = yield* eventually(
          Effect.flip(pool.get).pipe(
            Effect.flatMap((error) => error.reason._tag === "BreakerOpen" ? Effect.succeed(error) : Effect.fail(error))
          ),
          "3 seconds"
        )
        assert.strictEqual(breakerError.reason._tag, "BreakerOpen")
        assert.include(breakerError.message, "ECONNREFUSED")
        assert.strictEqual(breakerError.pool, `127.0.0.1:${port}`)
        const started = performance.now()
        const fast = yield* Effect.flip(pool.get)
        assert.strictEqual(fast.reason._tag, "BreakerOpen")
        assert.isBelow(performance.now() - started, 50, "get fails at once while the breaker is open")
        assert.strictEqual(yield* pool.len, 0, "dead connections were dropped")

        // Restart on the same port: the probe closes the breaker, the pool recovers by itself.
        server = yield* RedisServer.start(port)
        yield* eventually(ConnPool.use(pool, (conn) => conn.command("PING")), "4 seconds")
        const afterRestart = yield* Ref.get(ok)
        yield* Effect.sleep("300 millis")
        assert.isAbove(yield* Ref.get(ok), afterRestart + 50, "the load succeeds again")
        yield* Fiber.interrupt(load)
        yield* ConnPool.use(pool, (conn) => setGet(conn, "greeting", "back"))

        const stats = yield* pool.stats
        assert.strictEqual(stats.pendingRequests, 0)
        assert.isAbove(stats.hits, stats.misses)
        assert.isAtMost(stats.totalConns, 8)

        // Kill it again with every connection idle: the close signals drop them, no get needed.
        const idle = yield* pool.idleLen
        assert.isAbove(idle, 0)
        yield* RedisServer.kill(server)
        yield* eventually(Effect.flatMap(pool.len, (n) => n === 0 ? Effect.void : Effect.fail(n)), "2 seconds")
        assert.strictEqual((yield* pool.stats).staleConns, stats.staleConns + idle)
      }).pipe(Effect.scoped),
    20_000
  )
})
