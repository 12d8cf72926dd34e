import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { MuxError } from "../../src/mux/MuxError.ts"
import * as Listener from "../../src/wire/Listener.ts"
import * as Transport from "../../src/wire/Transport.ts"
import {
  encodeHeader,
  flagACK,
  flagFIN,
  flagRST,
  flagSYN,
  goAwayNormal,
  goAwayProtoErr,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"
import * as Session from "../../src/yamux/Session.ts"
import type { Stream } from "../../src/yamux/Stream.ts"
import {
  flush,
  memoryPair,
  memorySessionPair,
  pattern,
  poll,
  RawPeer,
  readAll,
  sessionPair,
  socketPair,
  until,
  withRawPeer
} from "./harness.ts"
import { oneHour, onClock, steppedClock } from "./steppedClock.ts"

const KiB = 1024
const MiB = 1024 * 1024
const frame = RawPeer.frame

/** Reads a stream to EOF and writes everything back, then half-closes. */
const echo = (stream: Stream): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      const chunk = yield* stream.read
      if (chunk === undefined) return yield* stream.close
      yield* stream.write(chunk)
    }
  }).pipe(Effect.ignore)

/** Accepts streams and echoes each one until the session closes. */
const echoServer = (session: Session.Session): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      const stream = yield* session.accept
      yield* Effect.forkChild(echo(stream))
    }
  }).pipe(Effect.ignore)

/** Sends `payload`, half-closes, and returns everything read back until EOF. */
const roundTrip = (session: Session.Session, payload: Uint8Array) =>
  Effect.gen(function*() {
    const stream = yield* session.open
    const writer = yield* Effect.forkChild(Effect.andThen(stream.write(payload), stream.close))
    const back = yield* readAll(stream)
    yield* Fiber.join(writer)
    return back
  })

const failureOf = <A>(fiber: Fiber.Fiber<A, MuxError>): Effect.Effect<MuxError, A> => Effect.flip(Fiber.join(fiber))

const noKeepAlive = { enableKeepAlive: false } as const

describe("Session", () => {
  describe("streams over loopback", () => {
    it.effect("echoes payloads of 0, 1, 64 KiB, 256 KiB, 256 KiB+1 and 4 MiB through Listener and Transport", () =>
      Effect.gen(function*() {
        const listening = yield* Listener.listen({}, ({ socket, remoteAddress }) =>
          Effect.gen(function*() {
            const session = yield* Session.make(socket, { role: "server", address: remoteAddress, ...noKeepAlive })
            yield* echoServer(session)
          }))
        const socket = yield* Transport.dial({ host: listening.host, port: listening.port })
        const client = yield* Session.make(socket, { role: "client", ...noKeepAlive })
        assert.strictEqual(client.address, listening.address)
        for (const size of [0, 1, 64 * KiB, 256 * KiB, 256 * KiB + 1, 4 * MiB]) {
          const payload = pattern(size, size + 1)
          const back = yield* roundTrip(client, payload)
          assert.strictEqual(back.length, size, `size ${size}`)
          assert.isTrue(back.equals(payload), `size ${size} came back different`)
        }
        yield* until("client streams are all closed", () => client.numStreams === 0)
        assert.isFalse(client.isClosed)
      }))

    it.effect("carries 300 concurrent streams on one session without mixing their bytes", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        yield* Effect.forkChild(echoServer(server))
        const results = yield* Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) =>
            Effect.map(roundTrip(client, pattern(1000 + i * 37, i + 1)), (back) => back.equals(pattern(1000 + i * 37, i + 1))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter((ok) => ok).length, 300)
        yield* until("both sides forget the streams", () => client.numStreams === 0 && server.numStreams === 0)
      }))

    it.effect("allocates odd ids on the client and even ids on the server", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const a = yield* client.open
        const b = yield* client.open
        const c = yield* server.open
        const d = yield* server.open
        assert.deepStrictEqual([a.id, b.id, c.id, d.id], [1, 3, 2, 4])
        const accepted = yield* client.accept
        assert.strictEqual(accepted.id, 2)
        assert.strictEqual(client.numStreams, 3)
      }))
  })

  describe("transport", () => {
    it.effect("decodes the bytes given as initial before anything read from the socket", () =>
      Effect.gen(function*() {
        const sockets = yield* socketPair
        const peer = new RawPeer(sockets.server)
        const session = yield* Session.make(sockets.client, {
          role: "server",
          ...noKeepAlive,
          initial: Buffer.concat([frame(typeWindowUpdate, flagSYN, 1, 0), frame(typeData, 0, 1, Buffer.from("early"))])
        })
        peer.send(frame(typeData, 0, 1, Buffer.from(" late")))
        const stream = yield* session.accept
        assert.strictEqual(stream.id, 1)
        let text = ""
        while (text.length < 10) text += Buffer.from((yield* stream.read)!).toString()
        assert.strictEqual(text, "early late")
      }))

    it.effect("closes at once with ConnectionLost when made on a socket that is already gone", () =>
      Effect.gen(function*() {
        const destroyed = yield* socketPair
        destroyed.client.destroy()
        yield* flush()
        const a = yield* Session.make(destroyed.client, { role: "client", ...noKeepAlive })
        assert.isTrue(a.isClosed)
        assert.strictEqual((yield* a.closed).reason, "ConnectionLost")
        assert.strictEqual((yield* Effect.flip(a.open)).reason, "ConnectionLost")

        // A socket whose EOF was seen (and its 'end' event consumed) before the session listened.
        const ended = yield* socketPair
        ended.client.resume()
        ended.server.end()
        yield* until("the EOF is read", () => ended.client.readableEnded)
        const b = yield* Session.make(ended.client, { role: "client", ...noKeepAlive })
        yield* until("the session closes", () => b.isClosed)
        assert.strictEqual((yield* b.closed).reason, "ConnectionLost")
      }))

    it.effect("drains data for unknown streams and keeps decoding the frames after it", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typeData, 0, 99, Buffer.alloc(1000, 0xee)))
        peer.send(frame(typePing, flagSYN, 0, 42))
        yield* until("the pong", () => peer.frames.length === 1)
        assert.deepStrictEqual(peer.frames.map((f) => [f.type, f.flags, f.length]), [[typePing, flagACK, 42]])
        assert.isFalse(session.isClosed)
        assert.strictEqual(session.numStreams, 0)
      }))
  })

  describe("half-close and reset", () => {
    it.effect("lets each side drain the other's data after a FIN, then read EOF; writing after close fails", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const local = yield* client.open
        yield* local.write(Buffer.from("abc"))
        yield* local.close
        assert.isTrue(local.isClosed)
        const remote = yield* server.accept
        assert.strictEqual(Buffer.from((yield* remote.read)!).toString(), "abc")
        assert.isUndefined(yield* remote.read)
        assert.isUndefined(yield* remote.read, "EOF is sticky")
        // The peer half-closed; this side may still write.
        yield* remote.write(Buffer.from("xyz"))
        assert.strictEqual(Buffer.from((yield* local.read)!).toString(), "xyz")
        const eof = yield* Effect.forkChild(local.read)
        yield* flush()
        assert.isUndefined(poll(eof), "no EOF before the peer's FIN")
        yield* remote.close
        assert.isUndefined(yield* Fiber.join(eof))
        const error = yield* Effect.flip(local.write(Buffer.from("late")))
        assert.strictEqual(error.reason, "StreamClosed")
        assert.strictEqual(error.detail, "stream 1")
        assert.isFalse(error.isSessionFatal)
        yield* until("both sides forget the stream", () => client.numStreams === 0 && server.numStreams === 0)
        // Idempotent.
        yield* local.close
        yield* remote.close
      }))

    it.effect("fails a parked reader and later writes with StreamReset when the peer resets", () =>
      Effect.gen(function*() {
        const { client, server } = yield* sessionPair(noKeepAlive, noKeepAlive)
        const local = yield* client.open
        const remote = yield* server.accept
        const reader = yield* Effect.forkChild(local.read)
        yield* flush()
        assert.isUndefined(poll(reader))
        yield* remote.reset
        const error = yield* failureOf(reader)
        assert.strictEqual(error.reason, "StreamReset")
        assert.isFalse(error.isSessionFatal)
        assert.strictEqual((yield* Effect.flip(local.write(Buffer.from("x")))).reason, "StreamReset")
        assert.strictEqual((yield* Effect.flip(remote.read)).reason, "StreamReset")
        assert.isTrue(local.isClosed)
        assert.strictEqual(client.numStreams, 0)
        assert.strictEqual(server.numStreams, 0)
        assert.isFalse(client.isClosed)
      }))

    it.effect("delivers all of a Data frame that carries FIN even when its body spans TCP reads", () =>
      Effect.gen(function*() {
        const { session, peer } = yield* withRawPeer({ role: "server", ...noKeepAlive })
        peer.send(frame(typeWindowUpdate, flagSYN, 1, 0))
        const stream = yield* session.accept
        const body = pattern(100 * KiB, 3)
        const whole = frame(typeData, flagFIN, 1, body)
        const parts: Array<Uint8Array> = []
        const reader = yield* Effect.forkChild(Effect.gen(function*() {
          for (;;) {
            const chunk = yield* stream.read
            if (chunk === undefined) return Buffer.concat(parts)
            parts.push(chunk)
          }
        }))
        peer.send(whole.subarray(0, 12 + 1000))
        // The reader takes the first part (and is woken by the FIN) before the rest is sent.
        yield* until("the first part is read", () => parts.length === 1)
        assert.strictEqual(parts[0]!.length, 1000)
        peer.send(whole.subarray(12 + 1000))
        const got = yield* Fiber.join(reader)
        assert.strictEqual(got.length, body.length)
        assert.isTrue(got.equals(body))
      }))
  })

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

  describe("over an in-memory pair", () => {
    /** Cuts every chunk into one-byte pieces: each frame header and body arrives a byte at a time. */
    const bytewise = (chunk: Uint8Array): ReadonlyArray<Uint8Array> =>
      Array.from({ length: chunk.length }, (_, i) => chunk.subarray(i, i + 1))

    /** Cuts every chunk into 997-byte pieces (a prime: frame boundaries fall everywhere in them). */
    const primewise = (chunk: Uint8Array): ReadonlyArray<Uint8Array> =>
      Array.from({ length: Math.ceil(chunk.length / 997) }, (_, i) => chunk.subarray(i * 997, (i + 1) * 997))

    it.effect("echoes payloads delivered one byte at a time, across the 64 KiB frame boundary", () =>
      Effect.gen(function*() {
        const { client, server } = yield* memorySessionPair(noKeepAlive, noKeepAlive, { split: bytewise })
        yield* Effect.forkChild(echoServer(server))
        for (const size of [0, 1, 1000, 70 * KiB]) {
          const payload = pattern(size, size + 1)
          const back = yield* roundTrip(client, payload)
          assert.isTrue(back.equals(payload), `${size} bytes`)
        }
        assert.isFalse(client.isClosed)
      }))

    it.effect("echoes 4 MiB across the 256 KiB window in pieces that split frames anywhere", () =>
      Effect.gen(function*() {
        const { client, server } = yield* memorySessionPair(noKeepAlive, noKeepAlive, { split: primewise })
        yield* Effect.forkChild(echoServer(server))
        const payload = pattern(4 * MiB, 7)
        assert.isTrue((yield* roundTrip(client, payload)).equals(payload))
      }))

    it.effect("moves no byte until the pair's scheduler runs the delivery", () =>
      Effect.gen(function*() {
        const tasks: Array<() => void> = []
        const runAll = () => {
          for (let task = tasks.shift(); task !== undefined; task = tasks.shift()) task()
        }
        const { client, pair, server } = yield* memorySessionPair(noKeepAlive, noKeepAlive, {
          schedule: (task) => tasks.push(task)
        })
        const stream = yield* client.open
        yield* stream.write(Buffer.from("hello"))
        yield* flush()
        assert.strictEqual(pair.server.bytesRead, 0, "nothing delivered before the scheduler runs")
        assert.isAbove(pair.client.writableLength, 0, "the SYN and the data wait in the writer's queue")
        runAll()
        assert.strictEqual(pair.client.writableLength, 0)
        const accepted = yield* server.accept
        assert.strictEqual(Buffer.from((yield* accepted.read)!).toString(), "hello")
      }))

    it.effect("a peer that stops reading holds the writer at maxWriteBuffer; the write fails with WriteTimeout 10 s later", () =>
      Effect.gen(function*() {
        // A 16 MiB window, so it is the transport, not the window, that stops the writer.
        const wide = { ...noKeepAlive, maxStreamWindowSize: 16 * MiB }
        const { client, pair, server } = yield* memorySessionPair(wide, wide)
        const stream = yield* client.open
        yield* stream.write(Buffer.from("hello"))
        yield* server.accept
        yield* flush()
        pair.server.pause()
        const writer = yield* Effect.forkChild(stream.write(new Uint8Array(4 * MiB)))
        yield* flush()
        assert.isUndefined(poll(writer))
        assert.isAbove(pair.client.writableLength, client.config.maxWriteBuffer)
        assert.isAtMost(pair.client.writableLength, client.config.maxWriteBuffer + 64 * KiB + 12)
        yield* TestClock.adjust("9999 millis")
        yield* flush()
        assert.isUndefined(poll(writer))
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* failureOf(writer)).reason, "WriteTimeout")
      }))

    it.effect("a severed link: keepalive closes the session 30 s + 10 s in, failing a parked read", () =>
      Effect.gen(function*() {
        const { client, pair, server } = yield* memorySessionPair({}, noKeepAlive)
        const stream = yield* client.open
        yield* stream.write(Buffer.from("x"))
        yield* server.accept
        const reader = yield* Effect.forkChild(stream.read)
        pair.sever()
        yield* TestClock.adjust("39999 millis")
        yield* flush()
        assert.isFalse(client.isClosed, "the ping may take up to 10 s")
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* client.closed).reason, "KeepAliveTimeout")
        assert.strictEqual((yield* failureOf(reader)).reason, "KeepAliveTimeout")
        assert.isFalse(server.isClosed, "the far end heard nothing")
      }))

    it.effect("the peer's end closes the session with ConnectionLost (EOF); a reset, with the reset's message", () =>
      Effect.gen(function*() {
        const ended = yield* memoryPair()
        const a = yield* Session.make(ended.client, { role: "client", ...noKeepAlive })
        ended.server.end()
        const eof = yield* a.closed
        assert.deepStrictEqual([eof.reason, eof.detail], ["ConnectionLost", "EOF"])
        assert.isTrue(ended.client.destroyed)

        const reset = yield* memoryPair()
        const b = yield* Session.make(reset.client, { role: "client", ...noKeepAlive })
        reset.server.reset()
        const error = yield* b.closed
        assert.deepStrictEqual([error.reason, error.detail], ["ConnectionLost", "read ECONNRESET"])
      }))
  })
})
