/**
 * fast-check arbitraries and models shared by the msgpack property tests.
 *
 * Two generators: `encodable` makes JS values for our `Encoder` (what the client and server send), with
 * `expected` saying what `Decoder` must give back for them; `wire` makes msgpack bytes directly, in every
 * format of the spec including those Go never writes (str8, bin, float32, fixext, non-minimal ints), each
 * with the `Value` the decoder's documented value model assigns to it.
 */
import fc from "fast-check"
import { Ext, type Value } from "../../src/msgpackrpc/Decoder.ts"

export const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")

// -------------------------------------------------------------------------------------------------
// Chunking
// -------------------------------------------------------------------------------------------------

/**
 * Splits `bytes` into consecutive chunks whose sizes cycle through `sizes`. A size of 0 yields an empty chunk
 * without stalling. Each chunk is a copy, so a decoder reading past its chunk cannot see its neighbour.
 */
export const split = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let at = 0
  let i = 0
  let zeros = 0
  while (at < bytes.length) {
    let n = sizes[i++ % sizes.length]!
    if (n === 0 && ++zeros > sizes.length) n = 1
    if (n > 0) zeros = 0
    chunks.push(bytes.slice(at, at + n))
    at += n
  }
  return chunks
}

/** Mostly tiny chunks (headers and lengths split everywhere), some large ones, the odd empty one. */
export const chunkSizes: fc.Arbitrary<Array<number>> = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: 1, max: 9 }) },
    { weight: 3, arbitrary: fc.integer({ min: 10, max: 400 }) },
    // Whole values of a few KiB in one chunk: the zero-copy path, and raw values past the share threshold.
    { weight: 1, arbitrary: fc.integer({ min: 401, max: 5000 }) },
    { weight: 1, arbitrary: fc.constant(0) }
  ),
  { minLength: 1, maxLength: 10 }
)

// -------------------------------------------------------------------------------------------------
// Strings and bytes
// -------------------------------------------------------------------------------------------------

const utf8Encoder = new TextEncoder()
const utf8Fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** What a JS string becomes on the wire and back: lone surrogates turn into U+FFFD, as `TextEncoder` does. */
export const wellFormed = (s: string): string => utf8Fatal.decode(utf8Encoder.encode(s))

/** The decoder's str-family rule: empty is `""`, valid UTF-8 is a string, anything else stays bytes. */
export const rawValue = (bytes: Uint8Array): string | Uint8Array => {
  try {
    return utf8Fatal.decode(bytes)
  } catch {
    return Uint8Array.from(bytes)
  }
}

const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c))

/** Strings with ASCII (the fast paths), any code point, lone surrogates, a BOM, and lengths across 31/32. */
export const someString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 40 }) },
  {
    weight: 3,
    arbitrary: fc.string({
      unit: fc.oneof(
        { weight: 8, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
        { weight: 1, arbitrary: loneSurrogate },
        { weight: 1, arbitrary: fc.constant("\ufeff") }
      ),
      maxLength: 24
    })
  },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(30, 31, 32, 33, 255, 256, 1100), fc.constantFrom("a", "é", "✓", "𝄞")).map(([n, c]) => c.repeat(n)) }
)

/** Well-formed strings only, for map keys: two keys that differ only in a lone surrogate would collide. */
export const keyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "toString", "0", "1", "10", "-1", "", "ServiceMethod", "Seq") }
)

/** Bytes: random (mostly invalid UTF-8), valid UTF-8, empty, and large enough to cross the share threshold. */
export const someBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }).map((s) => utf8Encoder.encode(s)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(1023, 1024, 1500), fc.nat({ max: 255 })).map(([n, b]) => new Uint8Array(n).fill(b)) }
)

// -------------------------------------------------------------------------------------------------
// Integers
// -------------------------------------------------------------------------------------------------

/** Every boundary of the msgpack int formats and of JS's safe integers, each with its neighbours. */
export const intEdges: ReadonlyArray<bigint> = [
  0n, 1n, 31n, 127n, 128n, 255n, 256n, 65535n, 65536n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n,
  2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n,
  -1n, -32n, -33n, -128n, -129n, -32768n, -32769n, -(2n ** 31n), -(2n ** 31n) - 1n, -(2n ** 53n) + 1n,
  -(2n ** 53n), -(2n ** 53n) - 1n, -(2n ** 63n)
]

const minSafe = BigInt(Number.MIN_SAFE_INTEGER)
const maxSafe = BigInt(Number.MAX_SAFE_INTEGER)

/** The decoder's integer rule: a safe integer is a `number`, anything else a `bigint`. */
export const intValue = (v: bigint): number | bigint => (v >= minSafe && v <= maxSafe ? Number(v) : v)

export const int64: fc.Arbitrary<bigint> = fc.oneof(
  fc.constantFrom(...intEdges),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n })
)

// -------------------------------------------------------------------------------------------------
// Values for our Encoder, and what the decoder gives back for them
// -------------------------------------------------------------------------------------------------

/** What the Encoder accepts and Go types map to: no `Map`, `Date`, `undefined` inside objects aside. */
export const encodable: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { weight: 2, arbitrary: fc.constantFrom(null, undefined, true, false) },
    { weight: 3, arbitrary: int64.map((v) => (v >= minSafe && v <= maxSafe ? Number(v) : v)) },
    // Integral numbers beyond 2^53 are written as ints and come back as bigints; beyond 2^64 as floats.
    { weight: 1, arbitrary: int64.map(Number) },
    { weight: 2, arbitrary: fc.double() },
    { weight: 4, arbitrary: someString },
    { weight: 2, arbitrary: someBytes },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: -128, max: 127 }), fc.uint8Array({ maxLength: 20 })).map(([t, d]) => new Ext(t, d)) },
    { weight: 2, arbitrary: fc.array(tie("value"), { maxLength: 5 }) },
    { weight: 2, arbitrary: fc.dictionary(keyString, tie("value"), { maxKeys: 5 }) }
  )
})).value

const ownObject = (entries: ReadonlyArray<readonly [string, Value]>): { [key: string]: Value } => {
  const out: { [key: string]: Value } = {}
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  return out
}

/** What `decode(encode(v))` must be, from the Encoder's and the Decoder's documented rules. */
export const expected = (v: unknown): Value => {
  if (v === null || v === undefined) return null
  switch (typeof v) {
    case "boolean":
      return v
    case "number":
      if (v === 0) return 0 // -0 is an integer, written as 0
      if (Number.isSafeInteger(v)) return v
      if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64) return BigInt(v)
      return v
    case "bigint":
      return intValue(v)
    case "string":
      return wellFormed(v)
    case "object":
      if (v instanceof Uint8Array) return v.length === 0 ? "" : rawValue(v)
      if (v instanceof Ext) return new Ext(v.type, Uint8Array.from(v.data))
      if (Array.isArray(v)) return v.map(expected)
      return ownObject(Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .map((k) => [k, expected((v as Record<string, unknown>)[k])] as const))
  }
  throw new Error(`not an encodable value: ${String(v)}`)
}

// -------------------------------------------------------------------------------------------------
// msgpack bytes in every format, with the Value each decodes to
// -------------------------------------------------------------------------------------------------

export interface Wire {
  readonly bytes: Uint8Array
  readonly value: Value
  /** Nesting as the decoder's scanner counts it: non-empty containers only (an empty one opens no level). */
  readonly depth: number
}

export interface WireOptions {
  /**
   * Restrict to what `@msgpack/msgpack` decodes the same way: str payloads valid UTF-8, no ext type -1
   * (its timestamp), map keys only strings or non-64-bit ints, no `__proto__` key.
   */
  readonly oracle: boolean
}

const u8 = (n: number) => Uint8Array.of(n)
const be = (n: number | bigint, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  if (size === 1) view.setUint8(0, Number(n) & 0xff)
  else if (size === 2) view.setUint16(0, Number(n) & 0xffff)
  else if (size === 4) view.setUint32(0, Number(n) >>> 0)
  else view.setBigUint64(0, BigInt.asUintN(64, BigInt(n)))
  return out
}

type Format = readonly [prefix: Uint8Array, ok: boolean]

/** Every header the spec allows for a str/bin/array/map of `n`: fix form when it fits, then 8/16/32. */
const lengthHeaders = (n: number, fix: number | undefined, fixMax: number, b8: number | undefined, b16: number): Array<Format> => [
  [u8((fix ?? 0) | n), fix !== undefined && n <= fixMax],
  [concat([u8(b8 ?? 0), be(n, 1)]), b8 !== undefined && n <= 0xff],
  [concat([u8(b16), be(n, 2)]), n <= 0xffff],
  [concat([u8(b16 + 1), be(n, 4)]), true]
]

const pickHeader = (formats: ReadonlyArray<Format>): fc.Arbitrary<Uint8Array> =>
  fc.constantFrom(...formats.filter(([, ok]) => ok).map(([p]) => p))

const intWire: fc.Arbitrary<{ bytes: Uint8Array; n: bigint }> = int64.chain((n) => {
  const formats: Array<Format> = [
    [u8(Number(n) & 0xff), n >= 0n && n <= 127n],
    [u8(Number(n) & 0xff), n >= -32n && n < 0n],
    [concat([u8(0xcc), be(n, 1)]), n >= 0n && n <= 0xffn],
    [concat([u8(0xcd), be(n, 2)]), n >= 0n && n <= 0xffffn],
    [concat([u8(0xce), be(n, 4)]), n >= 0n && n <= 0xffffffffn],
    [concat([u8(0xcf), be(n, 8)]), n >= 0n],
    [concat([u8(0xd0), be(n, 1)]), n >= -128n && n <= 127n],
    [concat([u8(0xd1), be(n, 2)]), n >= -32768n && n <= 32767n],
    [concat([u8(0xd2), be(n, 4)]), n >= -(2n ** 31n) && n < 2n ** 31n],
    [concat([u8(0xd3), be(n, 8)]), n < 2n ** 63n]
  ]
  return pickHeader(formats).map((bytes) => ({ bytes, n }))
})

const floatWire: fc.Arbitrary<Omit<Wire, "depth">> = fc.oneof(
  fc.float().map((f) => {
    const bytes = new Uint8Array(5)
    bytes[0] = 0xca
    new DataView(bytes.buffer).setFloat32(1, f)
    return { bytes, value: new DataView(bytes.buffer).getFloat32(1) }
  }),
  fc.double().map((d) => {
    const bytes = new Uint8Array(9)
    bytes[0] = 0xcb
    new DataView(bytes.buffer).setFloat64(1, d)
    return { bytes, value: d }
  })
)

const strWire = (payload: fc.Arbitrary<Uint8Array>): fc.Arbitrary<{ bytes: Uint8Array; payload: Uint8Array }> =>
  payload.chain((p) =>
    pickHeader(lengthHeaders(p.length, 0xa0, 31, 0xd9, 0xda)).map((h) => ({ bytes: concat([h, p]), payload: p }))
  )

const binWire: fc.Arbitrary<Omit<Wire, "depth">> = someBytes.chain((p) =>
  pickHeader(lengthHeaders(p.length, undefined, -1, 0xc4, 0xc5)).map((h) => ({ bytes: concat([h, p]), value: Uint8Array.from(p) }))
)

const extWire = (oracle: boolean): fc.Arbitrary<Omit<Wire, "depth">> =>
  fc.tuple(fc.integer({ min: -128, max: 127 }).filter((t) => !oracle || t !== -1), fc.oneof(
    fc.constantFrom(1, 2, 4, 8, 16).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
    fc.uint8Array({ maxLength: 20 })
  )).chain(([type, data]) => {
    const n = data.length
    const fixed = n === 1 ? 0xd4 : n === 2 ? 0xd5 : n === 4 ? 0xd6 : n === 8 ? 0xd7 : n === 16 ? 0xd8 : undefined
    const formats: Array<Format> = [
      [u8(fixed ?? 0), fixed !== undefined],
      [concat([u8(0xc7), be(n, 1)]), n <= 0xff],
      [concat([u8(0xc8), be(n, 2)]), true],
      [concat([u8(0xc9), be(n, 4)]), true]
    ]
    return pickHeader(formats).map((h) => ({ bytes: concat([h, be(type, 1), data]), value: new Ext(type, Uint8Array.from(data)) }))
  })

const utf8 = (s: string) => utf8Encoder.encode(s)

/** A map key on the wire and the object key the decoder makes of it. */
const keyWire = (oracle: boolean): fc.Arbitrary<{ bytes: Uint8Array; key: string }> => {
  const str = strWire((oracle ? keyString.filter((k) => k !== "__proto__") : keyString).map(utf8)).map(({ bytes, payload }) => ({
    bytes,
    key: utf8Fatal.decode(payload)
  }))
  const smallInt = intWire.filter(({ bytes }) => bytes[0] !== 0xcf && bytes[0] !== 0xd3).map(({ bytes, n }) => ({ bytes, key: String(n) }))
  if (oracle) return fc.oneof({ weight: 4, arbitrary: str }, { weight: 1, arbitrary: smallInt })
  return fc.oneof(
    { weight: 6, arbitrary: str },
    // Go's []byte keys arrive as bin when another msgpack writer sent them; valid UTF-8 is a fine key.
    { weight: 1, arbitrary: keyString.map(utf8).chain((p) =>
      pickHeader(lengthHeaders(p.length, undefined, -1, 0xc4, 0xc5)).map((h) => ({ bytes: concat([h, p]), key: utf8Fatal.decode(p) }))
    ) },
    { weight: 1, arbitrary: intWire.map(({ bytes, n }) => ({ bytes, key: String(n) })) },
    { weight: 1, arbitrary: fc.constantFrom({ bytes: u8(0xc3), key: "true" }, { bytes: u8(0xc2), key: "false" }) },
    { weight: 1, arbitrary: floatWire.map(({ bytes, value }) => ({ bytes, key: String(value) })) }
  )
}

const leaf = (w: Omit<Wire, "depth">): Wire => ({ ...w, depth: 0 })

/** A msgpack value in any of the spec's formats, with the Value the decoder must produce. */
export const wire = (options: WireOptions): fc.Arbitrary<Wire> =>
  fc.letrec<{ value: Wire }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 1, arbitrary: fc.constantFrom<Wire>({ bytes: u8(0xc0), value: null, depth: 0 }, { bytes: u8(0xc2), value: false, depth: 0 }, { bytes: u8(0xc3), value: true, depth: 0 }) },
      { weight: 3, arbitrary: intWire.map(({ bytes, n }) => ({ bytes, value: intValue(n), depth: 0 })) },
      { weight: 1, arbitrary: floatWire.map(leaf) },
      {
        weight: 3,
        arbitrary: strWire(options.oracle ? someString.map(utf8) : fc.oneof(someString.map(utf8), someBytes))
          .map(({ bytes, payload }) => ({ bytes, value: payload.length === 0 ? "" : rawValue(payload), depth: 0 }))
      },
      { weight: 1, arbitrary: binWire.map(leaf) },
      { weight: 1, arbitrary: extWire(options.oracle).map(leaf) },
      {
        weight: 2,
        arbitrary: fc.array(tie("value"), { maxLength: 5 }).chain((items) =>
          pickHeader(lengthHeaders(items.length, 0x90, 15, undefined, 0xdc)).map((h) => ({
            bytes: concat([h, ...items.map((i) => i.bytes)]),
            value: items.map((i) => i.value),
            depth: items.length === 0 ? 0 : 1 + Math.max(...items.map((i) => i.depth))
          }))
        )
      },
      {
        weight: 2,
        arbitrary: fc.array(fc.tuple(keyWire(options.oracle), tie("value")), { maxLength: 5 }).chain((entries) =>
          pickHeader(lengthHeaders(entries.length, 0x80, 15, undefined, 0xde)).map((h) => ({
            bytes: concat([h, ...entries.flatMap(([k, v]) => [k.bytes, v.bytes])]),
            // Later duplicates win, in place, as with plain assignment.
            value: ownObject(entries.map(([k, v]) => [k.key, v.value] as const)),
            depth: entries.length === 0 ? 0 : 1 + Math.max(...entries.map(([, v]) => v.depth))
          }))
        )
      }
    )
  })).value

// -------------------------------------------------------------------------------------------------
// Hostile bytes
// -------------------------------------------------------------------------------------------------

/**
 * `valid` damaged, or not: a byte overwritten, bytes dropped or inserted, cut short. Valid structure around
 * the damage gets a decoder deep into containers and lengths before it goes wrong.
 */
export const damaged = (valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> =>
  fc.tuple(valid, fc.nat(), fc.nat({ max: 255 }), fc.nat({ max: 4 }), fc.uint8Array({ maxLength: 12 }))
    .map(([original, where, byte, how, garbage]) => {
      // A copy: fast-check may hand the same generated value to several runs while shrinking.
      const bytes = original.slice()
      const at = where % (bytes.length + 1)
      switch (how) {
        case 0:
          if (at < bytes.length) bytes[at] = byte
          return bytes
        case 1:
          return concat([bytes.subarray(0, at), bytes.subarray(at + 1 + (byte % 9))])
        case 2:
          return concat([bytes.subarray(0, at), garbage, bytes.subarray(at)])
        case 3:
          return bytes.subarray(0, at)
        default:
          return bytes
      }
    })

/** Random bytes, and back to back msgpack values of every format, damaged. */
export const hostile: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 80 }) },
  { weight: 5, arbitrary: damaged(fc.array(wire({ oracle: false }), { minLength: 1, maxLength: 4 }).map((vs) => concat(vs.map((v) => v.bytes)))) }
)

// -------------------------------------------------------------------------------------------------
// Amplifying shapes: few bytes on the wire, many values once decoded
// -------------------------------------------------------------------------------------------------

/**
 * A value that is small on the wire and large once built (wide and deep nil arrays, nested empty maps,
 * empty byte arrays and exts, huge declared counts with short bodies), with what the decoding budget
 * charges at each of its headers, so a test knows where a budget must refuse it.
 */
export interface Amplifier {
  readonly bytes: Uint8Array
  /** `[end of header, cost charged so far]` for each header that is charged, in order. */
  readonly charges: ReadonlyArray<readonly [number, number]>
  /** Whether every declared element is present, so the value is complete. */
  readonly complete: boolean
  /** Strs that are not UTF-8, charged as byte arrays only when read. */
  readonly rawBytes: number
}

/** One element of the wide container: its bytes, and `[end of header in it, cost beyond the slot]`s. */
interface Element {
  readonly bytes: Uint8Array
  readonly charges: ReadonlyArray<readonly [number, number]>
  readonly raw: boolean
}

const element = (hexBytes: string, charges: ReadonlyArray<readonly [number, number]>, raw = false): Element => ({
  bytes: Uint8Array.from(Buffer.from(hexBytes, "hex")),
  charges,
  raw
})

/** Leaves; the costs mirror `DecodedCost` (8 a value, 64 a container, 256 a byte array, 320 an ext). */
const amplifyingElement: fc.Arbitrary<Element> = fc.constantFrom(
  element("c0", []),
  element("90", [[1, 56]]),
  element("80", [[1, 56]]),
  element("c400", [[2, 248]]),
  element("d40100", [[1, 312]]),
  element("a161", []),
  element("a1ff", [], true),
  // A map with one key (two values) whose value is an empty map.
  element("81a16b80", [[1, 56 + 16], [4, 56]])
)

/** A container header claiming `n` elements (`map`: entries) that will not follow. */
const claim = fc.tuple(fc.constantFrom(0xdc, 0xdd, 0xde, 0xdf), fc.integer({ min: 1, max: 2 ** 32 - 1 })).map(([tag, n]) => {
  const wide = tag === 0xdd || tag === 0xdf
  const count = wide ? n : n & 0xffff || 1
  const bytes = new Uint8Array(wide ? 5 : 3)
  bytes[0] = tag
  if (wide) new DataView(bytes.buffer).setUint32(1, count)
  else new DataView(bytes.buffer).setUint16(1, count)
  const values = tag >= 0xde ? count * 2 : count
  return { bytes, charges: [[bytes.length, 56 + 8 * values]], raw: false } satisfies Element
})

export const amplifier: fc.Arbitrary<Amplifier> = fc.record({
  wrappers: fc.nat({ max: 40 }),
  wide: fc.boolean(),
  elements: fc.array(amplifyingElement, { maxLength: 40 }),
  missing: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 2 ** 32 - 1 })),
  last: fc.option(claim, { nil: undefined })
}).map(({ elements, last, missing, wide, wrappers }) => {
  const declared = Math.min(wide ? 2 ** 32 - 1 : 0xffff, elements.length + (last === undefined ? 0 : 1) + missing)
  const head = new Uint8Array(wide ? 5 : 3)
  head[0] = wide ? 0xdd : 0xdc
  if (wide) new DataView(head.buffer).setUint32(1, declared)
  else new DataView(head.buffer).setUint16(1, declared)
  const parts: Array<Uint8Array> = []
  const charges: Array<readonly [number, number]> = []
  let at = 0
  let cost = 8
  // Deep: each fixarray(1) wrapper is a container with one element.
  for (let i = 0; i < wrappers; i++) {
    parts.push(Uint8Array.of(0x91))
    at += 1
    cost += 56 + 8
    charges.push([at, cost])
  }
  parts.push(head)
  at += head.length
  cost += 56 + 8 * declared
  charges.push([at, cost])
  const body = last === undefined ? elements : [...elements, last]
  for (const e of body) {
    for (const [end, extra] of e.charges) {
      cost += extra
      charges.push([at + end, cost])
    }
    parts.push(e.bytes)
    at += e.bytes.length
  }
  return {
    bytes: concat(parts),
    charges,
    complete: last === undefined && declared === elements.length,
    rawBytes: elements.filter((e) => e.raw).length
  }
})
