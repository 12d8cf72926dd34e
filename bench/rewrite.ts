/**
 * `node bench/rewrite.ts`: writes BENCHMARKS.md again from the run recorded in
 * bench/results/latest.json, with the current bench/misses.md and report
 * code. For when the profiles of a miss are written after the run that found
 * it: the figures stay those of the recorded run, nothing is measured again.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { die } from "./cli.ts"
import { markdown, writeAtomically } from "./report.ts"
import { type Results, summarize } from "./summary.ts"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const resultsDir = path.join(root, "bench", "results")
const file = path.join(resultsDir, "latest.json")
if (!fs.existsSync(file)) die(`no recorded run: ${path.relative(root, file)} is missing (run npm run bench first)`, 1)

const recorded = JSON.parse(fs.readFileSync(file, "utf8")) as Omit<Results, "started" | "finished"> & {
  readonly date: string
  readonly seconds: number
  readonly runs: Pick<Results, "a" | "b" | "c" | "d" | "e" | "f" | "g">
}
const started = new Date(recorded.date)
const results: Results = {
  started,
  finished: new Date(started.getTime() + recorded.seconds * 1000),
  mode: recorded.mode,
  only: recorded.only,
  machine: recorded.machine,
  node: recorded.node,
  go: recorded.go ?? undefined,
  commands: recorded.commands,
  ...recorded.runs
}
writeAtomically(path.join(root, "BENCHMARKS.md"), markdown(results, summarize(results)), resultsDir)
process.stdout.write(`written: BENCHMARKS.md, from the run of ${recorded.date}\n`)
