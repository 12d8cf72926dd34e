/**
 * The one error of the msgpack-rpc codec.
 *
 * Every failure of `Encoder`, `Decoder` and the message readers in `Codec` is a `CodecError` *returned* as a
 * value, never thrown. A codec error on a stream means the byte stream can no longer be trusted (a partial or
 * malformed value desynchronises everything after it), so the decoder and the readers keep returning the same
 * error once one has occurred, and the caller should discard the stream (wire-protocol.md §1.5, pitfall 5).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a value could not be encoded or decoded.
 *
 * - `InvalidByte`: a byte that starts no msgpack value (`0xc1` is reserved and never valid).
 * - `TooLarge`: a declared length (or the buffered input) exceeds a configured limit; raised as soon as the
 *   length is read, before the bytes are buffered. Also: an integer out of the 64-bit range on encode.
 * - `TooDeep`: containers nested deeper than the configured maximum depth.
 * - `Truncated`: the input ended in the middle of a value (the peer hung up mid-message).
 * - `TrailingBytes`: `decode` of one buffer found bytes after the first complete value.
 * - `InvalidKey`: a map key that cannot be a JS object key (nil, container, ext, or raw bytes that are not UTF-8).
 * - `Unsupported`: a JS value the encoder cannot represent (function, symbol, invalid `Date`, typed array other
 *   than `Uint8Array`, ...).
 * - `Unreadable`: reading a value to encode it threw: a throwing getter, a `Proxy` trap, an iterator; the
 *   thrown value is the error's `cause`.
 * - `InvalidHeader`: a msgpack-rpc header that is not a map with `ServiceMethod: string`, `Seq: uint64`
 *   (and `Error: string` for responses).
 *
 * @category errors
 * @since 0.1.0
 */
export type CodecErrorReason =
  | "InvalidByte"
  | "TooLarge"
  | "TooDeep"
  | "Truncated"
  | "TrailingBytes"
  | "InvalidKey"
  | "Unsupported"
  | "Unreadable"
  | "InvalidHeader"

/**
 * A msgpack / msgpack-rpc codec failure.
 *
 * **Gotchas**: never retryable on the same stream: the stream is desynchronised and must be closed.
 *
 * @category errors
 * @since 0.1.0
 */
export class CodecError extends Data.TaggedError("CodecError")<{
  readonly reason: CodecErrorReason
  readonly message: string
  /** What a value threw while it was read (`Unreadable`). */
  readonly cause?: unknown
}> {
  /** A malformed stream stays malformed; only a fresh stream can succeed. */
  get isRetryable(): boolean {
    return false
  }
}

/**
 * Guard for results of the codec API, whose failures are returned as values.
 *
 * @category guards
 * @since 0.1.0
 */
export const isCodecError = (u: unknown): u is CodecError => u instanceof CodecError
