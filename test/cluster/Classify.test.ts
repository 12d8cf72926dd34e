/**
 * The retry table of docs/cluster.md, row by row.
 */
import { assert, describe, it } from "@effect/vitest"
import { classify } from "../../src/cluster/Classify.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import type { RpcErrorReason } from "../../src/rpc/RpcError.ts"
import { TransportError } from "../../src/wire/TransportError.ts"

const error = (reason: RpcErrorReason, sent: boolean, detail?: string, cause?: unknown) =>
  new RpcError({ reason, address: "a:1", method: "KVS.Get", sent, detail, cause })

const remote = (text: string) => error("RemoteError", true, text)

/** [what, error, retried when not idempotent, retried when idempotent, rotated] */
const table: ReadonlyArray<readonly [string, RpcError, boolean, boolean, boolean]> = [
  ["refused dial", error("DialFailed", false, "ECONNREFUSED"), true, true, true],
  ["dial timeout", error("DialTimeout", false), true, true, true],
  ["stream refused (GoAway)", error("StreamOpenFailed", false), true, true, true],
  ["too many pending", error("TooManyPending", false), true, true, true],
  ["connection lost before sending", error("ConnectionLost", false), true, true, true],
  ["stream reset before sending", error("StreamReset", false), true, true, true],
  ["No cluster leader", remote("No cluster leader"), true, true, true],
  ["No cluster leader, wrapped", remote("rpc error: No cluster leader"), true, true, true],
  ["rate limit, try a different server", remote("rate limit exceeded, try a different server"), true, true, true],
  [
    "rate limit, try again later or elsewhere",
    remote("rate limit exceeded, try again later or against a different server"),
    true,
    true,
    true
  ],
  ["rechunking", remote("please resubmit call for rechunking"), true, true, true],
  ["connection lost after sending", error("ConnectionLost", true), false, true, true],
  ["stream reset after sending", error("StreamReset", true), false, true, true],
  ["the server's own forward hit EOF", remote("rpc error making call: EOF"), false, true, true],
  ["the server's yamux session shut down", remote("yamux: session shutdown"), false, true, true],
  ["call timeout", error("CallTimeout", true), false, false, true],
  ["protocol error", error("ProtocolError", true), false, false, true],
  [
    "TLS refused",
    error("DialFailed", false, "tls", new TransportError({ reason: "TlsFailed", address: "a:1" })),
    false,
    false,
    true
  ],
  ["application error", remote("Permission denied"), false, false, false],
  ["rate limit, try later (leader only)", remote("rate limit exceeded, try again later"), false, false, false],
  ["reply too large", error("MessageTooLarge", true), false, false, false],
  ["reply mismatch", error("ReplyMismatch", true), false, false, false],
  ["pool closed", error("PoolClosed", false), false, false, false],
  ["a call option the pool refused", error("InvalidOption", false, "timeout: expected a duration >= 0"), false, false, false]
]

describe("classify", () => {
  for (const [what, e, plain, idempotent, rotate] of table) {
    it(`${what}: ${plain ? "retried" : idempotent ? "retried only when idempotent" : "not retried"}, ${rotate ? "rotated" : "not rotated"}`, () => {
      assert.deepStrictEqual(classify(e, false), { retry: plain, rotate })
      assert.deepStrictEqual(classify(e, true), { retry: idempotent, rotate })
    })
  }
})
