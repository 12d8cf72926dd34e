import { assert, describe, it } from "@effect/vitest"
import { cliProblem } from "../../src/cli/peers.ts"

const installed = (...names: ReadonlyArray<string>) => (specifier: string) =>
  names.some((name) => specifier.startsWith(`${name}/`)) ? `/node_modules/${specifier}` : undefined

describe("connpool's peers", () => {
  it("runs with @effect/platform-node and effect 4.1 or later", () => {
    for (const version of ["4.1.0", "4.1.7", "4.2.0", "5.0.0"]) {
      assert.isUndefined(cliProblem(installed("@effect/platform-node", "effect"), version), version)
    }
  })

  it("says to install @effect/platform-node when it is missing", () => {
    assert.match(cliProblem(installed("effect"), "4.1.0") ?? "", /needs @effect\/platform-node .*npm install @effect\/platform-node/)
  })

  it("names the effect it found when it is older than 4.1", () => {
    assert.match(cliProblem(installed("@effect/platform-node", "effect"), "4.0.6") ?? "", /needs effect 4\.1 or later, found 4\.0\.6/)
    assert.match(cliProblem(installed("@effect/platform-node"), undefined) ?? "", /found none/)
  })
})
