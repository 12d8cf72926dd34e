/** The yamux session's flow control (windows, write buffer) and its limits (streams, backlog, ids). */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import {
  flagACK,
  flagRST,
  flagSYN,
  goAwayProtoErr,
  typeData,
  typeGoAway,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"
import { flush, pattern, poll, sessionPair, until, withRawPeer } from "./harness.ts"
import { echoServer, failureOf, frame, KiB, MiB, noKeepAlive, roundTrip } from "./sessionFixtures.ts"

describe("Session", () => {
  describe("flow control", () => {
    it.effect("stops a writer at the 256 KiB window until the reader reads", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const local = yield* client.open
        const remote = yield* server.accept
        const payload = pattern(256 * KiB + 100 * KiB, 9)
        const writer = yield* Effect.forkChild(local.write(payload))
        yield* until("the window fills", () => remote.bufferedBytes === 256 * KiB)
        yield* flush(30)
        assert.strictEqual(remote.bufferedBytes, 256 * KiB, "nothing beyond the window arrives")
        assert.isUndefined(poll(writer), "the writer waits for a window update")
        const parts: Array<Uint8Array> = []
        let total = 0
        while (total < payload.length) {
          const chunk = (yield* remote.read)!
          parts.push(chunk)
          total += chunk.length
        }
        yield* Fiber.join(writer)
        assert.isTrue(Buffer.concat(parts).equals(payload))
      }))

    it.effect("closes the session with ProtocolError and sends GoAway(1) when the peer overruns the window", () =>
      Effect.gen(function*() {
        const { session, peer, socket } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typeWindowUpdate, flagSYN, 1, 0), frame(typeData, 0, 1, Buffer.alloc(256 * KiB, 1)))
        yield* until("the stream is queued", () => session.numStreams === 1)
        const stream = yield* session.accept
        peer.send(frame(typeData, 0, 1, Buffer.alloc(1, 2)))
        yield* until("the session closes", () => session.isClosed)
        const error = yield* session.closed
        assert.strictEqual(error.reason, "ProtocolError")
        assert.strictEqual(error.detail, "stream 1 exceeded its receive window")
        assert.isFalse(error.isRetryable)
        yield* until("the peer sees the close", () => peer.closed)
        assert.deepStrictEqual(
          peer.where((f) => f.type === typeGoAway).map((f) => f.length),
          [goAwayProtoErr]
        )
        assert.isTrue(socket.destroyed)
        // What arrived within the window is still readable; then the session's error.
        assert.isAbove((yield* stream.read)!.length, 0)
      }))

    it.effect("does not grant again the part of a frame that is still in flight when the stream is accepted", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        const whole = frame(typeData, flagSYN, 1, Buffer.alloc(256 * KiB, 1))
        peer.send(whole.subarray(0, 12 + 100 * KiB))
        yield* until("the first part is buffered", () => session.numStreams === 1)
        const stream = yield* session.accept
        yield* until("the first part is buffered", () => stream.bufferedBytes === 100 * KiB)
        yield* until("the ACK", () => peer.windowUpdates(1).length === 1)
        // Nothing was read and the whole window is spoken for: the ACK grants nothing.
        assert.deepStrictEqual(peer.windowUpdates(1).map((f) => [f.flags, f.length]), [[flagACK, 0]])
        peer.send(whole.subarray(12 + 100 * KiB))
        yield* until("the rest is buffered", () => stream.bufferedBytes === 256 * KiB)
        // So one more byte is an overrun.
        peer.send(frame(typeData, 0, 1, Buffer.alloc(1)))
        yield* until("the session closes", () => session.isClosed)
        assert.strictEqual((yield* session.closed).detail, "stream 1 exceeded its receive window")
      }))

    it.effect("carries a 16 MiB write under 16 MiB windows without tripping the write-buffer limit", () =>
      Effect.gen(function*() {
        const options = { ...noKeepAlive, maxStreamWindowSize: 16 * MiB, maxWriteBuffer: 64 * KiB }
        const { client, server } = yield* sessionPair(options, options)
        yield* Effect.forkChild(echoServer(server))
        const payload = pattern(16 * MiB, 5)
        const back = yield* roundTrip(client, payload)
        assert.isFalse(client.isClosed)
        assert.isFalse(server.isClosed)
        assert.strictEqual(back.length, payload.length)
        assert.isTrue(back.equals(payload))
      }))

    it.effect("fails a write with WriteTimeout when the transport does not drain for 10 s", () =>
      Effect.gen(function*() {
        const { session, peer, socket } = yield* withRawPeer({ role: "client", maxWriteBuffer: 64 * KiB, ...noKeepAlive })
        const stream = yield* session.open
        // A peer that grants a huge window and then stops reading its socket.
        peer.send(frame(typeWindowUpdate, flagACK, 1, 0x7fffffff))
        yield* peer.sync
        peer.socket.pause()
        const writer = yield* Effect.forkChild(stream.write(Buffer.alloc(64 * MiB)))
        yield* until("the socket backs up", () => socket.writableLength > 64 * KiB, 2000)
        yield* flush(50)
        assert.isUndefined(poll(writer), "the writer waits for the socket to drain")
        yield* TestClock.adjust("9999 millis")
        yield* flush()
        assert.isUndefined(poll(writer))
        yield* TestClock.adjust("1 millis")
        const error = yield* failureOf(writer)
        assert.strictEqual(error.reason, "WriteTimeout")
        assert.strictEqual(error.detail, "transport did not drain")
        assert.isTrue(error.isSessionFatal)
      }))

    it.effect("grants more window after the reader consumes half of it", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typeWindowUpdate, flagSYN, 1, 0), frame(typeData, 0, 1, Buffer.alloc(200 * KiB, 1)))
        const stream = yield* session.accept
        yield* until("the data is buffered", () => stream.bufferedBytes === 200 * KiB)
        yield* until("the ACK arrives", () => peer.windowUpdates(1).length === 1)
        assert.deepStrictEqual(peer.windowUpdates(1).map((f) => [f.flags, f.length]), [[flagACK, 0]])
        let read = 0
        while (read < 200 * KiB) read += (yield* stream.read)!.length
        yield* until("a window update follows", () => peer.windowUpdates(1).length >= 2)
        yield* flush()
        const grants = peer.windowUpdates(1).slice(1)
        // Go's rule: a grant goes out once at least half the window was consumed, and never
        // more than was consumed.
        for (const grant of grants) {
          assert.strictEqual(grant.flags, 0)
          assert.isAtLeast(grant.length, 128 * KiB)
        }
        const granted = grants.reduce((n, g) => n + g.length, 0)
        assert.isAtMost(granted, 200 * KiB)
        assert.isBelow(200 * KiB - granted, 128 * KiB)
      }))
  })

  describe("limits", () => {
    it.effect("resets SYNs beyond the 256-stream accept backlog and takes new ones once accepted", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        const syns = Array.from({ length: 257 }, (_, i) => frame(typeWindowUpdate, flagSYN, 1 + 2 * i, 0))
        peer.send(...syns)
        yield* until("the 257th SYN is reset", () => peer.frames.length === 1)
        assert.deepStrictEqual(peer.frames.map((f) => [f.flags, f.streamId]), [[flagRST, 513]])
        assert.strictEqual(session.numStreams, 256)
        const first = yield* session.accept
        assert.strictEqual(first.id, 1)
        peer.send(frame(typeWindowUpdate, flagSYN, 515, 0))
        yield* until("the ACK for stream 1", () => peer.frames.length === 2)
        yield* peer.sync
        assert.deepStrictEqual(peer.frames.map((f) => [f.flags, f.streamId]), [[flagRST, 513], [flagACK, 1]])
        assert.strictEqual(session.numStreams, 257)
      }))

    it.effect("honours a configured acceptBacklog", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", acceptBacklog: 2, ...noKeepAlive })
        peer.send(...[1, 3, 5, 7].map((id) => frame(typeWindowUpdate, flagSYN, id, 0)))
        yield* until("two RSTs", () => peer.frames.length === 2)
        assert.deepStrictEqual(peer.frames.map((f) => [f.flags, f.streamId]), [[flagRST, 5], [flagRST, 7]])
        assert.strictEqual(session.numStreams, 2)
      }))

    it.effect("makes open wait while acceptBacklog SYNs are un-ACKed and resumes on ACK or reset", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", acceptBacklog: 2, ...noKeepAlive })
        const a = yield* session.open
        const b = yield* session.open
        const third = yield* Effect.forkChild(session.open)
        yield* flush(20)
        assert.isUndefined(poll(third))
        assert.deepStrictEqual(peer.frames.map((f) => f.streamId), [1, 3])
        peer.send(frame(typeWindowUpdate, flagACK, a.id, 0))
        const c = yield* Fiber.join(third)
        assert.strictEqual(c.id, 5)
        const fourth = yield* Effect.forkChild(session.open)
        yield* flush(20)
        assert.isUndefined(poll(fourth))
        // A reset stream gives its slot back too.
        yield* b.reset
        const d = yield* Fiber.join(fourth)
        assert.strictEqual(d.id, 7)
        yield* until("all SYNs arrive", () => peer.where((f) => f.flags === flagSYN).length === 4)
        assert.deepStrictEqual(peer.where((f) => f.flags === flagSYN).map((f) => f.streamId), [1, 3, 5, 7])
      }))

    it.effect("with acceptInbound false, answers every inbound SYN with RST and holds none of its data", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", acceptInbound: false, ...noKeepAlive })
        // A hostile server opens 8 streams and fills each one's 256 KiB window.
        for (let id = 2; id <= 16; id += 2) {
          peer.send(frame(typeWindowUpdate, flagSYN, id, 0), frame(typeData, 0, id, pattern(256 * KiB, id)))
        }
        yield* peer.sync
        const resets = peer.where((f) => (f.flags & flagRST) !== 0)
        assert.deepStrictEqual(resets.map((f) => [f.type, f.streamId]), [2, 4, 6, 8, 10, 12, 14, 16].map((id) => [typeWindowUpdate, id]))
        assert.strictEqual(session.numStreams, 0)
        assert.strictEqual(session.refusedInbound, 8)
        // Our own streams still work on the session.
        assert.isFalse(session.isClosed)
        const ours = yield* session.open
        assert.strictEqual(ours.id, 1)
      }))

    it.effect("fails open with TooManyStreams at maxStreams and resets inbound SYNs beyond it", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", maxStreams: 2, ...noKeepAlive })
        yield* session.open
        yield* session.open
        const error = yield* Effect.flip(session.open)
        assert.strictEqual(error.reason, "TooManyStreams")
        assert.isFalse(error.isSessionFatal)
        peer.send(frame(typeWindowUpdate, flagSYN, 2, 0))
        yield* until("the RST", () => peer.where((f) => (f.flags & flagRST) !== 0).length === 1)
        assert.strictEqual(peer.where((f) => (f.flags & flagRST) !== 0)[0]!.streamId, 2)
      }))

    it.effect("fails open with StreamsExhausted once the 32-bit id space is used up, and keeps the session", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", firstStreamId: 0xfffffffd, ...noKeepAlive })
        const last = yield* session.open
        assert.strictEqual(last.id, 4294967293)
        const error = yield* Effect.flip(session.open)
        assert.strictEqual(error.reason, "StreamsExhausted")
        assert.isFalse(error.isSessionFatal)
        assert.isTrue(error.isRetryable)
        peer.send(frame(typeWindowUpdate, flagACK, last.id, 0))
        yield* last.write(Buffer.from("still works"))
        yield* until("the data arrives", () => peer.frames.length === 2)
        assert.deepStrictEqual(peer.frames.map((f) => [f.type, f.flags, f.streamId]), [
          [typeWindowUpdate, flagSYN, 4294967293],
          [typeData, 0, 4294967293]
        ])
        assert.strictEqual(peer.frames[1]!.data.toString(), "still works")
        assert.isFalse(session.isClosed)
        const server = yield* withRawPeer({ role: "server", firstStreamId: 0xfffffffc, ...noKeepAlive })
        assert.strictEqual((yield* server.session.open).id, 4294967292)
        assert.strictEqual((yield* Effect.flip(server.session.open)).reason, "StreamsExhausted")
      }))
  })
})
