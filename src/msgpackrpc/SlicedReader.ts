/**
 * Decodes one large value a slice at a time, so that a caller can give the event loop back between slices:
 * a 62 MiB Consul catalog listing takes about a second to decode on a shared 2-core machine, far too long to
 * hold every other fiber, timer and socket of the process (docs/decisions.md, "Decoding large values in
 * slices").
 *
 * It first makes the value's bytes contiguous, copying its chunks a slice at a time (one 64 MiB copy is tens
 * of milliseconds on a loaded machine). Then, where `ValueReader` recurses, this reader keeps the open
 * containers on an explicit stack, so it can stop after any element and resume later. Scalars, strings and byte arrays are read by `ValueReader`'s own code,
 * so both readers give the same values. Each container is attached to its parent when its header is read
 * and filled afterwards, which leaves keys in the same order as the recursive reader puts them.
 *
 * @since 0.1.0
 */
import { DecodedCost } from "./DecoderOptions.ts"
import type { Value } from "./Value.ts"
import { type Raws, setEntry, ValueReader } from "./ValueReader.ts"

/** An open container: `n` elements (entries, for a map), `i` of them read. */
interface Frame {
  readonly out: Array<Value> | { [key: string]: Value }
  readonly map: boolean
  readonly n: number
  i: number
}

/**
 * Returned by a slice that stopped before the value was complete: give the event loop a turn, then call
 * again.
 *
 * @category symbols
 * @since 0.1.0
 */
export const Yield: unique symbol = Symbol.for("effect-connpool/msgpackrpc/Yield")

export class SlicedReader extends ValueReader {
  private readonly frames: Array<Frame> = []
  /** Holds the top-level value, so the top level is a frame like any other. */
  private readonly root: Array<Value> = [null]
  /** The value's chunks still to copy into `gathered`, from `parts[nextPart]` on; empty once contiguous. */
  private parts: ReadonlyArray<Uint8Array> = []
  private nextPart = 0
  private gathered = EMPTY
  private at = 0
  private budgetLeft = 0
  private raws: Raws = "text"

  /**
   * Prepares to decode the value held by `parts`, the views of the pushed chunks it lies in, in order;
   * `allowance` as for `ValueReader.read`; `owned` when the chunks are the decoder's own (receive mode), so
   * that a value in one chunk may share it; `raws` as for `ValueReader.read`.
   */
  start(parts: ReadonlyArray<Uint8Array>, allowance: number, owned = false, raws: Raws = "text"): void {
    this.frames.length = 0
    this.frames.push({ out: this.root, map: false, n: 1, i: 0 })
    this.raws = raws
    if (parts.length === 1) {
      this.parts = []
      this.load(parts[0]!, owned, allowance, raws)
      return
    }
    this.parts = parts
    this.nextPart = 0
    this.at = 0
    this.budgetLeft = allowance
    this.gathered = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  }

  /** Copies chunks until `work` bytes are copied or the value is contiguous; returns the work left. */
  private gather(work: number): number {
    const parts = this.parts
    while (this.nextPart < parts.length && work > 0) {
      const part = parts[this.nextPart++]!
      this.gathered.set(part, this.at)
      this.at += part.length
      work -= part.length
    }
    if (this.nextPart === parts.length) {
      this.parts = []
      this.load(this.gathered, true, this.budgetLeft, this.raws)
      this.gathered = EMPTY
    }
    return work
  }

  /**
   * Decodes until about `work` units are done (a unit is a byte of input or a byte of the decoded cost, see
   * `DecodedCost`), then returns `Yield`, or the value once it is complete.
   */
  slice(work: number): Value | typeof Yield {
    if (this.parts.length > 0 && (work = this.gather(work)) <= 0) return Yield
    const frames = this.frames
    let done = 0
    for (;;) {
      const frame = frames[frames.length - 1]
      if (frame === undefined) {
        const value = this.root[0]!
        this.root[0] = null
        this.load(EMPTY, false, 0, "text")
        return value
      }
      if (frame.i === frame.n) {
        frames.pop()
        continue
      }
      const at = this.pos
      const key = frame.map ? this.key() : ""
      const child = this.container()
      let v: Value
      if (child === undefined) {
        v = this.value()
        // A byte array or an ext: an object of its own, costlier than its bytes say.
        if (v !== null && typeof v === "object") done += DecodedCost.bytes
      } else {
        v = child.out as Value
        done += DecodedCost.container
      }
      done += this.pos - at + DecodedCost.value
      if (frame.map) setEntry(frame.out as { [key: string]: Value }, key, v)
      else (frame.out as Array<Value>)[frame.i] = v
      frame.i++
      if (child !== undefined && child.n > 0) frames.push(child)
      if (done >= work) return Yield
    }
  }

  /** When an array or map starts at `pos`: reads its header and returns its frame; else leaves `pos`. */
  private container(): Frame | undefined {
    const b = this.bytes[this.pos]!
    let n: number
    let map: boolean
    if (b >= 0x80 && b <= 0x9f) {
      this.pos++
      map = b < 0x90
      n = b & 0x0f
    } else if (b >= 0xdc && b <= 0xdf) {
      this.pos++
      map = b >= 0xde
      n = b & 1 ? this.u32() : this.u16()
    } else {
      return undefined
    }
    return { out: map ? {} : new Array<Value>(n), map, n, i: 0 }
  }
}

const EMPTY = new Uint8Array(0)
