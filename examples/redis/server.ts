/**
 * Starting and stopping a throwaway `redis-server` on a free loopback port,
 * for the example and the integration test.
 */
import type { ChildProcess } from "node:child_process"
import { spawn, spawnSync } from "node:child_process"
import * as net from "node:net"
import { Effect } from "effect"

/** Whether `redis-server` is on the PATH. */
export const redisServerInstalled = (): boolean => spawnSync("redis-server", ["--version"]).status === 0

/** A loopback port nobody listens on: bind to 0, read it, close. */
export const freePort: Effect.Effect<number, Error> = Effect.callback<number, Error>((resume) => {
  const server = net.createServer()
  server.once("error", (error) => resume(Effect.fail(error)))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(address.port)))
  })
})

/** Starts `redis-server` on 127.0.0.1:`port`, without persistence; succeeds once it accepts connections. */
export const start = (port: number): Effect.Effect<ChildProcess, Error> =>
  Effect.callback<ChildProcess, Error>((resume) => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    child.stdout!.on("data", (data: Buffer) => {
      output += data.toString()
      if (output.includes("Ready to accept connections")) resume(Effect.succeed(child))
    })
    child.once("error", (error) => resume(Effect.fail(error)))
    child.once("exit", (code) => resume(Effect.fail(new Error(`redis-server exited with ${code}: ${output}`))))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Kills it (SIGKILL: no goodbye to clients) and waits for it to exit. */
export const kill = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    child.once("exit", () => resume(Effect.void))
    child.kill("SIGKILL")
  })
