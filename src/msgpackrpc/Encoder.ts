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
 *   with `Unsupported`; nesting deeper than `maxDepth` (including cycles) fails with `TooDeep`; a value that
 *   throws while it is read (a getter, a `Proxy` trap, a `Map` iterator) fails with `Unreadable`. Nothing is
 *   ever thrown out of an encode.
 *
 * **Output buffers.** Values are encoded into a shared slab (like Node's `Buffer` pool): each result is a
 * `subarray` of the slab that is never written again, so it is safe to hand to `socket.write` and keep, with no
 * copy per message. A small result keeps its slab (`slabBytes`, default 64 KiB) alive while referenced; use
 * `.slice()` on results you cache for a long time. Do not rely on `result.buffer` holding only the result.
 * A message holds at most its size plus the slabs it shares: strings are measured before a buffer grows for
 * them, and the parts encoders never grow a buffer at all (see `Output.ts`).
 *
 * @since 0.1.0
 */
import { CodecError } from "./CodecError.ts"
import { sortEntries } from "./KeyOrder.ts"
import { unsupported, Writer } from "./Writer.ts"
import { Ext } from "./Value.ts"

export { compareUtf8 } from "./KeyOrder.ts"
export { DefaultSlabBytes, ZeroCopyBytes } from "./Output.ts"

/**
 * Default `maxDepth` of the encoder: 512 nested arrays/maps, the same as the decoder's.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxEncodeDepth = 512

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

const MaxCachedMethods = 1024
/**
 * Longest method name cached. Real names (`Catalog.ListServices`) are tens of bytes; a server echoes
 * whatever `ServiceMethod` a client sent, so without this a hostile client could park 1024 names of
 * many MiB each in the cache.
 */
const MaxCachedMethodLength = 256

const ascii = (s: string): Array<number> => Array.from(s, (c) => c.charCodeAt(0))
/** `{Seq: …, ServiceMethod: …}`: fixmap(2), then the keys in sorted order. */
const RequestPrefix = new Uint8Array([0x82, 0xa3, ...ascii("Seq")])
/** `{Error: …, Seq: …, ServiceMethod: …}`: fixmap(3). */
const ResponsePrefix = new Uint8Array([0x83, 0xa5, ...ascii("Error")])
const KeySeq = new Uint8Array([0xa3, ...ascii("Seq")])
const KeyServiceMethod = new Uint8Array([0xad, ...ascii("ServiceMethod")])

/**
 * A reusable encoder. Single-threaded like everything in JS; a value whose getters re-enter the same encoder
 * are handled by a temporary encoder.
 *
 * @category constructors
 * @since 0.1.0
 */
export class Encoder extends Writer {
  private readonly options: EncoderOptions | undefined
  private readonly maxDepth: number
  private busy = false
  private readonly methods = new Map<string, Uint8Array>()
  private readonly keyScratch: Array<Array<string>> = []
  private readonly valueScratch: Array<Array<unknown>> = []

  constructor(options?: EncoderOptions) {
    super(options?.slabBytes)
    this.options = options
    this.maxDepth = options?.maxDepth !== undefined && options.maxDepth > 0
      ? Math.floor(options.maxDepth)
      : DefaultMaxEncodeDepth
  }

  /** Encodes one value. */
  encode(value: unknown): Uint8Array | CodecError {
    if (this.busy) return new Encoder(this.options).encode(value)
    this.open()
    try {
      this.value(value, 0)
      return this.close()
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
    this.open()
    try {
      this.raw(RequestPrefix)
      this.seq(seq)
      this.raw(KeyServiceMethod)
      this.method(method)
      this.value(args, 0)
      return this.close()
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
    this.open()
    try {
      this.raw(ResponsePrefix)
      this.string(error)
      this.raw(KeySeq)
      this.seq(seq)
      this.raw(KeyServiceMethod)
      this.method(method)
      this.value(reply, 0)
      return this.close()
    } catch (e) {
      return this.abort(e)
    }
  }

  private open(): void {
    this.busy = true
    this.begin()
  }

  private close(): Uint8Array {
    const out = this.finish()
    this.busy = false
    return out
  }

  private abort(e: unknown): CodecError {
    this.rewind()
    this.busy = false
    // What was read so far is not kept alive by the scratch arrays.
    this.valueScratch.forEach((values) => values.fill(undefined))
    return ours(e) ? e : new CodecError({ reason: "Unreadable", message: threw(e), cause: e })
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
        return this.boolean(v)
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
    const buf = this.buf
    const at = this.pos
    this.string(method)
    // Cached only when written in one piece where it started (not moved by a grow, nor split across parts).
    if (this.buf === buf && this.methods.size < MaxCachedMethods && method.length <= MaxCachedMethodLength) this.methods.set(method, buf.slice(at, this.pos))
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

/** Whether `e` is our own error; `instanceof` on a thrown `Proxy` runs its `getPrototypeOf` trap, which may throw. */
const ours = (e: unknown): e is CodecError => {
  try {
    return e instanceof CodecError
  } catch {
    return false
  }
}

/** Describes what a value threw, without trusting it: the thrown value may itself be a hostile `Proxy`. */
const threw = (e: unknown): string => {
  try {
    return `reading the value threw: ${e instanceof Error ? `${e.name}: ${e.message}` : typeof e}`
  } catch {
    return "reading the value threw"
  }
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
