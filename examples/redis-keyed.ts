/**
 * A keyed ConnPool: one pool of Redis connections per server address, made
 * on first use and closed once unused, as a sharded client needs. Two
 * throwaway redis-servers on free loopback ports stand in for two shards;
 * workers write keys to the shard a hash picks, then read them back.
 *
 *   npx node examples/redis-keyed.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect } from "effect"
import * as ConnPool from "../src/pool/index.ts"
import * as Redis from "./redis/RedisConn.ts"
import * as RedisServer from "./redis/server.ts"

/** The shards: a pool per port. */
class Shards extends Context.Service<Shards, ConnPool.KeyedConnPool<number, Redis.RedisConn>>()("examples/Shards") {}

/** A redis-server on a free loopback port, killed when the scope closes. */
const shard = Effect.gen(function*() {
  const port = yield* RedisServer.freePort
  yield* Effect.acquireRelease(RedisServer.start(port), RedisServer.kill)
  return port
})

/** Which shard holds `key`: a string hash, modulo the shard count. */
const shardOf = (ports: ReadonlyArray<number>, key: string): number => {
  let hash = 0
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0
  return ports[Math.abs(hash) % ports.length]!
}

const program = (ports: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const shards = yield* Shards
    const keys = Array.from({ length: 200 }, (_, i) => `user:${i}`)

    yield* Effect.forEach(keys, (key) =>
      ConnPool.useKeyed(shards, shardOf(ports, key), (conn) => conn.command("SET", key, key.toUpperCase())), {
      concurrency: 32,
      discard: true
    })
    const wrong = yield* Effect.forEach(keys, (key) =>
      ConnPool.useKeyed(shards, shardOf(ports, key), (conn) => conn.command("GET", key)).pipe(
        Effect.map((reply): number => reply._tag === "Bulk" && reply.value === key.toUpperCase() ? 0 : 1)
      ), { concurrency: 32 })
    yield* Console.log(`${keys.length} keys written and read back over ${ports.length} shards, ${wrong.reduce((a, b) => a + b, 0)} wrong`)

    const stats = yield* shards.stats
    for (const [port, s] of stats.keys) {
      yield* Console.log(`127.0.0.1:${port}: ${s.hits} hits, ${s.misses} misses, ${s.totalConns} connections`)
    }
    yield* Console.log(`in all: ${stats.total.hits} hits, ${stats.total.misses} misses, ${stats.total.totalConns} connections`)
  })

const main = Effect.gen(function*() {
  if (!RedisServer.redisServerInstalled()) {
    return yield* Effect.fail(new Error("redis-server is not installed"))
  }
  const ports = [yield* shard, yield* shard]
  yield* Console.log(`started redis-server on 127.0.0.1:${ports.join(" and 127.0.0.1:")}`)
  yield* program(ports).pipe(
    Effect.provide(ConnPool.layerKeyed(Shards, {
      dial: (port: number) => Redis.dial({ host: "127.0.0.1", port }),
      name: (port) => `127.0.0.1:${port}`,
      closeSignal: (conn) => conn.closed,
      poolSize: 8,
      idleTimeToLive: "1 minute"
    }))
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(main)
