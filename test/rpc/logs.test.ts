/**
 * The RPC pool's debug lines: a dial, a failed dial, a session the server
 * closed, a reaped session, shutdown; each names the pool and the server.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as TestService from "../../src/server/TestService.ts"
import { capturingLogs } from "../observability/helpers.ts"
import { closedPort } from "../wire/fixtures.ts"

const quiet = { enableKeepAlive: false } as const
const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))


describe("RpcPool logs", () => {
  it.effect("dials, failed dials, sessions the server closed, reaps and shutdown are debug lines naming the pool and the server", () =>
    Effect.gen(function*() {
      const logs = capturingLogs()
      const serverScope = yield* Scope.make()
      const server = yield* Scope.provide(TestService.serve({ session: quiet }), serverScope)
      const dead = yield* closedPort
      const poolScope = yield* Scope.make()
      // The pool's own fibers (dials, the reaper, session watchers) log where the pool was made.
      const pool = yield* logs.provide(
        Scope.provide(RpcPool.make({ name: "logged", session: quiet, maxTime: "10 seconds" }), poolScope)
      )
      const lines = () => logs.lines.filter((l) => l.level === "Debug").map((l) => l.message)
      const target = `127.0.0.1:${server.port}`

      yield* logs.provide(pool.rpc(server.address, "Status.Ping", {}))
      assert.deepStrictEqual(lines(), [`logged: ${target}: session dialled`])
      assert.deepStrictEqual(logs.lines[0]!.annotations, {
        "connpool.pool.name": "logged",
        "server.address": "127.0.0.1",
        "server.port": server.port
      })

      yield* logs.provide(Effect.exit(pool.rpc(`127.0.0.1:${dead}`, "Status.Ping", {})))
      assert.match(lines()[1]!, new RegExp(`^logged: 127\\.0\\.0\\.1:${dead}: dial failed: DialFailed`))

      // The server goes: the pool's watcher logs why the session closed.
      yield* Scope.close(serverScope, Exit.void)
      for (let i = 0; i < 2000 && lines().length < 3; i++) yield* flush
      assert.match(lines()[2]!, new RegExp(`^logged: ${target}: session closed: `))

      // A new server on another port; its idle session is reaped after maxTime.
      const again = yield* TestService.serve({ session: quiet })
      yield* logs.provide(pool.rpc(again.address, "Status.Ping", {}))
      yield* TestClock.adjust("11 seconds")
      for (let i = 0; i < 100 && lines().length < 5; i++) yield* flush
      assert.strictEqual(lines()[3], `logged: 127.0.0.1:${again.port}: session dialled`)
      assert.match(lines()[4]!, new RegExp(`^logged: 127\\.0\\.0\\.1:${again.port}: session closed: reaped, idle for \\d+ ms$`))

      yield* logs.provide(pool.rpc(again.address, "Status.Ping", {}))
      yield* logs.provide(Scope.close(poolScope, Exit.void))
      assert.strictEqual(lines().at(-1), `logged: 127.0.0.1:${again.port}: session closed: pool closed`)
    }))
})
