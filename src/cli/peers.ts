/**
 * What the `connpool` command needs beyond the library: `@effect/platform-node`
 * (an optional peer dependency, so apps that only use the pools need not
 * install it) and `effect` 4.1 or later (its CLI output API). Checked before
 * the command loads, so a missing piece is one line and exit 2, not a stack
 * trace from the module loader.
 *
 * @since 0.1.0
 */

/** The oldest `effect` the command runs on: 4.1 (`CliOutput.Presenter`). */
export const MinEffectForCli = [4, 1] as const

/** How the command finds a package: its resolved path, or undefined when it is not installed. */
export type Resolve = (specifier: string) => string | undefined

/** Why the command cannot run here, or undefined when it can. */
export const cliProblem = (resolve: Resolve, effectVersion: string | undefined): string | undefined => {
  if (resolve("@effect/platform-node/package.json") === undefined) {
    return "the connpool command needs @effect/platform-node next to effect-connpool " +
      "(npm install @effect/platform-node; the library itself does not)"
  }
  const [major = 0, minor = 0] = (effectVersion ?? "").split(".").map(Number)
  const [wantMajor, wantMinor] = MinEffectForCli
  if (major < wantMajor || (major === wantMajor && minor < wantMinor)) {
    return `the connpool command needs effect ${wantMajor}.${wantMinor} or later, found ${effectVersion ?? "none"}`
  }
  return undefined
}
