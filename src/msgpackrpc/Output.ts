/**
 * Where the encoder writes: a shared output slab (like Node's `Buffer` pool), grown or split into parts as a
 * message needs. The msgpack forms themselves are written by `Writer`.
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
 * @since 0.1.0
 */

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

export class Output {
  protected readonly slabBytes: number
  protected buf: Uint8Array = new Uint8Array(0)
  protected view: DataView = new DataView(this.buf.buffer)
  protected pos = 0
  /** Where the message being written starts in `buf`. */
  protected start = 0
  /** Set while a parts encode runs: the finished parts, closed slabs and large byte arrays and strings. */
  protected parts: Array<Uint8Array> | undefined = undefined

  constructor(slabBytes: number | undefined) {
    this.slabBytes = slabBytes !== undefined && slabBytes >= 64 ? Math.floor(slabBytes) : DefaultSlabBytes
  }

  // ---------------------------------------------------------------------------------------------------------
  // Buffer
  // ---------------------------------------------------------------------------------------------------------

  /**
   * @internal Drops the slab, so the next message starts a fresh one. Where the
   * slab is full decides where a message is cut into parts: the simulator drops
   * it before each seed, so a seed's bytes do not depend on the runs before it.
   */
  dropSlab(): void {
    this.buf = new Uint8Array(0)
    this.view = new DataView(this.buf.buffer)
    this.pos = 0
    this.start = 0
  }

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
  protected nextSlab(n: number): void {
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

  /** Adds `part` to the parts as it is, after the message so far, which becomes a part too. */
  protected addPart(part: Uint8Array): void {
    this.parts!.push(this.buf.subarray(this.start, this.pos), part)
    this.start = this.pos
  }
}
