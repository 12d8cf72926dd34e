/**
 * `Decoder.step` and `MessageReader.step`: a large value is decoded a slice at a time, so the caller can give
 * the event loop a turn between slices; small values are decoded at once, as `next` does.
 */
import { assert, describe, it } from "@effect/vitest"
import { encodeResponse, ResponseReader } from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { decode, Decoder, DefaultSliceBytes, type Value, Yield } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import { catalogListing } from "./fixtures.ts"

const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}

/** Steps until a result that is not Yield; the result and the number of Yields before it. */
const stepOut = (step: () => unknown): { readonly result: unknown; readonly yields: number } => {
  let yields = 0
  for (let i = 0; i < 1_000_000; i++) {
    const v = step()
    if (v !== Yield) return { result: v, yields }
    yields++
  }
  throw new Error("step never finished")
}

describe("Decoder.step", () => {
  it("decodes a value within sliceBytes at once, with no Yield, as next does", () => {
    const small = bytesOf(encode(catalogListing(3)))
    const decoder = new Decoder()
    decoder.push(small)
    assert.deepStrictEqual(decoder.step(), decode(small))
    assert.isFalse(decoder.decoding)
    assert.strictEqual(DefaultSliceBytes, 256 * 1024)
  })

  it("decodes a large value in slices of about sliceBytes of work, to the value next gives", () => {
    // 10,000 nils: each slice costs a byte of input and an 8-byte slot per nil.
    const wire = bytesOf(encode(new Array(10_000).fill(null)))
    const decoder = new Decoder({ sliceBytes: 900 })
    decoder.push(wire)
    const { result, yields } = stepOut(() => decoder.step())
    assert.deepStrictEqual(result, new Array(10_000).fill(null))
    // 90,000 units of work in slices of 900, give or take the array's own header.
    assert.isAtLeast(yields, 95)
    assert.isAtMost(yields, 101)
  })

  it("lets next finish a value that step started, and takes pushes between slices", () => {
    const listing = bytesOf(encode(catalogListing(200)))
    const after = bytesOf(encode("after"))
    const decoder = new Decoder({ sliceBytes: 1000 })
    decoder.push(listing)
    assert.strictEqual(decoder.step(), Yield)
    assert.isTrue(decoder.decoding)
    decoder.push(after)
    assert.strictEqual(decoder.step(), Yield)
    assert.deepStrictEqual(decoder.next(), decode(listing))
    assert.isFalse(decoder.decoding)
    assert.strictEqual(decoder.next(), "after")
  })

  it("does not take end between slices of a body for a truncation: the message completes", () => {
    const body: Value = new Array(5000).fill("x")
    const response = bytesOf(encodeResponse("Test.Echo", 9, "", body))
    const reader = new ResponseReader({ sliceBytes: 500 })
    reader.push(response)
    assert.strictEqual(reader.step(), Yield)
    assert.isUndefined(reader.end(), "the body's bytes are all there")
    const { result } = stepOut(() => reader.step())
    assert.deepStrictEqual(result, { header: { ServiceMethod: "Test.Echo", Seq: 9, Error: "" }, body })
    assert.isUndefined(reader.next())
  })

  it("fails a sliced value that breaks the budget while it is read, and keeps failing", () => {
    // 100 strs that are not UTF-8: the scan charges strings, the read finds byte arrays.
    const raws = Uint8Array.from([0xdc, 0x00, 100, ...new Array(100).fill([0xa1, 0xff]).flat()])
    const decoder = new Decoder({ sliceBytes: 64, maxDecodedBytes: 64 + 100 * 8 + 10 * 248 })
    decoder.push(raws)
    const { result } = stepOut(() => decoder.step())
    assert.instanceOf(result, CodecError)
    assert.strictEqual((result as CodecError).reason, "TooLarge")
    assert.isFalse(decoder.decoding)
    assert.strictEqual(decoder.step(), result)
    assert.strictEqual(decoder.next(), result)
  })
})
