/**
 * A host that went dark, made on loopback: a listener with a backlog of 1
 * in a child process stopped with SIGSTOP, so it never accepts, whose accept
 * queue is then filled. Linux completes `backlog + 1` handshakes into the
 * queue and then drops further SYNs, so a connect to it neither succeeds nor
 * fails: it stays in SYN_SENT, as against a host that silently drops
 * packets. Checked on this kernel: the first two connects complete, the
 * third hangs (tcp_abort_on_overflow = 0, the default).
 */
import { spawn } from "node:child_process"
import * as net from "node:net"
import type { Scope } from "effect"
import { Effect } from "effect"

/** The listener, in a child so that SIGSTOP stops only it. */
const listener = `
const server = require("node:net").createServer(() => {})
server.listen({ host: "127.0.0.1", port: 0, backlog: 1 }, () => process.stdout.write(server.address().port + "\\n"))
`

const connect = (port: number): Effect.Effect<net.Socket, Error> =>
  Effect.callback<net.Socket, Error>((resume) => {
    const socket = net.createConnection({ host: "127.0.0.1", port })
    socket.once("connect", () => resume(Effect.succeed(socket)))
    socket.once("error", (error) => resume(Effect.fail(error)))
    return Effect.sync(() => socket.destroy())
  })

/** Starts a dark host; succeeds with its port. Closing the scope kills it and closes the fillers. */
export const darkHost: Effect.Effect<number, Error, Scope.Scope> = Effect.gen(function*() {
  const child = yield* Effect.acquireRelease(
    Effect.sync(() => spawn(process.execPath, ["-e", listener], { stdio: ["ignore", "pipe", "inherit"] })),
    (child) =>
      Effect.callback<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
        child.once("exit", () => resume(Effect.void))
        child.kill("SIGKILL")
      })
  )
  const port = yield* Effect.callback<number, Error>((resume) => {
    child.stdout!.once("data", (data: Buffer) => resume(Effect.succeed(Number(String(data).trim()))))
    child.once("exit", (code) => resume(Effect.fail(new Error(`dark host listener exited with ${code}`))))
  })
  child.kill("SIGSTOP")
  // backlog + 1 handshakes complete into the accept queue nobody drains.
  for (let i = 0; i < 2; i++) {
    yield* Effect.acquireRelease(connect(port), (socket) => Effect.sync(() => socket.destroy()))
  }
  return port
})

/** Open TCP sockets of this process, as Node counts its handles. */
export const tcpSockets = (): number =>
  process.getActiveResourcesInfo().filter((type) => type === "TCPSocketWrap").length

/** Handles of this process by type, `Immediate` and `Timeout` left out (vitest's own come and go). */
export const handles = (): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const type of process.getActiveResourcesInfo()) {
    if (type !== "Immediate" && type !== "Timeout") counts[type] = (counts[type] ?? 0) + 1
  }
  return counts
}
