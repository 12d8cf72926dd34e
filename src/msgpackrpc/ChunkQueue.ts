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
