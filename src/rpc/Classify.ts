/**
 * How a failure from a layer below becomes the one error `rpc` fails with:
 * which `RpcErrorReason` it is, and whether the request may have been sent.
 *
 * @since 0.1.0
 */
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { RemoteError } from "../msgpackrpc/RemoteError.ts"
import type { CallError } from "../msgpackrpc/StreamClient.ts"
import type { MuxError } from "../mux/MuxError.ts"
import { TransportError } from "../wire/TransportError.ts"
import { RpcError } from "./RpcError.ts"
import type { RpcErrorReason } from "./RpcError.ts"

/** Session states in which no new stream can be opened, though the session may carry on. */
const streamOpenReasons: ReadonlySet<string> = new Set([
  "RemoteGoAway",
  "LocalGoAway",
  "StreamsExhausted",
  "TooManyStreams"
])

const muxReason = (error: MuxError): RpcErrorReason => {
  if (error.reason === "ProtocolError") return "ProtocolError"
  if (error.reason === "StreamReset" || error.reason === "StreamClosed") return "StreamReset"
  if (streamOpenReasons.has(error.reason)) return "StreamOpenFailed"
  return "ConnectionLost"
}

/**
 * The `RpcError` for a failure of the call of `method` on `address`; `sent`
 * says whether the request had been written in full.
 */
export const toRpcError = (
  error: CallError | TransportError | RpcError,
  address: string,
  method: string,
  sent: boolean
): RpcError => {
  if (error instanceof RpcError) return error
  if (error instanceof RemoteError) {
    return new RpcError({ reason: "RemoteError", address, method, sent: true, detail: error.message })
  }
  if (error instanceof TransportError) {
    return new RpcError({
      reason: error.reason === "DialTimeout" ? "DialTimeout" : "DialFailed",
      address,
      method,
      sent: false,
      detail: error.detail ?? error.reason,
      cause: error
    })
  }
  if (error instanceof CodecError) {
    // After the request went out, TooLarge is the reply decoder's maxMessageBytes (or buffering) limit:
    // the reply is well-formed, just too big. Before, it is the encoder refusing the args.
    const reason = sent && error.reason === "TooLarge" ? "MessageTooLarge" : "ProtocolError"
    return new RpcError({ reason, address, method, sent, detail: error.message, cause: error })
  }
  return new RpcError({
    reason: muxReason(error),
    address,
    method,
    sent,
    detail: error.detail ?? error.reason,
    cause: error
  })
}

/** The pool is shut down: nothing was or will be sent. */
export const poolClosed = (address: string, method: string): RpcError =>
  new RpcError({ reason: "PoolClosed", address, method, sent: false })

/** `maxPendingCalls` callers already wait for `address`. */
export const tooManyPending = (address: string, pending: number, limit: number): RpcError =>
  new RpcError({
    reason: "TooManyPending",
    address,
    method: "",
    sent: false,
    detail: `${pending} callers already wait (maxPendingCalls ${limit})`
  })

/** A stream could not be opened even on a fresh session. */
export const streamOpenFailed = (address: string, method: string, detail: string, cause: unknown): RpcError =>
  new RpcError({ reason: "StreamOpenFailed", address, method, sent: false, detail, cause })
