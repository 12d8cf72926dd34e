import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { flatten, fromJsonValue, JsonInputError, parseJsonInput, stringify, table, toJsonValue } from "../../src/cli/json.ts"
import * as GoTime from "../../src/msgpackrpc/GoTime.ts"

/** Go: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC).MarshalBinary() */
const goTimeBytes = Uint8Array.from(Buffer.from("010000000edd73c175075bcd15ffff", "hex"))

describe("json", () => {
  it.effect("bytes that are not UTF-8 print as {\"$bytes\"}, big integers as strings, maps as objects", () =>
    Effect.sync(() => {
      assert.strictEqual(
        stringify({ B: new Uint8Array([0xff, 0x00, 0x01]), N: 2n ** 64n - 1n, S: 5n, M: new Map([[1, "a"]]), X: undefined }),
        "{\"B\":{\"$bytes\":\"/wAB\"},\"N\":\"18446744073709551615\",\"S\":5,\"M\":{\"1\":\"a\"},\"X\":null}"
      )
      assert.strictEqual(stringify("leader:1"), "\"leader:1\"")
      assert.strictEqual(stringify({}), "{}")
    }))

  it.effect("the text \"AP8BAg==\" and the bytes 00 ff 01 02 print differently", () =>
    Effect.sync(() => {
      assert.strictEqual(stringify("AP8BAg=="), "\"AP8BAg==\"")
      assert.strictEqual(stringify(Uint8Array.of(0, 255, 1, 2)), "{\"$bytes\":\"AP8BAg==\"}")
    }))

  it.effect("a subarray prints only its own bytes", () =>
    Effect.sync(() => {
      assert.strictEqual(stringify(new Uint8Array([0xff, 2, 3, 4]).subarray(0, 2)), "{\"$bytes\":\"/wI=\"}")
    }))

  it.effect("--bytes base64 prints every byte string, text and times included, as {\"$bytes\"}", () =>
    Effect.sync(() => {
      assert.strictEqual(
        stringify({ T: "hi", E: "", B: Uint8Array.of(1), W: goTimeBytes }, "base64"),
        `{"T":{"$bytes":"aGk="},"E":{"$bytes":""},"B":{"$bytes":"AQ=="},"W":{"$bytes":"${Buffer.from(goTimeBytes).toString("base64")}"}}`
      )
    }))

  it.effect("prints a Go time as {\"$time\"} with nine fraction digits, whether it decoded as bytes or text", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(toJsonValue(goTimeBytes), { $time: "2024-03-01T12:30:45.123456789Z" })
      // Some times are valid UTF-8 (every byte below 0x80), so they arrive as strings.
      const bytes = GoTime.toBinary(new GoTime.GoTime({ seconds: 124_651_776n, nanos: 0, zone: 3600 })) as Uint8Array
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes)
      assert.deepStrictEqual(toJsonValue(text), { $time: "1973-12-13T18:29:36.000000000+01:00" })
      // Fifteen bytes that start like a time but are not plausible stay bytes.
      assert.deepStrictEqual(toJsonValue(Uint8Array.of(1, ...new Array(14).fill(0xff))), { $bytes: "Af//////////////////" })
    }))

  it.effect("gives a map whose only key is a marker one more $, and reads it back", () =>
    Effect.sync(() => {
      const tricky = { a: { $bytes: "AP8BAg==" }, b: { $$time: 1 }, c: { $bytes: 1, other: 2 } }
      const printed = stringify(tricky)
      assert.strictEqual(printed, "{\"a\":{\"$$bytes\":\"AP8BAg==\"},\"b\":{\"$$$time\":1},\"c\":{\"$bytes\":1,\"other\":2}}")
      assert.deepStrictEqual(parseJsonInput(printed), tricky)
    }))

  it.effect("reads back what it prints: bytes, times and text", () =>
    Effect.sync(() => {
      const value = { B: Uint8Array.of(0, 255), W: goTimeBytes, T: "text", L: [Uint8Array.of(0xfe)] }
      for (const form of ["auto", "base64"] as const) {
        const back = parseJsonInput(stringify(value, form)) as Record<string, unknown>
        assert.deepStrictEqual(back["B"], value.B, form)
        assert.deepStrictEqual(back["W"], value.W, form)
        assert.deepStrictEqual(back["L"], value.L, form)
        assert.deepStrictEqual(back["T"], form === "auto" ? "text" : new TextEncoder().encode("text"), form)
      }
    }))

  it.effect("refuses a $bytes that is not base64 and a $time that is not RFC 3339, naming where", () =>
    Effect.sync(() => {
      assert.throws(() => fromJsonValue({ A: [{ $bytes: "no!" }] }), JsonInputError, "$.A[0]: $bytes wants a base64 string")
      assert.throws(() => fromJsonValue({ $bytes: 5 }), JsonInputError)
      assert.throws(() => fromJsonValue({ T: { $time: "yesterday" } }), JsonInputError, "$.T: not an RFC 3339 time")
    }))

  it.effect("flatten and table give aligned key/value rows", () =>
    Effect.sync(() => {
      const rows = flatten({ a: 1, b: { c: "x" }, d: [{ e: 2 }], f: [1, 2], g: {} })
      assert.deepStrictEqual(rows, [["a", "1"], ["b.c", "x"], ["d[0].e", "2"], ["f", "[1,2]"], ["g", "{}"]])
      assert.strictEqual(table([["a", "1"], ["bbb", "2"]]), "a    1\nbbb  2")
    }))
})
