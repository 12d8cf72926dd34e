/**
 * Incremental msgpack decoder for a stream of back-to-back values (net/rpc over msgpack has no length prefix:
 * wire-protocol.md §1.3), fed in chunks of any size, down to one byte.
 *
 * Pure: bytes in, values out. Nothing here reads a socket, schedules work or uses the Effect runtime; failures
 * are returned as `CodecError` values, never thrown.
 *
 * **How framing works** (linear in the input, whatever the chunking):
 * 1. `push` only appends the chunk to a list (no copy).
 * 2. `next` runs a resumable *scanner* over the list: it reads only the type byte and length fields of each
 *    nested item and skips payloads by arithmetic, keeping a stack of "items left" per open container. When
 *    the input runs out it saves its position and stack, so the next `next` continues where it stopped. Each
 *    header byte is looked at once and each chunk is walked once, so a 16 MiB value fed in 64 KiB chunks costs
 *    256 short steps, not 256 re-parses or re-copies.
 * 3. Limits are checked on the declared lengths as soon as a header is read: a `str32` claiming 4 GiB fails
 *    with `TooLarge` immediately, before any of its payload is buffered.
 * 4. Once the scanner finds the end of a value, the value's bytes are made contiguous exactly once: a zero-copy
 *    `subarray` when it lies in one chunk, otherwise a single concatenation (counted in `bytesCopied`).
 * 5. A plain recursive reader then decodes that contiguous view; it needs no bounds checks or resumption
 *    because the scanner has already validated the framing and the nesting depth.
 *
 * **Value model** (`Value`): nil → `null`; bool; ints → `number` when they are safe integers, otherwise `bigint`
 * (uint64 / int64); float32/64 → `number`; str family → `string` when the bytes are valid UTF-8 (decoded with
 * a fatal, BOM-preserving decoder so that re-encoding reproduces the exact bytes) and `Uint8Array` otherwise,
 * because Go writes `[]byte` as the str family; bin family → `Uint8Array`; ext → `Ext`; array → array;
 * map → plain object.
 *
 * **Map keys**: string keys as they are; integer, float and boolean keys are stringified with `String(k)`
 * (as JSON would); nil, container and ext keys, and raw keys that are not valid UTF-8, fail with `InvalidKey`
 * (a JS object key cannot hold them losslessly). A `"__proto__"` key becomes an own property, never the
 * prototype. Later duplicates win.
 *
 * @since 0.1.0
 */
import { isUtf8 } from "node:buffer"
import { CodecError } from "./CodecError.ts"

/**
 * Default `maxMessageBytes`: 64 MiB. A single value larger than this is refused as soon as its header says so.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxMessageBytes = 64 * 1024 * 1024

/**
 * Default `maxDepth`: 512 nested containers (arrays or maps). Go's own decoders have no limit; 512 is far
 * beyond any Consul/Nomad structure and keeps the recursive reader's stack shallow.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxDepth = 512

/**
 * Default `maxBufferedBytes`: 128 MiB of pushed but not yet decoded input.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxBufferedBytes = 128 * 1024 * 1024

/**
 * A msgpack extension value (types `fixext*` / `ext8..32`). Go's handles never write these (`WriteExt=false`),
 * but decoding them keeps the stream in sync, and `Encoder` writes them back unchanged.
 *
 * @category models
 * @since 0.1.0
 */
export class Ext {
  /** The signed extension type, -128..127. */
  readonly type: number
  readonly data: Uint8Array
  constructor(type: number, data: Uint8Array) {
    this.type = type
    this.data = data
  }
}

/**
 * A decoded msgpack value. Never `undefined` and never a `CodecError`, which is what lets `Decoder.next`
 * return `Value | undefined | CodecError` without ambiguity.
 *
 * @category models
 * @since 0.1.0
 */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Ext
  | Array<Value>
  | { [key: string]: Value }

/**
 * @category models
 * @since 0.1.0
 */
export interface DecoderOptions {
  /** Largest single value, in bytes, headers included. Default {@link DefaultMaxMessageBytes} (64 MiB). */
  readonly maxMessageBytes?: number | undefined
  /** Deepest container nesting. Default {@link DefaultMaxDepth} (512). */
  readonly maxDepth?: number | undefined
  /** Most input held between `push` and `next`. Default {@link DefaultMaxBufferedBytes} (128 MiB). */
  readonly maxBufferedBytes?: number | undefined
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const utf8Encoder = new TextEncoder()

/**
 * The bytes of a raw value: a `Uint8Array` as is, a string UTF-8 encoded. For callers that expect Go `[]byte`,
 * which arrives as a `string` whenever its bytes happen to be valid UTF-8.
 *
 * @category getters
 * @since 0.1.0
 */
export const asBytes = (v: string | Uint8Array): Uint8Array => typeof v === "string" ? utf8Encoder.encode(v) : v

/**
 * Incremental decoder for one byte stream. `push` chunks as they arrive, then call `next` until it returns
 * `undefined`:
 *
 * ```ts
 * decoder.push(chunk)
 * for (let v = decoder.next(); v !== undefined; v = decoder.next()) {
 *   if (v instanceof CodecError) return fail(v)
 *   handle(v)
 * }
 * // on EOF:
 * const err = decoder.end() // Truncated when the peer hung up mid-value
 * ```
 *
 * **Gotchas**
 * - The decoder keeps a reference to each pushed chunk until it has been decoded: do not reuse or mutate a
 *   chunk's memory after pushing it.
 * - Errors are sticky: after the first `CodecError`, `next` and `end` keep returning it and `push` is ignored.
 *   The stream is desynchronised and should be closed.
 * - One instance per stream; instances are cheap.
 *
 * @category constructors
 * @since 0.1.0
 */
export class Decoder {
  private readonly maxMessageBytes: number
  private readonly maxDepth: number
  private readonly maxBufferedBytes: number

  /** Pushed chunks; those before `first` are consumed (a head index, so consuming is O(1), not a shift). */
  private chunks: Array<Uint8Array> = []
  private first = 0
  /** Bytes of `chunks[first]` already consumed. */
  private headOffset = 0
  /** Absolute end of the buffered input; positions are relative to the start of `chunks[first]`. */
  private endAbs = 0

  // Resumable scanner state for the value starting at headOffset.
  private scanning = false
  private scanPos = 0
  private scanChunk = 0
  private scanChunkStart = 0
  /** `stack[i]`: items still to read at nesting level i (level 0 is the top-level value itself). */
  private stack: Array<number> = [1]
  private stackTop = 0
  /** Sum of the stack: every pending item is at least one byte, which bounds claims of huge containers. */
  private pendingItems = 0

  private ended = false
  private failure: CodecError | undefined = undefined
  /** A push that overflowed maxBufferedBytes; reported once the values before it are drained. */
  private overflow: CodecError | undefined = undefined
  private copied = 0

  constructor(options?: DecoderOptions) {
    this.maxMessageBytes = positive(options?.maxMessageBytes, DefaultMaxMessageBytes)
    this.maxDepth = positive(options?.maxDepth, DefaultMaxDepth)
    this.maxBufferedBytes = positive(options?.maxBufferedBytes, DefaultMaxBufferedBytes)
  }

  /** Bytes pushed and not yet returned as values. */
  get bufferedBytes(): number {
    return this.endAbs - this.headOffset
  }

  /** Bytes copied to make values contiguous (only values that straddle chunks are copied, each once). */
  get bytesCopied(): number {
    return this.copied
  }

  /** Appends a chunk. The decoder takes ownership of it (no copy); errors surface from `next`. */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined || this.overflow !== undefined || this.ended || chunk.length === 0) return
    if (this.endAbs - this.headOffset + chunk.length > this.maxBufferedBytes) {
      this.overflow = new CodecError({
        reason: "TooLarge",
        message: `buffered input would exceed maxBufferedBytes (${this.maxBufferedBytes})`
      })
      return
    }
    this.chunks.push(chunk)
    this.endAbs += chunk.length
  }

  /**
   * The next complete value; `undefined` when more input is needed (or, after `end`, when the input is
   * exhausted); a `CodecError` when the stream is malformed or, after `end`, truncated.
   */
  next(): Value | undefined | CodecError {
    if (this.failure !== undefined) return this.failure
    if (this.endAbs === this.headOffset) {
      return this.overflow !== undefined ? this.fail(this.overflow) : undefined
    }
    let end: number
    try {
      end = this.scan()
    } catch (e) {
      return this.fail(e)
    }
    if (end < 0) {
      if (this.overflow !== undefined) return this.fail(this.overflow)
      return this.ended ? this.fail(this.truncated()) : undefined
    }
    const owned = this.extract(end)
    try {
      return sharedReader.read(this.extracted, owned)
    } catch (e) {
      return this.fail(e)
    } finally {
      this.extracted = EMPTY
    }
  }

  /**
   * Marks the end of input (the peer closed the stream). Returns a `Truncated` error when the bytes buffered
   * after the last complete value do not form a complete value. Complete values still buffered remain
   * available from `next`, which afterwards reports the truncation instead of returning `undefined`.
   */
  end(): CodecError | undefined {
    this.ended = true
    if (this.failure !== undefined) return this.failure
    if (this.endAbs === this.headOffset) return this.overflow !== undefined ? this.fail(this.overflow) : undefined
    try {
      if (this.scan() >= 0) return undefined
    } catch (e) {
      return this.fail(e)
    }
    return this.fail(this.overflow ?? this.truncated())
  }

  private truncated(): CodecError {
    return new CodecError({
      reason: "Truncated",
      message: `input ended inside a value (${this.endAbs - this.headOffset} bytes buffered)`
    })
  }

  private fail(e: unknown): CodecError {
    if (!(e instanceof CodecError)) throw e
    this.failure = e
    this.chunks = []
    this.endAbs = this.headOffset = this.first = 0
    return e
  }

  /**
   * Finds the absolute end of the value starting at `headOffset`, or -1 when the buffered input does not hold
   * all of it yet (the progress is saved). Throws `CodecError` for framing errors.
   */
  private scan(): number {
    if (!this.scanning) {
      this.scanning = true
      this.scanPos = this.headOffset
      this.scanChunk = this.first
      this.scanChunkStart = 0
      this.stack[0] = 1
      this.stackTop = 0
      this.pendingItems = 1
    }
    const chunks = this.chunks
    const stack = this.stack
    const limit = this.maxMessageBytes + this.headOffset
    let pos = this.scanPos
    let ci = this.scanChunk
    let cStart = this.scanChunkStart
    let top = this.stackTop
    let pending = this.pendingItems
    for (;;) {
      if (top < 0) {
        if (pos <= this.endAbs) {
          this.scanning = false
          return pos
        }
        break
      }
      let c = chunks[ci]
      while (c !== undefined && pos >= cStart + c.length) {
        cStart += c.length
        c = chunks[++ci]
      }
      if (c === undefined) break
      const b = c[pos - cStart]!
      let hdr = 1
      let len = 0
      let count = 0
      let lenKind = LenNone
      if (b <= 0x7f || b >= 0xe0) {
        // fixint
      } else if (b <= 0x8f) {
        count = (b & 0x0f) * 2
      } else if (b <= 0x9f) {
        count = b & 0x0f
      } else if (b <= 0xbf) {
        len = b & 0x1f
      } else {
        switch (b) {
          case 0xc0:
          case 0xc2:
          case 0xc3:
            break
          case 0xc4:
          case 0xd9:
            hdr = 2
            lenKind = LenPayload
            break
          case 0xc5:
          case 0xda:
            hdr = 3
            lenKind = LenPayload
            break
          case 0xc6:
          case 0xdb:
            hdr = 5
            lenKind = LenPayload
            break
          case 0xc7:
            hdr = 3 // length, then the type byte
            lenKind = LenExt
            break
          case 0xc8:
            hdr = 4
            lenKind = LenExt
            break
          case 0xc9:
            hdr = 6
            lenKind = LenExt
            break
          case 0xcc:
          case 0xd0:
            len = 1
            break
          case 0xcd:
          case 0xd1:
            len = 2
            break
          case 0xca:
          case 0xce:
          case 0xd2:
            len = 4
            break
          case 0xcb:
          case 0xcf:
          case 0xd3:
            len = 8
            break
          case 0xd4:
            len = 2
            break
          case 0xd5:
            len = 3
            break
          case 0xd6:
            len = 5
            break
          case 0xd7:
            len = 9
            break
          case 0xd8:
            len = 17
            break
          case 0xdc:
            hdr = 3
            lenKind = LenArray
            break
          case 0xdd:
            hdr = 5
            lenKind = LenArray
            break
          case 0xde:
            hdr = 3
            lenKind = LenMap
            break
          case 0xdf:
            hdr = 5
            lenKind = LenMap
            break
          default:
            throw new CodecError({
              reason: "InvalidByte",
              message: `byte 0x${b.toString(16)} at offset ${pos - this.headOffset} of a value starts no msgpack value`
            })
        }
        if (lenKind !== LenNone) {
          if (pos + hdr > this.endAbs) break
          const n = this.readLength(ci, cStart, pos + 1, lenKind === LenExt ? hdr - 2 : hdr - 1)
          if (lenKind === LenArray) count = n
          else if (lenKind === LenMap) count = n * 2
          else len = n
        }
      }
      stack[top] = stack[top]! - 1
      pending--
      if (count > 0) {
        if (++top > this.maxDepth) {
          throw new CodecError({ reason: "TooDeep", message: `containers nested deeper than maxDepth (${this.maxDepth})` })
        }
        stack[top] = count
        pending += count
      }
      pos += hdr + len
      if (pos + pending > limit) {
        throw new CodecError({
          reason: "TooLarge",
          message: `value declares at least ${pos + pending - this.headOffset} bytes, over maxMessageBytes (${this.maxMessageBytes})`
        })
      }
      while (top >= 0 && stack[top] === 0) top--
    }
    this.scanPos = pos
    this.scanChunk = ci
    this.scanChunkStart = cStart
    this.stackTop = top
    this.pendingItems = pending
    return -1
  }

  /** Big-endian unsigned length of `size` bytes at absolute `at`, which may straddle chunks. */
  private readLength(ci: number, cStart: number, at: number, size: number): number {
    const chunks = this.chunks
    let c = chunks[ci]!
    let n = 0
    for (let i = 0; i < size; i++, at++) {
      while (at >= cStart + c.length) {
        cStart += c.length
        c = chunks[++ci]!
      }
      n = n * 256 + c[at - cStart]!
    }
    return n
  }

  private extracted: Uint8Array = EMPTY

  /**
   * Makes bytes [headOffset, end) contiguous in `this.extracted` and consumes them. Returns whether the view
   * is a private copy (true) or aliases a pushed chunk (false).
   */
  private extract(end: number): boolean {
    const chunks = this.chunks
    const start = this.headOffset
    const head = chunks[this.first]!
    if (end <= head.length) {
      this.extracted = head.subarray(start, end)
      if (end === head.length) {
        this.consume(1, end, 0)
      } else {
        this.headOffset = end
      }
      return false
    }
    const out = new Uint8Array(end - start)
    out.set(head.subarray(start), 0)
    let at = head.length - start
    let cStart = head.length
    let i = this.first + 1
    for (;; i++) {
      const c = chunks[i]!
      const cEnd = cStart + c.length
      if (cEnd >= end) {
        out.set(end === cEnd ? c : c.subarray(0, end - cStart), at)
        if (end === cEnd) this.consume(i + 1 - this.first, cEnd, 0)
        else this.consume(i - this.first, cStart, end - cStart)
        break
      }
      out.set(c, at)
      at += c.length
      cStart = cEnd
    }
    this.copied += out.length
    this.extracted = out
    return true
  }

  /** Drops `count` whole chunks totalling `bytes`; the value's end is at `offset` in the new head chunk. */
  private consume(count: number, bytes: number, offset: number): void {
    const chunks = this.chunks
    const first = this.first + count
    for (let i = this.first; i < first; i++) chunks[i] = EMPTY
    this.endAbs -= bytes
    this.headOffset = offset
    if (first === chunks.length) {
      chunks.length = 0
      this.first = 0
    } else if (first >= 1024 && first * 2 >= chunks.length) {
      this.chunks = chunks.slice(first)
      this.first = 0
    } else {
      this.first = first
    }
  }
}

/**
 * Decodes exactly one value from a complete buffer.
 *
 * @category constructors
 * @since 0.1.0
 */
export const decode = (bytes: Uint8Array, options?: DecoderOptions): Value | CodecError => {
  const decoder = new Decoder(options)
  decoder.push(bytes)
  const v = decoder.next()
  if (v === undefined) return decoder.end() ?? new CodecError({ reason: "Truncated", message: "no value" })
  if (v instanceof CodecError) return v
  if (decoder.bufferedBytes > 0) {
    return new CodecError({ reason: "TrailingBytes", message: `${decoder.bufferedBytes} bytes after the value` })
  }
  return v
}

const EMPTY = new Uint8Array(0)
const LenNone = 0
const LenPayload = 1
const LenExt = 2
const LenArray = 3
const LenMap = 4

const positive = (n: number | undefined, fallback: number): number =>
  n === undefined || !(n > 0) ? fallback : Math.floor(n)

/** Below this size a raw value is copied out of a shared view; above it, a private view is shared. */
const ShareBytesThreshold = 1024
/** Strings (keys and values) up to this many bytes go through the string cache. */
const MaxCachedStringBytes = 24
const StringCacheSlots = 4096

/**
 * Decodes one value from a contiguous view whose framing the scanner has validated, so there are no bounds
 * checks and recursion depth is bounded by `maxDepth`.
 */
class ValueReader {
  private bytes: Uint8Array = EMPTY
  private pos = 0
  private owned = false
  private dataView: DataView | undefined = undefined
  /** String cache: slot i holds `cacheLength[i] - 1` bytes at `i * MaxCachedStringBytes` (0 = empty). */
  private readonly cacheBytes = new Uint8Array(StringCacheSlots * MaxCachedStringBytes)
  private readonly cacheLength = new Uint8Array(StringCacheSlots)
  private readonly cacheStrings: Array<string | undefined> = new Array(StringCacheSlots)

  private busy = false

  read(bytes: Uint8Array, owned: boolean): Value {
    // Only a setter planted on Object.prototype could re-enter; give it its own reader rather than our state.
    if (this.busy) return new ValueReader().read(bytes, owned)
    this.busy = true
    this.bytes = bytes
    this.pos = 0
    this.owned = owned
    this.dataView = undefined
    try {
      return this.value()
    } finally {
      this.bytes = EMPTY
      this.dataView = undefined
      this.busy = false
    }
  }

  private view(): DataView {
    return this.dataView ??= new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength)
  }

  private value(): Value {
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

  private u8(): number {
    return this.bytes[this.pos++]!
  }

  private u16(): number {
    const b = this.bytes
    const p = this.pos
    this.pos = p + 2
    return (b[p]! << 8) | b[p + 1]!
  }

  private u32(): number {
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
    if (len === 0) return ""
    const start = this.pos
    const end = start + len
    this.pos = end
    if (len <= MaxCachedStringBytes) return this.cached(start, end, false)
    return this.utf8(start, end)
  }

  private utf8(start: number, end: number): string | Uint8Array {
    const view = this.bytes.subarray(start, end)
    // Not UTF-8: Go's []byte (or a string holding arbitrary bytes), so keep the bytes. Checked first because
    // binary payloads are the common case for large raws, and a fatal decoder's throw costs more than the check.
    if (!isUtf8(view)) return this.share(view)
    return utf8Decoder.decode(view)
  }

  private bin(len: number): Uint8Array {
    const start = this.pos
    this.pos = start + len
    return this.share(this.bytes.subarray(start, start + len))
  }

  /** Never alias a caller's chunk; share our private copy only for large values (small ones would pin it). */
  private share(view: Uint8Array): Uint8Array {
    return this.owned && view.length >= ShareBytesThreshold ? view : view.slice()
  }

  private ext(len: number): Ext {
    const type = (this.u8() << 24) >> 24
    return new Ext(type, this.bin(len))
  }

  private array(n: number): Array<Value> {
    const out = new Array<Value>(n)
    for (let i = 0; i < n; i++) out[i] = this.value()
    return out
  }

  private map(n: number): { [key: string]: Value } {
    const out: { [key: string]: Value } = {}
    for (let i = 0; i < n; i++) {
      const key = this.key()
      const v = this.value()
      if (key === "__proto__") {
        Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true })
      } else {
        out[key] = v
      }
    }
    return out
  }

  private key(): string {
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

  /**
   * Short strings repeat (struct field names in every message, datacenter and node names, tags); a small hash
   * table of recent ones avoids decoding and allocating them again.
   */
  private cached(start: number, end: number, isKey: boolean): string | Uint8Array {
    const bytes = this.bytes
    const len = end - start
    let h = 0x811c9dc5 ^ len
    for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
    const slot = (h >>> 0) & (StringCacheSlots - 1)
    const cache = this.cacheBytes
    const at = slot * MaxCachedStringBytes
    if (this.cacheLength[slot] === len + 1) {
      let i = 0
      while (i < len && cache[at + i] === bytes[start + i]) i++
      if (i === len) return this.cacheStrings[slot]!
    }
    const s = this.short(start, end, isKey)
    if (typeof s === "string") {
      for (let i = 0; i < len; i++) cache[at + i] = bytes[start + i]!
      this.cacheLength[slot] = len + 1
      this.cacheStrings[slot] = s
    }
    return s
  }

  private short(start: number, end: number, isKey: boolean): string | Uint8Array {
    if (end - start <= 16) {
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

/**
 * One reader for all decoders: `read` runs to completion without calling user code, so sharing is safe in a
 * single-threaded isolate, and the string cache (about 100 KiB) is paid once per process, not per stream.
 */
const sharedReader = new ValueReader()
