/**
 * Why a connection could not be made or set up.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * - `DialFailed`: the TCP connect failed (refused, unreachable, reset).
 * - `DialTimeout`: connect plus handshake took longer than the dial timeout.
 * - `TlsFailed`: the TLS handshake failed (untrusted certificate, wrong name, protocol error).
 * - `PreambleRejected`: a server got a first byte it does not serve (or plaintext while it requires TLS).
 * - `HandshakeTimeout`: a server waited too long for the preamble.
 * - `ConnectionLost`: the peer went away during set-up.
 * - `TooManyConnections`: a server closed a connection right after accept, as Consul does, because
 *   `maxConns` or `maxConnsPerClient` connections were already open.
 * - `ListenFailed`: a server could not listen (port in use, no permission, no such address).
 */
export type TransportErrorReason =
  | "DialFailed"
  | "DialTimeout"
  | "TlsFailed"
  | "PreambleRejected"
  | "HandshakeTimeout"
  | "ConnectionLost"
  | "TooManyConnections"
  | "ListenFailed"

export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: TransportErrorReason
  readonly address: string
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return `${this.reason} (${this.address})${this.detail === undefined ? "" : `: ${this.detail}`}`
  }

  /**
   * Dial failures and a full server are worth retrying later; a TLS or preamble mismatch, or a
   * port that cannot be listened on, is not.
   */
  get isRetryable(): boolean {
    return this.reason === "DialFailed" || this.reason === "DialTimeout" || this.reason === "ConnectionLost" ||
      this.reason === "TooManyConnections"
  }
}
