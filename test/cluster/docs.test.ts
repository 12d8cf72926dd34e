/**
 * docs/cluster.md's example is examples/cluster.ts (so the type checker
 * compiles it); this suite checks that the two have not drifted apart and
 * runs the example against two servers on loopback.
 */
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect } from "effect"
import * as fs from "node:fs"
import { program } from "../../examples/cluster.ts"
import * as TestService from "../../src/server/TestService.ts"

const read = (relative: string) => fs.readFileSync(new URL(relative, import.meta.url), "utf8")

describe("docs/cluster.md", () => {
  it("shows examples/cluster.ts as its example", () => {
    const doc = read("../../docs/cluster.md")
    const block = /```ts\n([\s\S]*?)```/.exec(doc)?.[1]
    const example = /\/\/ example:start\n([\s\S]*?)\/\/ example:end/.exec(read("../../examples/cluster.ts"))?.[1]
    assert.isDefined(block)
    assert.isDefined(example)
    assert.strictEqual(block, example!.replace(`from "../src/index.ts"`, `from "effect-connpool"`))
  })

  it.effect("its example calls a cluster named by CONNPOOL_SERVERS", () =>
    Effect.gen(function*() {
      const a = yield* TestService.serve()
      const b = yield* TestService.serve()
      const result = yield* program.pipe(
        Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ CONNPOOL_SERVERS: `${a.address},${b.address}` })))
      )
      assert.include([a.address, b.address], result.leader)
      assert.strictEqual(result.leader, result.current)
      assert.strictEqual(result.retries, 0)
    }))
})
