/**
 * The one error `rpc` fails with: a tagged `reason`, the server address, the
 * method, and whether retrying is safe.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import { TransportError } from "../wire/TransportError.ts"

/**
 * - `DialFailed`: no connection to the server (refused, unreachable, TLS or preamble refused).
 * - `DialTimeout`: connecting took longer than `dialTimeout`.
 * - `StreamOpenFailed`: the session refused a new stream (GoAway, exhausted, closed) even after one fresh dial.
 * - `ConnectionLost`: the session died during the call (EOF, reset, keepalive timeout).
 * - `StreamReset`: the server reset or closed this call's stream.
 * - `ProtocolError`: the server sent bytes that are not msgpack-rpc or not yamux.
 * - `MessageTooLarge`: the reply is larger than `maxMessageSize`; only its stream is reset, the session stays.
 * - `TooManyPending`: `maxPendingCalls` callers already wait for a dial or a stream to this server; nothing was sent.
 * - `RemoteError`: the server's handler returned an error (`Response.Error`); the message is the server's.
 *   For a streaming RPC: the server refused the method in its ack, or ended the stream with an error frame
 *   (its `code`, when it sent one, is in `code`).
 * - `CallTimeout`: no reply within the call timeout.
 * - `ArgsMismatch`: the arguments did not match the Schema of a typed method; nothing was sent.
 * - `ReplyMismatch`: the reply did not match the Schema the caller gave.
 * - `InvalidOption`: the call's own options cannot be used (a `timeout` that is not a duration >= 0); nothing was sent.
 * - `PoolClosed`: the pool is shut down.
 */
export type RpcErrorReason =
  | "DialFailed"
  | "DialTimeout"
  | "StreamOpenFailed"
  | "ConnectionLost"
  | "StreamReset"
  | "ProtocolError"
  | "MessageTooLarge"
  | "TooManyPending"
  | "RemoteError"
  | "CallTimeout"
  | "ArgsMismatch"
  | "ReplyMismatch"
  | "InvalidOption"
  | "PoolClosed"

export class RpcError extends Data.TaggedError("RpcError")<{
  readonly reason: RpcErrorReason
  /** The server, `host:port`. */
  readonly address: string
  /** The RPC method, e.g. `Status.Ping`; empty for pool-level failures. */
  readonly method: string
  /**
   * Whether the request may have reached the server. A retry is safe for any
   * method only when it did not.
   */
  readonly sent: boolean
  readonly detail?: string | undefined
  /** The error code of a streaming RPC's error frame (`RpcError.Code`), when the server sent one. */
  readonly code?: number | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const what = this.method === "" ? this.address : `${this.method} on ${this.address}`
    return this.reason === "RemoteError"
      ? `${what}: ${this.detail ?? "remote error"}${this.code === undefined ? "" : ` (code ${this.code})`}`
      : `${this.reason} (${what})${this.detail === undefined ? "" : `: ${this.detail}`}`
  }

  /**
   * True when `rpc(...).pipe(Effect.retry(...))` may run the call again
   * without risk: the request never reached the server and the failure is
   * about the connection, not the call. Remote errors, mismatched replies, a
   * closed pool and anything after the request was sent are not retryable;
   * retry those yourself for idempotent methods.
   */
  get isRetryable(): boolean {
    switch (this.reason) {
      case "RemoteError":
      // The same arguments would not match again.
      case "ArgsMismatch":
      case "ReplyMismatch":
      case "InvalidOption":
      case "PoolClosed":
      case "ProtocolError":
      // The same reply would be as large again.
      case "MessageTooLarge":
        return false
      default:
        // A refused TLS handshake or preamble will be refused again.
        return !this.sent && !(this.cause instanceof TransportError && !this.cause.isRetryable)
    }
  }
}
