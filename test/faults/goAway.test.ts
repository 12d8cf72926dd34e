/**
 * Fault: the server sends GoAway (it is draining, e.g. before a restart) while callers keep
 * calling and a long call is in flight.
 *
 * Promise: no call fails. New calls go to a fresh session (one dial), calls in flight on the
 * old session finish there, and the old session is closed when its last call is done.
 * Single-call versions: test/rpc/RpcPool.dial.test.ts ("after the server sends GoAway the next
 * call succeeds on a fresh dial"), and against HashiCorp's Go server
 * test/interop/client-to-go.test.ts ("finishes calls in flight after Go's GoAway and sends new
 * calls to a fresh session").
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { quiet, serve, startLoad, until } from "./helpers.ts"

const variants = [
  { name: "reusing idle streams", maxStreams: undefined },
  // Every call opens a stream, so some SYNs cross the GoAway and the server refuses them (RST
  // before ACK): those calls must be retried on the fresh session, not fail with StreamReset.
  { name: "opening a stream per call, some refused as they cross the GoAway", maxStreams: 0 }
] as const

describe("GoAway mid-flight", () => {
  for (const variant of variants) {
    it.effect(`under load, ${variant.name}: no call fails, new calls go to a fresh session, the call in flight finishes on the old one`, () =>
      Effect.gen(function*() {
        const server = yield* serve()
        const pool = yield* RpcPool.make({ session: quiet, maxStreams: variant.maxStreams })
        yield* pool.rpc(server.address, "Status.Ping", {})
        const slow = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 10_000 }))
        yield* until("the slow call to reach the server", () => server.sleeping() === 1)
        const load = yield* startLoad({
          workers: 16,
          call: (w, n) => pool.rpc(server.address, "Test.Echo", { Payload: "", Seq: n, Note: `worker ${w}` }),
          check: (w, n, reply) => {
            const r = reply as Record<string, Value>
            return r["Seq"] === n && r["Note"] === `worker ${w}`
          }
        })
        yield* until("the load to run", () => load.okBy.every((n) => n >= 5), 20_000)

        yield* pool.rpc(server.address, "Test.GoAway", {})
        yield* until("a second session", () => server.stats().conns === 2)
        const okAtGoAway = [...load.okBy]
        yield* until("every caller to succeed on the new session", () => load.okBy.every((n, w) => n > okAtGoAway[w]! + 5), 20_000)
        assert.isUndefined(slow.pollUnsafe(), "the slow call is still running on the old session")
        assert.strictEqual(server.stats().live, 2)

        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* Fiber.join(slow), {})
        yield* load.stop
        yield* until("the old session to close after its last call", () => server.stats().live === 1)

        assert.strictEqual(load.failed(), 0, JSON.stringify(load.errors.map((e) => e.message)))
        assert.deepStrictEqual(load.untyped, [])
        assert.strictEqual(load.crossed(), 0)
        const stats = yield* pool.stats
        assert.deepStrictEqual(stats.failures, {})
        assert.strictEqual(stats.dials, 2)
        assert.strictEqual(stats.sessions, 1)
        assert.strictEqual(server.stats().conns, 2)
      }))
  }
})
