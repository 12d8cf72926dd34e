/**
 * The yamux session: streams over loopback and over an in-memory pair, the transport, half-close
 * and reset. GoAway and close, flow control and limits, time, and bad peers have their own
 * files; shared helpers are in `sessionFixtures.ts` and `harness.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Listener from "../../src/wire/Listener.ts"
import * as Transport from "../../src/wire/Transport.ts"
import { flagACK, flagFIN, flagSYN, typeData, typePing, typeWindowUpdate } from "../../src/yamux/Frame.ts"
import * as Session from "../../src/yamux/Session.ts"
import {
  flush,
  memoryPair,
  memorySessionPair,
  pattern,
  poll,
  RawPeer,
  sessionPair,
  socketPair,
  until,
  withRawPeer
} from "./harness.ts"
import { echoServer, failureOf, frame, KiB, MiB, noKeepAlive, roundTrip } from "./sessionFixtures.ts"

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
