import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { flatten, stringify, table } from "../../src/cli/json.ts"

describe("json", () => {
  it.effect("bytes print as base64, big integers as strings, maps as objects", () =>
    Effect.sync(() => {
      assert.strictEqual(
        stringify({ B: new Uint8Array([0xff, 0x00, 0x01]), N: 2n ** 64n - 1n, S: 5n, M: new Map([[1, "a"]]), X: undefined }),
        "{\"B\":\"/wAB\",\"N\":\"18446744073709551615\",\"S\":5,\"M\":{\"1\":\"a\"},\"X\":null}"
      )
      assert.strictEqual(stringify("leader:1"), "\"leader:1\"")
      assert.strictEqual(stringify({}), "{}")
    }))

  it.effect("a subarray prints only its own bytes", () =>
    Effect.sync(() => {
      assert.strictEqual(stringify(new Uint8Array([1, 2, 3, 4]).subarray(1, 3)), "\"AgM=\"")
    }))

  it.effect("flatten and table give aligned key/value rows", () =>
    Effect.sync(() => {
      const rows = flatten({ a: 1, b: { c: "x" }, d: [{ e: 2 }], f: [1, 2], g: {} })
      assert.deepStrictEqual(rows, [["a", "1"], ["b.c", "x"], ["d[0].e", "2"], ["f", "[1,2]"], ["g", "{}"]])
      assert.strictEqual(table([["a", "1"], ["bbb", "2"]]), "a    1\nbbb  2")
    }))
})
