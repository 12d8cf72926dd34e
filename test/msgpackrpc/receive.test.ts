/**
 * Receive mode (`Decoder.receive`): chunks lent from one reused read buffer, as a socket with `onread` lends
 * them. Every chunk is scribbled over right after `receive` returns, so a value that kept a reference to lent
 * bytes instead of copying them would come out wrong.
 */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { AssembleBytes, Decoder, type DecoderOptions, type Value, Yield } from "../../src/msgpackrpc/Decoder.ts"
import { encode, sharedEncoder } from "../../src/msgpackrpc/Encoder.ts"
import { chunkSizes, encodable, hex } from "./arbitraries.ts"

const KiB = 1024
const MiB = 1024 * KiB

/** One read buffer for every chunk, overwritten after each `receive`, as the socket's would be by its next read. */
const readBuffer = new Uint8Array(256 * KiB)

/** Feeds `bytes` in lent chunks of the given sizes (cycled), decoding with `step` between reads; then ends. */
const receiveAll = (bytes: Uint8Array, sizes: ReadonlyArray<number>, options?: DecoderOptions) => {
  const decoder = new Decoder(options)
  const values: Array<Value> = []
  let error: CodecError | undefined
  const drain = () => {
    for (;;) {
      const v = decoder.step()
      if (v === undefined) return
      if (v === Yield) continue
      if (v instanceof CodecError) return void (error = v)
      values.push(v)
    }
  }
  let at = 0
  for (let i = 0; at < bytes.length; i++) {
    const n = Math.min(Math.max(1, sizes[i % sizes.length]!), bytes.length - at, readBuffer.length)
    readBuffer.set(bytes.subarray(at, at + n))
    decoder.receive(readBuffer.subarray(0, n))
    readBuffer.fill(0xee, 0, n)
    at += n
    if (error === undefined) drain()
  }
  error ??= decoder.end()
  if (error === undefined) drain()
  return { values, error, decoder }
}

/** What `push` (chunks owned by the decoder) gives for the same bytes: the reference. */
const pushAll = (bytes: Uint8Array, options?: DecoderOptions) => {
  const decoder = new Decoder(options)
  decoder.push(Uint8Array.from(bytes))
  const values: Array<Value> = []
  for (let v = decoder.next(); v !== undefined; v = decoder.next()) {
    if (v instanceof CodecError) return { values, error: v }
    values.push(v)
  }
  return { values, error: decoder.end() }
}

const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) return assert.fail(`unexpected ${b.reason}: ${b.message}`)
  return b
}

/** A Test.Echo reply as the Go server writes it: header, then {Payload, Seq, Note, Served}. */
const echoReply = (payload: Uint8Array): Uint8Array => {
  const parts = sharedEncoder.encodeResponseParts("Test.Echo", 7, "", { Payload: payload, Seq: 7, Note: "n", Served: 1 })
  if (parts instanceof CodecError) return assert.fail(parts.message)
  return Buffer.concat(parts)
}

const randomPayload = (size: number): Uint8Array => {
  const p = new Uint8Array(size)
  // Not UTF-8 (0xff never is), so it comes back as bytes, like Go's []byte payloads.
  for (let i = 0; i < size; i++) p[i] = (i * 2654435761) >>> 24 | 0x80
  p[0] = 0xff
  return p
}

describe("Decoder receive mode", () => {
  it("decodes a large value arriving in many small reads and in one large read identically, into one buffer of its size", () => {
    const payload = randomPayload(MiB)
    const bytes = echoReply(payload)
    const oneRead = receiveAll(bytes, [bytes.length], { maxMessageBytes: 2 * MiB })
    const smallReads = receiveAll(bytes, [1, 7, 1000, 4096, 65536])
    const reference = pushAll(bytes)
    for (const run of [oneRead, smallReads]) {
      assert.isUndefined(run.error)
      assert.strictEqual(run.values.length, 2)
      assert.deepStrictEqual(run.values, reference.values)
      const body = run.values[1] as { readonly Payload: Uint8Array }
      assert.strictEqual(hex(body.Payload), hex(payload))
      // One allocation for the value: its payload is a view of a buffer about the body's size, not a copy.
      assert.isAtMost(body.Payload.buffer.byteLength, MiB + 2 * KiB)
      assert.strictEqual(run.decoder.bufferedBytes, 0)
    }
  })

  it("refuses a value over the decoding budget the same way in small reads and in one read, allocating nothing for it", () => {
    // An array32 of 60 million nils: 5 bytes of header, 480 MB of JS values once built.
    const header = Uint8Array.of(0xdd, 0x03, 0x93, 0x87, 0x00)
    const bytes = Buffer.concat([header, new Uint8Array(64 * KiB).fill(0xc0)])
    for (const sizes of [[bytes.length], [1, 2, 3]]) {
      const run = receiveAll(bytes, sizes)
      assert.strictEqual(run.error?.reason, "TooLarge")
      assert.strictEqual(run.decoder.reservedBytes, 0)
      assert.strictEqual(run.decoder.bufferedBytes, 0)
    }
  })

  it("charges a large value's budget as push does: a listing over maxDecodedBytes fails in any chunking", () => {
    // 3,000 maps of one entry: about 3000 * (64 + 16) bytes charged, over a 200 KB budget.
    const listing = bytesOf(encode(Array.from({ length: 3000 }, (_, i) => ({ K: `key-${i}` }))))
    const options = { maxDecodedBytes: 200_000 }
    assert.strictEqual(pushAll(listing, options).error?.reason, "TooLarge")
    for (const sizes of [[listing.length], [13, 4096]]) {
      assert.strictEqual(receiveAll(listing, sizes, options).error?.reason, "TooLarge")
    }
  })

  it("holds room for a large value only once its header declares it, and counts it in reservedBytes", () => {
    const bytes = echoReply(randomPayload(200 * KiB))
    const decoder = new Decoder()
    readBuffer.set(bytes.subarray(0, 100))
    decoder.receive(readBuffer.subarray(0, 100))
    // The first 100 bytes declared the payload: room for the rest of the body is held.
    assert.isAtLeast(decoder.reservedBytes, 200 * KiB - 100)
    // A value declaring less than AssembleBytes holds nothing.
    const small = new Decoder()
    const smallBytes = echoReply(randomPayload(AssembleBytes / 2))
    readBuffer.set(smallBytes.subarray(0, 100))
    small.receive(readBuffer.subarray(0, 100))
    assert.strictEqual(small.reservedBytes, 0)
  })

  it("says a whole value is in (complete) from the read that finishes it until the value is taken", () => {
    const bytes = bytesOf(encode({ Payload: randomPayload(100 * KiB), Seq: 7 }))
    const decoder = new Decoder()
    let at = 0
    const lend = (n: number): boolean => {
      readBuffer.set(bytes.subarray(at, at + n))
      at += n
      return decoder.receive(readBuffer.subarray(0, n))
    }
    assert.isFalse(lend(64 * KiB))
    assert.isFalse(decoder.complete)
    // The middle of the payload goes into its buffer: counted as taken, and still not a whole value.
    assert.isTrue(lend(16 * KiB))
    assert.isFalse(decoder.complete)
    lend(bytes.length - at)
    assert.isTrue(decoder.complete)
    const value = decoder.next()
    assert.deepStrictEqual(value, { Payload: randomPayload(100 * KiB), Seq: 7 })
    assert.isFalse(decoder.complete)
    assert.isUndefined(decoder.next())
  })

  it("copies small byte arrays out of a lent Buffer, whose slice would be a view", () => {
    const lent = Buffer.alloc(256)
    const bytes = echoReply(Uint8Array.of(1, 2, 255))
    lent.set(bytes)
    const decoder = new Decoder()
    decoder.receive(lent.subarray(0, bytes.length))
    lent.fill(0xee)
    decoder.next()
    const body = decoder.next() as { readonly Payload: Uint8Array }
    assert.deepStrictEqual([...body.Payload], [1, 2, 255])
    assert.notStrictEqual(body.Payload.buffer, lent.buffer)
  })

  it("gives what push gives for any values in any chunking, with every lent chunk overwritten after use", () => {
    fc.assert(
      fc.property(fc.array(encodable, { minLength: 1, maxLength: 5 }), chunkSizes, fc.integer({ min: 1, max: 300_000 }), (values, sizes, sliceBytes) => {
        const bytes = Buffer.concat(values.map((v) => bytesOf(encode(v))))
        const options = { sliceBytes }
        const got = receiveAll(bytes, sizes, options)
        const want = pushAll(bytes, options)
        assert.deepStrictEqual(got.values, want.values)
        assert.strictEqual(got.error?.reason, want.error?.reason)
      }),
      { numRuns: 300 }
    )
  })

  it("gives what push gives for large byte arrays cut anywhere", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300 * KiB }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 70 * KiB }), { minLength: 1, maxLength: 6 }),
        (sizes, cuts) => {
          const bytes = Buffer.concat(sizes.map((n, i) => echoReply(randomPayload(n).fill(0x80 + i, 1, 2))))
          const got = receiveAll(bytes, cuts, { maxMessageBytes: MiB })
          const want = pushAll(bytes, { maxMessageBytes: MiB })
          assert.isUndefined(got.error)
          assert.deepStrictEqual(got.values, want.values)
        }
      ),
      { numRuns: 60 }
    )
  })
})
