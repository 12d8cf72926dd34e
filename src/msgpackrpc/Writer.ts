/**
 * The msgpack forms of scalars, strings, byte arrays, dates and exts, and container headers, exactly as
 * go-msgpack writes them with Consul's and Nomad's handles (wire-protocol.md §1.3), on top of `Output`.
 *
 * Writers throw `CodecError`; the `Encoder` turns every throw into a returned value.
 *
 * @since 0.1.0
 */
import { Buffer } from "node:buffer"
import { CodecError } from "./CodecError.ts"
import { Output, ZeroCopyBytes } from "./Output.ts"
import { writeUtf8 } from "./Utf8.ts"
import type { Ext } from "./Value.ts"

/** Strings up to this many UTF-16 units are encoded in JS; longer ones with `TextEncoder.encodeInto`. */
const ShortStringUnits = 48
/** Seconds from 0001-01-01 (Go's `time.Time` epoch) to 1970-01-01. */
const GoUnixToInternal = 62_135_596_800
const TwoPow32 = 0x100000000

const utf8Encoder = new TextEncoder()

export class Writer extends Output {
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
