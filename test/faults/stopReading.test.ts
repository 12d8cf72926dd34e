/**
 * Fault: the server stops reading. The connection is up and the yamux session was set up by
 * a real server, then a proxy in front of it stops reading what the client sends, so the
 * kernel buffers fill and every write lands in Node's socket buffer.
 *
 * Promise: backpressure bounds what the client holds. Writers wait once the session's queue
 * plus the socket's `writableLength` pass `maxWriteBuffer`, so Node never holds more than that
 * plus one Data frame (64 KiB); each stream never sends past the window the server granted.
 * Calls end with CallTimeout at their deadline, and keepalive then replaces the session.
 * Session-level pieces: test/yamux/Session.flow.test.ts ("fails a write with WriteTimeout when
 * the transport does not drain for 10 s", "stops a writer at the 256 KiB window until the reader
 * reads") and test/yamux/Session.badPeers.test.ts ("closes the session with WriteTimeout when a
 * peer floods pings but never reads the replies").
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { flush, proxy, rpcErrorOf, serve, until, watchWrites } from "./helpers.ts"

const KiB = 1024
/** Session.ts never queues a Data frame larger than this. */
const maxDataFrame = 64 * KiB
const maxWriteBuffer = 256 * KiB
/** Frame headers and control frames (pings, RSTs of timed-out streams) on top of the data. */
const slack = 4 * KiB
const callers = 64

describe("server that stops reading", () => {
  it.effect("holds at most maxWriteBuffer + one frame in Node, ends calls with CallTimeout, replaces the session", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const link = yield* proxy(server.port)
      const writes = yield* watchWrites(link.port)
      const pool = yield* RpcPool.make({ callTimeout: "5 seconds", session: { maxWriteBuffer } })
      yield* pool.rpc(link.address, "Status.Ping", {})

      yield* link.stopReading
      // 64 calls of 512 KiB: 32 MiB of requests, 16 MiB of which the 256 KiB windows allow
      // out, far more than the kernel buffers of a loopback connection take.
      const payload = new Uint8Array(512 * KiB).fill(7)
      const calls = yield* Effect.forEach(
        Array.from({ length: callers }, (_, i) => i),
        (i) => Effect.forkChild(Effect.exit(pool.rpc(link.address, "Test.Echo", { Payload: payload, Seq: i, Note: "" })))
      )
      yield* until("Node's socket buffer to fill", () => writes.max() > maxWriteBuffer, 10_000)
      yield* flush(100)
      assert.isAtMost(writes.max(), maxWriteBuffer + maxDataFrame + slack, "bounded while writers wait")
      assert.isTrue(calls.every((call) => call.pollUnsafe() === undefined), "every call waits")

      yield* TestClock.adjust("5 seconds")
      let unsent = 0
      for (const call of calls) {
        const error = rpcErrorOf(yield* Fiber.join(call))
        assert.strictEqual(error.reason, "CallTimeout", error.message)
        // A request still waiting for the socket never reached the server: safe to retry.
        if (!error.sent) {
          unsent++
          assert.isTrue(error.isRetryable)
        }
      }
      assert.isAbove(unsent, 0, "backpressure held some requests back")
      yield* flush(20)
      assert.isAtMost(writes.max(), maxWriteBuffer + maxDataFrame + slack, "bounded after the timeouts")
      let stats = yield* pool.stats
      assert.deepStrictEqual(stats.failures, { CallTimeout: callers })
      assert.strictEqual(stats.streamsInUse, 0)
      assert.strictEqual(stats.callers, 0)

      // The unread ping at t = 30 s tells the session the peer is gone at t = 40 s.
      yield* TestClock.adjust("25 seconds")
      yield* flush()
      yield* TestClock.adjust("10 seconds")
      yield* until("the pool to drop the session", () => Effect.runSync(pool.stats).sessions === 0)
      yield* pool.rpc(link.address, "Status.Ping", {})
      stats = yield* pool.stats
      assert.strictEqual(stats.dials, 2)
      assert.strictEqual(stats.sessions, 1)
    }))
})
