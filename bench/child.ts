/**
 * Child processes for `npm run bench`: every contender runs in a process of its own, so each
 * gets the same fresh runtime and the two sides of a call never share a thread. A failed child
 * becomes a one-line error in the report, never an exception that ends the bench.
 */
import * as fs from "node:fs"
import { spawn, type ChildProcess } from "node:child_process"

/** What one contender run produced: its JSON line, or why there is none. */
export type Outcome =
  | { readonly ok: true; readonly value: Readonly<Record<string, unknown>> }
  | { readonly ok: false; readonly error: string }

/** How much of a child's stderr is kept for the error message. */
const StderrKeep = 2000

/** How long a server gets to print its address. */
const ServerStartMs = 20_000

// Clients are killed and servers get stdin EOF when the bench itself exits, even on Ctrl-C.
const live = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => process.exit(130))
}

const lastLine = (text: string): string => {
  const lines = text.trim().split("\n")
  return lines[lines.length - 1] ?? ""
}

/**
 * The gist of a child's output in one line: the first line naming an error (a Node crash prints
 * the stack after it and its version last), else the last two lines.
 */
const oneLine = (text: string): string => {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "")
  const error = lines.find((l) => /^[A-Za-z]*Error\b/.test(l))
  return error ?? lines.slice(-2).join(" / ")
}

/**
 * Runs `command args` to completion and parses its last stdout line as JSON. A `fatal` or
 * `error` field in that line, a non-zero exit, or `timeoutMs` passing makes it a failure.
 */
export const runJson = (command: string, args: ReadonlyArray<string>, timeoutMs: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "pipe"] })
    live.add(child)
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-StderrKeep)
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMs)
    child.once("error", (error) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ ok: false, error: `cannot start ${command}: ${error.message}` })
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      live.delete(child)
      if (timedOut) return resolve({ ok: false, error: `no result within ${Math.round(timeoutMs / 1000)} s` })
      let value: Record<string, unknown> | undefined
      try {
        const parsed: unknown = JSON.parse(lastLine(stdout))
        if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
          value = parsed as Record<string, unknown>
        }
      } catch {
        value = undefined
      }
      if (value !== undefined && typeof value["fatal"] === "string") return resolve({ ok: false, error: value["fatal"] })
      if (code !== 0 || value === undefined) {
        const why = signal !== null ? `killed by ${signal}` : `exit status ${code}`
        const detail = oneLine(stderr) || oneLine(stdout)
        return resolve({ ok: false, error: detail === "" ? why : `${why}: ${detail}` })
      }
      if (typeof value["failed"] === "number" && value["failed"] > 0) {
        return resolve({ ok: false, error: `${value["failed"]} calls failed: ${String(value["error"] ?? "")}` })
      }
      resolve({ ok: true, value })
    })
  })

export interface Server {
  readonly address: string
  /** For its CPU time (`procCpuUs`). */
  readonly pid: number
  /** Closes the server's stdin (it exits on EOF) and waits for it to go. */
  readonly stop: () => Promise<void>
}

/** Starts a server that prints its `host:port` as the first stdout line and exits on stdin EOF. */
export const startServer = (command: string, args: ReadonlyArray<string>): Promise<Server> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ["pipe", "pipe", "pipe"] })
    live.add(child)
    let stdout = ""
    let stderr = ""
    const exited = new Promise<void>((done) => child.once("close", () => done()))
    void exited.then(() => live.delete(child))
    const fail = (why: string) => {
      clearTimeout(timer)
      child.kill("SIGKILL")
      reject(new Error(why))
    }
    const timer = setTimeout(() => fail(`${command} printed no address within ${ServerStartMs / 1000} s`), ServerStartMs)
    child.stdin.on("error", () => {})
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-StderrKeep)
    })
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
      const nl = stdout.indexOf("\n")
      if (nl < 0) return
      clearTimeout(timer)
      // Later output is not read; drain it so a chatty server never blocks on a full pipe.
      child.stdout.removeAllListeners("data").resume()
      resolve({
        address: stdout.slice(0, nl).trim(),
        pid: child.pid!,
        stop: async () => {
          child.stdin.end()
          const killer = setTimeout(() => child.kill("SIGKILL"), 5000)
          await exited
          clearTimeout(killer)
        }
      })
    })
    child.once("error", (error) => fail(`cannot start ${command}: ${error.message}`))
    child.once("exit", (code) => {
      const detail = oneLine(stderr)
      fail(`${command} exited (status ${code}) before printing its address${detail === "" ? "" : `: ${detail}`}`)
    })
  })

/** User plus system CPU time of process `pid` so far, in µs, from /proc (Linux; clock ticks of 10 ms). */
export const procCpuUs = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return ((Number(fields[11]) + Number(fields[12])) / UserHz) * 1e6
}

/** USER_HZ on Linux. */
const UserHz = 100
