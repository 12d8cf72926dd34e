/**
 * Runs `connpool` as a child process, as a user or script would.
 */
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { Scope } from "effect"

export const cliPath = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))
export const tlsDir = fileURLToPath(new URL("../fixtures/tls/", import.meta.url))

export interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

const spawnCli = (args: ReadonlyArray<string>): ChildProcess =>
  spawn(process.execPath, [cliPath, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } })

const collect = (child: ChildProcess): Promise<Finished> => {
  let stdout = ""
  let stderr = ""
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d))
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d))
  return new Promise((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
}

/** Runs `connpool ...args` to completion; killed if the test is interrupted. */
export const runCli = (...args: ReadonlyArray<string>): Effect.Effect<Finished> =>
  Effect.callback<Finished>((resume) => {
    const child = spawnCli(args)
    collect(child).then((finished) => resume(Effect.succeed(finished)))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

/**
 * Starts `connpool ...args`; the caller signals it and waits for `finished`. `stderrLine` and
 * `stdoutLine` wait (up to 60 s) for a line matching `pattern`. Killed with the Scope.
 */
export const startCli = (...args: ReadonlyArray<string>): Effect.Effect<
  {
    readonly child: ChildProcess
    readonly finished: Effect.Effect<Finished>
    readonly stderrLine: (pattern: RegExp) => Effect.Effect<void>
    readonly stdoutLine: (pattern: RegExp) => Effect.Effect<void>
  },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawnCli(args)
      const seen = { stdout: "", stderr: "" }
      child.stderr?.setEncoding("utf8").on("data", (d: string) => (seen.stderr += d))
      child.stdout?.setEncoding("utf8").on("data", (d: string) => (seen.stdout += d))
      const done = collect(child)
      const lineOn = (which: "stdout" | "stderr") => (pattern: RegExp) =>
        Effect.callback<void>((resume) => {
          const output = child[which]
          const check = () => {
            if (seen[which].split("\n").some((line) => pattern.test(line))) finish(Effect.void)
          }
          const timer = setTimeout(
            () => finish(Effect.die(new Error(`no ${which} line ${pattern} in 60 s: ${seen[which]}`))),
            60_000
          )
          const finish = (effect: Effect.Effect<void>) => {
            clearTimeout(timer)
            output?.off("data", check)
            resume(effect)
          }
          output?.on("data", check)
          check()
          return Effect.sync(() => finish(Effect.void))
        })
      return { child, finished: Effect.promise(() => done), stderrLine: lineOn("stderr"), stdoutLine: lineOn("stdout") }
    }),
    ({ child }) => Effect.sync(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")))
  )

export interface Serving {
  readonly address: string
  readonly child: ChildProcess
  /** Completes when the process has exited, with everything it printed. */
  readonly finished: Effect.Effect<Finished>
}

/**
 * `connpool serve ...args` until the Scope closes (SIGKILL if still running);
 * ready once the first stdout line, the address, is out.
 */
export const serve = (...args: ReadonlyArray<string>): Effect.Effect<Serving, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Serving>((resume) => {
      const child = spawnCli(["serve", ...args])
      const done = collect(child)
      const finished = Effect.promise(() => done)
      let ready = false
      let firstLine = ""
      child.stdout?.on("data", (d: string) => {
        if (ready) return
        firstLine += d
        const nl = firstLine.indexOf("\n")
        if (nl >= 0) {
          ready = true
          resume(Effect.succeed({ address: firstLine.slice(0, nl), child, finished }))
        }
      })
      done.then((f) => {
        if (!ready) resume(Effect.die(new Error(`serve exited early (${f.code}): ${f.stderr}`)))
      })
      return Effect.sync(() => void child.kill("SIGKILL"))
    }),
    ({ child }) => Effect.sync(() => void (child.exitCode === null && child.signalCode === null && child.kill("SIGKILL")))
  )

/** Non-empty lines of a stream's output. */
export const lines = (text: string): Array<string> => text.split("\n").filter((l) => l.length > 0)
