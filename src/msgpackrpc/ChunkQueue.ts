/**
 * The decoder's input: the chunks pushed and not yet decoded, held as they came (no copy on push), with the
 * one operation that copies: making a finished value's bytes contiguous.
 *
 * Positions are absolute offsets from the start of `chunks[first]`; `headOffset` is where the next value
 * starts and `endAbs` where the input ends, so `endAbs - headOffset` bytes are buffered.
 *
 * @since 0.1.0
 */

const EMPTY = new Uint8Array(0)

/** Chunks consumed at the front before the array is compacted (a head index makes consuming O(1)). */
const CompactAfter = 1024

export class ChunkQueue {
  /** Pushed chunks; those before `first` are consumed. */
  chunks: Array<Uint8Array> = []
  first = 0
  /** Bytes of `chunks[first]` already consumed. */
  headOffset = 0
  /** Absolute end of the buffered input. */
  endAbs = 0
  /** Bytes copied to make values contiguous. */
  copied = 0

  get bufferedBytes(): number {
    return this.endAbs - this.headOffset
  }

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk)
    this.endAbs += chunk.length
  }

  /** Drops everything: the stream failed and nothing in it will be decoded. */
  clear(): void {
    this.chunks = []
    this.endAbs = this.headOffset = this.first = 0
  }

  /** The view `take` made; the caller clears it once read, so the queue does not pin it. */
  taken: Uint8Array = EMPTY

  /**
   * Takes bytes [headOffset, end) off the queue as one contiguous view in `taken` (a field, not a returned
   * pair, to allocate nothing per value): a zero-copy `subarray` when they lie in one chunk, else a single
   * concatenation. Returns whether the view is a private copy (true) or aliases a pushed chunk (false), which
   * the reader must then never hand out.
   */
  take(end: number): boolean {
    const chunks = this.chunks
    const start = this.headOffset
    const head = chunks[this.first]!
    if (end <= head.length) {
      this.taken = head.subarray(start, end)
      if (end === head.length) this.consume(1, end, 0)
      else this.headOffset = end
      return false
    }
    const out = new Uint8Array(end - start)
    out.set(head.subarray(start), 0)
    let at = head.length - start
    let cStart = head.length
    for (let i = this.first + 1;; i++) {
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
    this.taken = out
    return true
  }

  /**
   * Takes bytes [headOffset, end) off the queue as the views of the chunks that hold them, copying nothing:
   * for a caller that makes them contiguous a slice at a time. Counts them as copied.
   */
  takeParts(end: number): Array<Uint8Array> {
    const chunks = this.chunks
    const parts: Array<Uint8Array> = []
    const size = end - this.headOffset
    let at = this.headOffset
    let cStart = 0
    let i = this.first
    for (;; i++) {
      const c = chunks[i]!
      const cEnd = cStart + c.length
      if (cEnd >= end) {
        parts.push(c.subarray(at - cStart, end - cStart))
        break
      }
      parts.push(c.subarray(at - cStart))
      at = cStart = cEnd
    }
    if (end === cStart + chunks[i]!.length) this.consume(i + 1 - this.first, end, 0)
    else this.consume(i - this.first, cStart, end - cStart)
    if (parts.length > 1) this.copied += size
    return parts
  }

  // ---------------------------------------------------------------------------------------------------------
  // Receive mode (`Decoder.receive`): the last chunk may be lent, and is replaced by what keeps its bytes.
  // ---------------------------------------------------------------------------------------------------------

  /** Replaces the last chunk with `chunk`, which holds the same bytes at the same positions. */
  replaceLast(chunk: Uint8Array): void {
    this.chunks[this.chunks.length - 1] = chunk
  }

  /** The last chunk grew by `added` bytes: `chunk` is its longer view. */
  extendLast(chunk: Uint8Array, added: number): void {
    this.chunks[this.chunks.length - 1] = chunk
    this.endAbs += added
  }

  /**
   * The head chunk, the only one left, becomes `unread` (its bytes from `headOffset` on). Positions move
   * back by the returned count.
   */
  replaceHead(unread: Uint8Array): number {
    const shift = this.headOffset
    this.chunks[this.first] = unread
    this.endAbs -= shift
    this.headOffset = 0
    return shift
  }

  /** Copies the buffered bytes into `dest` from offset 0; returns how many. */
  copyTo(dest: Uint8Array): number {
    let at = 0
    for (let i = this.first; i < this.chunks.length; i++) {
      const c = this.chunks[i]!
      const part = i === this.first ? c.subarray(this.headOffset) : c
      dest.set(part, at)
      at += part.length
    }
    return at
  }

  /** The buffered bytes now live in `chunk` alone (see `copyTo`). Positions move back by the returned count. */
  collapse(chunk: Uint8Array): number {
    const shift = this.headOffset
    this.chunks = [chunk]
    this.first = 0
    this.headOffset = 0
    this.endAbs = chunk.length
    return shift
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
    } else if (first >= CompactAfter && first * 2 >= chunks.length) {
      this.chunks = chunks.slice(first)
      this.first = 0
    } else {
      this.first = first
    }
  }
}
