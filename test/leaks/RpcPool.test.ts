/**
 * Leak checks for the RPC pool on the real clock: after 100,000 calls and 1,000
 * session redials against the embedded server in this process, the pool's
 * file descriptors, handles, timers and fibers are back at their baseline once
 * its Scope closes.
 *
 * What is measured, and how:
 * - file descriptors: the entries of `/proc/self/fd` (Linux). Socket
 *   descriptors (the client's and the server's accepted ones) must match
 *   exactly; all descriptors may not grow (vitest opens files of its own);
 * - active handles: `process.getActiveResourcesInfo()` counted by type. Sockets
 *   (`TCPSocketWrap`, `TCPServerWrap`) must match exactly; no other type may
 *   grow. Timers cannot be compared exactly there, because vitest's own
 *   `Timeout` comes and goes during a test, so
 * - timers: every sleep of the server and the pool goes through a counting
 *   wrapper of the live Clock (keepalive, reaper, timeouts, stream timers), and
 *   none may be in progress at the end (src/ has no other timer source);
 * - fibers: a `FiberRuntimeMetrics` service counting fiber starts and ends,
 *   provided around the server and the pool, so every fiber either of them
 *   forks (keepalive, stream loops, dial fibers, timers) is counted.
 *
 * Redials are forced two ways: the server sends GoAway (the pool retires the
 * session and dials anew) and the server closes the session under the pool.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Metric, Scope } from "effect"
import * as fs from "node:fs"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import { countSleeps } from "../rpc/rpcPoolFixtures.ts"
import { flush, until } from "../yamux/harness.ts"

const CALLS = 100_000
const REDIALS = 1_000

const openFds = (): number => fs.readdirSync("/proc/self/fd").length

/** Descriptors that are sockets; files and pipes vitest opens now and then are not counted. */
const socketFds = (): number => {
  let n = 0
  for (const fd of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith("socket:")) n++
    } catch {
      // Closed between the listing and the readlink.
    }
  }
  return n
}

/** Active resources by type; `Immediate` is left out, as the I/O helpers themselves use setImmediate. */
const handles = (): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) {
    if (type !== "Immediate") counts[type] = (counts[type] ?? 0) + 1
  }
  return counts
}

const sockets = (counts: Record<string, number>) => ({
  TCPSocketWrap: counts["TCPSocketWrap"] ?? 0,
  TCPServerWrap: counts["TCPServerWrap"] ?? 0,
  TLSWrap: counts["TLSWrap"] ?? 0
})

/** Types that grew since `baseline`. */
const grown = (baseline: Record<string, number>, now: Record<string, number>): Array<string> =>
  Object.keys(now).filter((type) => (now[type] ?? 0) > (baseline[type] ?? 0))

/** Fibers started and not yet ended, wherever they were forked from. */
const makeFiberCounter = () => {
  const counter = { live: 0, started: 0 }
  const service: Metric.FiberRuntimeMetricsService = {
    recordFiberStart: () => {
      counter.live++
      counter.started++
    },
    recordFiberEnd: () => {
      counter.live--
    }
  }
  return { counter, service }
}


interface Snapshot {
  readonly fds: number
  readonly socketFds: number
  readonly handles: Record<string, number>
  readonly fibers: number
  readonly sleeping: number
}

describe("RpcPool leaks", () => {
  it.live(
    `after ${CALLS} calls and ${REDIALS} redials, fds, handles, timers and fibers return to their baseline`,
    () =>
      Effect.gen(function*() {
        const fibers = makeFiberCounter()
        const timers = countSleeps(yield* Clock.Clock)
        yield* Effect.gen(function*() {
          const server = yield* RpcServer.serve({
            handlers: {
              ...TestService.handlers,
              "Test.GoAway": (_, { session }) => Effect.as(session.goAway, {}),
              // Closes the caller's session right after the reply is queued.
              "Test.Hangup": (_, { session }) =>
                Effect.as(Effect.forkDetach(Effect.andThen(Effect.yieldNow, session.close)), {})
            }
          })
          const snapshot = (): Snapshot => ({
            fds: openFds(),
            socketFds: socketFds(),
            handles: handles(),
            fibers: fibers.counter.live,
            sleeping: timers.sleeping()
          })
          yield* flush()
          const baseline = snapshot()

          const scope = yield* Scope.make()
          // Fewer streams than callers, so half the calls wait for a stream: the waiting path is checked too.
          const pool = yield* RpcPool.make({ maxStreamsPerSession: 8 }).pipe(Scope.provide(scope))
          const started = performance.now()

          // 100k calls, 16 at a time: mostly pings, some echoes, some remote errors (their streams are
          // closed, not reused) and some timeouts (their streams are reset while the server still works).
          yield* Effect.forEach(
            Array.from({ length: CALLS }, (_, i) => i),
            (i): Effect.Effect<unknown, RpcError> =>
              i % 1000 === 999
                ? Effect.exit(pool.rpc(server.address, "Test.Sleep", { Millis: 20 }, { timeout: "1 millis" }))
                : i % 100 === 99
                ? Effect.exit(pool.rpc(server.address, "Test.Fail", { Message: "no" }))
                : i % 10 === 9
                ? pool.rpc(server.address, "Test.Echo", { Payload: "x".repeat(100), Seq: i, Note: "" })
                : pool.rpc(server.address, "Status.Ping", {}),
            { concurrency: 16, discard: true }
          )
          const callsDone = performance.now()
          let stats = yield* pool.stats
          assert.strictEqual(stats.calls, CALLS)
          assert.strictEqual(stats.failures.RemoteError, CALLS / 100 - CALLS / 1000)
          assert.strictEqual(stats.failures.CallTimeout, CALLS / 1000)
          assert.strictEqual(stats.dials, 1)
          assert.strictEqual(stats.pending, 0)
          assert.strictEqual(stats.callers, 0)
          assert.strictEqual(stats.streamsInUse, 0)
          // One session: one socket on each end.
          assert.strictEqual(server.stats().live, 1)
          assert.strictEqual(socketFds(), baseline.socketFds + 2)

          // 1000 redials: half by GoAway, half by the server hanging up.
          for (let i = 0; i < REDIALS; i++) {
            if (i % 2 === 0) {
              yield* pool.rpc(server.address, "Test.GoAway", {})
            } else {
              // The reply may or may not beat the close; either way the session is gone.
              yield* Effect.exit(pool.rpc(server.address, "Test.Hangup", {}))
              yield* until("the pool to drop the closed session", () => Effect.runSync(pool.stats).sessions === 0)
            }
            yield* pool.rpc(server.address, "Status.Ping", {})
          }
          const redialsDone = performance.now()
          stats = yield* pool.stats
          assert.strictEqual(stats.dials, 1 + REDIALS)
          assert.strictEqual(server.stats().conns, 1 + REDIALS)
          // Retired sessions close: still one socket on each end, not a thousand.
          yield* until("retired sessions to close", () =>
            server.stats().live === 1 && socketFds() === baseline.socketFds + 2)

          yield* Scope.close(scope, Exit.void)
          const settled = () => {
            const now = snapshot()
            return now.socketFds === baseline.socketFds && now.fds <= baseline.fds && now.fibers === baseline.fibers && now.sleeping === 0 &&
              grown(baseline.handles, now.handles).length === 0 &&
              JSON.stringify(sockets(now.handles)) === JSON.stringify(sockets(baseline.handles))
          }
          // The server's side closes a few event-loop turns after ours; the assertions below say what is left.
          yield* Effect.exit(until("everything to return to the baseline", settled))
          const after = snapshot()
          assert.strictEqual(server.stats().live, 0)
          assert.strictEqual(after.socketFds, baseline.socketFds, "socket descriptors")
          assert.isAtMost(after.fds, baseline.fds, "file descriptors")
          assert.deepStrictEqual(sockets(after.handles), sockets(baseline.handles), "sockets")
          assert.deepStrictEqual(grown(baseline.handles, after.handles), [], "handle types that grew")
          assert.strictEqual(after.sleeping, 0, "timers in progress")
          assert.strictEqual(after.fibers, baseline.fibers, "live fibers")
          // The counters saw the work: a fiber per server stream at least, and the keepalive sleeps.
          assert.isAbove(fibers.counter.started, REDIALS)
          assert.isAbove(timers.slept(), REDIALS)
          console.log(
            `leaks: ${CALLS} calls in ${(callsDone - started).toFixed(0)} ms, ${REDIALS} redials in ${
              (redialsDone - callsDone).toFixed(0)
            } ms; baseline ${JSON.stringify(baseline)}; ${fibers.counter.started} fibers started, ${timers.slept()} sleeps`
          )
        }).pipe(
          Effect.scoped,
          Effect.provideService(Clock.Clock, timers),
          Effect.provideService(Metric.FiberRuntimeMetrics, fibers.service)
        )
      }),
    60_000
  )
})
