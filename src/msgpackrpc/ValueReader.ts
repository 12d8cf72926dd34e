/**
 * Decodes one value from a contiguous view whose framing the scanner has validated, so there are no bounds
 * checks and the recursion depth is bounded by `maxDepth`.
 *
 * **Strings**: the str family becomes a `string` when its bytes are valid UTF-8 (decoded with a fatal,
 * BOM-preserving decoder, so that re-encoding reproduces the exact bytes) and a `Uint8Array` otherwise. In
 * `"bytes"` mode ({@link Raws}) every str value is a `Uint8Array`, unchecked: for a caller that knows it reads
 * Go `[]byte` (a streaming RPC's payloads), which would otherwise be validated, decoded into a string and
 * encoded back. Map keys are strings in both modes.
 *
 * **Map keys**: string keys as they are; integer, float and boolean keys are stringified with `String(k)`
 * (as JSON would); nil, container and ext keys, and raw keys that are not valid UTF-8, fail with `InvalidKey`
 * (a JS object key cannot hold them losslessly). A `"__proto__"` key becomes an own property, never the
 * prototype. Later duplicates win.
 *
 * **Bytes**: a `Uint8Array` never aliases a pushed chunk (the caller may reuse it); a large one shares the
 * decoder's private copy of the value instead of being copied again.
 *
 * **Budget**: the scanner has charged every value by its header; only a str whose bytes are not UTF-8, which
 * becomes a byte array rather than a string, costs more than it was charged. The reader charges that
 * difference against what is left of the budget before it allocates the array.
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"
import { CodecError } from "./CodecError.ts"
import { DecodedCost } from "./DecoderOptions.ts"
import { MaxCachedStringBytes, sharedStringCache, type StringCache } from "./StringCache.ts"
import { Ext, type Value } from "./Value.ts"

const EMPTY = new Uint8Array(0)
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

/** Below this size a raw value is copied out of a shared view; above it, a private view is shared. */
const ShareBytesThreshold = 1024
/** Short ASCII is built in JS up to this many bytes; a TextDecoder call costs more below it. */
const MaxJsStringBytes = 16
/** What a str that becomes a byte array costs beyond the string the scanner charged it as. */
const RawBytesExtra = DecodedCost.bytes - DecodedCost.value

/**
 * What a str value becomes: `"text"`, a `string` when its bytes are UTF-8 (else a `Uint8Array`); `"bytes"`,
 * always a `Uint8Array`.
 */
export type Raws = "text" | "bytes"

export class ValueReader {
  protected bytes: Uint8Array = EMPTY
  protected pos = 0
  private owned = false
  /** `"bytes"` mode: str values are byte arrays. */
  private rawsAsBytes = false
  private dataView: DataView | undefined = undefined
  /** What is left of the decoding budget for costs the scanner could not see. */
  private allowance = 0
  private readonly cache: StringCache
  private busy = false

  constructor(cache: StringCache = sharedStringCache) {
    this.cache = cache
  }

  /**
   * Decodes the value that fills `bytes`. `owned` says whether `bytes` is a private copy that may be shared;
   * `allowance` is the decoding budget left after the scanner's charges; `raws` what str values become.
   */
  read(bytes: Uint8Array, owned: boolean, allowance: number, raws: Raws = "text"): Value {
    // Only a setter planted on Object.prototype could re-enter; give it its own reader rather than our state.
    if (this.busy) return new ValueReader(this.cache).read(bytes, owned, allowance, raws)
    this.busy = true
    this.load(bytes, owned, allowance, raws)
    try {
      return this.value()
    } finally {
      this.bytes = EMPTY
      this.dataView = undefined
      this.busy = false
    }
  }

  protected load(bytes: Uint8Array, owned: boolean, allowance: number, raws: Raws): void {
    this.bytes = bytes
    this.pos = 0
    this.owned = owned
    this.rawsAsBytes = raws === "bytes"
    this.allowance = allowance
    this.dataView = undefined
  }

  private view(): DataView {
    return this.dataView ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
  }

  protected value(): Value {
    const bytes = this.bytes
    const b = bytes[this.pos++]!
    if (b < 0x80) return b
    if (b < 0x90) return this.map(b & 0x0f)
    if (b < 0xa0) return this.array(b & 0x0f)
    if (b < 0xc0) return this.str(b & 0x1f)
    if (b >= 0xe0) return b - 0x100
    switch (b) {
      case 0xc0:
        return null
      case 0xc2:
        return false
      case 0xc3:
        return true
      case 0xc4:
        return this.bin(this.u8())
      case 0xc5:
        return this.bin(this.u16())
      case 0xc6:
        return this.bin(this.u32())
      case 0xc7:
        return this.ext(this.u8())
      case 0xc8:
        return this.ext(this.u16())
      case 0xc9:
        return this.ext(this.u32())
      case 0xca: {
        const v = this.view().getFloat32(this.pos)
        this.pos += 4
        return v
      }
      case 0xcb: {
        const v = this.view().getFloat64(this.pos)
        this.pos += 8
        return v
      }
      case 0xcc:
        return this.u8()
      case 0xcd:
        return this.u16()
      case 0xce:
        return this.u32()
      case 0xcf:
        return this.u64()
      case 0xd0:
        return (this.u8() << 24) >> 24
      case 0xd1:
        return (this.u16() << 16) >> 16
      case 0xd2:
        return this.u32() | 0
      case 0xd3:
        return this.i64()
      case 0xd4:
        return this.ext(1)
      case 0xd5:
        return this.ext(2)
      case 0xd6:
        return this.ext(4)
      case 0xd7:
        return this.ext(8)
      case 0xd8:
        return this.ext(16)
      case 0xd9:
        return this.str(this.u8())
      case 0xda:
        return this.str(this.u16())
      case 0xdb:
        return this.str(this.u32())
      case 0xdc:
        return this.array(this.u16())
      case 0xdd:
        return this.array(this.u32())
      case 0xde:
        return this.map(this.u16())
      case 0xdf:
        return this.map(this.u32())
      default:
        throw new CodecError({ reason: "InvalidByte", message: `byte 0x${b.toString(16)} starts no msgpack value` })
    }
  }

  protected u8(): number {
    return this.bytes[this.pos++]!
  }

  protected u16(): number {
    const b = this.bytes
    const p = this.pos
    this.pos = p + 2
    return (b[p]! << 8) | b[p + 1]!
  }

  protected u32(): number {
    const b = this.bytes
    const p = this.pos
    this.pos = p + 4
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)
  }

  private u64(): number | bigint {
    const p = this.pos
    const hi = this.u32()
    const lo = this.u32()
    // hi < 2^21 keeps the value at most 2^53 - 1, a safe integer.
    return hi < 0x200000 ? hi * 0x100000000 + lo : this.view().getBigUint64(p)
  }

  private i64(): number | bigint {
    const p = this.pos
    const hi = this.u32() | 0
    const lo = this.u32()
    if (hi >= -0x200000 && hi < 0x200000) {
      const v = hi * 0x100000000 + lo
      if (Number.isSafeInteger(v)) return v
    }
    return this.view().getBigInt64(p)
  }

  private str(len: number): string | Uint8Array {
    const start = this.pos
    const end = start + len
    this.pos = end
    if (this.rawsAsBytes) return this.rawBytes(this.bytes.subarray(start, end))
    if (len === 0) return ""
    if (len <= MaxCachedStringBytes) return this.cached(start, end, false)
    return this.utf8(start, end)
  }

  private utf8(start: number, end: number): string | Uint8Array {
    const view = this.bytes.subarray(start, end)
    // Not UTF-8: Go's []byte (or a string holding arbitrary bytes), so keep the bytes. Checked first because
    // binary payloads are the common case for large raws, and a fatal decoder's throw costs more than the check.
    if (!isUtf8(view)) return this.rawBytes(view)
    return utf8Decoder.decode(view)
  }

  private rawBytes(view: Uint8Array): Uint8Array {
    if ((this.allowance -= RawBytesExtra) < 0) {
      throw new CodecError({
        reason: "TooLarge",
        message: `value's raw strings read as byte arrays would build over maxDecodedBytes`
      })
    }
    return this.share(view)
  }

  private bin(len: number): Uint8Array {
    const start = this.pos
    this.pos = start + len
    return this.share(this.bytes.subarray(start, start + len))
  }

  /**
   * Never alias a caller's chunk; share our private copy only for large values (small ones would pin it).
   * The copy is made with the `Uint8Array` constructor: a chunk may be a `Buffer`, whose `slice` is a view,
   * and a view of a socket's reused read buffer would change under the caller.
   */
  private share(view: Uint8Array): Uint8Array {
    return this.owned && view.length >= ShareBytesThreshold ? view : new Uint8Array(view)
  }

  private ext(len: number): Ext {
    const type = (this.u8() << 24) >> 24
    return new Ext(type, this.bin(len))
  }

  protected array(n: number): Array<Value> {
    const out = new Array<Value>(n)
    for (let i = 0; i < n; i++) out[i] = this.value()
    return out
  }

  protected map(n: number): { [key: string]: Value } {
    const out: { [key: string]: Value } = {}
    for (let i = 0; i < n; i++) setEntry(out, this.key(), this.value())
    return out
  }

  protected key(): string {
    const b = this.bytes[this.pos]!
    let len = -1
    if (b >= 0xa0 && b <= 0xbf) {
      this.pos++
      len = b & 0x1f
    } else if (b === 0xd9 || b === 0xc4) {
      this.pos++
      len = this.u8()
    } else if (b === 0xda || b === 0xc5) {
      this.pos++
      len = this.u16()
    } else if (b === 0xdb || b === 0xc6) {
      this.pos++
      len = this.u32()
    }
    if (len >= 0) {
      const start = this.pos
      const end = (this.pos = start + len)
      return len <= MaxCachedStringBytes ? this.cached(start, end, true) as string : this.keyString(start, end)
    }
    const v = this.value()
    if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") return String(v)
    throw new CodecError({
      reason: "InvalidKey",
      message: `map key of type ${v === null ? "nil" : Array.isArray(v) ? "array" : typeof v} is not a string or number`
    })
  }

  private cached(start: number, end: number, isKey: boolean): string | Uint8Array {
    const hit = this.cache.get(this.bytes, start, end)
    if (hit !== undefined) return hit
    const s = this.short(start, end, isKey)
    if (typeof s === "string") this.cache.set(this.bytes, start, end, s)
    return s
  }

  private short(start: number, end: number, isKey: boolean): string | Uint8Array {
    if (end - start <= MaxJsStringBytes) {
      // Short ASCII is the common case (names, IDs); building it directly is cheaper than a TextDecoder call.
      const bytes = this.bytes
      let s = ""
      for (let i = start; i < end; i++) {
        const c = bytes[i]!
        if (c >= 0x80) return isKey ? this.keyString(start, end) : this.utf8(start, end)
        s += String.fromCharCode(c)
      }
      return s
    }
    return isKey ? this.keyString(start, end) : this.utf8(start, end)
  }

  private keyString(start: number, end: number): string {
    try {
      return utf8Decoder.decode(this.bytes.subarray(start, end))
    } catch {
      throw new CodecError({ reason: "InvalidKey", message: "map key is raw bytes that are not valid UTF-8" })
    }
  }
}

/** Sets `out[key] = v`, a `"__proto__"` key as an own property rather than the prototype. */
export const setEntry = (out: { [key: string]: Value }, key: string, v: Value): void => {
  if (key === "__proto__") {
    Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
  } else {
    out[key] = v
  }
}

/** The reader every decoder uses: `read` runs to completion without calling user code, so one is enough. */
export const sharedReader = new ValueReader()
