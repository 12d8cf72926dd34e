/**
 * The yamux session against bad peers (garbage, a frame that breaks the protocol, pings whose
 * replies are never read): each closes the session with a typed reason, failing pending calls.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import {
  encodeHeader,
  flagFIN,
  flagSYN,
  goAwayProtoErr,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"
import { flush, poll, RawPeer, until, withRawPeer } from "./harness.ts"
import { failureOf, frame, KiB, noKeepAlive } from "./sessionFixtures.ts"

describe("Session", () => {
  describe("bad peers", () => {
    const cases: ReadonlyArray<{
      readonly name: string
      readonly reason: string
      readonly detail: string
      readonly goAway: boolean
      readonly act: (peer: RawPeer) => Effect.Effect<void>
    }> = [
      {
        name: "garbage bytes",
        reason: "ProtocolError",
        detail: "invalid protocol version 71",
        goAway: true,
        act: (peer) => Effect.sync(() => peer.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")))
      },
      {
        name: "a wrong version",
        reason: "ProtocolError",
        detail: "invalid protocol version 1",
        goAway: true,
        act: (peer) => Effect.sync(() => peer.send(Uint8Array.of(1, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0)))
      },
      {
        name: "an unknown message type",
        reason: "ProtocolError",
        detail: "invalid message type 5",
        goAway: true,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(5, 0, 0, 0)))
      },
      {
        name: "a 4 GiB data frame",
        reason: "ProtocolError",
        detail: "data frame of 4294967295 bytes exceeds the 262144-byte window",
        goAway: true,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(typeData, 0, 1, 0xffffffff)))
      },
      {
        name: "a GoAway with an unknown code",
        reason: "ProtocolError",
        detail: "peer sent GoAway with unknown code 9",
        goAway: false,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(typeGoAway, 0, 0, 9)))
      },
      {
        name: "a GoAway for a protocol error",
        reason: "ProtocolError",
        detail: "peer sent GoAway: protocol error",
        goAway: false,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(typeGoAway, 0, 0, goAwayProtoErr)))
      },
      {
        name: "a GoAway for an internal error",
        reason: "SessionShutdown",
        detail: "peer sent GoAway: internal error",
        goAway: false,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(typeGoAway, 0, 0, 2)))
      },
      {
        name: "a duplicate SYN",
        reason: "ProtocolError",
        detail: "duplicate stream 1",
        goAway: true,
        act: (peer) => Effect.sync(() => peer.send(encodeHeader(typeWindowUpdate, flagSYN, 1, 0)))
      },
      {
        name: "a hang-up in the middle of a frame",
        reason: "ConnectionLost",
        detail: "EOF",
        goAway: false,
        act: (peer) =>
          Effect.sync(() => {
            peer.send(encodeHeader(typeData, 0, 1, 100).subarray(0, 6))
            peer.socket.end()
          })
      },
      {
        name: "a connection reset",
        reason: "ConnectionLost",
        detail: "read ECONNRESET",
        goAway: false,
        act: (peer) =>
          Effect.gen(function*() {
            // Half a frame for a stream nobody knows, then a RST instead of the rest.
            peer.send(encodeHeader(typeData, 0, 99, 100), Buffer.alloc(10))
            yield* flush()
            peer.socket.resetAndDestroy()
          })
      },
      {
        name: "silence (the keepalive catches it)",
        reason: "KeepAliveTimeout",
        detail: "ping 0 unanswered",
        goAway: false,
        act: (peer) =>
          Effect.gen(function*() {
            yield* TestClock.adjust("30 seconds")
            yield* until("the ping", () => peer.pings().length === 1)
            yield* TestClock.adjust("10 seconds")
          })
      }
    ]

    it.effect("closes the session with WriteTimeout when a peer floods pings but never reads the replies", () =>
      Effect.gen(function*() {
        const { session, peer, socket } = yield* withRawPeer({ role: "server", maxWriteBuffer: 64 * KiB, ...noKeepAlive })
        peer.socket.pause()
        const batch = Buffer.concat(Array.from({ length: 65536 }, (_, i) => encodeHeader(typePing, flagSYN, 0, i)))
        for (let i = 0; i < 96 && !session.isClosed; i++) {
          peer.send(batch)
          yield* flush(4)
        }
        yield* until("the session gives up", () => session.isClosed)
        const error = yield* session.closed
        assert.strictEqual(error.reason, "WriteTimeout")
        assert.strictEqual(error.detail, "peer is not reading")
        assert.isTrue(socket.destroyed)
      }))

    it.effect("closes the session with ProtocolError on a FIN in a state that allows none", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typeWindowUpdate, flagSYN | flagFIN, 3, 0), frame(typeWindowUpdate, flagFIN, 3, 0))
        const error = yield* session.closed
        assert.strictEqual(error.reason, "ProtocolError")
        assert.strictEqual(error.detail, "unexpected flags 4 on stream 3")
        yield* until("the peer sees the close", () => peer.closed)
        assert.deepStrictEqual(peer.where((f) => f.type === typeGoAway).map((f) => f.length), [goAwayProtoErr])
      }))

    for (const c of cases) {
      it.effect(`closes the session with ${c.reason} on ${c.name}, failing pending calls and destroying the socket`, () =>
        Effect.gen(function*() {
          const keepAlive = c.reason === "KeepAliveTimeout"
          const { session, peer, socket } = yield* withRawPeer({ role: "server", enableKeepAlive: keepAlive })
          peer.send(frame(typeWindowUpdate, flagSYN, 1, 0))
          const stream = yield* session.accept
          const reader = yield* Effect.forkChild(stream.read)
          const acceptor = yield* Effect.forkChild(session.accept)
          yield* flush()
          assert.isUndefined(poll(reader))
          yield* c.act(peer)
          const error = yield* session.closed
          assert.strictEqual(error._tag, "MuxError")
          assert.strictEqual(error.reason, c.reason)
          assert.strictEqual(error.detail, c.detail)
          assert.isTrue(error.isSessionFatal)
          assert.strictEqual(error.address, session.address)
          assert.strictEqual(error.message, `yamux ${c.reason} (${session.address}): ${c.detail}`)
          assert.strictEqual(yield* failureOf(reader), error)
          assert.strictEqual(yield* failureOf(acceptor), error)
          assert.strictEqual(yield* Effect.flip(session.open), error)
          assert.strictEqual(yield* Effect.flip(stream.write(Buffer.from("x"))), error)
          assert.isTrue(session.isClosed)
          assert.isTrue(socket.destroyed)
          yield* until("the peer sees the close", () => peer.closed)
          const goAways = peer.where((f) => f.type === typeGoAway).map((f) => f.length)
          assert.deepStrictEqual(goAways, c.goAway ? [goAwayProtoErr] : [])
        }))
    }
  })
})
