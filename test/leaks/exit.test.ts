/**
 * Closing the pool lets the process exit: a child Node process (`exitChild.ts`)
 * calls through the pool layers against a server in this process, closes them
 * with a call and a dial still in flight, and must then exit by itself, with
 * code 0, through an emptied event loop (`beforeExit`), well before any timer
 * of the pool (10 s dial timeout, 30 s keepalive, 60 s call timeout) could
 * fire.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import { fileURLToPath } from "node:url"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import { until } from "../yamux/harness.ts"

const child = fileURLToPath(new URL("./exitChild.ts", import.meta.url))
/** The Node 24 the package pins (type stripping); the running one otherwise. */
const nodeBin = ((): string => {
  const pinned = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
  return fs.existsSync(pinned) ? pinned : process.execPath
})()

/** Must be well under the shortest pool timer a leak would leave running (the 10 s dial timeout). */
const EXIT_BOUND_MS = 5_000
/** Startup (loading effect from TypeScript sources) included. */
const RUN_BOUND_MS = 30_000

/** Accepts, reads and never answers. */
const muteServer = Effect.acquireRelease(
  Effect.callback<net.Server>((resume) => {
    const server = net.createServer((socket) => {
      socket.on("error", () => {})
      socket.resume()
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) => Effect.sync(() => server.close())
)

interface ChildResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** From the `closed` line to the process's exit. */
  readonly exitAfterCloseMs: number | undefined
  readonly totalMs: number
}

const runChild = (args: ReadonlyArray<string>) =>
  Effect.callback<ChildResult>((resume) => {
    const started = performance.now()
    let closedAt: number | undefined
    let stdout = ""
    let stderr = ""
    const proc = spawn(nodeBin, [child, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    proc.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      if (closedAt === undefined && /^closed /m.test(stdout)) closedAt = performance.now()
    })
    proc.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    proc.on("exit", (code, signal) => {
      const now = performance.now()
      resume(Effect.succeed({
        code,
        signal,
        stdout,
        stderr,
        exitAfterCloseMs: closedAt === undefined ? undefined : now - closedAt,
        totalMs: now - started
      }))
    })
    return Effect.sync(() => proc.kill("SIGKILL"))
  })

describe("RpcPool process exit", () => {
  it.live("a process that closes the pool layer exits by itself, with a call and a dial in flight", () =>
    Effect.gen(function*() {
      const server = yield* RpcServer.serve({
        handlers: { ...TestService.handlers, "Test.GoAway": (_, { session }) => Effect.as(session.goAway, {}) }
      })
      const mute = yield* muteServer
      const muteAddress = `127.0.0.1:${(mute.address() as net.AddressInfo).port}`

      const result = yield* runChild([server.address, muteAddress]).pipe(
        Effect.timeoutOrElse({
          duration: RUN_BOUND_MS,
          orElse: () => Effect.die(new Error(`the child did not exit within ${RUN_BOUND_MS} ms`))
        })
      )
      const report = `stdout:\n${result.stdout}\nstderr:\n${result.stderr}`
      assert.strictEqual(result.code, 0, report)
      assert.isNull(result.signal, report)
      assert.include(result.stdout, "calls 1000", report)
      // Both in-flight operations were ended by the close, not left behind.
      assert.match(result.stdout, /^ends \[.*PoolClosed.*PoolClosed.*\]$/m, report)
      assert.include(result.stdout, "drained", "the event loop emptied on its own (no process.exit)")
      assert.isDefined(result.exitAfterCloseMs)
      assert.isBelow(result.exitAfterCloseMs!, EXIT_BOUND_MS, "exited promptly after the pool closed")
      // The child's sessions are gone from the server too.
      yield* until("the server to see the child's sessions close", () => server.stats().live === 0)
      console.log(
        `exit: child ran ${result.totalMs.toFixed(0)} ms, exited ${result.exitAfterCloseMs!.toFixed(0)} ms after closing the pool`
      )
    }), 60_000)
})
