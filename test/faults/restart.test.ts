/**
 * Fault: the server dies under load and comes back on the same port.
 *
 * Promise: running callers neither hang nor crash; every failure is an RpcError with a
 * reason and is counted in the pool's stats; calls in flight when the server dies end then,
 * not at their deadline; and the pool dials the restarted server by itself, once.
 *
 * Our server runs in-process under the TestClock (the clock never moves, so no call can have
 * relied on a timer); the Go server is SIGKILLed and restarted as a real process.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Scope } from "effect"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { RpcErrorReason } from "../../src/rpc/RpcError.ts"
import { buildGoPeer, goAvailable, type GoServer, startGoServer } from "../interop/goPeer.ts"
import { quiet, reasons, rpcErrorOf, serve, startLoad, totalFailures, until } from "./helpers.ts"

/** What a caller may see while its server is down or just restarted; anything else is a bug. */
const allowed: ReadonlySet<RpcErrorReason> = new Set<RpcErrorReason>([
  "ConnectionLost",
  "DialFailed",
  "StreamReset",
  "StreamOpenFailed"
])

const echoArgs = (w: number, n: number) => ({ Payload: `payload ${w}/${n}`, Seq: n, Note: `worker ${w}` })

/** The reply is the one for this request, not another caller's. */
const echoes = (w: number, n: number, reply: Value): boolean => {
  const r = reply as Record<string, Value>
  return r["Seq"] === n && r["Note"] === `worker ${w}`
}

const workers = 16

describe("server killed under load and restarted on the same port", () => {
  it.effect("our server: callers fail typed and counted, nothing waits for a deadline, the pool redials by itself", () =>
    Effect.gen(function*() {
      const t0 = yield* Clock.currentTimeMillis
      const first = yield* Scope.make()
      const server = yield* serve().pipe(Scope.provide(first))
      const pool = yield* RpcPool.make({ session: quiet, callTimeout: "5 seconds" })

      // Long calls in flight when the server dies.
      const sleepers = yield* Effect.forEach(
        [0, 1, 2, 3],
        () => Effect.forkChild(Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 60_000 })))
      )
      yield* until("the sleepers to reach the server", () => server.sleeping() === 4)
      const load = yield* startLoad({
        workers,
        call: (w, n) => pool.rpc(server.address, "Test.Echo", echoArgs(w, n)),
        check: echoes
      })
      yield* until("the load to run", () => load.okBy.every((n) => n >= 10), 20_000)

      // Kill: every socket of the server is destroyed at once.
      yield* Scope.close(first, Exit.void)
      for (const sleeper of sleepers) {
        const error = rpcErrorOf(yield* Fiber.join(sleeper))
        assert.strictEqual(error.reason, "ConnectionLost", error.message)
        assert.strictEqual(error.address, server.address)
        assert.strictEqual(error.method, "Test.Sleep")
      }
      const failedAtKill = [...load.failedBy]
      yield* until("every caller to see the server gone", () => load.failedBy.every((n, w) => n > failedAtKill[w]!), 20_000)
      assert.isAbove(reasons(load.errors)["DialFailed"] ?? 0, 0, "callers got DialFailed while nothing listened")

      // Restart on the same port.
      const again = yield* serve({ port: server.port })
      const okAtRestart = [...load.okBy]
      yield* until("every caller to succeed again", () => load.okBy.every((n, w) => n > okAtRestart[w]!), 20_000)
      yield* load.stop

      assert.deepStrictEqual(load.untyped, [], "every failure is an RpcError")
      assert.strictEqual(load.crossed(), 0, "every reply answers its own request")
      for (const error of load.errors) {
        assert.isTrue(allowed.has(error.reason), `unexpected ${error.reason}: ${error.message}`)
        assert.strictEqual(error.address, server.address)
      }
      // Counted: every call the pool started ended as ok or as one failure by reason.
      const stats = yield* pool.stats
      assert.strictEqual(stats.ok, load.ok())
      assert.strictEqual(totalFailures(stats.failures), load.failed() + sleepers.length, JSON.stringify(stats.failures))
      assert.strictEqual(stats.calls, stats.ok + totalFailures(stats.failures))
      const expected = reasons(load.errors)
      expected["ConnectionLost"] = (expected["ConnectionLost"] ?? 0) + sleepers.length
      assert.deepStrictEqual(stats.failures, expected)
      // One dial before, one after the restart, and the failed ones in between; no stream left behind.
      assert.strictEqual(stats.dials, 2)
      assert.isAbove(stats.dialFailures, 0)
      assert.strictEqual(stats.sessions, 1)
      assert.strictEqual(stats.streamsInUse, 0)
      assert.strictEqual(stats.callers, 0)
      assert.strictEqual(again.stats().conns, 1)
      // The TestClock never moved: no call waited for a deadline, keepalive or retry timer.
      assert.strictEqual(yield* Clock.currentTimeMillis, t0)
    }))
})

const goTimeoutMs = 2000

/** A Go server on `port` (0: any free port), stopped with the Scope if still running. */
const goServerOn = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(() => startGoServer(port === 0 ? {} : { args: ["-addr", `127.0.0.1:${port}`] })),
    (server) => Effect.promise(() => server.stop())
  )

/** SIGKILL, and wait for the process to be gone (a real process has to act: real time). */
const kill = (server: GoServer) =>
  Effect.promise(() => {
    process.kill(server.pid, "SIGKILL")
    return server.exited
  })

/** Polls in real time; the Go process and the kernel act on their own clocks. */
const eventually = (what: string, condition: () => boolean, limitMs = 10_000) =>
  Effect.gen(function*() {
    for (let waited = 0; !condition(); waited += 10) {
      if (waited > limitMs) return assert.fail(`gave up waiting for ${what}`)
      yield* Effect.sleep("10 millis")
    }
  })

describe.runIf(goAvailable(import.meta.url))("Go server killed under load and restarted on the same port", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  it.live("SIGKILL mid-load: typed, counted failures, no call past its deadline, the pool redials by itself", () =>
    Effect.gen(function*() {
      const server = yield* goServerOn(0)
      const pool = yield* RpcPool.make({ callTimeout: `${goTimeoutMs} millis`, dialTimeout: "1 second" })
      const load = yield* startLoad({
        workers,
        call: (w, n) =>
          n % 4 === 3
            ? pool.rpc(server.address, "Test.Sleep", { Millis: 20 })
            : pool.rpc(server.address, "Test.Echo", echoArgs(w, n)),
        check: (w, n, reply) => n % 4 === 3 || echoes(w, n, reply),
        // A refused dial fails at once; pace the retries of a live test rather than spin.
        afterFailure: Effect.sleep("5 millis"),
        measure: () => performance.now()
      })
      yield* eventually("the load to run", () => load.okBy.every((n) => n >= 10))

      yield* kill(server)
      const failedAtKill = [...load.failedBy]
      yield* eventually("every caller to see the server gone", () => load.failedBy.every((n, w) => n > failedAtKill[w]!))

      const again = yield* goServerOn(server.port)
      assert.strictEqual(again.address, server.address)
      const okAtRestart = [...load.okBy]
      yield* eventually("every caller to succeed again", () => load.okBy.every((n, w) => n > okAtRestart[w]!))
      yield* load.stop

      assert.deepStrictEqual(load.untyped, [], "every failure is an RpcError")
      assert.strictEqual(load.crossed(), 0, "every reply answers its own request")
      for (const error of load.errors) {
        assert.isTrue(allowed.has(error.reason), `unexpected ${error.reason}: ${error.message}`)
      }
      assert.isAtMost(load.longest(), goTimeoutMs + 500, "no call outlived its deadline")
      const stats = yield* pool.stats
      assert.strictEqual(stats.ok, load.ok())
      assert.deepStrictEqual(stats.failures, reasons(load.errors))
      assert.strictEqual(stats.calls, load.ok() + load.failed())
      assert.strictEqual(stats.dials, 2)
      assert.strictEqual(stats.sessions, 1)
      const go = (yield* pool.rpc(again.address, "Test.Stats", {})) as Record<string, Value>
      assert.strictEqual(go["Conns"], 1, "the restarted server saw one connection")
    }))
})
