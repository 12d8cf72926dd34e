/**
 * `npm run sim`: runs seeded simulations of the whole stack (see
 * docs/architecture.md, "The simulator") and reports the first seeds that
 * fail, each with the command that replays it.
 *
 *   npm run sim                          1,000 seeds from 1
 *   npm run sim -- --seeds 10000         10,000 seeds
 *   npm run sim -- --from 5000           seeds starting at 5000
 *   npm run sim -- --seed 42             replays one seed and prints its trace
 *   npm run sim -- --minutes 5           stops starting seeds after 5 minutes
 *   npm run sim -- --sabotage wrongToken breaks the echo handler on purpose (to see a failure)
 *   npm run sim -- --sabotage retryWrites tells the cluster its writes are idempotent (likewise)
 *
 * Exit code: 0 every seed passed, 1 a seed failed, 2 bad arguments.
 */
import { runSeed } from "./Simulation.ts"
import type { Result } from "./Simulation.ts"

type SabotageName = "wrongToken" | "retryWrites"

interface Args {
  readonly seeds: number
  readonly from: number
  readonly seed: number | undefined
  readonly minutes: number
  readonly sabotage: SabotageName | undefined
  readonly keepGoing: boolean
}

const usage = `usage: npm run sim -- [--seeds N] [--from N] [--seed N] [--minutes M] [--keep-going] [--sabotage wrongToken|retryWrites]`

const parse = (argv: ReadonlyArray<string>): Args | string => {
  let seeds = 1000
  let from = 1
  let seed: number | undefined
  let minutes = 9
  let sabotage: SabotageName | undefined
  let keepGoing = false
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!
    const value = argv[i + 1]
    const int = () => {
      const n = Number(value)
      i++
      return Number.isSafeInteger(n) ? n : undefined
    }
    switch (flag) {
      case "--seeds": {
        const n = int()
        if (n === undefined || n < 1) return `--seeds takes a count >= 1, got ${value}`
        seeds = n
        break
      }
      case "--from": {
        const n = int()
        if (n === undefined) return `--from takes an integer, got ${value}`
        from = n
        break
      }
      case "--seed": {
        const n = int()
        if (n === undefined) return `--seed takes an integer, got ${value}`
        seed = n
        break
      }
      case "--minutes": {
        const n = Number(value)
        i++
        if (!(n > 0)) return `--minutes takes a number > 0, got ${value}`
        minutes = n
        break
      }
      case "--sabotage":
        i++
        if (value !== "wrongToken" && value !== "retryWrites") return `--sabotage takes wrongToken or retryWrites, got ${value}`
        sabotage = value
        break
      case "--keep-going":
        keepGoing = true
        break
      case "--help":
      case "-h":
        return ""
      default:
        return `unknown argument ${flag}`
    }
  }
  return { seeds, from, seed, minutes, sabotage, keepGoing }
}

const replayCommand = (seed: number, sabotage: SabotageName | undefined) =>
  `npm run sim -- --seed ${seed}${sabotage !== undefined ? ` --sabotage ${sabotage}` : ""}`

const main = async (): Promise<number> => {
  const args = parse(process.argv.slice(2))
  if (typeof args === "string") {
    if (args !== "") process.stderr.write(`${args}\n`)
    process.stderr.write(`${usage}\n`)
    return args === "" ? 0 : 2
  }
  const sabotage = args.sabotage !== undefined ? { [args.sabotage]: true } : undefined
  if (args.seed !== undefined) {
    const result = await runSeed(args.seed, { trace: true, sabotage })
    for (const line of result.trace ?? []) process.stdout.write(`${line}\n`)
    process.stdout.write(`seed ${result.seed}: ${result.failure === undefined ? "passed" : `FAILED: ${result.failure}`}\n`)
    process.stdout.write(`trace hash ${result.hash}, ${result.steps} steps, ${result.simMillis} simulated ms, ${result.calls} calls, ${result.clusterCalls} cluster calls\n`)
    return result.failure === undefined ? 0 : 1
  }
  const started = performance.now()
  const stopAt = started + args.minutes * 60_000
  const failed: Array<Result> = []
  let ran = 0
  let steps = 0
  let calls = 0
  let clusterCalls = 0
  let interrupted = false
  process.on("SIGINT", () => {
    interrupted = true
  })
  const progress = (final: boolean) => {
    const secs = (performance.now() - started) / 1000
    const line = `sim: ${ran}/${args.seeds} seeds, ${failed.length} failed, ${(ran / Math.max(secs, 0.001)).toFixed(0)} seeds/s, ${secs.toFixed(0)} s`
    process.stderr.write(process.stderr.isTTY ? `\r${line}${final ? "\n" : ""}` : final || ran % 500 === 0 ? `${line}\n` : "")
  }
  let lastProgress = 0
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    if (interrupted || performance.now() > stopAt) break
    const result = await runSeed(seed, { sabotage })
    ran++
    steps += result.steps
    calls += result.calls
    clusterCalls += result.clusterCalls
    if (result.failure !== undefined) {
      failed.push(result)
      process.stderr.write(`${process.stderr.isTTY ? "\n" : ""}seed ${seed} FAILED: ${result.failure}\n  replay: ${replayCommand(seed, args.sabotage)}\n`)
      if (!args.keepGoing) break
    }
    if (performance.now() - lastProgress > 1000 || !process.stderr.isTTY) {
      lastProgress = performance.now()
      progress(false)
    }
    // Between seeds, let the event loop breathe (Ctrl-C, stderr); never inside one.
    await new Promise((resolve) => setImmediate(resolve))
  }
  progress(true)
  const secs = (performance.now() - started) / 1000
  const stopped = ran < args.seeds ? (interrupted ? " (stopped by Ctrl-C)" : failed.length > 0 && !args.keepGoing ? " (stopped at the first failure)" : " (time bound reached)") : ""
  process.stdout.write(
    `${ran} seeds from ${args.from}${stopped}: ${ran - failed.length} passed, ${failed.length} failed\n` +
      `${calls} calls, ${clusterCalls} cluster calls, ${steps} scheduler steps, ${secs.toFixed(1)} s (${(secs * 1000 / Math.max(ran, 1)).toFixed(1)} ms a seed)\n`
  )
  for (const result of failed) process.stdout.write(`failed seed ${result.seed}: ${result.failure}\n  replay: ${replayCommand(result.seed, args.sabotage)}\n`)
  return failed.length === 0 && ran > 0 ? 0 : 1
}

// `npm run sim -- --seed N | head` closes stdout early: that is not a failure of the seed.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error
})
process.exitCode = await main()
