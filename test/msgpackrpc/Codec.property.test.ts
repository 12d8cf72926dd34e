import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  encodeRequest,
  encodeResponse,
  type Message,
  MessageReader,
  parseRequestHeader,
  parseResponseHeader,
  RequestReader,
  ResponseReader
} from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { type DecoderOptions, Ext, type Value, Yield } from "../../src/msgpackrpc/Decoder.ts"
import { encode, Encoder } from "../../src/msgpackrpc/Encoder.ts"
import { someString, chunkSizes, concat, damaged, encodable, expected, hex, intEdges, split, wellFormed, wire } from "./arbitraries.ts"

const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) return assert.fail(`unexpected ${b.reason}: ${b.message}`)
  return b
}

const check = (ok: boolean, message: string): void => {
  if (!ok) assert.fail(message)
}

/** See Decoder.property.test.ts: an incomplete value may hold its limit plus the header being read. */
const HeaderSlack = 5

interface Outcome<H> {
  readonly messages: Array<Message<H>>
  readonly error: CodecError | undefined
  readonly maxWaiting: number
}

/**
 * Feeds `chunks` to `reader`, draining after the pushes `drains` selects (cycled; the entry after the last
 * chunk says whether to drain before `end`), then ends the input and drains what is left. `sliced` drains
 * with `step`, slice after slice, instead of `next`.
 */
const read = <H>(
  reader: MessageReader<H>,
  chunks: ReadonlyArray<Uint8Array>,
  drains: ReadonlyArray<boolean>,
  sliced = false
): Outcome<H> => {
  const messages: Array<Message<H>> = []
  let error: CodecError | undefined = undefined
  let maxWaiting = 0
  const pull = (): Message<H> | undefined | CodecError => {
    if (!sliced) return reader.next()
    for (;;) {
      const m = reader.step()
      if (m !== Yield) return m
    }
  }
  const drain = (): void => {
    while (error === undefined) {
      const before = reader.bufferedBytes
      const m = pull()
      if (m === undefined) {
        maxWaiting = Math.max(maxWaiting, reader.bufferedBytes)
        return
      }
      if (m instanceof CodecError) error = m
      else {
        check(reader.bufferedBytes < before, "a message returned without consuming input")
        messages.push(m)
      }
    }
  }
  chunks.forEach((chunk, i) => {
    reader.push(chunk)
    if (error !== undefined) check(reader.next() === error, "an error that did not stick")
    else if (drains[i % drains.length]) drain()
  })
  if (error === undefined && drains[chunks.length % drains.length]) drain()
  const atEnd = reader.end()
  if (error !== undefined) check(atEnd === error, "end() forgot the error")
  else {
    drain()
    if (atEnd !== undefined) check(error === atEnd, "end() and next() disagree about the error")
  }
  if (error !== undefined) check(reader.next() === error && reader.end() === error, "an error that did not stick")
  else check(reader.next() === undefined && reader.bufferedBytes === 0, "input left after a clean end")
  return { messages, error, maxWaiting }
}

const outcome = (h: object | CodecError): unknown => (h instanceof CodecError ? { reason: h.reason } : h)

const drainsArb = fc.array(fc.boolean(), { minLength: 1, maxLength: 6 })
const errorText = (e: CodecError | undefined): string => (e === undefined ? "none" : `${e.reason}: ${e.message}`)

/** Any uint64, as a bigint or a number (an integral number beyond 2^53 is written as a uint64 too). */
const seqArb: fc.Arbitrary<number | bigint> = fc.oneof(
  fc.maxSafeNat(),
  fc.constantFrom(...intEdges.filter((n) => n >= 0n)),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(Number).filter((n) => n < 2 ** 64)
)

const responseArb = fc.record({ method: someString, seq: seqArb, error: someString, body: encodable })
const requestArb = fc.record({ method: someString, seq: seqArb, body: encodable })

const expectedSeq = (seq: number | bigint): number | bigint => expected(seq) as number | bigint

describe("Codec properties", () => {
  it("reads back any responses, split at any chunk boundaries, as they were encoded", () => {
    fc.assert(
      fc.property(fc.array(responseArb, { minLength: 1, maxLength: 4 }), chunkSizes, drainsArb, (responses, sizes, drains) => {
        const input = concat(responses.map((r) => bytesOf(encodeResponse(r.method, r.seq, r.error, r.body))))
        const { messages, error } = read(new ResponseReader(), split(input, sizes), drains)
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(
          messages,
          responses.map((r) => ({
            header: { ServiceMethod: wellFormed(r.method), Seq: expectedSeq(r.seq), Error: wellFormed(r.error) },
            body: expected(r.body)
          }))
        )
      }),
      { numRuns: 250 }
    )
  })

  it("reads back any requests, split at any chunk boundaries, as they were encoded", () => {
    fc.assert(
      fc.property(fc.array(requestArb, { minLength: 1, maxLength: 4 }), chunkSizes, drainsArb, (requests, sizes, drains) => {
        const input = concat(requests.map((r) => bytesOf(encodeRequest(r.method, r.seq, r.body))))
        const { messages, error } = read(new RequestReader(), split(input, sizes), drains)
        assert.strictEqual(errorText(error), "none")
        assert.deepStrictEqual(
          messages,
          requests.map((r) => ({ header: { ServiceMethod: wellFormed(r.method), Seq: expectedSeq(r.seq) }, body: expected(r.body) }))
        )
      }),
      { numRuns: 250 }
    )
  })

  it("encodes a message to the same bytes every time, whatever the encoder wrote before", () => {
    // Small slabs make messages outgrow the slab mid-encode, at every point of a header.
    const history = fc.array(fc.oneof(encodable, someString), { maxLength: 4 })
    // Long method names as well: only those can outgrow the room a message starts with.
    const longName = fc.option(fc.integer({ min: 20, max: 1500 }).map((n) => "é".repeat(n)))
    fc.assert(
      fc.property(fc.integer({ min: 64, max: 4096 }), history, responseArb, longName, fc.integer({ min: 1, max: 3 }), (slabBytes, before, response, method, times) => {
        const r = { ...response, method: method ?? response.method }
        const encoder = new Encoder({ slabBytes })
        const want = hex(bytesOf(new Encoder().encodeResponse(r.method, r.seq, r.error, r.body)))
        const wantRequest = hex(bytesOf(new Encoder().encodeRequest(r.method, r.seq, r.body)))
        for (const v of before) encoder.encode(v)
        for (let i = 0; i < times + 1; i++) {
          // Twice or more: the second goes through the method-name cache.
          assert.strictEqual(hex(bytesOf(encoder.encodeResponse(r.method, r.seq, r.error, r.body))), want)
          assert.strictEqual(hex(bytesOf(encoder.encodeRequest(r.method, r.seq, r.body))), wantRequest)
        }
      }),
      { numRuns: 200 }
    )
  })

  it("reports Truncated exactly when the input stops inside a message, however it was drained", () => {
    fc.assert(
      fc.property(fc.array(responseArb, { minLength: 1, maxLength: 3 }), fc.nat(), chunkSizes, drainsArb, (responses, cutAt, sizes, drains) => {
        const encoded = responses.map((r) => bytesOf(encodeResponse(r.method, r.seq, r.error, r.body)).slice())
        const input = concat(encoded)
        const cut = cutAt % (input.length + 1)
        const { messages, error } = read(new ResponseReader(), split(input.subarray(0, cut), sizes), drains)
        // Whole messages before the cut are delivered; a cut anywhere but a boundary is Truncated.
        let whole = 0
        for (let at = 0; whole < encoded.length && at + encoded[whole]!.length <= cut; whole++) at += encoded[whole]!.length
        const boundary = encoded.slice(0, whole).reduce((n, e) => n + e.length, 0) === cut
        assert.strictEqual(messages.length, whole)
        assert.strictEqual(error?.reason ?? "none", boundary ? "none" : "Truncated")
      }),
      { numRuns: 400 }
    )
  })

  it("gives, for any bytes at any chunking, the same messages and error as for one chunk, and never throws", () => {
    const message = fc.tuple(header, wire({ oracle: false })).map(([h, b]) => concat([h.bytes, b.bytes]))
    const input = fc.oneof(
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) },
      { weight: 4, arbitrary: damaged(fc.array(message, { minLength: 1, maxLength: 3 }).map(concat)) }
    )
    const limits = fc.record({ maxMessageBytes: fc.oneof(fc.constant(undefined), fc.integer({ min: 1, max: 120 })) })
    fc.assert(
      fc.property(input, limits, fc.boolean(), chunkSizes, drainsArb, (bytes, options: DecoderOptions, requests, sizes, drains) => {
        const make = () => (requests ? new RequestReader(options) : new ResponseReader(options))
        const whole = read<unknown>(make(), [bytes], [true])
        const chunked = read<unknown>(make(), split(bytes, sizes), drains)
        assert.deepStrictEqual(chunked.messages, whole.messages)
        assert.strictEqual(errorText(chunked.error), errorText(whole.error))
        assert.isAtMost(chunked.maxWaiting, (options.maxMessageBytes ?? Infinity) + HeaderSlack - 1)
      }),
      { numRuns: 500 }
    )
  })

  it("step reads the same messages and error as next, at any sliceBytes and chunking", () => {
    const message = fc.tuple(header, wire({ oracle: false })).map(([h, b]) => concat([h.bytes, b.bytes]))
    const input = fc.oneof(
      { weight: 3, arbitrary: fc.array(message, { minLength: 1, maxLength: 3 }).map(concat) },
      { weight: 1, arbitrary: damaged(fc.array(message, { minLength: 1, maxLength: 3 }).map(concat)) }
    )
    fc.assert(
      fc.property(input, fc.integer({ min: 1, max: 200 }), fc.boolean(), chunkSizes, drainsArb, (bytes, sliceBytes, requests, sizes, drains) => {
        const make = (options?: DecoderOptions) => (requests ? new RequestReader(options) : new ResponseReader(options))
        const whole = read<unknown>(make(), [bytes], [true])
        const sliced = read<unknown>(make({ sliceBytes }), split(bytes, sizes), drains, true)
        assert.deepStrictEqual(sliced.messages, whole.messages)
        assert.strictEqual(errorText(sliced.error), errorText(whole.error))
      }),
      { numRuns: 400 }
    )
  })

  it("parses any header map as Go would: zero values for missing or nil fields, InvalidHeader for wrong types", () => {
    fc.assert(
      fc.property(header, (h) => {
        assert.deepStrictEqual(outcome(parseResponseHeader(h.value)), goResponseHeader(h.value))
        assert.deepStrictEqual(outcome(parseRequestHeader(h.value)), goRequestHeader(h.value))
      }),
      { numRuns: 400 }
    )
  })
})

describe("Codec regressions", () => {
  it("caches a method name correctly when writing it grows the encoder's buffer", () => {
    // Found by "encodes a message to the same bytes every time": the cache kept bytes at the name's offset in
    // the old buffer, so every later request for that method was garbage.
    const encoder = new Encoder({ slabBytes: 2048 })
    encoder.encode("x".repeat(500))
    const method = "é".repeat(600)
    const want = hex(bytesOf(new Encoder().encodeRequest(method, 1, null)))
    for (let i = 0; i < 3; i++) assert.strictEqual(hex(bytesOf(encoder.encodeRequest(method, 1, null))), want)
  })

  it("reports Truncated for a header without its body when end() comes before the header was read out", () => {
    // Found by "reports Truncated exactly when the input stops inside a message": end() only looked at a header
    // already parsed, so a header still undecoded at end() later read out as a message-in-waiting for ever.
    const header = bytesOf(encode({ ServiceMethod: "A.B", Seq: 1, Error: "" })).slice()
    const reader = new ResponseReader()
    reader.push(header)
    assert.isUndefined(reader.end())
    const e = reader.next()
    assert.instanceOf(e, CodecError)
    assert.strictEqual((e as CodecError).reason, "Truncated")
    assert.strictEqual(reader.next(), e)

    // The same after a complete message: it is delivered first.
    const full = bytesOf(encodeResponse("A.B", 1, "", [1])).slice()
    const after = new ResponseReader()
    after.push(concat([full, header]))
    assert.isUndefined(after.end())
    assert.deepStrictEqual(after.next(), { header: { ServiceMethod: "A.B", Seq: 1, Error: "" }, body: [1] })
    assert.strictEqual((after.next() as CodecError).reason, "Truncated")
  })
})

// -------------------------------------------------------------------------------------------------
// Headers as any msgpack writer might send them, and what Go's net/rpc codec makes of them
// -------------------------------------------------------------------------------------------------

const fixstr = (s: string): Uint8Array => {
  const b = new TextEncoder().encode(s)
  return concat([Uint8Array.of(0xa0 | b.length), b])
}

const fieldValue = wire({ oracle: false })

/**
 * A header-like map: each of the three fields absent, or of a random type (mostly the right one), plus
 * unknown fields, in random order. Non-maps are headers too, and must be refused.
 */
const header: fc.Arbitrary<{ bytes: Uint8Array; value: Value }> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.tuple(
      fc.subarray(["ServiceMethod", "Seq", "Error", "Extra", "Token"]),
      fc.array(fieldValue, { minLength: 5, maxLength: 5 }),
      fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      someString,
      seqArb
    ).map(([names, values, natural, text, seq]) => {
      const entries = names.map((name, i) => {
        if (!natural[i]!) return [name, values[i]!] as const
        // The right type, most of the time.
        const v = name === "Seq" ? seq : text
        return [name, { bytes: bytesOf(encode(v)).slice(), value: expected(v) }] as const
      })
      const bytes = concat([Uint8Array.of(0x80 | entries.length), ...entries.flatMap(([k, v]) => [fixstr(k), v.bytes])])
      const value: { [key: string]: Value } = {}
      for (const [k, v] of entries) value[k] = v.value
      return { bytes, value }
    })
  },
  { weight: 1, arbitrary: fieldValue }
)

const isMap = (v: Value): v is { [key: string]: Value } =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Ext)

const goString = (v: Value | undefined): string | undefined => {
  if (v === undefined || v === null) return ""
  if (typeof v === "string") return v
  if (v instanceof Uint8Array) return new TextDecoder("utf-8", { ignoreBOM: true }).decode(v)
  return undefined
}

const goSeq = (v: Value | undefined): number | bigint | undefined => {
  if (v === undefined || v === null) return 0
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return v
  if (typeof v === "bigint" && v >= 0n) return v
  return undefined
}

const field = (v: { [key: string]: Value }, k: string): Value | undefined => (Object.hasOwn(v, k) ? v[k] : undefined)

const goRequestHeader = (v: Value): unknown => {
  if (!isMap(v)) return { reason: "InvalidHeader" }
  const method = goString(field(v, "ServiceMethod"))
  const seq = goSeq(field(v, "Seq"))
  if (method === undefined || seq === undefined) return { reason: "InvalidHeader" }
  return { ServiceMethod: method, Seq: seq }
}

const goResponseHeader = (v: Value): unknown => {
  const request = goRequestHeader(v)
  if (!isMap(v) || (request as { reason?: string }).reason !== undefined) return request
  const error = goString(field(v, "Error"))
  if (error === undefined) return { reason: "InvalidHeader" }
  return { ...(request as object), Error: error }
}
