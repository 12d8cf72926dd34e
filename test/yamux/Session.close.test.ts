/** The yamux session's end: GoAway either way, and closing it locally. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { MuxError } from "../../src/mux/MuxError.ts"
import { flagRST, flagSYN, goAwayNormal, typeData, typeGoAway, typeWindowUpdate } from "../../src/yamux/Frame.ts"
import { flush, poll, sessionPair, until, withRawPeer } from "./harness.ts"
import { failureOf, frame, KiB, noKeepAlive } from "./sessionFixtures.ts"

describe("Session", () => {
  describe("GoAway", () => {
    it.effect("refuses new streams after the peer's GoAway while existing streams keep working", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const local = yield* client.open
        const remote = yield* server.accept
        yield* server.goAway
        yield* server.goAway
        // Frames are handled in order: once this arrives, so has the GoAway before it.
        yield* remote.write(Buffer.from("after"))
        assert.strictEqual(Buffer.from((yield* local.read)!).toString(), "after")
        const error = yield* Effect.flip(client.open)
        assert.strictEqual(error.reason, "RemoteGoAway")
        assert.isFalse(error.isSessionFatal)
        assert.isTrue(error.isRetryable)
        yield* local.write(Buffer.from("still"))
        assert.strictEqual(Buffer.from((yield* remote.read)!).toString(), "still")
        yield* remote.write(Buffer.from("here"))
        assert.strictEqual(Buffer.from((yield* local.read)!).toString(), "here")
        // GoAway only limits what the peer may open: the side that sent it can still open.
        const outbound = yield* server.open
        const inbound = yield* client.accept
        assert.strictEqual(inbound.id, outbound.id)
        assert.isFalse(client.isClosed)
        assert.isFalse(server.isClosed)
      }))

    it.effect("sends GoAway(0) and answers every later SYN with RST after a local goAway", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        yield* session.goAway
        yield* until("GoAway arrives", () => peer.frames.length === 1)
        assert.deepStrictEqual(peer.frames[0], {
          type: typeGoAway,
          flags: 0,
          streamId: 0,
          length: goAwayNormal,
          data: Buffer.alloc(0)
        })
        const acceptor = yield* Effect.forkChild(session.accept)
        peer.send(frame(typeWindowUpdate, flagSYN, 1, 0), frame(typeData, flagSYN, 3, Buffer.from("hi")))
        yield* until("both SYNs are reset", () => peer.where((f) => (f.flags & flagRST) !== 0).length === 2)
        assert.deepStrictEqual(
          peer.where((f) => (f.flags & flagRST) !== 0).map((f) => [f.type, f.streamId]),
          [[typeWindowUpdate, 1], [typeWindowUpdate, 3]]
        )
        yield* flush()
        assert.isUndefined(poll(acceptor))
        assert.strictEqual(session.numStreams, 0)
        assert.isFalse(session.isClosed)
      }))
  })

  describe("local close", () => {
    it.effect("fails parked accept, read and write and later opens with SessionShutdown", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const stream = yield* client.open
        const acceptor = yield* Effect.forkChild(client.accept)
        const reader = yield* Effect.forkChild(stream.read)
        const writer = yield* Effect.forkChild(stream.write(Buffer.alloc(300 * KiB)))
        yield* flush()
        assert.isUndefined(poll(acceptor))
        assert.isUndefined(poll(reader))
        assert.isUndefined(poll(writer))
        yield* client.close
        yield* client.close
        for (const fiber of [acceptor, reader, writer] as const) {
          const error = yield* failureOf(fiber as Fiber.Fiber<unknown, MuxError>)
          assert.strictEqual(error.reason, "SessionShutdown")
          assert.strictEqual(error.detail, "closed locally")
        }
        assert.strictEqual((yield* Effect.flip(client.open)).reason, "SessionShutdown")
        assert.strictEqual((yield* Effect.flip(client.ping)).reason, "SessionShutdown")
        assert.isTrue(client.isClosed)
        assert.strictEqual(client.numStreams, 0)
        // The peer sees the transport go.
        const peerError = yield* server.closed
        assert.strictEqual(peerError.reason, "ConnectionLost")
      }))
    it.effect("leaves a stream closed after its session closed alone, with no close timer behind", () =>
      Effect.gen(function*() {
        const { client } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const stream = yield* client.open
        yield* client.close
        yield* stream.close
        yield* TestClock.adjust("10 minutes")
        yield* flush()
        // A close timer would have reset the stream; it must still report the session's end.
        const error = yield* Effect.flip(stream.read)
        assert.strictEqual(error.reason, "SessionShutdown")
      }))
  })
})
