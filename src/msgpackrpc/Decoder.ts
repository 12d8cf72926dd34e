/**
 * Incremental msgpack decoder for a stream of back-to-back values (net/rpc over msgpack has no length prefix:
 * wire-protocol.md §1.3), fed in chunks of any size, down to one byte.
 *
 * Pure: bytes in, values out. Nothing here reads a socket, schedules work or uses the Effect runtime; failures
 * are returned as `CodecError` values, never thrown.
 *
 * **How framing works** (linear in the input, whatever the chunking):
 * 1. `push` only appends the chunk to a `ChunkQueue` (no copy).
 * 2. `next` runs the resumable `Scanner`, which reads only headers and checks every limit on the declared
 *    lengths as soon as it reads them.
 * 3. Once the scanner finds the end of a value, its bytes are made contiguous exactly once: a zero-copy
 *    `subarray` when it lies in one chunk, otherwise a single concatenation (counted in `bytesCopied`).
 * 4. A `ValueReader` decodes that contiguous view (the value model is in `Value.ts`, the string and key
 *    rules in `ValueReader.ts`). With `step`, a large value is decoded by a `SlicedReader` instead, a slice
 *    at a time, so the caller can let the event loop run between slices.
 *
 * **Budget**: the scanner also charges what the value will build (`maxDecodedBytes`, default 256 MiB), at
 * each header and before anything is built, so a few bytes that declare millions of elements fail with
 * `TooLarge` at once (see `DecoderOptions`).
 *
 * **Receive mode** (`receive`, what the RPC pool and server use): chunks are lent (a socket's reused read
 * buffer), so the decoder copies what it keeps, once. A small value that arrives whole is decoded at once,
 * straight from the lent bytes, copying nothing. A value whose headers declare at least
 * {@link AssembleBytes} (a large string or byte array) is assembled straight into a buffer of its size: one
 * allocation per large value, none per read, and the reader then hands out its payload as a view of that
 * buffer. Anything else left over (a value cut by a read) is copied into a small carry. The budget is charged
 * exactly as with `push`, at the headers, before any of this is allocated.
 *
 * This module is the public face of the decoder: it re-exports the value model and the options.
 *
 * @since 0.1.0
 */
import { type Assembly, keepRest } from "./Assembly.ts"
import { ChunkQueue } from "./ChunkQueue.ts"
import { CodecError } from "./CodecError.ts"
import { type DecoderOptions, type Limits, limitsOf } from "./DecoderOptions.ts"
import { Scanner } from "./Scanner.ts"
import { SlicedReader, Yield } from "./SlicedReader.ts"
import type { Value } from "./Value.ts"
import { type Raws, sharedReader } from "./ValueReader.ts"

export {
  DecodedCost,
  DefaultMaxBufferedBytes,
  DefaultMaxDecodedBytes,
  DefaultMaxDepth,
  DefaultMaxMessageBytes,
  DefaultSliceBytes
} from "./DecoderOptions.ts"
export { AssembleBytes } from "./Assembly.ts"
export { Yield } from "./SlicedReader.ts"
export type { DecoderOptions } from "./DecoderOptions.ts"
export type { Raws } from "./ValueReader.ts"
export { asBytes, Ext } from "./Value.ts"
export type { Value } from "./Value.ts"

const EMPTY = new Uint8Array(0)


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
 * - Errors are sticky: after the first `CodecError`, `next` and `end` keep returning it and `push` is ignored
 *   (values decoded before it, in receive mode, come first). The stream is desynchronised and should be closed.
 * - One instance per stream; instances are cheap.
 * - `raws`: what str values become, `"text"` (a `string` when the bytes are UTF-8, the default) or `"bytes"`
 *   (always a `Uint8Array`, for a stream known to carry Go `[]byte`, such as a streaming RPC's frames).
 *
 * @category constructors
 * @since 0.1.0
 */
export class Decoder {
  private readonly limits: Limits
  private readonly raws: Raws
  private readonly input = new ChunkQueue()
  private readonly scanner: Scanner
  private ended = false
  private failure: CodecError | undefined = undefined
  /** A push that overflowed maxBufferedBytes; reported once the values before it are drained. */
  private overflow: CodecError | undefined = undefined
  /** The value `step` is decoding a slice at a time. */
  private sliced: SlicedReader | undefined = undefined
  /** The end of the value at the head, once the scanner found it (its cost is then `scanner.cost`). */
  private found = -1

  /** Receive mode: chunks are the decoder's own copies, but for `lent` while `receive` runs. */
  private receiving = false
  private lent: Uint8Array | undefined = undefined
  /** Values `receive` decoded at once, in order from `readyHead`, and their sizes on the wire. */
  private readonly ready: Array<Value> = []
  private readonly readySizes: Array<number> = []
  private readyHead = 0
  private readyBytes = 0
  /** The buffer a large value is being assembled into (the input's last chunk is a view of it). */
  private assembly: Assembly | undefined = undefined

  constructor(options?: DecoderOptions, raws: Raws = "text") {
    this.limits = limitsOf(options)
    this.raws = raws
    this.scanner = new Scanner(this.limits)
  }

  /** Bytes pushed and not yet returned as values. */
  get bufferedBytes(): number {
    return this.input.bufferedBytes + this.readyBytes
  }

  /**
   * Receive mode: bytes allocated for the part of a large value that has not arrived yet (the value is
   * assembled in a buffer of its declared size). A server charges them to its budget with the bytes.
   */
  get reservedBytes(): number {
    return this.assembly === undefined ? 0 : this.assembly.room
  }

  /**
   * True when a whole value is in and not yet taken (`next` or `step` returns it without more input): a
   * receiver that keeps feeding `receive` holds back the peer's window meanwhile.
   */
  get complete(): boolean {
    return this.readyHead < this.ready.length || this.found >= 0 || this.sliced !== undefined
  }

  /** True while `step` has returned `Yield` for a value it has not finished. */
  get decoding(): boolean {
    return this.sliced !== undefined
  }

  /** Bytes copied to make values contiguous (only values that straddle chunks are copied, each once). */
  get bytesCopied(): number {
    return this.input.copied
  }

  /** Appends a chunk. The decoder takes ownership of it (no copy); errors surface from `next`. */
  push(chunk: Uint8Array): void {
    if (this.failure !== undefined || this.overflow !== undefined || this.ended || chunk.length === 0) return
    if (this.input.bufferedBytes + chunk.length > this.limits.maxBufferedBytes) {
      this.overflow = this.overflowError()
      return
    }
    this.input.push(chunk)
  }

  /**
   * Receive mode: appends a lent chunk, valid only during this call, and copies what is kept of it (see the
   * module's doc). Returns true when all of it went into a large value being assembled: bytes the caller
   * may count as consumed at once. Use `receive` or `push` on one decoder, not both.
   */
  receive(lent: Uint8Array): boolean {
    if (this.failure !== undefined || this.overflow !== undefined || this.ended || lent.length === 0) return false
    this.receiving = true
    if (this.bufferedBytes + this.reservedBytes + lent.length > this.limits.maxBufferedBytes) {
      this.overflow = this.overflowError()
      return false
    }
    let rest = lent
    const assembly = this.assembly
    if (assembly !== undefined) {
      const n = assembly.fill(lent, this.input)
      // The scanner may have stepped past the end of the chunk that just grew: it finds its place again.
      this.scanner.rebase(0, this.input)
      if (assembly.room === 0) this.assembly = undefined
      if (n === lent.length) {
        // Past the least end its headers declare, the value may be whole: find it, so `complete` says so.
        if (this.input.endAbs >= this.scanner.knownEnd) this.find()
        return true
      }
      rest = lent.subarray(n)
    }
    this.input.push(rest)
    this.lent = rest
    try {
      for (;;) {
        const end = this.find()
        if (typeof end !== "number") {
          if (end === undefined) break
          return false
        }
        const size = end - this.input.headOffset
        // A large complete value is left to `step`, which decodes it in slices.
        if (size + this.scanner.cost > this.limits.sliceBytes) break
        const v = this.read(end)
        if (v instanceof CodecError) return false
        this.ready.push(v)
        this.readySizes.push(size)
        this.readyBytes += size
        if (this.input.bufferedBytes === 0) return false
      }
      this.assembly = keepRest(this.input, rest, this.found < 0 ? this.scanner.knownEnd : -1, this.rebase)
    } finally {
      this.lent = undefined
    }
    return false
  }

  /** The input's chunks were rebuilt and its positions moved back by `shift`. */
  private readonly rebase = (shift: number): void => {
    if (shift === 0) return
    this.scanner.rebase(shift, this.input)
    if (this.found >= 0) this.found -= shift
  }

  /** The oldest value `receive` decoded at once (a head index: no `shift` per value). */
  private takeReady(): Value {
    const i = this.readyHead
    const v = this.ready[i]!
    this.readyBytes -= this.readySizes[i]!
    if (i + 1 === this.ready.length) {
      this.ready.length = 0
      this.readySizes.length = 0
      this.readyHead = 0
    } else {
      this.ready[i] = null
      this.readyHead = i + 1
    }
    return v
  }

  /**
   * The next complete value; `undefined` when more input is needed (or, after `end`, when the input is
   * exhausted); a `CodecError` when the stream is malformed or, after `end`, truncated.
   */
  next(): Value | undefined | CodecError {
    if (this.sliced !== undefined) return this.resume(Infinity) as Value | CodecError
    if (this.readyHead < this.ready.length) return this.takeReady()
    const end = this.find()
    return typeof end === "number" ? this.read(end) : end
  }

  /**
   * `next`, but a large value (size plus decoded cost over `sliceBytes`) is decoded a slice at a time:
   * `Yield` means "partly done: let the event loop run, then call `step` again". `push` and `end` may be
   * called between slices; `next` finishes the value at once.
   *
   * ```ts
   * const pull = (): Effect.Effect<Value, CodecError> => {
   *   const v = decoder.step()
   *   if (v === Yield) return Effect.flatMap(Effect.yieldNow, pull)
   *   ...
   * }
   * ```
   */
  step(): Value | undefined | CodecError | typeof Yield {
    if (this.sliced !== undefined) return this.resume(this.limits.sliceBytes)
    if (this.readyHead < this.ready.length) return this.takeReady()
    const end = this.find()
    if (typeof end !== "number") return end
    if (end - this.input.headOffset + this.scanner.cost <= this.limits.sliceBytes) return this.read(end)
    this.found = -1
    this.assembly = undefined
    this.sliced = new SlicedReader()
    // In receive mode (outside `receive`) every chunk is the decoder's own copy: a large value's payload is
    // handed out as a view of the buffer it was assembled in.
    this.sliced.start(
      this.input.takeParts(end),
      this.limits.maxDecodedBytes - this.scanner.cost,
      this.receiving,
      this.raws
    )
    return this.resume(this.limits.sliceBytes)
  }

  /** The end of the next value, once it is all buffered; else what `next` returns. */
  private find(): number | undefined | CodecError {
    if (this.failure !== undefined) return this.failure
    if (this.found >= 0) return this.found
    const input = this.input
    if (input.bufferedBytes === 0) return this.overflow !== undefined ? this.fail(this.overflow) : undefined
    let end: number
    try {
      end = this.scanner.scan(input)
    } catch (e) {
      return this.fail(e)
    }
    if (end >= 0) return (this.found = end)
    if (this.overflow !== undefined) return this.fail(this.overflow)
    return this.ended ? this.fail(this.truncated()) : undefined
  }

  /** Decodes the value that ends at `end` at once. */
  private read(end: number): Value | CodecError {
    const input = this.input
    this.found = -1
    // The value at the head is complete: whatever was being assembled is done (its chunk stays as it is).
    this.assembly = undefined
    // In receive mode every chunk is the decoder's own copy, but the lent one.
    const head = input.chunks[input.first]
    const owned = input.take(end) || (this.receiving && head !== this.lent)
    try {
      return sharedReader.read(input.taken, owned, this.limits.maxDecodedBytes - this.scanner.cost, this.raws)
    } catch (e) {
      return this.fail(e)
    } finally {
      input.taken = EMPTY
    }
  }

  private resume(work: number): Value | CodecError | typeof Yield {
    try {
      const v = this.sliced!.slice(work)
      if (v !== Yield) this.sliced = undefined
      return v
    } catch (e) {
      return this.fail(e)
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
    if (this.input.bufferedBytes === 0) return this.overflow !== undefined ? this.fail(this.overflow) : undefined
    if (this.found >= 0) return undefined
    try {
      if (this.scanner.scan(this.input) >= 0) return undefined
    } catch (e) {
      return this.fail(e)
    }
    return this.fail(this.overflow ?? this.truncated())
  }

  private overflowError(): CodecError {
    return new CodecError({
      reason: "TooLarge",
      message: `buffered input would exceed maxBufferedBytes (${this.limits.maxBufferedBytes})`
    })
  }

  private truncated(): CodecError {
    return new CodecError({
      reason: "Truncated",
      message: `input ended inside a value (${this.input.bufferedBytes} bytes buffered)`
    })
  }

  private fail(e: unknown): CodecError {
    if (!(e instanceof CodecError)) throw e
    this.failure = e
    this.sliced = undefined
    this.found = -1
    this.assembly = undefined
    this.input.clear()
    return e
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
