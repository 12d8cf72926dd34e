/**
 * The command line of `npm run bench`: `--quick`, `--only`, `--rounds`, `--help`. Bad input is
 * one line on stderr with the usage, exit status 2; `--help` prints the usage and exits 0.
 */
import { parseArgs } from "node:util"
import { fullMode, type Mode, quickMode, type ScenarioId, scenarioIds } from "./plan.ts"

const usage = `usage: npm run bench [-- --quick] [--only a,b,c,d,e,f,g] [--rounds N]

  --quick         short runs and one round: checks that everything works (numbers not to be quoted)
  --only LIST     scenarios to run: a (RPC client), b (RPC server), c (ConnPool acquire), d (memory),
                  e (RpcCluster against RpcPool), f (streaming RPC), g (metrics and spans off and on,
                  in (a) and (c))
  --rounds N      rounds of alternating contenders; figures are medians (default 3, quick 1)
`

const fail = (message: string): never => {
  process.stderr.write(`${message}\n\n${usage}`)
  process.exit(2)
}

/** What to run, read once from `process.argv`; exits on `--help` and on bad input. */
export const parse = (): { readonly only: ReadonlyArray<ScenarioId>; readonly rounds: number; readonly mode: Mode } => {
  const options = (() => {
    try {
      return parseArgs({
        options: {
          quick: { type: "boolean", default: false },
          only: { type: "string" },
          rounds: { type: "string" },
          help: { type: "boolean", short: "h", default: false }
        },
        strict: true,
        allowPositionals: false
      }).values
    } catch (error) {
      return fail(error instanceof Error ? error.message : String(error))
    }
  })()
  if (options.help) {
    process.stdout.write(usage)
    process.exit(0)
  }
  const only: ReadonlyArray<ScenarioId> = options.only === undefined ? scenarioIds : (() => {
    const ids = options.only.split(",").map((s) => s.trim()).filter((s) => s !== "")
    const bad = ids.filter((s) => !(scenarioIds as ReadonlyArray<string>).includes(s))
    if (bad.length > 0 || ids.length === 0) fail(`--only: expected a list of a, b, c, d, e, f, g; got ${options.only}`)
    return scenarioIds.filter((id) => ids.includes(id))
  })()
  const rounds = options.rounds === undefined ? (options.quick ? 1 : 3) : Number(options.rounds)
  if (!Number.isSafeInteger(rounds) || rounds < 1) fail(`--rounds: expected an integer of at least 1, got ${options.rounds}`)
  const mode: Mode = options.quick ? quickMode(rounds) : fullMode(rounds)
  return { only, rounds, mode }
}
