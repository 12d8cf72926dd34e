import { assert, describe, it } from "@effect/vitest"
import type { RespValue } from "../../examples/redis/resp.ts"
import { encodeCommand, RespDecoder, RespProtocolError } from "../../examples/redis/resp.ts"

describe("resp (example RESP2 codec)", () => {
  it("encodes a command as an array of bulk strings", () => {
    assert.strictEqual(encodeCommand(["SET", "k", "héllo"]).toString(), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n")
  })

  it("decodes every reply type, whole or fed one byte at a time", () => {
    const wire = Buffer.from("+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n*-1\r\n")
    const expected: Array<RespValue> = [
      { _tag: "Simple", value: "OK" },
      { _tag: "Error", message: "ERR wrong" },
      { _tag: "Integer", value: 42 },
      { _tag: "Bulk", value: "hello" },
      { _tag: "Bulk", value: null },
      { _tag: "Array", value: [{ _tag: "Bulk", value: "a" }, { _tag: "Integer", value: 1 }] },
      { _tag: "Array", value: null }
    ]
    assert.deepStrictEqual(new RespDecoder().push(wire), expected)
    const decoder = new RespDecoder()
    const replies: Array<RespValue> = []
    for (const byte of wire) replies.push(...decoder.push(Uint8Array.of(byte)))
    assert.deepStrictEqual(replies, expected)
  })

  it("rejects an unknown type byte", () => {
    assert.throws(() => new RespDecoder().push(Buffer.from("?x\r\n")), RespProtocolError)
  })
})
