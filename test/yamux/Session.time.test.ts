/** The yamux session on the clock: keepalive, a wall clock that steps, the open and close timeouts. */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { flagACK, flagFIN, flagRST, flagSYN, typePing, typeWindowUpdate } from "../../src/yamux/Frame.ts"
import * as Session from "../../src/yamux/Session.ts"
import { flush, RawPeer, sessionPair, socketPair, until, withRawPeer } from "./harness.ts"
import { oneHour, onClock, steppedClock } from "./steppedClock.ts"
import { failureOf, frame, noKeepAlive } from "./sessionFixtures.ts"

describe("Session", () => {
  describe("keepalive", () => {
    it.effect("pings at 30 s intervals, survives answered pings, and closes 10 s after an unanswered one", () =>
      Effect.gen(function*() {
        const { session, peer, socket } = yield* withRawPeer({ role: "client" })
        peer.answerPings = true
        yield* flush()
        yield* TestClock.adjust("29999 millis")
        yield* flush(20)
        assert.strictEqual(peer.pings().length, 0, "no ping before 30 s")
        yield* TestClock.adjust("1 millis")
        yield* until("the first ping", () => peer.pings().length === 1)
        for (let n = 2; n <= 4; n++) {
          // The answer must be in before the clock moves on, or the ping would time out.
          yield* peer.sync
          yield* TestClock.adjust("30 seconds")
          yield* until(`ping ${n}`, () => peer.pings().length === n)
        }
        assert.deepStrictEqual(peer.pings().map((f) => [f.flags, f.streamId, f.length]), [
          [flagSYN, 0, 0],
          [flagSYN, 0, 1],
          [flagSYN, 0, 2],
          [flagSYN, 0, 3]
        ])
        assert.isFalse(session.isClosed)
        yield* peer.sync
        peer.answerPings = false
        yield* TestClock.adjust("30 seconds")
        yield* until("ping 5", () => peer.pings().length === 5)
        yield* TestClock.adjust("9999 millis")
        yield* flush(20)
        assert.isFalse(session.isClosed, "the ping may take up to 10 s")
        yield* TestClock.adjust("1 millis")
        const error = yield* session.closed
        assert.strictEqual(error.reason, "KeepAliveTimeout")
        assert.strictEqual(error.detail, "ping 4 unanswered")
        assert.isTrue(error.isSessionFatal)
        assert.isTrue(socket.destroyed)
        yield* until("the peer sees the close", () => peer.closed)
      }))

    it.effect("answers the peer's pings with ACK and the same id", () =>
      Effect.gen(function*() {
        const { peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typePing, flagSYN, 0, 0xfeedface), frame(typePing, flagSYN, 0, 7))
        yield* until("two pongs", () => peer.frames.length === 2)
        assert.deepStrictEqual(peer.frames.map((f) => [f.type, f.flags, f.streamId, f.length]), [
          [typePing, flagACK, 0, 0xfeedface],
          [typePing, flagACK, 0, 7]
        ])
      }))

    it.effect("times an explicit ping and fails it after 10 s unanswered without closing the session", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const rtt = yield* client.ping
        // The TestClock did not move while the ping crossed loopback.
        assert.strictEqual(Duration.toMillis(rtt), 0)
        const { session, peer } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        const ping = yield* Effect.forkChild(session.ping)
        yield* until("the ping is sent", () => peer.pings().length === 1)
        yield* TestClock.adjust("10 seconds")
        const error = yield* failureOf(ping)
        assert.strictEqual(error.reason, "KeepAliveTimeout")
        assert.isFalse(session.isClosed)
        assert.isFalse(server.isClosed)
      }))
  })

  describe("under a wall clock that steps", () => {
    it.effect("measures a ping's round trip on monotonic time when the wall clock steps back an hour mid-ping", () =>
      Effect.gen(function*() {
        const stepped = yield* steppedClock
        const { session, peer } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        const ping = yield* Effect.forkChild(onClock(stepped)(session.ping))
        yield* until("the ping is sent", () => peer.pings().length === 1)
        stepped.step(-oneHour)
        yield* TestClock.adjust("2 seconds")
        peer.send(frame(typePing, flagACK, 0, peer.pings()[0]!.length))
        const rtt = yield* Fiber.join(ping)
        assert.strictEqual(Duration.toMillis(rtt), 2000)
      }))

    it.effect("pings every 30 s and times out 10 s later, whichever way the wall clock steps", () =>
      Effect.gen(function*() {
        const stepped = yield* steppedClock
        const pair = yield* socketPair
        const peer = new RawPeer(pair.server)
        const session = yield* onClock(stepped)(Session.make(pair.client, { role: "client" }))
        peer.answerPings = true
        yield* flush()
        stepped.step(oneHour)
        yield* TestClock.adjust("29999 millis")
        yield* flush(20)
        assert.strictEqual(peer.pings().length, 0, "no ping before 30 s")
        yield* TestClock.adjust("1 millis")
        yield* until("the first ping", () => peer.pings().length === 1)
        yield* peer.sync
        peer.answerPings = false
        stepped.step(-2 * oneHour)
        yield* TestClock.adjust("30 seconds")
        yield* until("the second ping", () => peer.pings().length === 2)
        yield* TestClock.adjust("9999 millis")
        yield* flush(20)
        assert.isFalse(session.isClosed, "the ping may take up to 10 s")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* session.closed).reason, "KeepAliveTimeout")
      }))
  })

  describe("timeouts", () => {
    it.effect("closes the session with OpenTimeout when an opened stream is not ACKed within 75 s", () =>
      Effect.gen(function*() {
        const { session, peer, socket } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        const stream = yield* session.open
        const reader = yield* Effect.forkChild(stream.read)
        yield* until("the SYN arrives", () => peer.frames.length === 1)
        assert.deepStrictEqual(peer.frames.map((f) => [f.type, f.flags, f.streamId, f.length]), [
          [typeWindowUpdate, flagSYN, 1, 0]
        ])
        yield* TestClock.adjust("74999 millis")
        yield* flush()
        assert.isFalse(session.isClosed)
        yield* TestClock.adjust("1 millis")
        const error = yield* session.closed
        assert.strictEqual(error.reason, "OpenTimeout")
        assert.strictEqual(error.detail, "stream 1 was never acknowledged")
        assert.strictEqual((yield* failureOf(reader)).reason, "OpenTimeout")
        assert.isTrue(socket.destroyed)
      }))

    it.effect("does not time out a stream whose ACK arrived", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        yield* session.open
        yield* until("the SYN arrives", () => peer.frames.length === 1)
        peer.send(frame(typeWindowUpdate, flagACK, 1, 0))
        yield* peer.sync
        yield* TestClock.adjust("10 minutes")
        yield* flush()
        assert.isFalse(session.isClosed)
        assert.strictEqual(session.numStreams, 1)
      }))

    it.effect("resets a locally closed stream when the peer's FIN does not come within 5 minutes", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        const stream = yield* session.open
        peer.send(frame(typeWindowUpdate, flagACK, 1, 0))
        yield* peer.sync
        yield* stream.close
        yield* until("the FIN arrives", () => peer.frames.length === 2)
        assert.deepStrictEqual(peer.frames[1]!.flags, flagFIN)
        yield* TestClock.adjust("299999 millis")
        yield* flush()
        assert.strictEqual(peer.where((f) => (f.flags & flagRST) !== 0).length, 0)
        assert.strictEqual(session.numStreams, 1)
        yield* TestClock.adjust("1 millis")
        yield* until("the RST arrives", () => peer.frames.length === 3)
        assert.deepStrictEqual(peer.frames.map((f) => [f.type, f.flags, f.streamId]), [
          [typeWindowUpdate, flagSYN, 1],
          [typeWindowUpdate, flagFIN, 1],
          [typeWindowUpdate, flagRST, 1]
        ])
        assert.strictEqual(session.numStreams, 0)
        assert.strictEqual((yield* Effect.flip(stream.read)).reason, "StreamReset")
        assert.isFalse(session.isClosed)
      }))

    it.effect("does not reset a closed stream whose peer FIN arrived in time", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "client", ...noKeepAlive })
        const stream = yield* session.open
        peer.send(frame(typeWindowUpdate, flagACK, 1, 0))
        yield* peer.sync
        yield* stream.close
        yield* until("the FIN arrives", () => peer.frames.length === 2)
        peer.send(frame(typeWindowUpdate, flagFIN, 1, 0))
        yield* until("the stream is forgotten", () => session.numStreams === 0)
        yield* TestClock.adjust("10 minutes")
        yield* flush()
        assert.strictEqual(peer.frames.length, 2)
        assert.isUndefined(yield* stream.read)
      }))
  })
})
