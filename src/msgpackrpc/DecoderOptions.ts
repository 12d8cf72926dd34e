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
}

/** `DecoderOptions` with every default applied. */
export interface Limits {
  readonly maxMessageBytes: number
  readonly maxDepth: number
  readonly maxBufferedBytes: number
}

const positive = (n: number | undefined, fallback: number): number =>
  n === undefined || !(n > 0) ? fallback : Math.floor(n)

/** Applies the defaults; a missing, zero, negative or NaN limit means the default. */
export const limitsOf = (options: DecoderOptions | undefined): Limits => ({
  maxMessageBytes: positive(options?.maxMessageBytes, DefaultMaxMessageBytes),
  maxDepth: positive(options?.maxDepth, DefaultMaxDepth),
  maxBufferedBytes: positive(options?.maxBufferedBytes, DefaultMaxBufferedBytes)
})
