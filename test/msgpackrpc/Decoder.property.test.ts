import { decodeMulti, encode as oracleEncode, ExtData } from "@msgpack/msgpack"
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { decode, Decoder, type DecoderOptions, Ext, type Value, Yield } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import {
  amplifier,
  chunkSizes,
  concat,
  encodable,
  expected,
  hex,
  hostile,
  intValue,
  keyString,
  rawValue,
  split,
  wellFormed,
  wire
} from "./arbitraries.ts"

const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) return assert.fail(`unexpected ${b.reason}: ${b.message}`)
  return b
}

/** A cheap check for hot paths: chai builds an assertion object per call. */
const check = (ok: boolean, message: string): void => {
  if (!ok) assert.fail(message)
}

/**
 * How far past `maxMessageBytes` an incomplete value may be buffered: the scanner admits an item once
 * its position is within the limit and then needs its whole header (at most 6 bytes, ext32) to read on.
 */
const HeaderSlack = 5

interface Outcome {
  readonly values: Array<Value>
  readonly error: CodecError | undefined
  /** Most bytes held after a drain that asked for more input. */
  readonly maxWaiting: number
}

/**
 * Feeds `chunks` to `decoder`, draining after the pushes `drains` selects (cycled; the entry after the last
 * chunk says whether to drain before `end`), then ends the input and drains the rest. Checks on the way that
 * every call returns, that each value consumes input, that the buffered input respects the limits, that an
 * overflowing push is reported once the values before it are drained, and that an error sticks.
 */
const run = (decoder: Decoder, chunks: ReadonlyArray<Uint8Array>, drains: ReadonlyArray<boolean>, options: DecoderOptions = {}): Outcome => {
  const values: Array<Value> = []
  let error: CodecError | undefined = undefined
  let maxWaiting = 0
  let overflowed = false
  const maxBuffered = options.maxBufferedBytes ?? Infinity
  const drain = (): void => {
    while (error === undefined) {
      const before = decoder.bufferedBytes
      const v = decoder.next()
      if (v === undefined) {
        check(!overflowed, "an overflowing push not reported once the values before it were drained")
        maxWaiting = Math.max(maxWaiting, decoder.bufferedBytes)
        return
      }
      if (v instanceof CodecError) {
        error = v
        check(decoder.bufferedBytes === 0, "a failed decoder still holds input")
        return
      }
      check(decoder.bufferedBytes < before, "a value returned without consuming input")
      values.push(v)
    }
  }
  chunks.forEach((chunk, i) => {
    const before = decoder.bufferedBytes
    if (error === undefined && before + chunk.length > maxBuffered) overflowed = true
    decoder.push(chunk)
    check(decoder.bufferedBytes <= maxBuffered, "buffered input over maxBufferedBytes")
    if (overflowed || error !== undefined) check(decoder.bufferedBytes === before, "a push taken after an overflow or error")
    if (error !== undefined) check(decoder.next() === error, "an error that did not stick")
    else if (drains[i % drains.length]) drain()
  })
  if (error === undefined && drains[chunks.length % drains.length]) drain()
  const count = values.length
  const atEnd = decoder.end()
  if (error !== undefined) check(atEnd === error, "end() forgot the error")
  else if (atEnd !== undefined) {
    // end() fails only when the first buffered value is cut short, so nothing can come before its error.
    drain()
    check(error === atEnd && values.length === count, "end() and next() disagree about the error")
  } else {
    drain()
  }
  if (error !== undefined) {
    check(decoder.next() === error && decoder.end() === error, "an error that did not stick")
  } else {
    check(decoder.next() === undefined && decoder.bufferedBytes === 0, "input left after a clean end")
  }
  return { values, error, maxWaiting }
}

const drainsArb = fc.array(fc.boolean(), { minLength: 1, maxLength: 6 })

const errorText = (e: CodecError | undefined): string => (e === undefined ? "none" : `${e.reason}: ${e.message}`)

/** @msgpack/msgpack's values in our value model: safe bigints as numbers, ExtData as Ext. */
const fromOracle = (v: unknown): Value => {
  if (v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string") return v
  if (typeof v === "bigint") return intValue(v)
  if (v instanceof Uint8Array) return Uint8Array.from(v)
  if (v instanceof ExtData) return new Ext(v.type, Uint8Array.from(v.data as Uint8Array))
  if (Array.isArray(v)) return v.map(fromOracle)
  const out: { [key: string]: Value } = {}
  for (const [k, x] of Object.entries(v as object)) out[k] = fromOracle(x)
  return out
}

describe("Decoder properties", () => {
  it("decodes back to back values from our Encoder, split at any chunk boundaries, to what was encoded", () => {
    fc.assert(
      fc.property(fc.array(encodable, { minLength: 1, maxLength: 6 }), chunkSizes, drainsArb, (values, sizes, drains) => {
        const input = concat(values.map((v) => bytesOf(encode(v))))
        const decoder = new Decoder()
        const { values: got, error } = run(decoder, split(input, sizes), drains)
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(got, values.map(expected))
        // Each value is made contiguous at most once.
        assert.isAtMost(decoder.bytesCopied, input.length)
      }),
      { numRuns: 300 }
    )
  })

  it("re-encodes a decoded value to exactly the bytes it was decoded from, when our Encoder wrote them", () => {
    fc.assert(
      fc.property(encodable, (value) => {
        const bytes = bytesOf(encode(value)).slice()
        const decoded = decode(bytes)
        if (decoded instanceof CodecError) return assert.fail(errorText(decoded))
        assert.strictEqual(hex(bytesOf(encode(decoded))), hex(bytes))
      }),
      { numRuns: 300 }
    )
  })

  it("decodes every msgpack format, minimal or not, to the documented value at any chunking, copying out of the chunks", () => {
    fc.assert(
      fc.property(fc.array(wire({ oracle: false }), { minLength: 1, maxLength: 5 }), chunkSizes, drainsArb, (items, sizes, drains) => {
        const input = concat(items.map((i) => i.bytes))
        const chunks = split(input, sizes)
        const { values, error } = run(new Decoder(), chunks, drains)
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(values, items.map((i) => i.value))
        // No value aliases the caller's chunks: reusing their memory afterwards changes nothing.
        for (const chunk of chunks) chunk.fill(0xc1)
        assert.deepStrictEqual(values, items.map((i) => i.value))
      }),
      { numRuns: 300 }
    )
  })

  it("never hands out a view of a pushed chunk, whether the raw value was copied or arrived whole", () => {
    // Around the share threshold (1 KiB): below it a value is always copied, above it only a private copy is shared.
    const payload = fc.tuple(fc.integer({ min: 1000, max: 2100 }), fc.nat({ max: 255 })).map(([n, seed]) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed) & 0xff)
    )
    const raw = fc.tuple(fc.constantFrom(0xc5, 0xda, 0xc8), payload).map(([tag, p]) => {
      const header = tag === 0xc8 ? Uint8Array.of(tag, p.length >> 8, p.length & 0xff, 7) : Uint8Array.of(tag, p.length >> 8, p.length & 0xff)
      return { bytes: concat([header, p]), value: tag === 0xc8 ? new Ext(7, p) : tag === 0xda ? rawValue(p) : p }
    })
    const sizes = fc.oneof(chunkSizes, fc.constant([1 << 20]))
    fc.assert(
      fc.property(fc.array(raw, { minLength: 1, maxLength: 3 }), sizes, drainsArb, (items, sizes, drains) => {
        const chunks = split(concat(items.map((i) => i.bytes)), sizes)
        const { values, error } = run(new Decoder(), chunks, drains)
        assert.strictEqual(errorText(error), "none")
        for (const chunk of chunks) chunk.fill(0xc1)
        assert.deepStrictEqual(values, items.map((i) => i.value))
      }),
      { numRuns: 100 }
    )
  })

  it("agrees with @msgpack/msgpack on every format both read the same way", () => {
    fc.assert(
      fc.property(fc.array(wire({ oracle: true }), { minLength: 1, maxLength: 4 }), (items) => {
        const input = concat(items.map((i) => i.bytes))
        const theirs = Array.from(decodeMulti(input, { useBigInt64: true }), fromOracle)
        const { values, error } = run(new Decoder(), [input], [true])
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(values, theirs)
      }),
      { numRuns: 300 }
    )
  })

  it("decodes what @msgpack/msgpack encodes, whatever its options, to the equivalent value", () => {
    const options = fc.record({ useBigInt64: fc.boolean(), forceFloat32: fc.boolean(), sortKeys: fc.boolean() })
    fc.assert(
      fc.property(options.chain((opts) => fc.tuple(fc.constant(opts), msgpackable(opts.useBigInt64))), ([opts, value]) => {
        const bytes = oracleEncode(value, opts)
        const { values, error } = run(new Decoder(), [bytes], [true])
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(values, [fromMsgpackable(value, opts)])
      }),
      { numRuns: 300 }
    )
  })

  it("gives, for any bytes at any chunking, the same values and error as for one chunk (and decode()), and never throws", () => {
    const limits = fc.record({
      maxMessageBytes: fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 120 })),
      maxDepth: fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 4 }))
    })
    fc.assert(
      fc.property(hostile, limits, chunkSizes, drainsArb, (input, options, sizes, drains) => {
        const whole = run(new Decoder(options), [input], [true])
        const chunked = run(new Decoder(options), split(input, sizes), drains)
        assert.deepStrictEqual(chunked.values, whole.values)
        assert.strictEqual(errorText(chunked.error), errorText(whole.error))
        // Waiting for more input never holds more than one value's limit (plus the header being read).
        const limit = options.maxMessageBytes ?? Infinity
        assert.isAtMost(chunked.maxWaiting, limit + HeaderSlack - 1)
        // decode() of one buffer: its only value, or why there is not exactly one.
        const single = decode(input, options)
        if (whole.values.length === 0) {
          assert.strictEqual(single instanceof CodecError ? single.reason : "a value", whole.error?.reason ?? "Truncated")
        } else if (whole.values.length === 1 && whole.error === undefined) {
          assert.deepStrictEqual(single, whole.values[0])
        } else {
          assert.strictEqual(single instanceof CodecError ? single.reason : "a value", "TrailingBytes")
        }
      }),
      { numRuns: 800 }
    )
  })

  it("refuses exactly the values nested deeper than maxDepth, counting non-empty containers", () => {
    fc.assert(
      fc.property(wire({ oracle: false }), fc.integer({ min: 1, max: 5 }), chunkSizes, drainsArb, (item, maxDepth, sizes, drains) => {
        const { values, error } = run(new Decoder({ maxDepth }), split(item.bytes, sizes), drains)
        if (item.depth > maxDepth) {
          assert.strictEqual(error?.reason, "TooDeep")
        } else {
          assert.strictEqual(errorText(error), "none")
          assert.deepStrictEqual(values, [item.value])
        }
      }),
      { numRuns: 300 }
    )
  })

  it("never holds more than maxBufferedBytes, and reports the overflow after the values before it", () => {
    fc.assert(
      fc.property(hostile, fc.integer({ min: 1, max: 40 }), chunkSizes, drainsArb, (input, maxBufferedBytes, sizes, drains) => {
        // run() checks the bound after every push; the outcome must be the unlimited one cut short.
        const limited = run(new Decoder({ maxBufferedBytes }), split(input, sizes), drains, { maxBufferedBytes })
        const free = run(new Decoder(), [input], [true])
        assert.deepStrictEqual(limited.values, free.values.slice(0, limited.values.length))
        if (limited.error?.message.includes("maxBufferedBytes")) {
          assert.strictEqual(limited.error.reason, "TooLarge")
        } else {
          assert.deepStrictEqual(limited.values, free.values)
          assert.strictEqual(errorText(limited.error), errorText(free.error))
        }
      }),
      { numRuns: 400 }
    )
  })

  it("refuses a value over maxMessageBytes by the time the limit plus one header has arrived", () => {
    fc.assert(
      fc.property(
        wire({ oracle: false }).filter((w) => w.bytes.length > 1).chain((w) =>
          fc.tuple(fc.constant(w), fc.integer({ min: 1, max: w.bytes.length - 1 }))
        ),
        chunkSizes,
        ([item, maxMessageBytes], sizes) => {
          const decoder = new Decoder({ maxMessageBytes })
          const due = Math.min(item.bytes.length, maxMessageBytes + HeaderSlack)
          let pushed = 0
          for (const chunk of split(item.bytes, sizes)) {
            decoder.push(chunk)
            pushed += chunk.length
            const v = decoder.next()
            if (v instanceof CodecError) {
              assert.strictEqual(v.reason, "TooLarge")
              return
            }
            assert.isUndefined(v, "a value over the limit was returned")
            assert.isBelow(pushed, due, "no TooLarge although the limit and a header were in")
          }
          assert.fail("never refused")
        }
      ),
      { numRuns: 400 }
    )
  })

  it("refuses a declared length or count beyond the limit at its header, before any of its payload", () => {
    const claim = fc.record({
      head: fc.constantFrom(
        { tag: 0xda, size: 2 }, { tag: 0xdb, size: 4 }, { tag: 0xc5, size: 2 }, { tag: 0xc6, size: 4 },
        { tag: 0xdc, size: 2 }, { tag: 0xdd, size: 4 }, { tag: 0xde, size: 2 }, { tag: 0xdf, size: 4 },
        { tag: 0xc8, size: 2 }, { tag: 0xc9, size: 4 }
      ),
      slack: fc.integer({ min: 0, max: 300 }),
      over: fc.integer({ min: 1, max: 2 ** 32 - 1 })
    })
    fc.assert(
      fc.property(fc.array(wire({ oracle: false }), { maxLength: 3 }), claim, chunkSizes, drainsArb, (before, { head, slack, over }, sizes, drains) => {
        const maxMessageBytes = Math.max(1, ...before.map((b) => b.bytes.length)) + slack
        // A header of `1 + size` bytes (+1 type byte for ext) claiming more than the limit allows.
        const max = head.size === 2 ? 0xffff : 2 ** 32 - 1
        const claimed = Math.min(max, maxMessageBytes + over)
        if (claimed + 1 + head.size <= maxMessageBytes) return
        const header = new Uint8Array(1 + head.size + (head.tag === 0xc8 || head.tag === 0xc9 ? 1 : 0))
        header[0] = head.tag
        const view = new DataView(header.buffer)
        if (head.size === 2) view.setUint16(1, claimed)
        else view.setUint32(1, claimed)
        const prefix = concat(before.map((b) => b.bytes))
        const input = concat([prefix, header, new Uint8Array(50).fill(0x01)])
        const headerEnd = prefix.length + header.length
        const decoder = new Decoder({ maxMessageBytes })
        const values: Array<Value> = []
        let start = 0
        let chunkIndex = 0
        for (const chunk of split(input, sizes)) {
          decoder.push(chunk)
          const end = start + chunk.length
          // Drain as the schedule says, but always once the header is complete.
          if (drains[chunkIndex++ % drains.length] || end >= headerEnd) {
            for (let v = decoder.next(); v !== undefined; v = decoder.next()) {
              if (v instanceof CodecError) {
                assert.strictEqual(v.reason, "TooLarge")
                assert.isAtLeast(end, headerEnd)
                assert.isBelow(start, headerEnd, "refused only after payload bytes had arrived")
                assert.deepStrictEqual(values, before.map((b) => b.value))
                assert.strictEqual(decoder.bufferedBytes, 0)
                return
              }
              values.push(v)
            }
          }
          start = end
        }
        assert.fail("never refused")
      }),
      { numRuns: 300 }
    )
  })
})

describe("Decoder properties: the decoding budget and slices", () => {
  it("refuses an amplifying value at the header that breaks the budget, before the rest arrives and before anything is built", () => {
    fc.assert(
      fc.property(amplifier, fc.integer({ min: 8, max: 1 << 22 }), chunkSizes, (item, maxDecodedBytes, sizes) => {
        // maxMessageBytes out of the way: only the budget refuses.
        const decoder = new Decoder({ maxDecodedBytes, maxMessageBytes: 2 ** 40 })
        const breaking = item.charges.find(([, cost]) => cost > maxDecodedBytes)?.[0]
        const scanned = item.charges[item.charges.length - 1]![1]
        let pushed = 0
        for (const chunk of split(item.bytes, sizes)) {
          decoder.push(chunk)
          pushed += chunk.length
          const v = decoder.next()
          if (v instanceof CodecError) {
            assert.strictEqual(v.reason, "TooLarge")
            assert.include(v.message, "maxDecodedBytes")
            assert.strictEqual(decoder.bufferedBytes, 0)
            if (breaking === undefined) {
              // Only strs that turn out not to be UTF-8 are charged after the scan, when the value is read.
              assert.isTrue(item.complete && pushed === item.bytes.length, "refused a value within the budget")
              assert.isAbove(scanned + item.rawBytes * 248, maxDecodedBytes)
            } else {
              assert.isAtLeast(pushed, breaking, "refused before the breaking header arrived")
              assert.isBelow(pushed - chunk.length, breaking, "not refused when the breaking header arrived")
              assert.strictEqual(decoder.bytesCopied, 0, "bytes were gathered for a refused value")
            }
            return
          }
          if (v !== undefined) {
            assert.isUndefined(breaking, "a value over the budget was returned")
            assert.isAtMost(scanned + item.rawBytes * 248, maxDecodedBytes)
            assert.isTrue(item.complete)
            return
          }
          check(breaking === undefined || pushed < breaking, "not refused although its breaking header arrived")
        }
        assert.isFalse(item.complete && breaking === undefined, "a complete value within the budget never came")
      }),
      { numRuns: 600 }
    )
  })

  it("step gives the same values and error as next at any sliceBytes and chunking, even with pushes and end between slices", () => {
    const input = fc.oneof(
      { weight: 1, arbitrary: hostile },
      { weight: 2, arbitrary: fc.array(wire({ oracle: false }), { minLength: 1, maxLength: 4 }).map((vs) => concat(vs.map((v) => v.bytes))) },
      { weight: 1, arbitrary: amplifier.map((a) => a.bytes) }
    )
    fc.assert(
      fc.property(input, fc.integer({ min: 1, max: 300 }), chunkSizes, drainsArb, (bytes, sliceBytes, sizes, pushEarly) => {
        const options = { maxDecodedBytes: 1 << 16 }
        const reference = run(new Decoder(options), [bytes], [true])
        const decoder = new Decoder({ ...options, sliceBytes })
        const chunks = split(bytes, sizes)
        const values: Array<Value> = []
        let error: CodecError | undefined
        let next = 0
        let turn = 0
        const drain = (): void => {
          while (error === undefined) {
            const v = decoder.step()
            if (v === undefined) return
            if (v === Yield) {
              check(decoder.decoding, "Yield while nothing is being decoded")
              // Between slices, input may arrive and end may be called.
              if (pushEarly[turn++ % pushEarly.length] && next < chunks.length) decoder.push(chunks[next++]!)
              continue
            }
            if (v instanceof CodecError) error = v
            else values.push(v)
          }
        }
        while (next < chunks.length && error === undefined) {
          decoder.push(chunks[next++]!)
          drain()
        }
        if (error === undefined) {
          const atEnd = decoder.end()
          drain()
          if (atEnd !== undefined) check(error === atEnd, "end() and step() disagree about the error")
        }
        assert.deepStrictEqual(values, reference.values)
        assert.strictEqual(errorText(error), errorText(reference.error))
      }),
      { numRuns: 600 }
    )
  })
})

// -------------------------------------------------------------------------------------------------
// Values for @msgpack/msgpack's encoder, and what our decoder must make of its bytes
// -------------------------------------------------------------------------------------------------

const msgpackable = (bigints: boolean): fc.Arbitrary<unknown> =>
  fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constantFrom(null, undefined, true, false),
      fc.oneof(fc.maxSafeInteger(), fc.integer(), fc.constantFrom(0, -0, 127, 128, -32, -33, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, 2 ** 53 - 1)),
      fc.double(),
      ...(bigints ? [fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })] : []),
      fc.string({ unit: "binary", maxLength: 30 }),
      fc.string({ maxLength: 300 }).map(wellFormed),
      fc.uint8Array({ maxLength: 40 }),
      fc.tuple(fc.integer({ min: -128, max: 127 }), fc.uint8Array({ maxLength: 20 })).map(([t, d]) => new ExtData(t, d)),
      fc.array(tie("value"), { maxLength: 5 }),
      fc.dictionary(keyString, tie("value"), { maxKeys: 5 })
    )
  })).value

const fromMsgpackable = (v: unknown, opts: { readonly useBigInt64: boolean; readonly forceFloat32: boolean }): Value => {
  const float = (x: number) => (opts.forceFloat32 ? Math.fround(x) : x)
  if (v === null || v === undefined) return null
  if (typeof v === "boolean" || typeof v === "string") return v
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) return float(v)
    if (v === 0) return 0
    // With useBigInt64 it writes numbers beyond 32 bits as floats (bigints carry the 64-bit ints).
    return opts.useBigInt64 && (v >= 2 ** 32 || v < -(2 ** 31)) ? float(v) : v
  }
  if (typeof v === "bigint") return intValue(v)
  if (v instanceof Uint8Array) return Uint8Array.from(v)
  if (v instanceof ExtData) return new Ext(v.type, Uint8Array.from(v.data as Uint8Array))
  if (Array.isArray(v)) return v.map((x) => fromMsgpackable(x, opts))
  const out: { [key: string]: Value } = {}
  for (const k of Object.keys(v as object)) {
    Object.defineProperty(out, k, {
      value: fromMsgpackable((v as Record<string, unknown>)[k], opts),
      enumerable: true,
      writable: true,
      configurable: true
    })
  }
  return out
}
