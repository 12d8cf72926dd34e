/**
 * ConnPool against a host that went dark (see `darkHost.ts`: a stopped
 * listener on loopback whose accept queue is full, so connects hang in
 * SYN_SENT), dialling with the Redis example's dial. Every connect the pool
 * gives up on (at dialTimeout, because its caller gave up, or because the
 * pool closed) must end at once: no socket stays open, and once the pool and
 * the host are gone the process holds no handle of theirs.
 *
 * Real sockets and real time, kept under two seconds.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Schedule, Scope } from "effect"
import * as net from "node:net"
import * as Redis from "../../examples/redis/RedisConn.ts"
import * as ConnPool from "../../src/pool/index.ts"
import { darkHost, handles, tcpSockets } from "./darkHost.ts"

/** Polls `check` every 10 ms until it holds, for at most `within`; succeeds with whether it did. */
const becomes = (check: () => boolean, within: Duration.Input) =>
  Effect.suspend(() => check() ? Effect.succeed(true) : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo({ duration: within }))),
    Effect.orElseSucceed(() => false)
  )

/** Whether a plain connect to `port` is still pending after `millis`. */
const connectHangs = (port: number, millis: number) =>
  Effect.callback<boolean>((resume) => {
    const socket = net.createConnection({ host: "127.0.0.1", port })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed(true))
    }, millis)
    const settled = () => {
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed(false))
    }
    socket.once("connect", settled)
    socket.once("error", settled)
  })

describe("ConnPool against a dark host", () => {
  it.live("ends every connect it gives up on: at dialTimeout, when its caller gives up, when the pool closes", () =>
    Effect.gen(function*() {
      const before = handles()
      const hostScope = yield* Scope.make()
      const port = yield* darkHost.pipe(Scope.provide(hostScope))
      assert.isTrue(yield* connectHangs(port, 300), "a connect to the dark host hangs")
      // Ours and the two that fill the host's accept queue; the probe's socket closes on a later tick.
      const baseline = (before["TCPSocketWrap"] ?? 0) + 2
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline, "1 second"))

      const poolScope = yield* Scope.make()
      const pool = yield* ConnPool.make({
        name: `dark:${port}`,
        dial: Redis.dial({ host: "127.0.0.1", port }),
        poolSize: 4,
        dialTimeout: "200 millis",
        dialRetry: Schedule.recurs(1),
        // Dial every time: the breaker would fail later gets without dialling.
        breakerThreshold: Infinity
      }).pipe(Scope.provide(poolScope))

      // Timed out: four callers, two attempts each, every connect ended at its timeout.
      const errors = yield* Effect.all(Array.from({ length: 4 }, () => Effect.flip(pool.get)), { concurrency: 4 })
      assert.deepStrictEqual(errors.map((e) => e.reason._tag), ["DialTimeout", "DialTimeout", "DialTimeout", "DialTimeout"])
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline, "500 millis"), "no connect left in SYN_SENT")
      assert.strictEqual((yield* pool.stats).abandonedDials, 0)

      // The caller gave up: its connect still ends, at dialTimeout.
      const gaveUp = yield* Effect.forkChild(pool.get)
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline + 1, "150 millis"), "the connect is under way")
      yield* Fiber.interrupt(gaveUp)
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline, "1 second"), "ended by its dialTimeout")

      // The pool closes with a connect under way: it ends at once and its caller gets PoolClosed.
      const unlucky = yield* Effect.forkChild(Effect.flip(pool.get))
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline + 1, "150 millis"), "the connect is under way")
      const closing = performance.now()
      yield* Scope.close(poolScope, Exit.void)
      assert.strictEqual((yield* Fiber.join(unlucky)).reason._tag, "PoolClosed")
      assert.isBelow(performance.now() - closing, 150, "close waits for no connect (dialTimeout is 200 ms)")
      assert.isTrue(yield* becomes(() => tcpSockets() === baseline, "500 millis"), "no socket after the pool closed")
      assert.strictEqual((yield* pool.stats).abandonedDials, 0)

      yield* Scope.close(hostScope, Exit.void)
      assert.isTrue(
        yield* becomes(() => JSON.stringify(handles()) === JSON.stringify(before), "1 second"),
        `no handle left: ${JSON.stringify(handles())} against ${JSON.stringify(before)}`
      )
    }), 20_000)
})
