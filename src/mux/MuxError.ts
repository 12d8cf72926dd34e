/**
 * The one error a multiplexed session or stream fails with.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * Why a session or stream failed. Names follow hashicorp/yamux's sentinel errors.
 *
 * - `SessionShutdown`: the session is closed (locally, by the peer, or after a fault).
 * - `ConnectionLost`: the transport ended or errored under the session (EOF, reset).
 * - `ProtocolError`: the peer broke the protocol (bad version, type, flags, window); the session is closed.
 * - `KeepAliveTimeout`: a ping went unanswered; the session is closed.
 * - `RemoteGoAway`: the peer sent GoAway; no new streams, existing ones carry on.
 * - `LocalGoAway`: this side sent GoAway; no new streams.
 * - `StreamsExhausted`: the 32-bit stream id space is used up; a new session is needed.
 * - `TooManyStreams`: the configured stream limit is reached.
 * - `StreamReset`: the peer (or this side) reset the stream.
 * - `StreamClosed`: writing after this side's FIN, or reading after the stream closed.
 * - `OpenTimeout`: an opened stream was never acknowledged; the session is closed.
 * - `WriteTimeout`: the transport did not drain within the write timeout.
 */
export type MuxErrorReason =
  | "SessionShutdown"
  | "ConnectionLost"
  | "ProtocolError"
  | "KeepAliveTimeout"
  | "RemoteGoAway"
  | "LocalGoAway"
  | "StreamsExhausted"
  | "TooManyStreams"
  | "StreamReset"
  | "StreamClosed"
  | "OpenTimeout"
  | "WriteTimeout"

/** Reasons after which the session itself is unusable. */
const sessionFatal: ReadonlySet<MuxErrorReason> = new Set<MuxErrorReason>([
  "SessionShutdown",
  "ConnectionLost",
  "ProtocolError",
  "KeepAliveTimeout",
  "OpenTimeout",
  "WriteTimeout"
])

export class MuxError extends Data.TaggedError("MuxError")<{
  readonly reason: MuxErrorReason
  /** The remote address of the session. */
  readonly address: string
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return `yamux ${this.reason} (${this.address})${this.detail === undefined ? "" : `: ${this.detail}`}`
  }

  /** True when the whole session is gone, not only this stream. */
  get isSessionFatal(): boolean {
    return sessionFatal.has(this.reason)
  }

  /**
   * True when the operation can be retried on a new session or stream. Failures
   * that leave the session usable but refuse new streams (GoAway, exhaustion)
   * are retryable elsewhere too.
   */
  get isRetryable(): boolean {
    return this.reason !== "ProtocolError"
  }
}
