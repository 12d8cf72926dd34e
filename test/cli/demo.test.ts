import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { DemoCalls } from "../../src/cli/demo.ts"
import { runCli } from "./helpers.ts"

describe("connpool demo", () => {
  it.live("serves, benches, prints results and pool stats, and exits 0", () =>
    Effect.gen(function*() {
      const result = yield* runCli("demo")
      assert.strictEqual(result.code, 0, result.stderr)
      assert.match(result.stdout, new RegExp(`^ok\\s+${DemoCalls}$`, "m"))
      assert.match(result.stdout, /^failed\s+0$/m)
      assert.include(result.stdout, "pool stats")
    }))
})
