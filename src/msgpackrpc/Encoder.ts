/**
 * msgpack encoder that writes the bytes Go writes: go-msgpack with Consul's and Nomad's handles
 * (`WriteExt=false`), wire-protocol.md §1.3.
 *
 * Pure: values in, bytes out. Nothing here touches a socket or the Effect runtime; failures are returned as
 * `CodecError` values, never thrown.
 *
 * **Encoding rules**
 * - `string` and `Uint8Array` (Go `string` and `[]byte`) both use the old raw/str family: fixstr `0xa0|n` below
 *   32 bytes, else str16 `0xda`, else str32 `0xdb`. Never str8 `0xd9`, never bin.
 * - Integers (`number` with an integral value, or `bigint`): the smallest of posfixint / `0xcc..0xcf` when
 *   non-negative (go-msgpack's `encodeInt` writes non-negative signed ints as unsigned), negfixint /
 *   `0xd0..0xd3` when negative. Other numbers (and integers outside the 64-bit range) are float64 `0xcb`.
 *   A Go float64 field holding an integral value (`2.0`) is written `0xcb` by Go but as an int here; Go
 *   decodes either into a float field, so only byte-identity is lost.
 * - Objects are maps whose keys are sorted by their UTF-8 bytes, which is how Go orders struct fields.
 *   Properties whose value is `undefined` are omitted (think `omitempty`); `null` is written as nil `0xc0`,
 *   like a nil pointer, slice or map. An empty object is `0x80` (Go's `struct{}{}`).
 * - `null` and `undefined` (top level or array element) → nil. Arrays → arrays. `Map` → map in insertion order
 *   (Go maps have no order, so nothing to match). `Date` → Go `time.Time` as its `MarshalBinary` raw string
 *   (15 bytes, UTC: `0xaf 0x01 <int64 s since year 1> <int32 ns> 0xff 0xff`; JS dates carry milliseconds only).
 *   `Ext` → ext type (Go never writes one; this only keeps decoded values round-tripping).
 * - Anything else (functions, symbols, `Set`, typed arrays other than `Uint8Array`, invalid `Date`s) fails
 *   with `Unsupported`; nesting deeper than `maxDepth` (including cycles) fails with `TooDeep`.
 *
 * **Output buffers.** Values are encoded into a shared slab (like Node's `Buffer` pool): each result is a
 * `subarray` of the slab that is never written again, so it is safe to hand to `socket.write` and keep, with no
 * copy per message. A small result keeps its slab (`slabBytes`, default 64 KiB) alive while referenced; use
 * `.slice()` on results you cache for a long time. Do not rely on `result.buffer` holding only the result.
 *
 * @since 0.1.0
 */
import { CodecError } from "./CodecError.ts"
import { Ext } from "./Decoder.ts"

/**
 * Default `maxDepth` of the encoder: 512 nested arrays/maps, the same as the decoder's.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxEncodeDepth = 512

/**
 * Default `slabBytes`: 64 KiB shared by consecutive small results.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultSlabBytes = 64 * 1024

/**
 * @category models
 * @since 0.1.0
 */
export interface EncoderOptions {
  /** Deepest container nesting. Default {@link DefaultMaxEncodeDepth} (512). */
  readonly maxDepth?: number | undefined
  /** Size of the shared output slab. Default {@link DefaultSlabBytes} (64 KiB). */
  readonly slabBytes?: number | undefined
}

/**
 * `encodeRequestParts` hands a `Uint8Array` of this many bytes or more to the writer as it is, instead of
 * copying it into the message: 64 KiB, one yamux Data frame, where the copy and its allocation start to cost
 * more than the extra write.
 *
 * @category constants
 * @since 0.1.0
 */
export const ZeroCopyBytes = 64 * 1024

/** Start a fresh slab when less than this is left, so that a message rarely has to move mid-encode. */
const MinSlabTail = 1024
/** Strings up to this many UTF-16 units are encoded in JS; longer ones with `TextEncoder.encodeInto`. */
const ShortStringUnits = 48
const MaxCachedMethods = 1024
/** Seconds from 0001-01-01 (Go's `time.Time` epoch) to 1970-01-01. */
const GoUnixToInternal = 62_135_596_800
const TwoPow32 = 0x100000000

const ascii = (s: string): Array<number> => Array.from(s, (c) => c.charCodeAt(0))
/** `{Seq: …, ServiceMethod: …}`: fixmap(2), then the keys in sorted order. */
const RequestPrefix = new Uint8Array([0x82, 0xa3, ...ascii("Seq")])
/** `{Error: …, Seq: …, ServiceMethod: …}`: fixmap(3). */
const ResponsePrefix = new Uint8Array([0x83, 0xa5, ...ascii("Error")])
const KeySeq = new Uint8Array([0xa3, ...ascii("Seq")])
const KeyServiceMethod = new Uint8Array([0xad, ...ascii("ServiceMethod")])

const utf8Encoder = new TextEncoder()

/**
 * A reusable encoder. Single-threaded like everything in JS; a value whose getters re-enter the same encoder
 * are handled by a temporary encoder.
 *
 * @category constructors
 * @since 0.1.0
 */
export class Encoder {
  private readonly options: EncoderOptions | undefined
  private readonly maxDepth: number
  private readonly slabBytes: number
  private buf: Uint8Array = new Uint8Array(0)
  private view: DataView = new DataView(this.buf.buffer)
  private pos = 0
  private start = 0
  private busy = false
  /** Set while `encodeRequestParts` runs: where large byte arrays go instead of being copied. */
  private parts: Array<Uint8Array> | undefined = undefined
  private readonly methods = new Map<string, Uint8Array>()
  private readonly keyScratch: Array<Array<string>> = []
  private readonly valueScratch: Array<Array<unknown>> = []

  constructor(options?: EncoderOptions) {
    this.options = options
    this.maxDepth = options?.maxDepth !== undefined && options.maxDepth > 0
      ? Math.floor(options.maxDepth)
      : DefaultMaxEncodeDepth
    this.slabBytes = options?.slabBytes !== undefined && options.slabBytes >= 64
      ? Math.floor(options.slabBytes)
      : DefaultSlabBytes
  }

  /** Encodes one value. */
  encode(value: unknown): Uint8Array | CodecError {
    if (this.busy) return new Encoder(this.options).encode(value)
    this.begin()
    try {
      this.value(value, 0)
      return this.finish()
    } catch (e) {
      return this.abort(e)
    }
  }

  /**
   * Encodes a net/rpc request: the header `{ServiceMethod, Seq}` then `args`, back to back in one buffer,
   * ready for one write.
   */
  encodeRequest(method: string, seq: number | bigint, args: unknown): Uint8Array | CodecError {
    if (this.busy) return new Encoder(this.options).encodeRequest(method, seq, args)
    this.begin()
    try {
      this.raw(RequestPrefix)
      this.seq(seq)
      this.raw(KeyServiceMethod)
      this.method(method)
      this.value(args, 0)
      return this.finish()
    } catch (e) {
      return this.abort(e)
    }
  }

  /**
   * `encodeRequest` as a list of buffers to write in order: `Uint8Array`s in `args` of {@link ZeroCopyBytes}
   * or more appear in the list as they are, not copied, so the caller must leave them unchanged until they
   * have been written.
   */
  encodeRequestParts(method: string, seq: number | bigint, args: unknown): Array<Uint8Array> | CodecError {
    if (this.busy) return new Encoder(this.options).encodeRequestParts(method, seq, args)
    return this.inParts(() => this.encodeRequest(method, seq, args))
  }

  /** `encodeResponse` as a list of buffers, large byte arrays uncopied, as `encodeRequestParts`. */
  encodeResponseParts(
    method: string,
    seq: number | bigint,
    error: string,
    reply: unknown
  ): Array<Uint8Array> | CodecError {
    if (this.busy) return new Encoder(this.options).encodeResponseParts(method, seq, error, reply)
    return this.inParts(() => this.encodeResponse(method, seq, error, reply))
  }

  private inParts(encode: () => Uint8Array | CodecError): Array<Uint8Array> | CodecError {
    const parts: Array<Uint8Array> = []
    this.parts = parts
    try {
      const last = encode()
      if (last instanceof CodecError) return last
      if (last.length > 0 || parts.length === 0) parts.push(last)
      return parts
    } finally {
      this.parts = undefined
    }
  }

  /**
   * Encodes a net/rpc response: the header `{ServiceMethod, Seq, Error}` then `reply`, in one buffer. Go's
   * server sends `struct{}{}` (`{}` here) as the reply when `error` is set.
   */
  encodeResponse(method: string, seq: number | bigint, error: string, reply: unknown): Uint8Array | CodecError {
    if (this.busy) return new Encoder(this.options).encodeResponse(method, seq, error, reply)
    this.begin()
    try {
      this.raw(ResponsePrefix)
      this.string(error)
      this.raw(KeySeq)
      this.seq(seq)
      this.raw(KeyServiceMethod)
      this.method(method)
      this.value(reply, 0)
      return this.finish()
    } catch (e) {
      return this.abort(e)
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Buffer
  // ---------------------------------------------------------------------------------------------------------

  private begin(): void {
    this.busy = true
    if (this.buf.length - this.pos < MinSlabTail) this.newBuffer(this.slabBytes)
    this.start = this.pos
  }

  private finish(): Uint8Array {
    const out = this.buf.subarray(this.start, this.pos)
    // A buffer grown for a large message is left to that message rather than kept as the slab.
    if (this.buf.length > this.slabBytes) this.newBuffer(0)
    this.start = this.pos
    this.busy = false
    return out
  }

  private abort(e: unknown): CodecError {
    this.pos = this.start
    this.busy = false
    if (e instanceof CodecError) return e
    throw e
  }

  private newBuffer(size: number): void {
    this.buf = new Uint8Array(size)
    this.view = new DataView(this.buf.buffer)
    this.pos = this.start = 0
  }

  private ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    const used = this.pos - this.start
    // A quarter of headroom keeps growth geometric, while a 1 MiB payload costs 1.25 MiB rather than the
    // 2 MiB (zero-filled, then garbage) that doubling would allocate per call.
    const next = new Uint8Array(Math.max(this.slabBytes, used + n + Math.max(MinSlabTail, (used + n) >> 2)))
    next.set(this.buf.subarray(this.start, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
    this.start = 0
    this.pos = used
  }

  private raw(bytes: Uint8Array): void {
    const n = bytes.length
    this.ensure(n)
    if (n <= 16) {
      const buf = this.buf
      let p = this.pos
      for (let i = 0; i < n; i++) buf[p++] = bytes[i]!
      this.pos = p
    } else {
      this.buf.set(bytes, this.pos)
      this.pos += n
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Values
  // ---------------------------------------------------------------------------------------------------------

  private value(v: unknown, depth: number): void {
    switch (typeof v) {
      case "string":
        return this.string(v)
      case "number":
        return this.number(v)
      case "boolean":
        this.ensure(1)
        this.buf[this.pos++] = v ? 0xc3 : 0xc2
        return
      case "bigint":
        return this.bigint(v)
      case "undefined":
        return this.nil()
      case "object": {
        if (v === null) return this.nil()
        const proto = Object.getPrototypeOf(v)
        if (proto === Object.prototype || proto === null) return this.object(v, depth, true)
        if (Array.isArray(v)) return this.array(v, depth)
        if (v instanceof Uint8Array) return this.bytes(v)
        if (v instanceof Date) return this.date(v)
        if (v instanceof Map) return this.map(v, depth)
        if (v instanceof Ext) return this.ext(v)
        if (v instanceof Set || ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return unsupported(v)
        return this.object(v, depth, false)
      }
      default:
        return unsupported(v)
    }
  }

  private nil(): void {
    this.ensure(1)
    this.buf[this.pos++] = 0xc0
  }

  private number(v: number): void {
    if (Number.isInteger(v)) {
      if (v >= 0) {
        if (v < 18446744073709551616) return this.uint(v)
      } else if (v >= -9223372036854775808) {
        return this.int(v)
      }
    }
    this.ensure(9)
    this.buf[this.pos] = 0xcb
    this.view.setFloat64(this.pos + 1, v)
    this.pos += 9
  }

  /** `v` is a non-negative integer below 2^64. */
  private uint(v: number): void {
    this.ensure(9)
    const buf = this.buf
    const p = this.pos
    if (v < 0x80) {
      buf[p] = v
      this.pos = p + 1
    } else if (v < 0x100) {
      buf[p] = 0xcc
      buf[p + 1] = v
      this.pos = p + 2
    } else if (v < 0x10000) {
      buf[p] = 0xcd
      buf[p + 1] = v >>> 8
      buf[p + 2] = v & 0xff
      this.pos = p + 3
    } else if (v < TwoPow32) {
      buf[p] = 0xce
      this.view.setUint32(p + 1, v)
      this.pos = p + 5
    } else {
      const hi = Math.floor(v / TwoPow32)
      buf[p] = 0xcf
      this.view.setUint32(p + 1, hi)
      this.view.setUint32(p + 5, v - hi * TwoPow32)
      this.pos = p + 9
    }
  }

  /** `v` is a negative integer not below -2^63. */
  private int(v: number): void {
    this.ensure(9)
    const buf = this.buf
    const p = this.pos
    if (v >= -32) {
      buf[p] = v & 0xff
      this.pos = p + 1
    } else if (v >= -0x80) {
      buf[p] = 0xd0
      buf[p + 1] = v & 0xff
      this.pos = p + 2
    } else if (v >= -0x8000) {
      buf[p] = 0xd1
      this.view.setInt16(p + 1, v)
      this.pos = p + 3
    } else if (v >= -0x80000000) {
      buf[p] = 0xd2
      this.view.setInt32(p + 1, v)
      this.pos = p + 5
    } else {
      const hi = Math.floor(v / TwoPow32)
      buf[p] = 0xd3
      this.view.setInt32(p + 1, hi)
      this.view.setUint32(p + 5, v - hi * TwoPow32)
      this.pos = p + 9
    }
  }

  private bigint(v: bigint): void {
    if (v >= 0n) {
      if (v <= 0xffffffffn) return this.uint(Number(v))
      if (v <= 0xffffffffffffffffn) {
        this.ensure(9)
        this.buf[this.pos] = 0xcf
        this.view.setBigUint64(this.pos + 1, v)
        this.pos += 9
        return
      }
    } else {
      if (v >= -0x80000000n) return this.int(Number(v))
      if (v >= -0x8000000000000000n) {
        this.ensure(9)
        this.buf[this.pos] = 0xd3
        this.view.setBigInt64(this.pos + 1, v)
        this.pos += 9
        return
      }
    }
    throw new CodecError({ reason: "TooLarge", message: `bigint ${v} is outside the 64-bit integer range` })
  }

  private seq(seq: number | bigint): void {
    if (typeof seq === "bigint" ? seq < 0n : !(Number.isInteger(seq) && seq >= 0)) {
      throw new CodecError({ reason: "Unsupported", message: `Seq must be a uint64, got ${String(seq)}` })
    }
    if (typeof seq === "bigint") this.bigint(seq)
    else this.number(seq)
  }

  /** Method names repeat on every call; their encoded form is cached. */
  private method(method: string): void {
    const cached = this.methods.get(method)
    if (cached !== undefined) return this.raw(cached)
    // Relative to the message start: writing the name may grow the buffer, which moves the message to offset 0.
    const at = this.pos - this.start
    this.string(method)
    if (this.methods.size < MaxCachedMethods) this.methods.set(method, this.buf.slice(this.start + at, this.pos))
  }

  /** Raw/str family header for `n` bytes; str8 is never used (`has8Always=false`, `WriteExt=false`). */
  private strHeader(n: number): void {
    this.ensure(5)
    this.strHeaderAt(n)
  }

  /** Writes the header at `pos` without growing: the caller has reserved the room. */
  private strHeaderAt(n: number): void {
    const buf = this.buf
    const p = this.pos
    if (n < 32) {
      buf[p] = 0xa0 | n
      this.pos = p + 1
    } else if (n < 0x10000) {
      buf[p] = 0xda
      buf[p + 1] = n >>> 8
      buf[p + 2] = n & 0xff
      this.pos = p + 3
    } else {
      buf[p] = 0xdb
      this.view.setUint32(p + 1, n)
      this.pos = p + 5
    }
  }

  private string(s: string): void {
    const units = s.length
    if (units < 32) {
      // Optimistic fixstr for ASCII: write straight after a one-byte header.
      this.ensure(1 + units * 3)
      const buf = this.buf
      const p = this.pos
      let i = 0
      for (; i < units; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        buf[p + 1 + i] = c
      }
      if (i === units) {
        buf[p] = 0xa0 | units
        this.pos = p + 1 + units
        return
      }
    }
    // UTF-8 needs at most 3 bytes per UTF-16 unit: reserve the header for that bound and move the bytes
    // down in the rare case the real length needs a shorter header.
    const max = units * 3
    const hdr = max < 32 ? 1 : max < 0x10000 ? 3 : 5
    this.ensure(hdr + max)
    const at = this.pos + hdr
    const n = units <= ShortStringUnits ? this.utf8(s, at) : utf8Encoder.encodeInto(s, this.buf.subarray(at)).written
    const real = n < 32 ? 1 : n < 0x10000 ? 3 : 5
    if (real !== hdr) this.buf.copyWithin(this.pos + real, at, at + n)
    this.strHeaderAt(n)
    this.pos += n
  }

  /** UTF-8 of `s` at `at` (space ensured); lone surrogates become U+FFFD as with `TextEncoder`. */
  private utf8(s: string, at: number): number {
    const buf = this.buf
    const units = s.length
    let p = at
    for (let i = 0; i < units; i++) {
      let c = s.charCodeAt(i)
      if (c < 0x80) {
        buf[p++] = c
      } else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6)
        buf[p++] = 0x80 | (c & 0x3f)
      } else if (c < 0xd800 || c > 0xdfff) {
        buf[p++] = 0xe0 | (c >> 12)
        buf[p++] = 0x80 | ((c >> 6) & 0x3f)
        buf[p++] = 0x80 | (c & 0x3f)
      } else {
        const d = c <= 0xdbff && i + 1 < units ? s.charCodeAt(i + 1) : 0
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
          buf[p++] = 0xf0 | (c >> 18)
          buf[p++] = 0x80 | ((c >> 12) & 0x3f)
          buf[p++] = 0x80 | ((c >> 6) & 0x3f)
          buf[p++] = 0x80 | (c & 0x3f)
        } else {
          buf[p++] = 0xef
          buf[p++] = 0xbf
          buf[p++] = 0xbd
        }
      }
    }
    return p - at
  }

  private bytes(b: Uint8Array): void {
    this.strHeader(b.length)
    if (this.parts !== undefined && b.length >= ZeroCopyBytes) {
      // The message so far becomes a finished part, so a later grow never copies it again.
      this.parts.push(this.buf.subarray(this.start, this.pos), b)
      this.start = this.pos
      return
    }
    this.raw(b)
  }

  private date(d: Date): void {
    const ms = d.getTime()
    if (!Number.isFinite(ms)) return unsupported(d)
    const unix = Math.floor(ms / 1000)
    const sec = unix + GoUnixToInternal
    const hi = Math.floor(sec / TwoPow32)
    this.ensure(16)
    const p = this.pos
    this.buf[p] = 0xaf
    this.buf[p + 1] = 1 // timeBinaryVersionV1
    this.view.setInt32(p + 2, hi)
    this.view.setUint32(p + 6, sec - hi * TwoPow32)
    this.view.setInt32(p + 10, (ms - unix * 1000) * 1_000_000)
    this.view.setInt16(p + 14, -1) // offset -1 means UTC
    this.pos = p + 16
  }

  private ext(e: Ext): void {
    const n = e.data.length
    this.ensure(6)
    const buf = this.buf
    const p = this.pos
    const fixed = n === 1 ? 0xd4 : n === 2 ? 0xd5 : n === 4 ? 0xd6 : n === 8 ? 0xd7 : n === 16 ? 0xd8 : 0
    if (fixed !== 0) {
      buf[p] = fixed
      this.pos = p + 1
    } else if (n < 0x100) {
      buf[p] = 0xc7
      buf[p + 1] = n
      this.pos = p + 2
    } else if (n < 0x10000) {
      buf[p] = 0xc8
      this.view.setUint16(p + 1, n)
      this.pos = p + 3
    } else {
      buf[p] = 0xc9
      this.view.setUint32(p + 1, n)
      this.pos = p + 5
    }
    buf[this.pos++] = e.type & 0xff
    this.raw(e.data)
  }

  private containerHeader(n: number, fix: number, b16: number): void {
    this.ensure(5)
    const buf = this.buf
    const p = this.pos
    if (n < 16) {
      buf[p] = fix | n
      this.pos = p + 1
    } else if (n < 0x10000) {
      buf[p] = b16
      buf[p + 1] = n >>> 8
      buf[p + 2] = n & 0xff
      this.pos = p + 3
    } else {
      buf[p] = b16 + 1
      this.view.setUint32(p + 1, n)
      this.pos = p + 5
    }
  }

  private enter(depth: number): void {
    if (depth >= this.maxDepth) {
      throw new CodecError({
        reason: "TooDeep",
        message: `containers nested deeper than maxDepth (${this.maxDepth}); is the value cyclic?`
      })
    }
  }

  private array(a: ReadonlyArray<unknown>, depth: number): void {
    this.enter(depth)
    const n = a.length
    this.containerHeader(n, 0x90, 0xdc)
    for (let i = 0; i < n; i++) this.value(a[i], depth + 1)
  }

  private map(m: ReadonlyMap<unknown, unknown>, depth: number): void {
    this.enter(depth)
    this.containerHeader(m.size, 0x80, 0xde)
    for (const [k, v] of m) {
      this.value(k, depth + 1)
      this.value(v, depth + 1)
    }
  }

  private object(o: object, depth: number, plain: boolean): void {
    this.enter(depth)
    // Scratch arrays per depth: only one object per nesting level is being written at any time.
    const keys = (this.keyScratch[depth] ??= [])
    const values = (this.valueScratch[depth] ??= [])
    const rec = o as Record<string, unknown>
    let n = 0
    if (plain) {
      // for-in over a plain object is V8's enum-cache fast path; plain objects inherit no enumerable keys.
      for (const k in rec) {
        const v = rec[k]
        if (v === undefined) continue
        keys[n] = k
        values[n++] = v
      }
    } else {
      for (const k of Object.keys(rec)) {
        const v = rec[k]
        if (v === undefined) continue
        keys[n] = k
        values[n++] = v
      }
    }
    sortEntries(keys, values, n)
    this.containerHeader(n, 0x80, 0xde)
    for (let i = 0; i < n; i++) {
      this.string(keys[i]!)
      const v = values[i]
      values[i] = undefined
      this.value(v, depth + 1)
    }
  }
}

/** Sorts the first `n` entries by key (UTF-8 byte order): insertion sort, as structs rarely have many fields. */
const sortEntries = (keys: Array<string>, values: Array<unknown>, n: number): void => {
  if (n > 32) return sortLarge(keys, values, n)
  for (let i = 1; i < n; i++) {
    const k = keys[i]!
    if (compareUtf8(keys[i - 1]!, k) <= 0) continue
    const v = values[i]
    let j = i - 1
    while (j >= 0 && compareUtf8(keys[j]!, k) > 0) {
      keys[j + 1] = keys[j]!
      values[j + 1] = values[j]
      j--
    }
    keys[j + 1] = k
    values[j + 1] = v
  }
}

const sortLarge = (keys: Array<string>, values: Array<unknown>, n: number): void => {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => compareUtf8(keys[a]!, keys[b]!))
  const k2 = order.map((i) => keys[i]!)
  const v2 = order.map((i) => values[i])
  for (let i = 0; i < n; i++) {
    keys[i] = k2[i]!
    values[i] = v2[i]
  }
}

/**
 * Orders strings by their UTF-8 bytes (= code point order), as Go sorts struct field names. UTF-16 unit order
 * agrees except between surrogates (code points above U+FFFF) and U+E000..U+FFFF.
 *
 * @category ordering
 * @since 0.1.0
 */
export const compareUtf8 = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x - y
    }
  }
  return a.length - b.length
}

const unsupported = (v: unknown): never => {
  const what = typeof v === "object" && v !== null
    ? ((v as { readonly constructor?: { readonly name?: string } }).constructor?.name ?? "object")
    : typeof v
  throw new CodecError({ reason: "Unsupported", message: `cannot encode a ${what} as msgpack` })
}

const shared = new Encoder()

/**
 * Encodes one value with a shared module-level {@link Encoder}.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encode = (value: unknown): Uint8Array | CodecError => shared.encode(value)

/**
 * The module-level encoder behind {@link encode} and `Codec.encodeRequest` / `Codec.encodeResponse`. Use it
 * instead of one encoder per stream: results never alias each other, so one slab serves every stream.
 *
 * @category encoding
 * @since 0.1.0
 */
export const sharedEncoder: Encoder = shared
