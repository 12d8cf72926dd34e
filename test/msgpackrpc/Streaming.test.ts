/**
 * The streaming-RPC messages as bytes and back: what Go's codec writes for each (struct maps
 * with sorted field names, `[]byte` in the str family), and typed errors for anything else.
 */
import { assert, describe, it } from "@effect/vitest"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { decode } from "../../src/msgpackrpc/Decoder.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import * as Streaming from "../../src/msgpackrpc/Streaming.ts"

const ascii = (s: string): Array<number> => Array.from(s, (c) => c.charCodeAt(0))

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)))

const value = (bytes: Uint8Array | CodecError): Value => {
  if (bytes instanceof CodecError) return assert.fail(bytes.message)
  const v = decode(bytes)
  if (v instanceof CodecError) return assert.fail(v.message)
  return v
}

describe("Streaming codec", () => {
  it("writes the header after the protocol's streaming byte, as Go's StreamingRpcHeader", () => {
    const bytes = Streaming.encodeHeader("FileSystem.Logs", 0x05)
    assert.deepStrictEqual(
      Array.from(bytes as Uint8Array),
      [0x05, 0x81, 0xa6, ...ascii("Method"), 0xa0 | 15, ...ascii("FileSystem.Logs")]
    )
    assert.strictEqual(Streaming.parseHeader(value(Streaming.encodeHeader("FileSystem.Logs"))), "FileSystem.Logs")
  })

  it("writes and reads the ack: an empty Error accepts the stream", () => {
    assert.deepStrictEqual(Array.from(Streaming.encodeAck("") as Uint8Array), [0x81, 0xa5, ...ascii("Error"), 0xa0])
    assert.strictEqual(Streaming.parseAck(value(Streaming.encodeAck(""))), "")
    assert.strictEqual(Streaming.parseAck(value(Streaming.encodeAck("Unknown rpc method: \"X\""))), "Unknown rpc method: \"X\"")
    // Go's decoder takes a missing or nil field as the zero value.
    assert.strictEqual(Streaming.parseAck({}), "")
    assert.strictEqual(Streaming.parseAck({ Error: null }), "")
  })

  it("writes a heartbeat as Go writes StreamErrWrapper{}", () => {
    const expected = [0x82, 0xa5, ...ascii("Error"), 0xc0, 0xa7, ...ascii("Payload"), 0xc0]
    assert.deepStrictEqual(Array.from(Streaming.heartbeatBytes), expected)
    assert.deepStrictEqual(Streaming.parseFrame(value(Streaming.heartbeatBytes)), { _tag: "Heartbeat" })
  })

  it("writes payloads with Go's string headers (fixstr, str16, str32, never str8), without copying them", () => {
    for (const [size, head] of [[31, [0xbf]], [32, [0xda, 0, 32]], [65535, [0xda, 0xff, 0xff]], [65536, [0xdb, 0, 1, 0, 0]]] as const) {
      const payload = new Uint8Array(size).fill(0x80)
      const parts = Streaming.encodePayload(payload)
      assert.strictEqual(parts[1], payload, `size ${size}: the payload itself, not a copy`)
      assert.deepStrictEqual(Array.from(parts[0]!.subarray(-head.length)), [...head], `size ${size}`)
      const frame = Streaming.parseFrame(value(concat(parts)))
      assert.isTrue(!(frame instanceof CodecError) && frame._tag === "Payload" && frame.payload.length === size)
    }
  })

  it("reads a payload as bytes whether it decoded as a string (valid UTF-8) or as bytes", () => {
    const fromText = Streaming.parseFrame({ Error: null, Payload: "héllo" })
    assert.deepStrictEqual(fromText, { _tag: "Payload", payload: new TextEncoder().encode("héllo") })
    const fromBytes = Streaming.parseFrame({ Payload: Uint8Array.of(0xff, 0xfe) })
    assert.deepStrictEqual(fromBytes, { _tag: "Payload", payload: Uint8Array.of(0xff, 0xfe) })
    // An empty payload carries nothing: a heartbeat.
    assert.deepStrictEqual(Streaming.parseFrame({ Payload: "" }), { _tag: "Heartbeat" })
  })

  it("writes and reads an error frame with its code; an error wins over a payload", () => {
    const coded = Streaming.parseFrame(value(Streaming.encodeError("no such alloc", 404)))
    assert.deepStrictEqual(coded, { _tag: "Error", message: "no such alloc", code: 404 })
    const uncoded = Streaming.parseFrame(value(Streaming.encodeError("eof")))
    assert.deepStrictEqual(uncoded, { _tag: "Error", message: "eof", code: undefined })
    const both = Streaming.parseFrame({ Error: { Message: "m", Code: 5n }, Payload: "x" })
    assert.deepStrictEqual(both, { _tag: "Error", message: "m", code: 5 })
    // The bytes Go writes for RpcError: fields sorted, a nil Code as nil.
    const bytes = encode({ Error: { Code: null, Message: "m" }, Payload: null }) as Uint8Array
    assert.deepStrictEqual(Array.from(Streaming.encodeError("m") as Uint8Array), Array.from(bytes))
  })

  it("anything but the messages' shapes is a typed CodecError, never a throw", () => {
    const cases: ReadonlyArray<Value> = [
      null,
      "frame",
      [1, 2],
      { Payload: 7 },
      { Error: "not a map" },
      { Error: { Message: 1 } },
      { Error: { Message: "m", Code: 1.5 } }
    ]
    for (const v of cases) {
      const frame = Streaming.parseFrame(v)
      assert.instanceOf(frame, CodecError, `${JSON.stringify(v)}`)
      assert.strictEqual((frame as CodecError).reason, "InvalidHeader")
    }
    assert.instanceOf(Streaming.parseHeader([]), CodecError)
    assert.instanceOf(Streaming.parseHeader({ Method: 5 }), CodecError)
    assert.instanceOf(Streaming.parseAck("ok"), CodecError)
  })
})
