/**
 * Where the encoder writes: a shared output slab (like Node's `Buffer` pool) and the msgpack forms of
 * scalars, strings and bytes exactly as go-msgpack writes them (wire-protocol.md §1.3).
 *
 * Each finished message is a `subarray` of the slab that is never written again, so it is safe to hand to
 * `socket.write` and keep, with no copy per message.
 *
 * **What a message holds** is its size plus the slabs it shares with the messages before and after it (64 KiB
 * each): a string too long for the room left is measured first, never reserved at 3 bytes per character,
 * and no buffer keeps much more than the message it was made for.
 * - One buffer (`encode`, `encodeRequest`, `encodeResponse`): a message that outgrows the slab moves to a
 *   buffer of its own, sized to the write that outgrew it (with a quarter of headroom while many small
 *   writes add up); if that headroom is left larger than a slab, the message is trimmed with one copy.
 * - Parts (`encodeRequestParts`, `encodeResponseParts`, what the pool and the server write): nothing grows or
 *   moves. A full slab is closed as a part and the message goes on in a fresh one, a string or byte array
 *   split across the two; byte arrays and strings of {@link ZeroCopyBytes} or more are parts of their own,
 *   a byte array uncopied, a string encoded straight into a buffer of its size.
 *
 * Writers throw `CodecError`; the `Encoder` turns every throw into a returned value.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { CodecError } from "./CodecError.ts"
import { writeUtf8 } from "./Utf8.ts"
import type { Ext } from "./Value.ts"

/**
 * Default `slabBytes`: 64 KiB shared by consecutive small results.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultSlabBytes = 64 * 1024

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
/** Seconds from 0001-01-01 (Go's `time.Time` epoch) to 1970-01-01. */
const GoUnixToInternal = 62_135_596_800
const TwoPow32 = 0x100000000

const utf8Encoder = new TextEncoder()

export class Output {
  protected readonly slabBytes: number
  protected buf: Uint8Array = new Uint8Array(0)
  private view: DataView = new DataView(this.buf.buffer)
  protected pos = 0
  /** Where the message being written starts in `buf`. */
  protected start = 0
  /** Set while a parts encode runs: where large byte arrays go instead of being copied. */
  protected parts: Array<Uint8Array> | undefined = undefined

  constructor(slabBytes: number | undefined) {
    this.slabBytes = slabBytes !== undefined && slabBytes >= 64 ? Math.floor(slabBytes) : DefaultSlabBytes
  }

  // ---------------------------------------------------------------------------------------------------------
  // Buffer
  // ---------------------------------------------------------------------------------------------------------

  /** Starts a message. */
  protected begin(): void {
    if (this.buf.length - this.pos < MinSlabTail) this.newBuffer(this.slabBytes)
    this.start = this.pos
  }

  /** The finished message (its last part, in parts mode); its bytes are never written again. */
  protected finish(): Uint8Array {
    let out = this.buf.subarray(this.start, this.pos)
    if (this.buf.length > this.slabBytes) {
      // A buffer grown for a large message is left to that message rather than kept as the slab, and is
      // not left holding much more than the message.
      if (this.buf.length - out.length > this.slabBytes) out = out.slice()
      this.newBuffer(0)
    }
    this.start = this.pos
    return out
  }

  /** Forgets the message being written. */
  protected rewind(): void {
    this.pos = this.start
  }

  private newBuffer(size: number): void {
    this.buf = new Uint8Array(size)
    this.view = new DataView(this.buf.buffer)
    this.pos = this.start = 0
  }

  protected ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n)
  }

  private grow(n: number): void {
    if (this.parts !== undefined) return this.nextSlab(n)
    const used = this.pos - this.start
    // A quarter of headroom keeps growth geometric while many small writes add up. A write at least as large
    // as the message so far (a big string or byte array) gets only a small tail: it is most of the message.
    const headroom = n >= used ? MinSlabTail : Math.max(MinSlabTail, (used + n) >> 2)
    const next = new Uint8Array(Math.max(this.slabBytes, used + n + headroom))
    next.set(this.buf.subarray(this.start, this.pos))
    this.buf = next
    this.view = new DataView(next.buffer)
    this.start = 0
    this.pos = used
  }

  /** Parts mode: the message so far becomes a part and goes on in a fresh slab, copying nothing. */
  private nextSlab(n: number): void {
    if (this.pos > this.start) this.parts!.push(this.buf.subarray(this.start, this.pos))
    this.newBuffer(Math.max(this.slabBytes, n + MinSlabTail))
  }

  protected raw(bytes: Uint8Array): void {
    const n = bytes.length
    if (n <= 16) {
      this.ensure(n)
      const buf = this.buf
      let p = this.pos
      for (let i = 0; i < n; i++) buf[p++] = bytes[i]!
      this.pos = p
      return
    }
    if (this.parts === undefined || this.pos + n <= this.buf.length) {
      this.ensure(n)
      this.buf.set(bytes, this.pos)
      this.pos += n
      return
    }
    // Parts mode: fill this slab and go on in fresh ones, so that no slab is closed half empty.
    for (let from = 0;;) {
      const k = Math.min(this.buf.length - this.pos, n - from)
      this.buf.set(bytes.subarray(from, from + k), this.pos)
      this.pos += k
      from += k
      if (from === n) return
      this.nextSlab(0)
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Scalars
  // ---------------------------------------------------------------------------------------------------------

  protected nil(): void {
    this.ensure(1)
    this.buf[this.pos++] = 0xc0
  }

  protected boolean(v: boolean): void {
    this.ensure(1)
    this.buf[this.pos++] = v ? 0xc3 : 0xc2
  }

  protected number(v: number): void {
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

  protected bigint(v: bigint): void {
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

  // ---------------------------------------------------------------------------------------------------------
  // Strings and bytes: the raw/str family; str8 is never used (`has8Always=false`, `WriteExt=false`)
  // ---------------------------------------------------------------------------------------------------------

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

  /** Adds `part` to the parts as it is, after the message so far, which becomes a part too. */
  private addPart(part: Uint8Array): void {
    this.parts!.push(this.buf.subarray(this.start, this.pos), part)
    this.start = this.pos
  }

  protected string(s: string): void {
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
    // UTF-8 needs at most 3 bytes per UTF-16 unit. Where that bound fits, write in place; else measure first,
    // so that no buffer grows to three times the string.
    const max = units * 3
    if (this.pos + 5 + max > this.buf.length) return this.measuredString(s)
    const hdr = max < 32 ? 1 : max < 0x10000 ? 3 : 5
    const at = this.pos + hdr
    const n = units <= ShortStringUnits
      ? writeUtf8(this.buf, at, s)
      : utf8Encoder.encodeInto(s, this.buf.subarray(at)).written
    const real = n < 32 ? 1 : n < 0x10000 ? 3 : 5
    if (real !== hdr) this.buf.copyWithin(this.pos + real, at, at + n)
    this.strHeaderAt(n)
    this.pos += n
  }

  /** A string too long to reserve 3 bytes per unit for where we write: its exact UTF-8 length first. */
  private measuredString(s: string): void {
    // Lone surrogates count 3 bytes, as U+FFFD, exactly as `TextEncoder` writes them.
    const n = Buffer.byteLength(s, "utf8")
    this.strHeader(n)
    if (this.parts === undefined || this.pos + n <= this.buf.length) {
      this.ensure(n)
      const at = this.pos
      this.pos += s.length <= ShortStringUnits
        ? writeUtf8(this.buf, at, s)
        : utf8Encoder.encodeInto(s, this.buf.subarray(at, at + n)).written
      return
    }
    if (n >= ZeroCopyBytes) {
      const own = new Uint8Array(n)
      utf8Encoder.encodeInto(s, own)
      return this.addPart(own)
    }
    // Parts mode: what fits here (encodeInto stops at a character boundary), the rest in a fresh slab.
    for (let rest = s;;) {
      const { read, written } = utf8Encoder.encodeInto(rest, this.buf.subarray(this.pos))
      this.pos += written
      if (read === rest.length) return
      rest = rest.slice(read)
      this.nextSlab(0)
    }
  }

  protected bytes(b: Uint8Array): void {
    this.strHeader(b.length)
    if (this.parts !== undefined && b.length >= ZeroCopyBytes) return this.addPart(b)
    this.raw(b)
  }

  /** Go's `time.Time` as its `MarshalBinary` raw string (15 bytes, UTC; JS dates carry milliseconds only). */
  protected date(d: Date): void {
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

  protected ext(e: Ext): void {
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

  /** Array (`fix` 0x90, `b16` 0xdc) or map (0x80, 0xde) header for `n` elements. */
  protected containerHeader(n: number, fix: number, b16: number): void {
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
}

/** Fails the encode of `v`, naming what it is. */
export const unsupported = (v: unknown): never => {
  const what = typeof v === "object" && v !== null
    ? ((v as { readonly constructor?: { readonly name?: string } }).constructor?.name ?? "object")
    : typeof v
  throw new CodecError({ reason: "Unsupported", message: `cannot encode a ${what} as msgpack` })
}
