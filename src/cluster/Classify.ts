/**
 * Which failed attempts the cluster retries on the next server, and which
 * ones say something about the server itself: Consul's `canRetry`
 * (`agent/consul/rpc.go`) and `lib.IsErrEOF` (`lib/eof.go`), Nomad's
 * `canRetry` (`client/rpc.go`), as one table (docs/cluster.md shows it).
 *
 * @since 0.1.0
 */
import type { RpcError } from "../rpc/RpcError.ts"

/** Consul's and Nomad's `structs.ErrNoLeader` text. */
export const noLeaderText = "No cluster leader"

/**
 * Remote error texts Consul retries on another server: `rate.ErrRetryElsewhere`
 * (its older and newer wording; the server refused before running the
 * handler) and `ErrChunkingResubmit`.
 */
export const retryElsewhereTexts: ReadonlyArray<string> = [
  "rate limit exceeded, try a different server",
  "rate limit exceeded, try again later or against a different server",
  "please resubmit call for rechunking"
]

/**
 * yamux's texts for a lost stream or session, which `lib.IsErrEOF` also
 * recognises inside a server's error (a server that lost its own forward to
 * the leader answers `...: EOF`).
 */
const eofTexts: ReadonlyArray<string> = ["stream closed", "session shutdown"]

export interface Verdict {
  /** Run the call again on the next server (within the hold timeout). */
  readonly retry: boolean
  /**
   * The failure is the server's, so it moves to the back of the list
   * (`notifyFailed`). An application error (a denied token, a missing key)
   * comes from a healthy server and leaves the order alone.
   */
  readonly rotate: boolean
}

const retryAndRotate: Verdict = { retry: true, rotate: true }
const rotateOnly: Verdict = { retry: false, rotate: true }
const neither: Verdict = { retry: false, rotate: false }

const isRemoteEof = (text: string): boolean =>
  text.endsWith(": EOF") || text === "EOF" || eofTexts.some((t) => text.includes(t))

/** What the cluster does after `error`; `idempotent` is the caller's promise that running the call twice is harmless. */
export const classify = (error: RpcError, idempotent: boolean): Verdict => {
  switch (error.reason) {
    case "RemoteError": {
      const text = error.detail ?? ""
      // Nothing changed on the server: it refused before running the handler.
      if (text.includes(noLeaderText) || retryElsewhereTexts.some((t) => text.includes(t))) return retryAndRotate
      // The server lost its own connection while forwarding: a read may run again.
      if (isRemoteEof(text)) return idempotent ? retryAndRotate : rotateOnly
      return neither
    }
    case "ConnectionLost":
    case "StreamReset":
      // Before sending, the server never saw the request; after, it may have run it.
      return !error.sent || idempotent ? retryAndRotate : rotateOnly
    case "ReplyMismatch":
    case "MessageTooLarge":
      // The server answered; the reply did not fit the caller's Schema or size limit.
      return neither
    case "PoolClosed":
    // The caller's own call options were refused: no server is to blame.
    case "InvalidOption":
      return neither
    default:
      // Dial failures, refused streams, a full queue: retryable when nothing was sent and
      // the failure is about the connection (not a TLS or preamble refusal, a protocol
      // error or a timeout).
      return error.isRetryable ? retryAndRotate : rotateOnly
  }
}
