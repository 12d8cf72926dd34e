/**
 * ConnPool in use: a pool of Redis connections (node:net + a small RESP
 * codec) provided as a Layer, 32 workers doing SET/GET over 10 connections,
 * then the pool's stats.
 *
 *   npx node examples/redis.ts                 # starts a throwaway redis-server
 *   REDIS_PORT=6379 npx node examples/redis.ts # uses the one on 127.0.0.1:6379
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Duration, Effect } from "effect"
import * as ConnPool from "../src/pool/index.ts"
import * as Redis from "./redis/RedisConn.ts"
import * as RedisServer from "./redis/server.ts"

class RedisPool extends Context.Service<RedisPool, ConnPool.ConnPool<Redis.RedisConn>>()("examples/RedisPool") {}

/** The port of a Redis to talk to: REDIS_PORT, or a redis-server started for this run. */
const redisPort = Effect.gen(function*() {
  const configured = process.env.REDIS_PORT
  if (configured !== undefined) return Number(configured)
  if (!RedisServer.redisServerInstalled()) {
    return yield* Effect.fail(new Error("redis-server is not installed: set REDIS_PORT to use a running Redis"))
  }
  const port = yield* RedisServer.freePort
  yield* Effect.acquireRelease(RedisServer.start(port), RedisServer.kill)
  yield* Console.log(`started redis-server on 127.0.0.1:${port}`)
  return port
})

const workers = 32
const opsPerWorker = 500

const program = Effect.gen(function*() {
  const pool = yield* RedisPool

  const pong = yield* ConnPool.use(pool, (conn) => conn.command("PING"))
  yield* Console.log(`PING -> ${JSON.stringify(pong)}`)

  const worker = (id: number) =>
    Effect.gen(function*() {
      for (let i = 0; i < opsPerWorker; i++) {
        yield* ConnPool.use(pool, (conn) =>
          Effect.gen(function*() {
            yield* conn.command("SET", `example:${id}`, String(i))
            const reply = yield* conn.command("GET", `example:${id}`)
            if (reply._tag !== "Bulk" || reply.value !== String(i)) {
              return yield* Effect.die(`unexpected reply ${JSON.stringify(reply)}`)
            }
          }))
      }
    })
  const started = performance.now()
  yield* Effect.all(Array.from({ length: workers }, (_, id) => worker(id)), { concurrency: "unbounded" })
  const millis = performance.now() - started
  yield* Console.log(
    `${workers} workers x ${opsPerWorker} SET+GET in ${millis.toFixed(0)} ms ` +
      `(${((workers * opsPerWorker * 2) / millis * 1000).toFixed(0)} commands/s)`
  )

  const { closes, waitDuration, ...counts } = yield* pool.stats
  yield* Console.log("pool stats:")
  yield* Console.table({ ...counts, waitDuration: Duration.format(waitDuration) })
  yield* Console.log("connections closed, by reason:", closes)
})

const main = Effect.gen(function*() {
  const port = yield* redisPort
  yield* program.pipe(
    Effect.provide(ConnPool.layer(RedisPool, {
      name: `127.0.0.1:${port}`,
      dial: Redis.dial({ host: "127.0.0.1", port }),
      closeSignal: (conn) => conn.closed,
      poolSize: 10,
      minIdleConns: 2
    }))
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
