/**
 * Fault: a bad peer. The server takes the preamble, then answers the client's first stream
 * with garbage, a wrong yamux version, a 4 GiB frame length, invalid msgpack, a stream RST, a
 * refusal (RST before ACK, to every stream), a TCP RST, a hang-up, or silence.
 *
 * Promise: the call fails with a typed RpcError naming the reason, the address and the method;
 * a session whose byte stream is broken is closed and dropped from the pool (a broken stream
 * costs only that stream; a refused one is retried once and is retryable, as nothing was sent);
 * and the CLI prints exactly one line and exits 2, no stack trace.
 * The session-level cases (every violation, GoAway codes, duplicate SYNs) are in
 * test/yamux/Session.badPeers.test.ts, the decoder's limits in test/msgpackrpc/Decoder.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { RpcErrorReason } from "../../src/rpc/RpcError.ts"
import { lines, runCli } from "../cli/helpers.ts"
import { badPeer, type BadPeerFault, flush, rpcErrorOf, until } from "./helpers.ts"

interface Case {
  readonly fault: BadPeerFault
  readonly name: string
  readonly reason: RpcErrorReason
  /** Expected in the error's message. */
  readonly says: string
  /** The session is closed at once (else only the call's stream is discarded). */
  readonly closesSession: boolean
}

const cases: ReadonlyArray<Case> = [
  { fault: "garbage", name: "garbage bytes", reason: "ProtocolError", says: "invalid protocol version 72", closesSession: true },
  { fault: "wrongVersion", name: "a wrong yamux version", reason: "ProtocolError", says: "invalid protocol version 1", closesSession: true },
  {
    fault: "hugeFrame",
    name: "a 4 GiB frame length",
    reason: "ProtocolError",
    says: "data frame of 4294967295 bytes exceeds the 262144-byte window",
    closesSession: true
  },
  { fault: "invalidMsgpack", name: "invalid msgpack", reason: "ProtocolError", says: "0xc1", closesSession: false },
  { fault: "streamReset", name: "a stream RST", reason: "StreamReset", says: "StreamReset", closesSession: false },
  {
    fault: "streamRefused",
    name: "a refused stream (RST before ACK)",
    reason: "StreamOpenFailed",
    says: "refused",
    closesSession: false
  },
  { fault: "tcpReset", name: "a TCP RST", reason: "ConnectionLost", says: "ConnectionLost", closesSession: true },
  { fault: "hangUp", name: "a hang-up", reason: "ConnectionLost", says: "EOF", closesSession: true },
  { fault: "silence", name: "silence", reason: "CallTimeout", says: "no reply within 5s", closesSession: false }
]

const sessions = (pool: RpcPool.RpcPool.Service) => Effect.runSync(pool.stats).sessions

describe("bad peers", () => {
  for (const c of cases) {
    const fate = c.fault === "silence"
      ? "keepalive closes the session 40 s in"
      : c.closesSession
      ? "the session closed and dropped"
      : "only the stream discarded"
    it.effect(`${c.name}: a typed ${c.reason}, ${fate}`, () =>
      Effect.gen(function*() {
        const peer = yield* badPeer(c.fault)
        const pool = yield* RpcPool.make({ callTimeout: "5 seconds" })
        const call = yield* Effect.forkChild(Effect.exit(pool.rpc(peer.address, "Status.Ping", {})))
        if (c.fault === "silence") {
          yield* until("the call to be in flight", () => Effect.runSync(pool.stats).streamsInUse === 1)
          yield* TestClock.adjust("5 seconds")
        }
        const error = rpcErrorOf(yield* Fiber.join(call))
        assert.strictEqual(error._tag, "RpcError")
        assert.strictEqual(error.reason, c.reason, error.message)
        assert.strictEqual(error.address, peer.address)
        assert.strictEqual(error.method, "Status.Ping")
        assert.include(error.message, c.says)
        if (c.reason === "ProtocolError") assert.isFalse(error.isRetryable, "a broken peer stays broken")
        if (c.fault === "streamRefused") {
          // Refused twice: the open and its one retry. The request reached no handler.
          assert.isFalse(error.sent)
          assert.isTrue(error.isRetryable)
          assert.deepStrictEqual(peer.syns(), [1, 3], "one open and one retry, on the same session")
          assert.deepStrictEqual(peer.resets(), [], "nothing to reset: the peer refused both streams")
        }
        assert.deepStrictEqual((yield* pool.stats).failures, { [c.reason]: 1 })

        if (c.closesSession) {
          yield* until("the pool to drop the session", () => sessions(pool) === 0)
          yield* until("the peer to see its connection closed", () => peer.open() === 0)
        } else {
          yield* flush()
          assert.strictEqual(sessions(pool), 1)
          assert.strictEqual((yield* pool.stats).streamsIdle, 0, "the failed stream is not reused")
          // The client resets the out-of-step stream; a stream the peer reset is gone already.
          if (c.fault !== "streamReset" && c.fault !== "streamRefused") {
            yield* until("the client to reset the stream", () => peer.resets().includes(1))
          }
        }
        if (c.fault === "silence") {
          // The peer answers no ping either: keepalive closes the session at 30 s + 10 s.
          yield* TestClock.adjust("25 seconds")
          yield* until("the keepalive ping", () => peer.pings() === 1)
          yield* TestClock.adjust("10 seconds")
          yield* until("the pool to drop the session", () => sessions(pool) === 0)
          yield* until("the peer to see its connection closed", () => peer.open() === 0)
        }
      }))
  }

  it.live("connpool call prints one line and exits 2 for every bad peer", () =>
    Effect.gen(function*() {
      const peers = yield* Effect.forEach(cases, (c) => badPeer(c.fault))
      const results = yield* Effect.forEach(
        peers,
        (peer) => runCli("call", peer.address, "Status.Ping", "--timeout", peer.fault === "silence" ? "500ms" : "5s"),
        { concurrency: 4 }
      )
      cases.forEach((c, i) => {
        const result = results[i]!
        const what = `${c.name}: ${JSON.stringify(result)}`
        assert.strictEqual(result.code, 2, what)
        assert.strictEqual(result.stdout, "", what)
        assert.lengthOf(lines(result.stderr), 1, what)
        assert.match(result.stderr, /^connpool: /, what)
        assert.include(result.stderr, c.reason, what)
        assert.notInclude(result.stderr, "    at ", what)
      })
    }))
})
