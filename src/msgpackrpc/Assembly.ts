/**
 * Receive mode's buffers (`Decoder.receive`): where the bytes of a lent chunk that outlive the call go. A value
 * whose headers declare at least {@link AssembleBytes} is assembled straight into one buffer of that size (the
 * `Assembly`), filled as its bytes arrive, so a large payload is one allocation and is handed out as a view of
 * it; anything else is copied into a small carry (`keep`).
 *
 * @since 0.1.0
 */
import { keep } from "../wire/Lent.ts"
import type { ChunkQueue } from "./ChunkQueue.ts"

/**
 * A value whose headers declare at least this many bytes (16 KiB) is assembled straight into a buffer of its
 * size; smaller ones that a read cuts go to a small carry.
 *
 * @category constants
 * @since 0.1.0
 */
export const AssembleBytes = 16 * 1024

/** Room past a large value's declared bytes for the small fields after them (a reply's Seq, a note). */
const AssembleSlack = 1024

/** A large value's bytes already kept in the carry are copied into its buffer up to this many. */
const RecopyBytes = 64 * 1024

/** `n` bytes, not zeroed (every byte handed out is written first), as a plain `Uint8Array`. */
const uninitialized = (n: number): Uint8Array => new Uint8Array(Buffer.allocUnsafeSlow(n).buffer, 0, n)

/** A large value's buffer, filled as its bytes arrive; the input's last chunk is the view of what is filled. */
export class Assembly {
  readonly buffer: Uint8Array
  filled: number

  constructor(buffer: Uint8Array, filled: number) {
    this.buffer = buffer
    this.filled = filled
  }

  /** Bytes allocated and not filled yet: what a server charges its budget ahead of the bytes. */
  get room(): number {
    return this.buffer.length - this.filled
  }

  /** Copies as much of `lent` as fits and extends the input's last chunk over it; returns how many bytes. */
  fill(lent: Uint8Array, input: ChunkQueue): number {
    const n = Math.min(lent.length, this.room)
    this.buffer.set(n === lent.length ? lent : lent.subarray(0, n), this.filled)
    this.filled += n
    input.extendLast(this.buffer.subarray(0, this.filled), n)
    return n
  }
}

/**
 * Keeps the end of `rest`, the input's last chunk (lent), past `receive`. When the value at the head is
 * unfinished and its headers declare at least `AssembleBytes` up to `known` (the scanner's least end, -1 when
 * unknown), its bytes move to a new `Assembly`, which is returned; else what is left of `rest` is copied into
 * the carry. `rebase` hears how far positions moved back when the input's chunks were rebuilt.
 */
export const keepRest = (
  input: ChunkQueue,
  rest: Uint8Array,
  known: number,
  rebase: (shift: number) => void
): Assembly | undefined => {
  if (known - input.headOffset >= AssembleBytes) {
    const restAt = input.endAbs - rest.length
    if (restAt - input.headOffset <= RecopyBytes) {
      // From the value's first byte, so the whole value ends up in one buffer.
      const buffer = uninitialized(known - input.headOffset + AssembleSlack)
      const n = input.copyTo(buffer)
      rebase(input.collapse(buffer.subarray(0, n)))
      return new Assembly(buffer, n)
    }
    const buffer = uninitialized(known - restAt + AssembleSlack)
    buffer.set(rest)
    input.replaceLast(buffer.subarray(0, rest.length))
    return new Assembly(buffer, rest.length)
  }
  if (input.first === input.chunks.length - 1) rebase(input.replaceHead(keep(rest.subarray(input.headOffset))))
  else input.replaceLast(keep(rest))
  return undefined
}
