/**
 * Where the encoder writes: a shared output slab (like Node's `Buffer` pool) and the msgpack forms of
 * scalars, strings and bytes exactly as go-msgpack writes them (wire-protocol.md §1.3).
 *
 * Each finished message is a `subarray` of the slab that is never written again, so it is safe to hand to
 * `socket.write` and keep, with no copy per message. A message that outgrows the slab moves to a buffer of
 * its own. In "parts" mode large byte arrays are not copied at all: they become parts of their own.
 *
 * Writers throw `CodecError`; the `Encoder` turns every throw into a returned value.
 *
 * @since 0.1.0
 */
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

  /** The finished message; its bytes are never written again. */
  protected finish(): Uint8Array {
    const out = this.buf.subarray(this.start, this.pos)
    // A buffer grown for a large message is left to that message rather than kept as the slab.
    if (this.buf.length > this.slabBytes) this.newBuffer(0)
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

  protected raw(bytes: Uint8Array): void {
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
    // UTF-8 needs at most 3 bytes per UTF-16 unit: reserve the header for that bound and move the bytes
    // down in the rare case the real length needs a shorter header.
    const max = units * 3
    const hdr = max < 32 ? 1 : max < 0x10000 ? 3 : 5
    this.ensure(hdr + max)
    const at = this.pos + hdr
    const n = units <= ShortStringUnits
      ? writeUtf8(this.buf, at, s)
      : utf8Encoder.encodeInto(s, this.buf.subarray(at)).written
    const real = n < 32 ? 1 : n < 0x10000 ? 3 : 5
    if (real !== hdr) this.buf.copyWithin(this.pos + real, at, at + n)
    this.strHeaderAt(n)
    this.pos += n
  }

  protected bytes(b: Uint8Array): void {
    this.strHeader(b.length)
    if (this.parts !== undefined && b.length >= ZeroCopyBytes) {
      // The message so far becomes a finished part, so a later grow never copies it again.
      this.parts.push(this.buf.subarray(this.start, this.pos), b)
      this.start = this.pos
      return
    }
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
