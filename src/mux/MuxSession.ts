/**
 * The multiplexer contract, as the seed's `muxSession` (Consul `agent/pool`):
 * open a stream, accept streams, close, go away, ping. The pool and the server
 * speak only to this interface; `yamux/Session.ts` is the default implementation.
 *
 * @since 0.1.0
 */
import type { Duration, Effect } from "effect"
import type { MuxError } from "./MuxError.ts"

/**
 * One bidirectional byte stream inside a session.
 *
 * **Details**
 * `write` takes ownership of the bytes it is given until its Effect completes:
 * do not reuse the buffer before then. `read` yields chunks in order and
 * `undefined` once the peer half-closed (EOF).
 */
export interface MuxStream {
  readonly id: number
  /** Writes all of `data`, waiting for the peer's window as needed. */
  write(data: Uint8Array): Effect.Effect<void, MuxError>
  /** The next chunk, or `undefined` at EOF. */
  readonly read: Effect.Effect<Uint8Array | undefined, MuxError>
  /**
   * Receive mode, for a consumer that assembles what it reads (the msgpack
   * decoder): from now on each piece that arrives is handed to `sink` at once,
   * lent for the call (the sink copies what it keeps), instead of being
   * buffered for `read`; pieces buffered before are handed over first.
   * `sink` returns true when it took the piece for a value it is waiting on:
   * the piece then counts as read at once, and the peer's window reopens
   * without waiting for the consumer's fiber. Otherwise it counts as read at
   * the next `received`, so a consumer that does not ask holds at most one
   * window. `undefined` leaves receive mode, and counts what the sink took
   * as read.
   */
  receiveInto(sink: ((lent: Uint8Array) => boolean) | undefined): void
  /**
   * Receive mode's `read`: waits until pieces went to the sink since the last
   * call (true) or the peer half-closed (false), and counts them as read.
   */
  readonly received: Effect.Effect<boolean, MuxError>
  /** Half-closes (FIN). Idempotent. */
  readonly close: Effect.Effect<void>
  /** Resets (RST) and discards the stream. Idempotent. */
  readonly reset: Effect.Effect<void>
  /** True once the stream can no longer carry a call in both directions. */
  readonly isClosed: boolean
  /** Bytes received and not yet read: a stream put back idle must have none (stray bytes would answer the next call). */
  readonly bufferedBytes: number
  /**
   * True when the peer reset this stream we opened before acknowledging it: it refused the
   * open (GoAway, accept backlog, stream limit), so nothing on its side saw our bytes.
   */
  readonly refused: boolean
}

export interface MuxSession {
  /** The remote address, for errors and stats. */
  readonly address: string
  /** Opens a new outbound stream. */
  readonly open: Effect.Effect<MuxStream, MuxError>
  /** Waits for the next inbound stream. */
  readonly accept: Effect.Effect<MuxStream, MuxError>
  /** Round trip of one ping. */
  readonly ping: Effect.Effect<Duration.Duration, MuxError>
  /** Refuses new inbound streams and tells the peer so; existing streams carry on. */
  readonly goAway: Effect.Effect<void>
  /** Closes the session and every stream on it. Idempotent. */
  readonly close: Effect.Effect<void>
  /** Completes with the reason once the session is closed. */
  readonly closed: Effect.Effect<MuxError>
  readonly isClosed: boolean
  /** True once the peer sent GoAway: it refuses new streams from us, existing ones carry on. */
  readonly peerGoneAway: boolean
  /** Live streams, opened and accepted. */
  readonly numStreams: number
}
