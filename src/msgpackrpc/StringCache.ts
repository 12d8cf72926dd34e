/**
 * A small hash table of recently decoded short strings. Short strings repeat (struct field names in every
 * message, datacenter and node names, tags); finding one here saves decoding and allocating it again.
 *
 * Slot i holds `lengths[i] - 1` bytes at `i * MaxCachedStringBytes` (a length of 0 marks an empty slot) and
 * the string they decode to. A collision simply replaces the slot.
 *
 * @since 0.1.0
 */

/** Strings (keys and values) up to this many bytes go through the cache. */
export const MaxCachedStringBytes = 24
const Slots = 4096

export class StringCache {
  private readonly bytes = new Uint8Array(Slots * MaxCachedStringBytes)
  private readonly lengths = new Uint8Array(Slots)
  private readonly strings: Array<string | undefined> = new Array(Slots)
  /** The slot of the last `get`, where `set` stores. */
  private slot = 0

  /** The string cached for `bytes[start, end)` (at most `MaxCachedStringBytes` long), or undefined. */
  get(bytes: Uint8Array, start: number, end: number): string | undefined {
    const len = end - start
    let h = 0x811c9dc5 ^ len
    for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193)
    const slot = (this.slot = (h >>> 0) & (Slots - 1))
    if (this.lengths[slot] !== len + 1) return undefined
    const cache = this.bytes
    const at = slot * MaxCachedStringBytes
    for (let i = 0; i < len; i++) if (cache[at + i] !== bytes[start + i]) return undefined
    return this.strings[slot]
  }

  /** Caches `s` as the string of `bytes[start, end)`, the bytes the last `get` missed. */
  set(bytes: Uint8Array, start: number, end: number, s: string): void {
    const slot = this.slot
    const cache = this.bytes
    const at = slot * MaxCachedStringBytes
    const len = end - start
    for (let i = 0; i < len; i++) cache[at + i] = bytes[start + i]!
    this.lengths[slot] = len + 1
    this.strings[slot] = s
  }
}

/**
 * One cache for all decoders: a lookup runs to completion without calling user code, so sharing is safe in a
 * single-threaded isolate, and the cache (about 100 KiB) is paid once per process, not per stream.
 */
export const sharedStringCache = new StringCache()
