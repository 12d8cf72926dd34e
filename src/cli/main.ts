#!/usr/bin/env node
/**
 * The `connpool` executable: checks what the command needs (peers.ts), then
 * loads it.
 *
 * @since 0.1.0
 */
import * as Module from "node:module"
import { cliProblem } from "./peers.ts"

// Node 22.1+ keeps the code it compiles for the command's modules in a cache
// on disk (os.tmpdir()), which halves the start of every later run; a
// no-op where unavailable, and NODE_DISABLE_COMPILE_CACHE turns it off.
Module.enableCompileCache?.()

const require = Module.createRequire(import.meta.url)
const resolve = (specifier: string): string | undefined => {
  try {
    return require.resolve(specifier)
  } catch {
    return undefined
  }
}
const effectVersion = resolve("effect/package.json") === undefined
  ? undefined
  : (require("effect/package.json") as { readonly version: string }).version

const problem = cliProblem(resolve, effectVersion)
if (problem === undefined) {
  await import("./run.ts")
} else {
  process.stderr.write(`connpool: ${problem}\n`)
  process.exitCode = 2
}
