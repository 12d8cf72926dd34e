/**
 * Flag helpers shared by the bench child processes (rpc-client, rpc-server, memory): they take
 * the same `--flag value` spelling as the Go client, so the commands in BENCHMARKS.md read alike,
 * and they report bad input as one line on stderr, never a stack trace.
 */
import { parseArgs } from "node:util"

/** Exit status for a usage error, as the `connpool` CLI uses. */
export const ExitUsage = 2

/** Prints `message` on stderr and exits with `code`. */
export const die = (message: string, code = ExitUsage): never => {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

/** `parseArgs` over string flags, dying with a one-line message on unknown flags. */
export const flags = <K extends string>(names: ReadonlyArray<K>, argv = process.argv.slice(2)) => {
  try {
    const { values } = parseArgs({
      args: argv,
      options: Object.fromEntries(names.map((n) => [n, { type: "string" as const }])),
      strict: true,
      allowPositionals: false
    })
    return values as Partial<Record<K, string>>
  } catch (error) {
    return die(error instanceof Error ? error.message : String(error))
  }
}

/** A Go-style duration (`500ms`, `2s`, `1.5s`, `1m`) in milliseconds. */
export const durationMs = (name: string, text: string | undefined, fallback: number): number => {
  if (text === undefined) return fallback
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text.trim())
  if (m === null) return die(`--${name}: expected a duration such as 500ms or 2s, got ${JSON.stringify(text)}`)
  const n = Number(m[1])
  return m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000
}

/** A non-negative integer flag. */
export const integer = (name: string, text: string | undefined, fallback: number, min = 0): number => {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) return die(`--${name}: expected an integer of at least ${min}, got ${JSON.stringify(text)}`)
  return n
}

/** The message of anything thrown or failed, for a one-line report. */
export const messageOf = (error: unknown): string => {
  if (error instanceof Error) return error.message
  if (typeof error === "object" && error !== null && "message" in error) return String(error.message)
  return String(error)
}

/** The observability variants the bench compares, by `--observability` value. */
export const observabilityVariants = {
  off: { metrics: false, tracing: false },
  metrics: { metrics: true, tracing: false },
  tracing: { metrics: false, tracing: true },
  all: { metrics: true, tracing: true }
} as const
export type ObservabilityVariant = keyof typeof observabilityVariants

/** `--observability off|metrics|tracing|all`; undefined (the library's defaults) when not given. */
export const observabilityFlag = (text: string | undefined) => {
  if (text === undefined) return undefined
  if (!Object.hasOwn(observabilityVariants, text)) {
    return die(`--observability: expected off, metrics, tracing or all, got ${JSON.stringify(text)}`)
  }
  return observabilityVariants[text as ObservabilityVariant]
}
