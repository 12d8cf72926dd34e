import { assert, describe, it } from "@effect/vitest"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { asBytes, decode, Decoder, DefaultMaxMessageBytes, Ext, type Value, Yield } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"

const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}
const ok = (v: Value | CodecError): Value => {
  if (v instanceof CodecError) throw new Error(`unexpected ${v.reason}: ${v.message}`)
  return v
}
const errorOf = (v: Value | undefined | CodecError): CodecError => {
  if (!(v instanceof CodecError)) throw new Error(`expected an error, got ${String(v)}`)
  return v
}
const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Uint8Array.from(Buffer.concat(parts))

/** Feeds `input` split at `cuts`, draining after every push, and returns the values and the final error. */
const feed = (input: Uint8Array, cuts: ReadonlyArray<number>, decoder = new Decoder()) => {
  const values: Array<Value> = []
  let prev = 0
  for (const cut of [...cuts, input.length]) {
    decoder.push(input.subarray(prev, cut))
    prev = cut
    for (let v = decoder.next(); v !== undefined; v = decoder.next()) {
      if (v instanceof CodecError) return { values, error: v }
      values.push(v)
    }
  }
  return { values, error: decoder.end() }
}

/** Small deterministic PRNG so that random splits are reproducible. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const sample: Array<Value> = [
  { Seq: 1, ServiceMethod: "Status.Ping" },
  {},
  { Error: "", Seq: 18446744073709551615n, ServiceMethod: "KVS.Get" },
  { Key: "a/b", Value: new Uint8Array([0, 0xff, 0xfe]), Flags: 0, CreateIndex: 2 ** 40, Tags: ["x", "y"] },
  "s".repeat(300),
  "é".repeat(40_000),
  -123456789,
  1.5,
  null,
  true,
  [[[[]]]],
  new Uint8Array(70_000).fill(0xc1), // payload bytes that would be invalid as type bytes
  new Ext(7, new Uint8Array([1, 2, 3, 4])),
  -(2n ** 63n)
]
const sampleBytes = concat(sample.map((v) => bytesOf(encode(v))))

describe("Decoder", () => {
  it("decodes every msgpack type", () => {
    const cases: Array<[string, Value]> = [
      ["c0", null],
      ["c2", false],
      ["c3", true],
      ["7f", 127],
      ["e0", -32],
      ["cc ff", 255],
      ["cd ffff", 65535],
      ["ce ffffffff", 4294967295],
      ["cf 001fffffffffffff", 2 ** 53 - 1],
      ["cf 0020000000000000", 2n ** 53n],
      ["cf ffffffffffffffff", 18446744073709551615n],
      ["d0 80", -128],
      ["d1 8000", -32768],
      ["d2 80000000", -2147483648],
      ["d3 ffe0000000000001", -(2 ** 53) + 1],
      ["d3 ffe0000000000000", -(2n ** 53n)],
      ["d3 8000000000000000", -(2n ** 63n)],
      ["ca 3fc00000", 1.5],
      ["cb 3ff8000000000000", 1.5],
      ["a3 616263", "abc"],
      ["d9 03 616263", "abc"],
      ["da 0003 616263", "abc"],
      ["db 00000003 616263", "abc"],
      ["c4 02 0102", new Uint8Array([1, 2])],
      ["c5 0002 0102", new Uint8Array([1, 2])],
      ["c6 00000002 0102", new Uint8Array([1, 2])],
      ["d4 01 aa", new Ext(1, new Uint8Array([0xaa]))],
      ["d5 ff aabb", new Ext(-1, new Uint8Array([0xaa, 0xbb]))],
      ["d6 02 00000000", new Ext(2, new Uint8Array(4))],
      ["d7 02 0000000000000000", new Ext(2, new Uint8Array(8))],
      ["d8 02" + "00".repeat(16), new Ext(2, new Uint8Array(16))],
      ["c7 03 05 010203", new Ext(5, new Uint8Array([1, 2, 3]))],
      ["c8 0001 05 01", new Ext(5, new Uint8Array([1]))],
      ["c9 00000001 05 01", new Ext(5, new Uint8Array([1]))],
      ["92 01 a0", [1, ""]],
      ["dc 0002 01 02", [1, 2]],
      ["dd 00000001 c0", [null]],
      ["82 a1 61 01 a1 62 90", { a: 1, b: [] }],
      ["de 0001 a1 61 80", { a: {} }],
      ["df 00000001 a1 61 c3", { a: true }]
    ]
    for (const [input, want] of cases) assert.deepStrictEqual(ok(decode(h(input))), want, input)
  })

  it("decodes valid UTF-8 raw strings to strings and other raw bytes to Uint8Array, losslessly", () => {
    assert.strictEqual(ok(decode(h("a2 c3a9"))), "é")
    assert.deepStrictEqual(ok(decode(h("a2 ffee"))), new Uint8Array([0xff, 0xee]))
    // A UTF-8 encoded lone surrogate is not valid UTF-8: kept as bytes, not replaced.
    assert.deepStrictEqual(ok(decode(h("a3 eda080"))), new Uint8Array([0xed, 0xa0, 0x80]))
    for (const raw of ["efbbbf41", "eda080", "ffee", "c3a9".repeat(20), "00".repeat(40), "80".repeat(2000)]) {
      const input = h((raw.length / 2 < 32 ? (0xa0 | (raw.length / 2)).toString(16) : "da" + (raw.length / 2).toString(16).padStart(4, "0")) + raw)
      assert.strictEqual(Buffer.from(bytesOf(encode(ok(decode(input))))).toString("hex"), Buffer.from(input).toString("hex"))
    }
    assert.strictEqual(ok(decode(h("a4 efbbbf41"))), "\ufeffA")
  })

  it("with raws \"bytes\" decodes every str value to bytes, UTF-8 or not, never aliasing the chunk, and keeps map keys as strings", () => {
    const long = "é".repeat(5000)
    const input = bytesOf(encode({ Payload: long, Message: "hi", Empty: "", Nested: ["abc", { Inner: "x" }] }))
    const want = {
      Payload: Uint8Array.from(Buffer.from(long)),
      Message: Uint8Array.from(Buffer.from("hi")),
      Empty: new Uint8Array(0),
      Nested: [Uint8Array.from(Buffer.from("abc")), { Inner: Uint8Array.from(Buffer.from("x")) }]
    }
    // next, and step in slices (the sliced reader reads strs by the same rule).
    const decoder = new Decoder(undefined, "bytes")
    decoder.push(Uint8Array.from(input))
    const viaNext = ok(decoder.next() ?? new CodecError({ reason: "Truncated", message: "none" }))
    const sliced = new Decoder({ sliceBytes: 64 }, "bytes")
    const chunk = Uint8Array.from(input)
    sliced.push(chunk)
    let viaStep = sliced.step()
    for (let i = 0; viaStep === Yield && i < 10_000; i++) viaStep = sliced.step()
    assert.deepStrictEqual(viaNext, want)
    assert.deepStrictEqual(viaStep, want)
    chunk.fill(0)
    assert.deepStrictEqual(viaStep, want)
    // The default reads the same bytes as strings.
    assert.deepStrictEqual(ok(decode(input)), { Payload: long, Message: "hi", Empty: "", Nested: ["abc", { Inner: "x" }] })
  })

  it("with raws \"bytes\" charges each str value as a byte array: over the budget it fails with TooLarge", () => {
    const input = bytesOf(encode(Array.from({ length: 100 }, () => "ab")))
    // 100 strings fit a budget that 100 byte arrays (256 bytes each) do not.
    const options = { maxDecodedBytes: 10_000 }
    assert.strictEqual((ok(decode(input, options)) as Array<Value>).length, 100)
    const decoder = new Decoder(options, "bytes")
    decoder.push(input)
    assert.strictEqual(errorOf(decoder.next()).reason, "TooLarge")
  })

  it("always decodes the bin family to bytes, never aliasing the pushed chunk", () => {
    const input = h("c4 03 616263")
    const v = ok(decode(input))
    assert.deepStrictEqual(v, new Uint8Array([0x61, 0x62, 0x63]))
    input[2] = 0
    assert.deepStrictEqual(v, new Uint8Array([0x61, 0x62, 0x63]))
  })

  it("returns the right short strings through the string cache, collisions included", () => {
    const values: Array<Value> = []
    for (let i = 0; i < 20_000; i++) values.push(`k${i}`, { [`f${i % 7000}`]: `v${i % 5000}` }, "é" + String(i % 300))
    const decoder = new Decoder()
    decoder.push(bytesOf(encode(values)))
    assert.deepStrictEqual(decoder.next(), values)
    decoder.push(h("a3 ff6162 a3 ff6162"))
    assert.deepStrictEqual(decoder.next(), new Uint8Array([0xff, 0x61, 0x62]))
    assert.deepStrictEqual(decoder.next(), new Uint8Array([0xff, 0x61, 0x62]))
  })

  it("stringifies number and boolean map keys and rejects keys an object cannot hold", () => {
    assert.deepStrictEqual(ok(decode(h("83 01 a161 ff a162 c3 a163"))), { "1": "a", "-1": "b", "true": "c" })
    assert.strictEqual(errorOf(decode(h("81 c0 01"))).reason, "InvalidKey")
    assert.strictEqual(errorOf(decode(h("81 90 01"))).reason, "InvalidKey")
    assert.strictEqual(errorOf(decode(h("81 a1ff 01"))).reason, "InvalidKey")
  })

  it("keeps a __proto__ key as an own property", () => {
    const v = ok(decode(h("81 a9 5f5f70726f746f5f5f 81 a178 01"))) as Record<string, Value>
    assert.strictEqual(Object.getPrototypeOf(v), Object.prototype)
    assert.deepStrictEqual(Object.getOwnPropertyDescriptor(v, "__proto__")?.value, { x: 1 })
  })

  it("yields the same values for one chunk, 1-byte chunks and random splits", () => {
    const whole = feed(sampleBytes, [])
    assert.isUndefined(whole.error)
    assert.deepStrictEqual(whole.values, sample)
    const bytewise = feed(sampleBytes, Array.from({ length: sampleBytes.length - 1 }, (_, i) => i + 1))
    assert.isUndefined(bytewise.error)
    assert.deepStrictEqual(bytewise.values, sample)
    const random = prng(42)
    for (let round = 0; round < 50; round++) {
      const cuts = new Set<number>()
      const count = 1 + Math.floor(random() * 40)
      for (let i = 0; i < count; i++) cuts.add(Math.floor(random() * sampleBytes.length))
      const got = feed(sampleBytes, [...cuts].sort((a, b) => a - b))
      assert.isUndefined(got.error)
      assert.deepStrictEqual(got.values, sample)
    }
  })

  it("yields the same value for every two-chunk split of a message", () => {
    const message = bytesOf(encode({ a: [1, 300, 70000, 2 ** 40, -5, "x".repeat(40)], b: new Uint8Array(300), c: 1.5 }))
    const want = ok(decode(message))
    for (let cut = 0; cut <= message.length; cut++) {
      const got = feed(message, [cut])
      assert.isUndefined(got.error)
      assert.deepStrictEqual(got.values, [want], `cut at ${cut}`)
    }
  })

  it("copies nothing when values arrive whole and copies a straddling value exactly once", () => {
    const small = new Decoder()
    small.push(sampleBytes)
    let n = 0
    while (small.next() !== undefined) n++
    assert.strictEqual(n, sample.length)
    assert.strictEqual(small.bytesCopied, 0)

    const size = 16 * 1024 * 1024
    const big = bytesOf(encode(new Uint8Array(size).fill(0xff)))
    const decoder = new Decoder()
    let value: Value | undefined = undefined
    let pulls = 0
    for (let at = 0; at < big.length; at += 64 * 1024) {
      decoder.push(big.subarray(at, at + 64 * 1024))
      const v = decoder.next()
      pulls++
      if (v !== undefined) value = ok(v)
    }
    assert.strictEqual(pulls, Math.ceil(big.length / (64 * 1024)))
    assert.strictEqual(decoder.bytesCopied, big.length)
    assert.instanceOf(value, Uint8Array)
    assert.strictEqual((value as Uint8Array).length, size)
    assert.strictEqual((value as Uint8Array)[size - 1], 0xff)
    assert.strictEqual(decoder.bufferedBytes, 0)
  })

  it("drains thousands of values pushed as split chunks before the first pull", () => {
    const decoder = new Decoder()
    for (let i = 0; i < 5000; i++) {
      decoder.push(h("cd"))
      decoder.push(h("01"))
      decoder.push(h(i % 2 === 0 ? "00" : "01"))
    }
    for (let i = 0; i < 5000; i++) assert.strictEqual(decoder.next(), 256 + (i % 2))
    assert.isUndefined(decoder.next())
    assert.strictEqual(decoder.bufferedBytes, 0)
    assert.strictEqual(decoder.bytesCopied, 15000)
  })

  it("rejects a 4 GiB length claim at once, before buffering its payload", () => {
    for (const head of ["db ffffffff", "c6 ffffffff", "dd ffffffff", "df ffffffff", "c9 ffffffff 01"]) {
      const decoder = new Decoder()
      decoder.push(h(head))
      const e = errorOf(decoder.next())
      assert.strictEqual(e.reason, "TooLarge", head)
      assert.strictEqual(decoder.bufferedBytes, 0)
    }
    const limited = new Decoder({ maxMessageBytes: 100 })
    limited.push(h("da 0064"))
    assert.strictEqual(errorOf(limited.next()).reason, "TooLarge")
    const fits = feed(bytesOf(encode("x".repeat(97))), [], new Decoder({ maxMessageBytes: 100 }))
    assert.deepStrictEqual(fits.values, ["x".repeat(97)])
    assert.isTrue(DefaultMaxMessageBytes === 64 * 1024 * 1024)
  })

  it("rejects container counts that imply more than maxMessageBytes, counting one byte per item", () => {
    for (const head of ["dc 03e8", "de 01f4", "92 01 dc 03e7"]) {
      const decoder = new Decoder({ maxMessageBytes: 1000 })
      decoder.push(h(head))
      assert.strictEqual(errorOf(decoder.next()).reason, "TooLarge", head)
    }
    const fits = new Decoder({ maxMessageBytes: 1000 })
    fits.push(h("dc 03e5"))
    assert.isUndefined(fits.next())
  })

  it("reports 0xc1 and keeps reporting it", () => {
    const decoder = new Decoder()
    decoder.push(h("01 92 01 c1 02"))
    assert.strictEqual(decoder.next(), 1)
    const e = errorOf(decoder.next())
    assert.strictEqual(e.reason, "InvalidByte")
    assert.strictEqual(e._tag, "CodecError")
    assert.include(e.message, "0xc1")
    assert.isFalse(e.isRetryable)
    decoder.push(h("01"))
    assert.strictEqual(decoder.next(), e)
    assert.strictEqual(decoder.end(), e)
  })

  it("reports a value truncated by the end of input", () => {
    const message = bytesOf(encode({ a: "x".repeat(100) }))
    for (let cut = 1; cut < message.length; cut++) {
      const decoder = new Decoder()
      decoder.push(message.subarray(0, cut))
      assert.isUndefined(decoder.next())
      assert.strictEqual(decoder.end()?.reason, "Truncated", `cut at ${cut}`)
      assert.strictEqual(errorOf(decoder.next()).reason, "Truncated")
    }
    const clean = new Decoder()
    clean.push(message)
    assert.isDefined(clean.next())
    assert.isUndefined(clean.end())
    assert.isUndefined(clean.next())
  })

  it("still yields complete values buffered at end, then the truncation", () => {
    const decoder = new Decoder()
    decoder.push(h("01 02 92 03"))
    assert.isUndefined(decoder.end())
    assert.strictEqual(decoder.next(), 1)
    assert.strictEqual(decoder.next(), 2)
    assert.strictEqual(errorOf(decoder.next()).reason, "Truncated")
  })

  it("rejects nesting past maxDepth without recursing", () => {
    const depth = (n: number) => concat([new Uint8Array(n).fill(0x91), h("01")])
    let want: Value = 1
    for (let i = 0; i < 512; i++) want = [want]
    assert.deepStrictEqual(ok(decode(depth(512))), want)
    assert.strictEqual(errorOf(decode(depth(513))).reason, "TooDeep")
    assert.strictEqual(errorOf(decode(depth(1_000_000))).reason, "TooDeep")
    const maps = concat([new Uint8Array(1200).fill(0x81).map((b, i) => (i % 2 === 0 ? b : 0xa0))])
    assert.strictEqual(errorOf(decode(maps)).reason, "TooDeep")
    assert.strictEqual(errorOf(decode(depth(3), { maxDepth: 2 })).reason, "TooDeep")
  })

  it("yields values completed before a push that overflowed maxBufferedBytes, then TooLarge", () => {
    const decoder = new Decoder({ maxBufferedBytes: 8 })
    decoder.push(h("01 02 a4 6162"))
    decoder.push(h("6364 03 04 05"))
    assert.strictEqual(decoder.next(), 1)
    assert.strictEqual(decoder.next(), 2)
    assert.strictEqual(errorOf(decoder.next()).reason, "TooLarge")
  })

  it("decode() of one buffer rejects trailing bytes and truncation", () => {
    assert.strictEqual(errorOf(decode(h("01 02"))).reason, "TrailingBytes")
    assert.strictEqual(errorOf(decode(h("92 01"))).reason, "Truncated")
    assert.strictEqual(errorOf(decode(new Uint8Array(0))).reason, "Truncated")
  })

  it("asBytes UTF-8 encodes strings and passes bytes through", () => {
    assert.deepStrictEqual(asBytes("é"), new Uint8Array([0xc3, 0xa9]))
    const b = new Uint8Array([0xff])
    assert.strictEqual(asBytes(b), b)
  })
})
