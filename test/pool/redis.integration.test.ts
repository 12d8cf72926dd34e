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
import type { Scope } from "effect"
import { Deferred, Duration, Effect, Fiber, Ref, Schedule } from "effect"
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

/** Runs `f` with a redis-server on a free loopback port, killed afterwards. */
const withRedis = <A, E>(f: (port: number) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.gen(function*() {
    const port = yield* RedisServer.freePort
    const server = yield* RedisServer.start(port)
    yield* Effect.addFinalizer(() => RedisServer.kill(server))
    return yield* f(port)
  })

/** The server's id for the connection (`CLIENT ID`): tells connections apart. */
const clientId = (conn: RedisConn) =>
  Effect.flatMap(conn.command("CLIENT", "ID"), (reply) =>
    reply._tag === "Integer" ? Effect.succeed(reply.value) : Effect.die(`CLIENT ID replied ${JSON.stringify(reply)}`))

/** Fails unless the connection answers PING with PONG (a connection inside MULTI answers QUEUED). */
const ping = (conn: RedisConn) =>
  Effect.flatMap(conn.command("PING"), (reply) =>
    reply._tag === "Simple" && reply.value === "PONG" ? Effect.void : Effect.fail(`PING replied ${JSON.stringify(reply)}`))

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
        // `use`, not `get`: a get that still succeeds must not leave its connection out.
        const breakerError = yield* eventually(
          ConnPool.use(pool, () => Effect.void).pipe(
            Effect.flip,
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
        const statsAtRestart = yield* pool.stats
        yield* Effect.sleep("300 millis")
        assert.isAbove(yield* Ref.get(ok), afterRestart + 50, "the load succeeds again")
        yield* Fiber.interrupt(load)
        yield* ConnPool.use(pool, (conn) => setGet(conn, "greeting", "back"))

        const stats = yield* pool.stats
        assert.strictEqual(stats.pendingRequests, 0)
        // Every get during the outage was a miss (BreakerOpen); since the restart, connections are reused.
        assert.isAbove(stats.hits - statsAtRestart.hits, stats.misses - statsAtRestart.misses)
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

  it.live(
    "close closes borrowed connections too: the borrower's next command fails with a typed error",
    () =>
      withRedis((port) =>
        Effect.gen(function*() {
          const pool = yield* ConnPool.make({ name: `127.0.0.1:${port}`, dial: Redis.dial({ host: "127.0.0.1", port }) })
          const handle = yield* pool.get
          yield* ping(handle.conn)
          const borrowed = yield* Deferred.make<void>()
          const user = yield* Effect.forkChild(Effect.flip(ConnPool.use(pool, (conn) =>
            Deferred.succeed(borrowed, undefined).pipe(
              Effect.andThen(Effect.sleep("100 millis")),
              Effect.andThen(conn.command("PING"))
            ))))
          yield* Deferred.await(borrowed)
          yield* pool.close
          const error = yield* Effect.flip(handle.conn.command("PING"))
          assert.strictEqual(error._tag, "RedisConnError")
          const used = yield* Fiber.join(user)
          assert.strictEqual(used._tag, "RedisConnError", "the use in progress fails typed too")
          yield* pool.put(handle)
          assert.strictEqual((yield* pool.stats).closes.close, 2)
        })
      ).pipe(Effect.scoped),
    20_000
  )

  it.live(
    "validate: a connection left inside MULTI is unusable, closed and counted; onPut can reset one instead",
    () =>
      withRedis((port) =>
        Effect.gen(function*() {
          const dial = Redis.dial({ host: "127.0.0.1", port })
          // validate: PING must answer PONG; a connection left in MULTI answers QUEUED.
          const checked = yield* ConnPool.make({ dial, poolSize: 1, validate: ping, validateAfter: 0 })
          const first = yield* ConnPool.use(checked, (conn) => Effect.tap(clientId(conn), () => conn.command("MULTI")))
          const second = yield* ConnPool.use(checked, (conn) =>
            Effect.andThen(setGet(conn, "after-multi", "clean"), clientId(conn)))
          assert.notStrictEqual(second, first, "the MULTI connection was not handed out again")
          const stats = yield* checked.stats
          assert.strictEqual(stats.unusable, 1)
          assert.strictEqual(stats.closes.validate, 1)

          // onPut: DISCARD whatever MULTI a borrower left, and keep the connection.
          const discard = (conn: RedisConn) =>
            Effect.flatMap(conn.command("DISCARD"), (reply) =>
              reply._tag === "Simple" || (reply._tag === "Error" && reply.message.includes("without MULTI"))
                ? Effect.void
                : Effect.fail(`DISCARD replied ${JSON.stringify(reply)}`))
          const reset = yield* ConnPool.make({ dial, poolSize: 1, onPut: discard })
          const a = yield* ConnPool.use(reset, (conn) => Effect.tap(clientId(conn), () => conn.command("MULTI")))
          const b = yield* ConnPool.use(reset, (conn) => Effect.andThen(setGet(conn, "after-reset", "clean"), clientId(conn)))
          assert.strictEqual(b, a, "the same connection, reset by onPut")
          assert.strictEqual((yield* reset.stats).unusable, 0)
        })
      ).pipe(Effect.scoped),
    20_000
  )

  it.live(
    "a keyed pool keeps a pool per redis-server, each on its own server, and closes one unused for idleTimeToLive",
    () =>
      withRedis((portA) =>
        withRedis((portB) =>
          Effect.gen(function*() {
            const pools = yield* ConnPool.makeKeyed({
              dial: (port: number) => Redis.dial({ host: "127.0.0.1", port }),
              name: (port) => `127.0.0.1:${port}`,
              closeSignal: (conn) => conn.closed,
              poolSize: 4,
              idleTimeToLive: "300 millis"
            })
            yield* ConnPool.useKeyed(pools, portA, (conn) => setGet(conn, "where", "A"))
            yield* ConnPool.useKeyed(pools, portB, (conn) => setGet(conn, "where", "B"))
            const onA = yield* ConnPool.useKeyed(pools, portA, (conn) => conn.command("GET", "where"))
            const onB = yield* ConnPool.useKeyed(pools, portB, (conn) => conn.command("GET", "where"))
            assert.deepStrictEqual([onA, onB], [{ _tag: "Bulk", value: "A" }, { _tag: "Bulk", value: "B" }])
            const stats = yield* pools.stats
            assert.strictEqual(stats.keys.length, 2)
            assert.deepStrictEqual([stats.total.hits, stats.total.misses, stats.total.totalConns], [2, 2, 2])

            // Keep A busy; B goes unused and is closed.
            const busy = yield* Effect.forkChild(Effect.forever(
              ConnPool.useKeyed(pools, portA, (conn) => Effect.andThen(conn.command("PING"), Effect.sleep("50 millis")))
            ))
            yield* eventually(Effect.flatMap(pools.keys, (keys) => keys.length === 1 ? Effect.void : Effect.fail(keys)), "2 seconds")
            assert.deepStrictEqual(yield* pools.keys, [portA])
            yield* Fiber.interrupt(busy)
            yield* eventually(Effect.flatMap(pools.keys, (keys) => keys.length === 0 ? Effect.void : Effect.fail(keys)), "2 seconds")
            const after = yield* pools.stats
            assert.strictEqual(after.total.totalConns, 0)
            assert.strictEqual(after.total.closes.close + after.total.closes.remove, after.total.misses, "every connection closed")
          })
        )
      ).pipe(Effect.scoped),
    20_000
  )
})
