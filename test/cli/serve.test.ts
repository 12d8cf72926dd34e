import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { lines, runCli, serve } from "./helpers.ts"

describe("connpool serve", () => {
  it.live("prints host:port as the first stdout line", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      assert.match(server.address, /^127\.0\.0\.1:\d+$/)
    }))

  it.live("exits 0 on SIGTERM", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      server.child.kill("SIGTERM")
      const finished = yield* server.finished
      assert.strictEqual(finished.code, 0, finished.stderr)
      assert.deepStrictEqual(lines(finished.stdout), [server.address])
    }))

  it.live("exits 0 on SIGINT while a call is in flight", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      // Test.Stats confirms the server answers before the signal.
      const stats = yield* runCli("call", server.address, "Test.Stats")
      assert.strictEqual(stats.code, 0, stats.stderr)
      const sleeping = yield* Effect.forkChild(runCli("call", server.address, "Test.Sleep", "{\"Millis\":30000}"))
      // Wait until the sleeping call's stream is open, then stop the server
      // under it. Streams counts every stream accepted: the first Test.Stats,
      // each poll (its own included) and, once open, the sleeping call's.
      let polls = 0
      yield* Effect.gen(function*() {
        polls++
        const r = yield* runCli("call", server.address, "Test.Stats")
        return JSON.parse(r.stdout).Streams as number
      }).pipe(Effect.repeat({ until: (streams) => streams >= 1 + polls + 1 }))
      server.child.kill("SIGINT")
      const finished = yield* server.finished
      assert.strictEqual(finished.code, 0, finished.stderr)
      const call = yield* Fiber.join(sleeping)
      assert.strictEqual(call.code, 2)
      assert.lengthOf(lines(call.stderr), 1)
    }))

  it.live("exits 2 when only one of --tls-cert and --tls-key is given", () =>
    Effect.gen(function*() {
      const result = yield* runCli("serve", "--tls-key", "package.json")
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
    }))

  it.live("exits 2 with a ListenFailed line when the port is taken", () =>
    Effect.gen(function*() {
      const first = yield* serve()
      const port = first.address.split(":")[1]!
      const result = yield* runCli("serve", "--port", port)
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
      assert.match(result.stderr, /^connpool: ListenFailed \(127\.0\.0\.1:\d+\): .*EADDRINUSE/)
    }))
})
