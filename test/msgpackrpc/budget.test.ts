/**
 * The decoding budget (`maxDecodedBytes`): what decoding builds is bounded, not only the bytes on the wire.
 * A few bytes that declare millions of elements fail at their header, before anything is built; legitimate
 * 64 MiB replies of bytes, strings and Consul catalog entries pass the default.
 */
import { assert, describe, it } from "@effect/vitest"
import { ResponseReader } from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import {
  DecodedCost,
  decode,
  Decoder,
  DefaultMaxDecodedBytes,
  type Value,
  Yield
} from "../../src/msgpackrpc/Decoder.ts"
import { encodeResponse } from "../../src/msgpackrpc/Codec.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import { catalogListing } from "./fixtures.ts"

const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}
const errorOf = (v: unknown): CodecError => {
  if (!(v instanceof CodecError)) throw new Error(`expected an error, got ${typeof v}`)
  return v
}
const MiB = 1024 * 1024

/** `array32` of `n` copies of `item`, of which only the first `present` follow the header. */
const array32 = (n: number, item: Uint8Array, present = n): Uint8Array => {
  const out = new Uint8Array(5 + present * item.length)
  out[0] = 0xdd
  new DataView(out.buffer).setUint32(1, n)
  for (let i = 0; i < present; i++) out.set(item, 5 + i * item.length)
  return out
}

/** Pushes `input` in `chunk`-byte pieces, draining with `next`; the values and the first error. */
const feed = (decoder: Decoder, input: Uint8Array, chunk: number) => {
  const values: Array<Value> = []
  for (let at = 0; at < input.length; at += chunk) {
    decoder.push(input.subarray(at, at + chunk))
    for (let v = decoder.next(); v !== undefined; v = decoder.next()) {
      if (v instanceof CodecError) return { values, error: v, pushed: Math.min(at + chunk, input.length) }
      values.push(v)
    }
  }
  return { values, error: decoder.end(), pushed: input.length }
}

describe("decoding budget", () => {
  it("refuses a 60 MiB array32 of nils, empty arrays or empty maps at its 5-byte header, before any element arrives", () => {
    const sixtyMiB = 60 * MiB
    for (const item of ["c0", "90", "80"]) {
      const decoder = new Decoder()
      decoder.push(array32(sixtyMiB, h(item), 0))
      const error = errorOf(decoder.next())
      assert.strictEqual(error.reason, "TooLarge", item)
      assert.include(error.message, "maxDecodedBytes")
      assert.strictEqual(decoder.bufferedBytes, 0, "nothing is held after the refusal")
      assert.strictEqual(decoder.bytesCopied, 0)
    }
    // map32 of 30 Mi entries: 60 Mi keys and values.
    const map = new Decoder()
    map.push(h("df 01e00000"))
    assert.strictEqual(errorOf(map.next()).reason, "TooLarge")
  })

  it("refuses the same bomb as a reply body in the ResponseReader the pool and server use, at the body's header", () => {
    const header = bytesOf(encodeResponse("Test.Echo", 7, "", null)).subarray(0, -1) // drop the nil body
    const reader = new ResponseReader({ maxMessageBytes: 64 * MiB, maxBufferedBytes: 128 * MiB })
    reader.push(header)
    reader.push(h("dd 03c00000 80 80 80 80"))
    const error = errorOf(reader.next())
    assert.strictEqual(error.reason, "TooLarge")
    assert.include(error.message, "maxDecodedBytes")
  })

  it("charges 8 bytes a value, 64 an array or map, 256 a byte array and 320 an ext, each at its header", () => {
    // The top-level array: 64, plus 8 per declared element.
    const top = (n: number) => DecodedCost.container + n * DecodedCost.value
    // [element, what it costs beyond its slot, the bytes of its header]
    const cases: ReadonlyArray<readonly [string, number, number]> = [
      ["c0", 0, 1],
      ["90", DecodedCost.container - DecodedCost.value, 1],
      ["80", DecodedCost.container - DecodedCost.value, 1],
      ["c4 00", DecodedCost.bytes - DecodedCost.value, 2],
      ["d4 01 00", DecodedCost.bytes + DecodedCost.container - DecodedCost.value, 1]
    ]
    const n = 100
    for (const [item, extra, header] of cases) {
      const size = h(item).length
      const cost = top(n) + n * extra
      const input = array32(n, h(item))
      assert.notInstanceOf(decode(input, { maxDecodedBytes: cost }), CodecError, `${item} at exactly its cost`)
      const over = feed(new Decoder({ maxDecodedBytes: cost - 1 }), input, 1)
      assert.strictEqual(over.error?.reason, "TooLarge", item)
      assert.deepStrictEqual(over.values, [])
      // Refused at the header that crossed the budget: the array's own for nils, else the last element's.
      assert.strictEqual(over.pushed, extra === 0 ? 5 : 5 + (n - 1) * size + header, item)
    }
  })

  it("charges a container's declared count at its header: an array16 claiming 65535 elements fails 3 bytes in", () => {
    const decoder = new Decoder({ maxDecodedBytes: 65535 * DecodedCost.value })
    const { error, pushed } = feed(decoder, h("dc ffff c0 c0 c0"), 1)
    assert.strictEqual(error?.reason, "TooLarge")
    assert.strictEqual(pushed, 3)
    // The nested claim is charged as its own header arrives.
    const nested = feed(new Decoder({ maxDecodedBytes: 4096 }), h("92 c0 dc 0200 c0"), 1)
    assert.strictEqual(nested.error?.reason, "TooLarge")
    assert.strictEqual(nested.pushed, 5)
  })

  it("charges a str that is not UTF-8 as a byte array when it is read, and returns nothing of the value", () => {
    const n = 1000
    const scanned = DecodedCost.container + n * DecodedCost.value
    const budget = scanned + 10 * (DecodedCost.bytes - DecodedCost.value)
    const ascii = array32(n, h("a1 61"))
    assert.deepStrictEqual(decode(ascii, { maxDecodedBytes: scanned }), new Array(n).fill("a"))
    const raw = array32(n, h("a1 ff"))
    const error = errorOf(decode(raw, { maxDecodedBytes: budget }))
    assert.strictEqual(error.reason, "TooLarge")
    assert.include(error.message, "maxDecodedBytes")
    const few = array32(10, h("a1 ff"))
    assert.deepStrictEqual(decode(few, { maxDecodedBytes: budget }), new Array(10).fill(Uint8Array.of(0xff)))
  })

  it("is 256 MiB by default, and a missing, zero or NaN option means the default", () => {
    assert.strictEqual(DefaultMaxDecodedBytes, 256 * MiB)
    const justOver = array32(DefaultMaxDecodedBytes / DecodedCost.value, h("c0"), 0) // 64 + 8 n > the default
    for (const options of [undefined, {}, { maxDecodedBytes: 0 }, { maxDecodedBytes: Number.NaN }]) {
      const decoder = new Decoder(options)
      decoder.push(justOver)
      assert.strictEqual(errorOf(decoder.next()).reason, "TooLarge")
    }
    const under = new Decoder()
    under.push(array32((DefaultMaxDecodedBytes - DecodedCost.container) / DecodedCost.value, h("c0"), 0))
    assert.isUndefined(under.next(), "a count within the default waits for its elements")
  })

  it("passes a 64 MiB byte array and a 60 MiB string under the default budget", () => {
    const bytes = new Uint8Array(64 * MiB - 16).fill(0xab)
    const decodedBytes = decode(bytesOf(encode(bytes)))
    assert.instanceOf(decodedBytes, Uint8Array)
    assert.strictEqual((decodedBytes as Uint8Array).length, bytes.length)
    const text = "é".repeat(30 * MiB)
    assert.strictEqual(decode(bytesOf(encode(text))), text)
  })

  it("passes a Consul catalog listing near 64 MiB under the default budget (a tenth of both, for speed)", () => {
    // The budget charges per value, so a listing's cost is linear in its entries: 7,000 instances within a
    // tenth of the default means 70,000 (62 MiB on the wire) within the default.
    const wire = bytesOf(encode(catalogListing(7_000)))
    assert.isAbove(wire.length, 6 * MiB)
    const decoded = decode(wire, { maxDecodedBytes: DefaultMaxDecodedBytes / 10 })
    if (decoded instanceof CodecError) return assert.fail(decoded.message)
    const nodes = (decoded as unknown as { readonly ServiceNodes: ReadonlyArray<{ readonly ServiceID: string }> })
      .ServiceNodes
    assert.strictEqual(nodes.length, 7_000)
    assert.strictEqual(nodes[6_999]!.ServiceID, "web-6999")
  })

  it("decodes a large value arriving in many small chunks and in one large chunk identically, within the budget", () => {
    const wire = bytesOf(encode(catalogListing(2_000)))
    assert.isAbove(wire.length, 1.5 * MiB)
    const whole = feed(new Decoder(), wire, wire.length)
    const small = feed(new Decoder(), wire, 1460)
    assert.isUndefined(whole.error)
    assert.isUndefined(small.error)
    assert.strictEqual(whole.values.length, 1)
    assert.deepStrictEqual(small.values, whole.values)
    // The same in slices, as the pool reads replies: `step` with Yield between slices.
    for (const chunk of [1460, wire.length]) {
      const decoder = new Decoder()
      let value: Value | undefined
      let slices = 0
      for (let at = 0; at < wire.length; at += chunk) {
        decoder.push(wire.subarray(at, at + chunk))
        for (let v = decoder.step(); v !== undefined; v = decoder.step()) {
          if (v === Yield) {
            slices++
            continue
          }
          if (v instanceof CodecError) assert.fail(v.message)
          value = v
        }
      }
      assert.isAbove(slices, 2, "a value of a few MiB is decoded in several slices")
      assert.deepStrictEqual(value, whole.values[0])
    }
  })
})
