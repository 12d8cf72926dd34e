/**
 * The decoder's limits: what one stream may make it buffer, and what one value may make it build. Every
 * limit has a named default, so a `Decoder` built with no options (the pool's and `RpcServer`'s) is bounded.
 *
 * @since 0.1.0
 */

/**
 * Default `maxMessageBytes`: 64 MiB. A single value larger than this is refused as soon as its header says so.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxMessageBytes = 64 * 1024 * 1024

/**
 * Default `maxDepth`: 512 nested containers (arrays or maps). Go's own decoders have no limit; 512 is far
 * beyond any Consul/Nomad structure and keeps the recursive reader's stack shallow.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxDepth = 512

/**
 * Default `maxBufferedBytes`: 128 MiB of pushed but not yet decoded input.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxBufferedBytes = 128 * 1024 * 1024

/**
 * Default `maxDecodedBytes`: 256 MiB, an estimate of the memory one decoded value may build (see
 * {@link DecoderOptions.maxDecodedBytes}). A legitimate 64 MiB reply of bytes, strings or Consul catalog
 * entries estimates well under it (a 62 MiB `Health.ServiceNodes`-shaped listing of 70,000 entries: about
 * 110 MiB); a 60 MiB array of nils, empty arrays or empty maps (60 million values, 0.5 to 3.8 GB once built)
 * is refused at its header, before anything is allocated.
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultMaxDecodedBytes = 256 * 1024 * 1024

/**
 * What the decoding budget charges, in bytes, for each value it will build, measured on Node 24 (64-bit):
 * a value's slot in its array or object (a nil, a number, a boolean, a string whose characters the
 * message's own bytes bound, and every map key), an array or a map (the JS object plus its slot), a byte
 * array (a `Uint8Array` and its `ArrayBuffer`: about 210 bytes even when empty). An ext is an object
 * holding a byte array.
 *
 * @category constants
 * @since 0.1.0
 */
export const DecodedCost = {
  value: 8,
  container: 64,
  bytes: 256
} as const

/**
 * Default `sliceBytes`: 256 KiB of work per slice of `Decoder.step`, 1 to 3 milliseconds on a shared 2-core
 * machine (docs/decisions.md, "Decoding large values in slices").
 *
 * @category constants
 * @since 0.1.0
 */
export const DefaultSliceBytes = 256 * 1024

/**
 * @category models
 * @since 0.1.0
 */
export interface DecoderOptions {
  /** Largest single value, in bytes, headers included. Default {@link DefaultMaxMessageBytes} (64 MiB). */
  readonly maxMessageBytes?: number | undefined
  /** Deepest container nesting. Default {@link DefaultMaxDepth} (512). */
  readonly maxDepth?: number | undefined
  /** Most input held between `push` and `next`. Default {@link DefaultMaxBufferedBytes} (128 MiB). */
  readonly maxBufferedBytes?: number | undefined
  /**
   * The decoding budget: most memory one value may build, as estimated from its headers before anything is
   * built. Default {@link DefaultMaxDecodedBytes} (256 MiB).
   *
   * **Details**: the scanner charges every value as it reads its header, by {@link DecodedCost}: 8 bytes a
   * value, 64 an array or map, 256 a byte array, and a container's declared element count as soon as its
   * header is read (8 bytes each), so a 5-byte `array32` header claiming 60 million elements fails at once.
   * Payloads (string characters, byte array contents) are not charged: `maxMessageBytes` bounds them, so a
   * value builds at most about `maxMessageBytes + maxDecodedBytes`. A str value that turns out not to be
   * UTF-8 becomes a byte array and is charged as one when it is read. Over budget, `next` fails with
   * `TooLarge` and nothing of the value has been built.
   */
  readonly maxDecodedBytes?: number | undefined
  /**
   * How much `Decoder.step` decodes before it gives the caller a turn: a value whose size plus decoded cost
   * is larger is decoded in slices of about this much work (a unit is a byte of input or of decoded cost).
   * Default {@link DefaultSliceBytes} (256 KiB). `next` ignores it and decodes every value at once.
   */
  readonly sliceBytes?: number | undefined
}

/** `DecoderOptions` with every default applied. */
export interface Limits {
  readonly maxMessageBytes: number
  readonly maxDepth: number
  readonly maxBufferedBytes: number
  readonly maxDecodedBytes: number
  readonly sliceBytes: number
}

const positive = (n: number | undefined, fallback: number): number =>
  n === undefined || !(n > 0) ? fallback : Math.floor(n)

/** Applies the defaults; a missing, zero, negative or NaN limit means the default. */
export const limitsOf = (options: DecoderOptions | undefined): Limits => ({
  maxMessageBytes: positive(options?.maxMessageBytes, DefaultMaxMessageBytes),
  maxDepth: positive(options?.maxDepth, DefaultMaxDepth),
  maxBufferedBytes: positive(options?.maxBufferedBytes, DefaultMaxBufferedBytes),
  maxDecodedBytes: positive(options?.maxDecodedBytes, DefaultMaxDecodedBytes),
  sliceBytes: positive(options?.sliceBytes, DefaultSliceBytes)
})

/** The `TooLarge` message of a value over the decoding budget. */
export const overBudget = (cost: number, limits: Limits): string =>
  `value would build at least ${cost} bytes of JS values, over maxDecodedBytes (${limits.maxDecodedBytes})`
