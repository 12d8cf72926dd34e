/**
 * The framing scanner: finds where the value at the head of a `ChunkQueue` ends, without decoding it.
 *
 * It reads only the type byte and length fields of each nested item and skips payloads by arithmetic,
 * keeping a stack of "items left" per open container. When the input runs out it saves its position and
 * stack, so the next call continues where it stopped: each header byte is looked at once and each chunk is
 * walked once, so a 16 MiB value fed in 64 KiB chunks costs 256 short steps, not 256 re-parses.
 *
 * Limits are checked on the declared lengths as soon as a header is read: a `str32` claiming 4 GiB fails
 * with `TooLarge` before any of its payload is buffered, and an `array32` claiming 60 million elements fails
 * the decoding budget (`maxDecodedBytes`) before any of them is read, let alone built. Once a value is found
 * whole, its framing and depth are valid and its cost is known, which is what lets the readers skip bounds
 * checks and budget checks (but one: a str that is not UTF-8, see `ValueReader`).
 *
 * @since 0.1.0
 */
import type { ChunkQueue } from "./ChunkQueue.ts"
import { CodecError } from "./CodecError.ts"
import { DecodedCost, type Limits, overBudget } from "./DecoderOptions.ts"

const LenNone = 0
const LenPayload = 1
const LenExt = 2
const LenArray = 3
const LenMap = 4
const LenBin = 5

/** What a container, a byte array and an ext cost beyond the slot every value is charged on its own. */
const ContainerExtra = DecodedCost.container - DecodedCost.value
const BytesExtra = DecodedCost.bytes - DecodedCost.value
const ExtExtra = DecodedCost.bytes + DecodedCost.container - DecodedCost.value

export class Scanner {
  private readonly limits: Limits
  private scanning = false
  private scanPos = 0
  private scanChunk = 0
  private scanChunkStart = 0
  /** `stack[i]`: items still to read at nesting level i (level 0 is the top-level value itself). */
  private stack: Array<number> = [1]
  private stackTop = 0
  /** Sum of the stack: every pending item is at least one byte, which bounds claims of huge containers. */
  private pendingItems = 0
  /** Decoded cost charged so far (see `DecoderOptions.maxDecodedBytes`); the whole value's once found. */
  cost = 0

  constructor(limits: Limits) {
    this.limits = limits
  }

  /**
   * While a value is partly scanned: the least absolute position its end can be at (every item still
   * pending is at least one byte), which a declared string or byte array makes exact up to its end;
   * otherwise -1.
   */
  get knownEnd(): number {
    return this.scanning ? this.scanPos + this.pendingItems : -1
  }

  /** The input's chunks were rebuilt and its positions moved back by `shift`: find the saved position again. */
  rebase(shift: number, input: ChunkQueue): void {
    if (!this.scanning) return
    this.scanPos -= shift
    this.scanChunk = input.first
    this.scanChunkStart = 0
  }

  /**
   * The absolute end of the value starting at `input.headOffset`, or -1 when the buffered input does not
   * hold all of it yet (the progress is saved). Throws `CodecError` for framing errors and broken limits.
   */
  scan(input: ChunkQueue): number {
    if (!this.scanning) {
      this.scanning = true
      this.scanPos = input.headOffset
      this.scanChunk = input.first
      this.scanChunkStart = 0
      this.stack[0] = 1
      this.stackTop = 0
      this.pendingItems = 1
      this.cost = DecodedCost.value
    }
    const chunks = input.chunks
    const stack = this.stack
    const maxDepth = this.limits.maxDepth
    const limit = this.limits.maxMessageBytes + input.headOffset
    let pos = this.scanPos
    let ci = this.scanChunk
    let cStart = this.scanChunkStart
    let top = this.stackTop
    let pending = this.pendingItems
    let cost = this.cost
    const maxCost = this.limits.maxDecodedBytes
    for (;;) {
      if (top < 0) {
        if (pos <= input.endAbs) {
          this.scanning = false
          this.cost = cost
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
      let extra = 0
      if (b <= 0x7f || b >= 0xe0) {
        // fixint
      } else if (b <= 0x8f) {
        count = (b & 0x0f) * 2
        extra = ContainerExtra + count * DecodedCost.value
      } else if (b <= 0x9f) {
        count = b & 0x0f
        extra = ContainerExtra + count * DecodedCost.value
      } else if (b <= 0xbf) {
        len = b & 0x1f
      } else {
        switch (b) {
          case 0xc0:
          case 0xc2:
          case 0xc3:
            break
          case 0xc4:
            hdr = 2
            lenKind = LenBin
            break
          case 0xc5:
            hdr = 3
            lenKind = LenBin
            break
          case 0xc6:
            hdr = 5
            lenKind = LenBin
            break
          case 0xd9:
            hdr = 2
            lenKind = LenPayload
            break
          case 0xda:
            hdr = 3
            lenKind = LenPayload
            break
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
            extra = ExtExtra
            break
          case 0xd5:
            len = 3
            extra = ExtExtra
            break
          case 0xd6:
            len = 5
            extra = ExtExtra
            break
          case 0xd7:
            len = 9
            extra = ExtExtra
            break
          case 0xd8:
            len = 17
            extra = ExtExtra
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
              message: `byte 0x${b.toString(16)} at offset ${pos - input.headOffset} of a value starts no msgpack value`
            })
        }
        if (lenKind !== LenNone) {
          if (pos + hdr > input.endAbs) break
          const n = readLength(chunks, ci, cStart, pos + 1, lenKind === LenExt ? hdr - 2 : hdr - 1)
          if (lenKind === LenArray || lenKind === LenMap) {
            count = lenKind === LenArray ? n : n * 2
            extra = ContainerExtra + count * DecodedCost.value
          } else {
            len = n
            if (lenKind === LenBin) extra = BytesExtra
            else if (lenKind === LenExt) extra = ExtExtra
          }
        }
      }
      if (extra !== 0) {
        // Charged at the header, before the elements are read: a declared count costs at once.
        cost += extra
        if (cost > maxCost) {
          throw new CodecError({ reason: "TooLarge", message: overBudget(cost, this.limits) })
        }
      }
      stack[top] = stack[top]! - 1
      pending--
      if (count > 0) {
        if (++top > maxDepth) {
          throw new CodecError({ reason: "TooDeep", message: `containers nested deeper than maxDepth (${maxDepth})` })
        }
        stack[top] = count
        pending += count
      }
      pos += hdr + len
      if (pos + pending > limit) {
        throw new CodecError({
          reason: "TooLarge",
          message: `value declares at least ${pos + pending - input.headOffset} bytes, over maxMessageBytes (${this.limits.maxMessageBytes})`
        })
      }
      while (top >= 0 && stack[top] === 0) top--
    }
    this.scanPos = pos
    this.scanChunk = ci
    this.scanChunkStart = cStart
    this.stackTop = top
    this.pendingItems = pending
    this.cost = cost
    return -1
  }
}

/** Big-endian unsigned length of `size` bytes at absolute `at`, which may straddle chunks. */
const readLength = (chunks: Array<Uint8Array>, ci: number, cStart: number, at: number, size: number): number => {
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
