/**
 * How the CLI ends: every failure becomes one line on stderr and an exit
 * code, never a stack trace, so scripts can branch on `$?` and parse stdout.
 *
 * - 0: success (and `serve` stopped by SIGINT/SIGTERM).
 * - 1: the server answered with an error (`RemoteError`, straight or through a cluster), or
 *   `bench` saw failed calls.
 * - 2: connection, TLS, protocol, timeout or usage errors, and anything unexpected.
 * - 130: interrupted by SIGINT (Ctrl-C), 143: by SIGTERM (any command but `serve`).
 *
 * @since 0.1.0
 */
import { Cause, Data, Effect, Exit } from "effect"
import type { Runtime } from "effect"
import { CliError } from "effect/cli"

export const ExitRemote = 1
export const ExitFailure = 2
export const ExitInterrupted = 130
export const ExitTerminated = 143

/** Bad flags or arguments that the parser could not catch (bad JSON, conflicting flags). */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
}> {}

/**
 * Ends the process with `code`. `message` (one line) goes to stderr; without
 * it nothing more is printed, because the command already reported why (e.g.
 * `bench`'s summary with its failed calls).
 */
export class CliExit extends Data.TaggedError("CliExit")<{
  readonly code: number
  readonly message?: string | undefined
}> {}

/** An `RpcError`, or a cluster call's `ClusterError`, whose server answered with an error. */
const isRemote = (error: unknown): boolean =>
  isTagged(error) && (error._tag === "RpcError" || error._tag === "ClusterError") && error["reason"] === "RemoteError"

/** Exit code for a failure value (not a defect). */
export const exitCodeOf = (error: unknown): number => {
  if (error instanceof CliExit) return error.code
  return isRemote(error) ? ExitRemote : ExitFailure
}

/** The single line printed for a failure. Newlines in server messages are flattened. */
export const lineOf = (error: unknown): string => {
  const text = isRemote(error) ? `remote error: ${messageOf(error)}` : messageOf(error)
  return `connpool: ${oneLine(text)}`
}

const isTagged = (u: unknown): u is { readonly _tag: string; readonly [k: string]: unknown } =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

const messageOf = (error: unknown): string => {
  if (error instanceof Error && error.message !== "") return error.message
  if (isTagged(error)) {
    const reason = typeof error["reason"] === "string" ? `: ${error["reason"]}` : ""
    return `${error._tag}${reason}`
  }
  return String(error)
}

const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ").trim()

/**
 * Set by commands whose normal way to stop is a signal (`serve`): an
 * interruption then exits 0 instead of 130/143. Module-level state because the
 * runtime's teardown sees only the Exit, not which command ran or which
 * signal stopped it.
 */
let signalsExitCleanly = false
let lastSignal: NodeJS.Signals | undefined

export const exitCleanlyOnSignal: Effect.Effect<void> = Effect.sync(() => {
  signalsExitCleanly = true
})

/** The exit code for a run stopped by `signal`: 0 for `serve`, else 130 (SIGINT) or 143 (SIGTERM). */
export const signalExitCode = (signal: NodeJS.Signals | undefined): number =>
  signalsExitCleanly ? 0 : signal === "SIGTERM" ? ExitTerminated : ExitInterrupted

/**
 * Notes which signal arrived (the runtime interrupts the program on either
 * without saying which), and ends the process at once on a second one, for a
 * user who will not wait for a clean stop. Install before the runtime's own
 * handlers.
 */
export const watchSignals = (): void => {
  const onSignal = (signal: NodeJS.Signals) => {
    if (lastSignal !== undefined) {
      process.stderr.write(`connpool: second ${signal}, exiting now\n`)
      process.exit(signalExitCode(signal))
    }
    lastSignal = signal
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
}

/**
 * Reports a failed CLI program as one line and turns it into a `CliExit`, so
 * the teardown only maps codes. Interruptions pass through untouched.
 *
 * Parse errors (`CliError`) were already shown by the presenter in `main.ts`.
 */
export const report = <A, E, R>(program: Effect.Effect<A, E, R>): Effect.Effect<A, CliExit, R> =>
  Effect.catchCause(program, (cause) => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
    const failure = cause.reasons.find(Cause.isFailReason)
    if (failure !== undefined) {
      const error: unknown = failure.error
      if (error instanceof CliExit) {
        return Effect.andThen(
          error.message === undefined ? Effect.void : printError(`connpool: ${oneLine(error.message)}`),
          Effect.fail(error)
        )
      }
      if (CliError.isCliError(error)) return Effect.fail(new CliExit({ code: ExitFailure }))
      return Effect.andThen(printError(lineOf(error)), Effect.fail(new CliExit({ code: exitCodeOf(error) })))
    }
    const defect = cause.reasons.find(Cause.isDieReason)
    const text = defect === undefined ? "unexpected failure" : `internal error: ${messageOf(defect.defect)}`
    return Effect.andThen(printError(`connpool: ${oneLine(text)}`), Effect.fail(new CliExit({ code: ExitFailure })))
  })

// process.stderr directly: Console may be redirected by tests or layers, and
// this line must reach the terminal even when everything else failed.
const printError = (line: string): Effect.Effect<void> => Effect.sync(() => void process.stderr.write(`${line}\n`))

/** Maps the main fiber's Exit to a process exit code (for `NodeRuntime.runMain`). */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  if (Exit.isSuccess(exit)) return onExit(0)
  if (Cause.hasInterruptsOnly(exit.cause)) return onExit(signalExitCode(lastSignal))
  const failure = exit.cause.reasons.find(Cause.isFailReason)
  return onExit(failure === undefined ? ExitFailure : exitCodeOf(failure.error))
}
