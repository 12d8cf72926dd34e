import { assert, describe, it } from "@effect/vitest"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { decode, Ext } from "../../src/msgpackrpc/Decoder.ts"
import { compareUtf8, DefaultSlabBytes, encode, Encoder, ZeroCopyBytes } from "../../src/msgpackrpc/Encoder.ts"

const hex = (b: Uint8Array | CodecError): string => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return Buffer.from(b).toString("hex")
}
const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}
const errorOf = (b: Uint8Array | CodecError): CodecError => {
  if (!(b instanceof CodecError)) throw new Error(`expected an error, got ${hex(b)}`)
  return b
}
const utf8 = (s: string) => new TextEncoder().encode(s)
const strHex = (payload: Uint8Array): string => {
  const n = payload.length
  const head = n < 32
    ? (0xa0 | n).toString(16)
    : n < 0x10000
    ? "da" + n.toString(16).padStart(4, "0")
    : "db" + n.toString(16).padStart(8, "0")
  return head + Buffer.from(payload).toString("hex")
}

describe("Encoder", () => {
  it("caches short method names but not long ones a hostile client could send", () => {
    const encoder = new Encoder()
    const long = "X.".padEnd(64 * 1024, "y")
    for (const method of ["Status.Ping", long]) {
      const first = encoder.encodeRequest(method, 1, {})
      const second = encoder.encodeRequest(method, 1, {})
      assert.deepStrictEqual(second, first)
    }
    const cached = [...encoder["methods"].keys()]
    assert.deepStrictEqual(cached, ["Status.Ping"])
  })

  it("writes fixstr below 32 bytes, str16 from 32 to 65535 bytes and str32 above, never str8", () => {
    for (const n of [0, 1, 31, 32, 33, 100, 255, 256, 65535, 65536, 70000]) {
      const s = "x".repeat(n)
      const out = hex(encode(s))
      assert.strictEqual(out, strHex(utf8(s)), `length ${n}`)
      assert.notStrictEqual(out.slice(0, 2), "d9", `length ${n}`)
    }
  })

  it("sizes the header by UTF-8 bytes, not by UTF-16 units", () => {
    const cases = [
      "é".repeat(10), // 20 bytes: fixstr although 3 * units > 31
      "é".repeat(15), // 30 bytes
      "é".repeat(16), // 32 bytes
      "€".repeat(11), // 33 bytes
      "€".repeat(21845), // 65535 bytes: str16, reserved as str32
      "€".repeat(21846), // 65538 bytes: str32
      "a€".repeat(5000),
      "héllo ✓ 𝄞 " + "😀".repeat(40),
      "\ufeffBOM kept"
    ]
    for (const s of cases) assert.strictEqual(hex(encode(s)), strHex(utf8(s)), s.slice(0, 20))
  })

  it("replaces lone surrogates with U+FFFD like TextEncoder", () => {
    for (const s of ["\ud800", "a\udc00b", "\ud83d", "x\ud83dy" + "z".repeat(60)]) {
      assert.strictEqual(hex(encode(s)), strHex(utf8(s)))
    }
  })

  it("writes Uint8Array as the raw str family, not bin", () => {
    assert.strictEqual(hex(encode(new Uint8Array([1, 2, 3]))), "a3010203")
    assert.strictEqual(hex(encode(new Uint8Array(0))), "a0")
    const b = new Uint8Array(300).fill(0xff)
    assert.strictEqual(hex(encode(b)), "da012c" + "ff".repeat(300))
    assert.strictEqual(hex(encode(Buffer.from("hi"))), "a26869")
    assert.strictEqual(hex(encode(new Uint8Array(40).subarray(8, 10))), "a20000")
  })

  it("writes non-negative integers in the smallest unsigned form", () => {
    const cases: Array<[number | bigint, string]> = [
      [0, "00"],
      [127, "7f"],
      [128, "cc80"],
      [255, "ccff"],
      [256, "cd0100"],
      [65535, "cdffff"],
      [65536, "ce00010000"],
      [4294967295, "ceffffffff"],
      [4294967296, "cf0000000100000000"],
      [2 ** 53 - 1, "cf001fffffffffffff"],
      [2 ** 53, "cf0020000000000000"],
      [2 ** 63, "cf8000000000000000"],
      [0n, "00"],
      [255n, "ccff"],
      [4294967296n, "cf0000000100000000"],
      [9007199254740993n, "cf0020000000000001"],
      [18446744073709551615n, "cfffffffffffffffff"]
    ]
    for (const [v, want] of cases) assert.strictEqual(hex(encode(v)), want, String(v))
  })

  it("writes negative integers in the smallest signed form", () => {
    const cases: Array<[number | bigint, string]> = [
      [-1, "ff"],
      [-32, "e0"],
      [-33, "d0df"],
      [-128, "d080"],
      [-129, "d1ff7f"],
      [-32768, "d18000"],
      [-32769, "d2ffff7fff"],
      [-2147483648, "d280000000"],
      [-2147483649, "d3ffffffff7fffffff"],
      [-(2 ** 53), "d3ffe0000000000000"],
      [-(2 ** 63), "d38000000000000000"],
      [-1n, "ff"],
      [-2147483649n, "d3ffffffff7fffffff"],
      [-9223372036854775808n, "d38000000000000000"]
    ]
    for (const [v, want] of cases) assert.strictEqual(hex(encode(v)), want, String(v))
  })

  it("writes other numbers as float64", () => {
    assert.strictEqual(hex(encode(1.5)), "cb3ff8000000000000")
    assert.strictEqual(hex(encode(-0)), "00")
    assert.strictEqual(hex(encode(2 ** 64)), "cb43f0000000000000")
    assert.strictEqual(hex(encode(-(2 ** 64))), "cbc3f0000000000000")
    assert.strictEqual(hex(encode(Infinity)), "cb7ff0000000000000")
    assert.strictEqual(hex(encode(NaN)).slice(0, 2), "cb")
  })

  it("rejects bigints outside the 64-bit range", () => {
    assert.strictEqual(errorOf(encode(2n ** 64n)).reason, "TooLarge")
    assert.strictEqual(errorOf(encode(-(2n ** 63n) - 1n)).reason, "TooLarge")
  })

  it("writes nil, booleans, arrays and the empty object", () => {
    assert.strictEqual(hex(encode(null)), "c0")
    assert.strictEqual(hex(encode(undefined)), "c0")
    assert.strictEqual(hex(encode(true)), "c3")
    assert.strictEqual(hex(encode(false)), "c2")
    assert.strictEqual(hex(encode({})), "80")
    assert.strictEqual(hex(encode([])), "90")
    assert.strictEqual(hex(encode([1, null, undefined, "a"])), "9401c0c0a161")
    assert.strictEqual(hex(encode(new Array(16).fill(0))), "dc0010" + "00".repeat(16))
    assert.strictEqual(hex(encode(new Array(65536).fill(0))), "dd00010000" + "00".repeat(65536))
  })

  it("sorts object keys by UTF-8 bytes and omits undefined properties", () => {
    assert.strictEqual(hex(encode({ b: 1, a: 2, B: 3 })), "83a14203a16102a16201")
    assert.strictEqual(hex(encode({ z: undefined, y: null })), "81a179c0")
    // U+E000 sorts before an astral code point in UTF-8 although its UTF-16 unit is larger.
    const keys = Object.keys({ "😀": 1, "\ue000": 2, "é": 3, z: 4, "10": 5, "9": 6 }).sort(compareUtf8)
    assert.deepStrictEqual(keys, ["10", "9", "z", "é", "\ue000", "😀"])
    const out = bytesOf(encode({ "😀": 1, "\ue000": 2 }))
    assert.strictEqual(hex(out), "82a3ee808002a4f09f988001")
  })

  it("writes maps with 16 or more keys as map16", () => {
    const o: Record<string, number> = {}
    for (let i = 0; i < 16; i++) o[`k${String(i).padStart(2, "0")}`] = i
    assert.strictEqual(hex(encode(o)).slice(0, 6), "de0010")
  })

  it("writes a Map in insertion order", () => {
    assert.strictEqual(hex(encode(new Map<unknown, unknown>([["b", 1], [2, "a"]]))), "82a1620102a161")
  })

  it("writes a Date as Go's time.Time MarshalBinary raw string in UTC", () => {
    const d = new Date(Date.UTC(2024, 2, 1, 12, 30, 45, 123))
    const sec = BigInt(Math.floor(d.getTime() / 1000)) + 62135596800n
    const want = "af01" + sec.toString(16).padStart(16, "0") + (123_000_000).toString(16).padStart(8, "0") + "ffff"
    assert.strictEqual(hex(encode(d)), want)
    // Go's zero time.Time: second 0 of year 1.
    assert.strictEqual(hex(encode(new Date(-62135596800000))), "af01" + "00".repeat(12) + "ffff")
    assert.strictEqual(errorOf(encode(new Date(NaN))).reason, "Unsupported")
  })

  it("writes Ext values back in their ext form", () => {
    assert.strictEqual(hex(encode(new Ext(5, new Uint8Array([1])))), "d40501")
    assert.strictEqual(hex(encode(new Ext(-1, new Uint8Array(3)))), "c703ff000000")
    assert.strictEqual(hex(encode(new Ext(1, new Uint8Array(16)))), "d801" + "00".repeat(16))
  })

  it("returns Unsupported for values msgpack cannot carry", () => {
    for (const v of [() => 1, Symbol("s"), new Set([1]), new Int32Array(2), new ArrayBuffer(2), { f: () => 1 }]) {
      assert.strictEqual(errorOf(encode(v)).reason, "Unsupported")
    }
  })

  it("returns Unreadable, never throws, when reading the value throws: getters, Proxy traps, iterators", () => {
    const boom = new Error("boom")
    const trap = (name: keyof ProxyHandler<object>) => new Proxy({ a: 1 }, { [name]: () => { throw boom } })
    const revocable = Proxy.revocable({}, {})
    revocable.revoke()
    class Throwing extends Map<string, number> {
      override *[Symbol.iterator](): MapIterator<[string, number]> {
        yield ["a", 1]
        throw boom
      }
    }
    const hostileThrown = new Proxy({}, { getPrototypeOf: () => { throw boom }, get: () => { throw boom } })
    const cases: ReadonlyArray<readonly [string, unknown]> = [
      ["a throwing getter", { ok: 1, get bad() { throw boom } }],
      ["a Proxy whose get throws", trap("get")],
      ["a Proxy whose ownKeys throws", trap("ownKeys")],
      ["a Proxy whose getPrototypeOf throws", trap("getPrototypeOf")],
      ["a revoked Proxy", revocable.proxy],
      ["a Map whose iterator throws", new Throwing([["a", 1]])],
      ["a getter that throws a hostile Proxy", { get bad() { throw hostileThrown } }],
      ["a getter that throws deep down", { list: [1, 2, { deeper: [{ get bad() { throw "a string" } }] }] }]
    ]
    const encoder = new Encoder()
    for (const [name, value] of cases) {
      for (const attempt of [
        () => encoder.encode(value),
        () => encoder.encodeRequest("Test.Echo", 1, value),
        () => encoder.encodeRequestParts("Test.Echo", 1, value),
        () => encoder.encodeResponseParts("Test.Echo", 1, "", value)
      ]) {
        const result = attempt()
        assert.instanceOf(result, CodecError, name)
        assert.strictEqual((result as CodecError).reason, "Unreadable", name)
        assert.include((result as CodecError).message, "reading the value threw", name)
      }
    }
    assert.strictEqual(errorOf(encoder.encode({ get bad() { throw boom } })).cause, boom)
    // The encoder is still in step afterwards.
    assert.strictEqual(hex(encoder.encode({ a: [1, "x"] })), hex(encode({ a: [1, "x"] })))
  })

  it("returns TooDeep past maxDepth and for cyclic values instead of overflowing the stack", () => {
    let ok: unknown = 1
    for (let i = 0; i < 512; i++) ok = [ok]
    assert.instanceOf(encode(ok), Uint8Array)
    assert.strictEqual(errorOf(encode([ok])).reason, "TooDeep")
    const cyclic: Record<string, unknown> = {}
    cyclic["self"] = cyclic
    assert.strictEqual(errorOf(encode(cyclic)).reason, "TooDeep")
    assert.strictEqual(errorOf(new Encoder({ maxDepth: 2 }).encode([[[1]]])).reason, "TooDeep")
  })

  it("keeps earlier results intact across later encodes, failures and slab changes", () => {
    const encoder = new Encoder({ slabBytes: 2048 })
    const kept: Array<[Uint8Array, string]> = []
    for (let i = 0; i < 200; i++) {
      const v = { i, s: "v".repeat(i * 13) }
      const out = bytesOf(encoder.encode(v))
      kept.push([out, hex(out)])
      assert.instanceOf(encoder.encode({ bad: Symbol("x"), pad: "p".repeat(i) }), CodecError)
    }
    const big = bytesOf(encoder.encode("L".repeat(100_000)))
    kept.push([big, hex(big)])
    kept.push([bytesOf(encoder.encode(1)), "01"])
    for (const [out, want] of kept) assert.strictEqual(hex(out), want)
  })

  it("handles getters that re-enter the same encoder", () => {
    const encoder = new Encoder()
    const inner = { get x() {
      return hex(encoder.encode("inner"))
    } }
    assert.strictEqual(hex(encoder.encode(inner)), hex(encode({ x: "a5696e6e6572" })))
  })

  it("round-trips through the decoder byte for byte", () => {
    const values: Array<unknown> = [
      { ServiceMethod: "Catalog.ListNodes", Seq: 18446744073709551615n, Body: [1, -1, 1.25, null, true, "é"] },
      { Nested: { Deeper: { List: [new Uint8Array([0xff, 0xfe]), "x".repeat(40), {}] } } },
      [2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 53 + 2, -(2 ** 53) - 2, 9223372036854775807n]
    ]
    for (const v of values) {
      const once = bytesOf(encode(v))
      const back = decode(once)
      if (back instanceof CodecError) throw back
      assert.strictEqual(hex(encode(back)), hex(once))
    }
  })
})

describe("Encoder.encodeRequestParts", () => {
  const concat = (parts: ReadonlyArray<Uint8Array>): string => Buffer.concat(parts).toString("hex")

  it("hands large byte arrays over uncopied, and the parts spell the same request as encodeRequest", () => {
    const big = new Uint8Array(ZeroCopyBytes).fill(7)
    const args = { Payload: big, Seq: 5, Note: "after" }
    const parts = new Encoder().encodeRequestParts("Test.Echo", 9, args)
    assert(Array.isArray(parts))
    assert.strictEqual(parts.length, 3)
    assert.strictEqual(parts[1], big)
    assert.strictEqual(concat(parts), hex(new Encoder().encodeRequest("Test.Echo", 9, args)))
  })

  it("copies byte arrays under the threshold, filling the slab and going on in a fresh one", () => {
    const args = { Payload: new Uint8Array(ZeroCopyBytes - 1).fill(1) }
    const parts = new Encoder().encodeRequestParts("Test.Echo", 1, args)
    assert(Array.isArray(parts))
    assert.isTrue(parts.every((p) => p.buffer !== args.Payload.buffer), "the caller's array is not handed over")
    // The request's header and the payload's first bytes fill the 64 KiB slab; the rest starts the next one.
    assert.deepStrictEqual(parts.map((p) => p.buffer.byteLength), [DefaultSlabBytes, DefaultSlabBytes])
    assert.strictEqual(parts[0]!.length, DefaultSlabBytes)
    assert.strictEqual(concat(parts), hex(new Encoder().encodeRequest("Test.Echo", 1, args)))
  })
})

describe("Encoder.encodeResponseParts", () => {
  it("hands a large reply byte array over uncopied, spelling the same response as encodeResponse", () => {
    const big = new Uint8Array(ZeroCopyBytes + 1).fill(3)
    const reply = { Payload: big }
    const parts = new Encoder().encodeResponseParts("Test.Echo", 4, "", reply)
    assert(Array.isArray(parts))
    assert.strictEqual(parts[1], big)
    assert.strictEqual(Buffer.concat(parts).toString("hex"), hex(new Encoder().encodeResponse("Test.Echo", 4, "", reply)))
  })
})

describe("Encoder memory", () => {
  /** The bytes of every distinct buffer the parts keep alive. */
  const held = (parts: ReadonlyArray<Uint8Array>): number =>
    [...new Set(parts.map((p) => p.buffer))].reduce((n, b) => n + b.byteLength, 0)
  const size = (parts: ReadonlyArray<Uint8Array>): number => parts.reduce((n, p) => n + p.length, 0)
  const MiB = 1024 * 1024
  const replies: ReadonlyArray<readonly [string, unknown]> = [
    ["1 MiB of ASCII", "a".repeat(MiB)],
    ["1 MiB of 2-byte characters", "é".repeat(MiB / 2)],
    ["1 MiB of 3-byte characters", "✓".repeat(MiB / 3)],
    ["1 MiB of 4-byte characters", "𝄞".repeat(MiB / 4)],
    ["a 40 KiB string", "b".repeat(40 * 1024)],
    ["2,000 strings of 1 KiB", Array.from({ length: 2000 }, (_, i) => "c".repeat(1000) + i)],
    ["a map of 5,000 keys", Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`key-${i}`, i]))],
    ["three 300 KiB strings and bytes", { A: "d".repeat(300 * 1024), B: new Uint8Array(300 * 1024), C: "é".repeat(150 * 1024) }]
  ]

  // In parts, a message shares its first slab with the messages before it and its last with those after it.
  const sharedSlabs = 2 * DefaultSlabBytes

  for (const [name, reply] of replies) {
    it(`a message holds at most its size plus the slabs it shares: ${name}`, () => {
      const encoder = new Encoder()
      const whole = bytesOf(encoder.encodeResponse("Test.Echo", 1, "", reply))
      assert.isAtMost(held([whole]), whole.length + DefaultSlabBytes, "encodeResponse")
      const parts = encoder.encodeResponseParts("Test.Echo", 2, "", reply)
      if (parts instanceof CodecError) return assert.fail(parts.message)
      assert.isAtMost(held(parts), size(parts) + sharedSlabs, "encodeResponseParts")
      assert.strictEqual(
        Buffer.concat(parts).toString("hex"),
        hex(new Encoder().encodeResponse("Test.Echo", 2, "", reply)),
        "the parts spell the same bytes"
      )
      const request = encoder.encodeRequestParts("Test.Echo", 3, reply)
      if (request instanceof CodecError) return assert.fail(request.message)
      assert.isAtMost(held(request), size(request) + sharedSlabs, "encodeRequestParts")
      assert.deepStrictEqual(decode(bytesOf(encode(reply))), decode(whole.subarray(whole.length - bytesOf(encode(reply)).length)))
    })
  }

  it("200 echoes of 1 MiB strings held unsent hold about 200 MiB, not 3.75 times that", () => {
    const encoder = new Encoder()
    const unsent: Array<Array<Uint8Array>> = []
    for (let i = 0; i < 200; i++) {
      const parts = encoder.encodeResponseParts("Test.Echo", i, "", { Note: "x".repeat(MiB - 10) + i })
      if (parts instanceof CodecError) return assert.fail(parts.message)
      unsent.push(parts)
    }
    const total = held(unsent.flat())
    assert.isAtMost(total, 200 * MiB + sharedSlabs)
  })
})
