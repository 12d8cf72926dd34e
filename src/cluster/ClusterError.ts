/**
 * The one error a cluster call fails with: the reason of its last attempt
 * (an `RpcErrorReason`), or `NoServers`, with every attempt listed.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { RpcError, RpcErrorReason } from "../rpc/RpcError.ts"

/**
 * - `NoServers`: the list is empty, or no server in it could be reached
 *   during the call (every attempt failed before sending, and every server
 *   was tried).
 * - `InvalidOption`: the cluster's options were refused at construction.
 * - any `RpcErrorReason`: the last attempt's failure (see `RpcError`).
 */
export type ClusterErrorReason = RpcErrorReason | "NoServers" | "InvalidOption"

/** One attempt of a call. */
export interface Attempt {
  /** The server, `host:port`. */
  readonly server: string
  readonly reason: RpcErrorReason
  /** The server's message, or what failed. */
  readonly detail: string
  /** Whether the request may have reached the server. */
  readonly sent: boolean
  /** Milliseconds from the call's start to this attempt's failure, on the Clock. */
  readonly at: number
}

export class ClusterError extends Data.TaggedError("ClusterError")<{
  readonly reason: ClusterErrorReason
  /** The server of the last attempt; empty when there was none. */
  readonly address: string
  /** The RPC method; empty for option errors. */
  readonly method: string
  /** Every attempt, in order; empty for `NoServers` on an empty list and for option errors. */
  readonly attempts: ReadonlyArray<Attempt>
  /**
   * The call stopped because its hold timeout ran out, not because its last
   * failure was unsafe to retry: running it again later is safe.
   */
  readonly exhausted: boolean
  readonly detail?: string | undefined
  /** The last attempt's `RpcError`. */
  readonly cause?: RpcError | undefined
}> {
  /** Whether any attempt may have reached a server. */
  get sent(): boolean {
    return this.attempts.some((a) => a.sent)
  }

  /**
   * True when running the call again is safe: no server could be reached, or
   * every failure was one the cluster retries (nothing sent, no leader, retry
   * elsewhere, or a lost connection on a call marked idempotent) and only the
   * hold timeout stopped it.
   */
  get isRetryable(): boolean {
    return this.reason === "NoServers" || this.exhausted
  }

  override get message(): string {
    const what = this.method === "" ? "cluster" : `${this.method}${this.address === "" ? "" : ` on ${this.address}`}`
    // As RpcError words it: a server's own error reads as that server's message.
    const head = this.reason === "RemoteError"
      ? `${what}: ${this.detail ?? "remote error"}`
      : `${this.reason} (${what})${this.detail === undefined ? "" : `: ${this.detail}`}`
    if (this.attempts.length === 0) return head
    const attempts = this.attempts.map((a) => `${a.server} ${a.reason} at ${Math.round(a.at)} ms`).join("; ")
    return `${head} (${this.attempts.length} attempt${this.attempts.length === 1 ? "" : "s"}: ${attempts})`
  }
}
