import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as net from "node:net"
import * as tls from "node:tls"
import type { Stream } from "../../src/yamux/Stream.ts"
import * as Listener from "../../src/wire/Listener.ts"
import type { ListenOptions } from "../../src/wire/Listener.ts"
import { consul, nomad } from "../../src/wire/Protocol.ts"
import * as Transport from "../../src/wire/Transport.ts"
import type { TransportError } from "../../src/wire/TransportError.ts"
import * as Session from "../../src/yamux/Session.ts"
import { closedPort, fixtures, flush, rawClient, until } from "./fixtures.ts"

const serverTls = { cert: fixtures.serverCert, key: fixtures.serverKey, ca: fixtures.ca }
const clientTls = { ca: fixtures.ca }

interface Conn {
  readonly socket: net.Socket
  readonly remoteAddress: string
  readonly data: Array<number>
}

/** A listener that records accepted connections (kept open until the peer goes) and rejections. */
const recordingListener = (options: ListenOptions = {}) =>
  Effect.gen(function*() {
    const accepted: Array<Conn> = []
    const rejected: Array<TransportError> = []
    const listening = yield* Listener.listen(
      options,
      ({ socket, remoteAddress }) =>
        Effect.callback<void>((resume) => {
          const conn: Conn = { socket, remoteAddress, data: [] }
          accepted.push(conn)
          socket.on("data", (chunk: Buffer) => conn.data.push(...chunk))
          socket.on("close", () => resume(Effect.void))
        }),
      (error) => Effect.sync(() => rejected.push(error))
    )
    return { listening, accepted, rejected }
  })

/** A client that speaks TLS behind `outer`, then writes `inner` bytes, by hand. */
const handTlsClient = (port: number, outer: number, inner: Uint8Array) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly socket: tls.TLSSocket; readonly state: { closed: boolean } }>((resolve) => {
        const state = { closed: false }
        const raw = net.createConnection({ host: "127.0.0.1", port }, () => {
          raw.write(Uint8Array.of(outer))
          const socket = tls.connect({ socket: raw, ca: fixtures.ca, servername: "localhost" })
          socket.on("error", () => {})
          socket.on("close", () => {
            state.closed = true
          })
          socket.once("secureConnect", () => {
            socket.write(inner)
            resolve({ socket, state })
          })
        })
        raw.on("error", () => {})
      })
    ),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

describe("Listener", () => {
  describe("plaintext", () => {
    it.effect("hands on a consul connection after its 0x04, with the bytes that came in the same packet", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener()
        assert.strictEqual(listening.host, "127.0.0.1")
        assert.isAbove(listening.port, 0)
        assert.strictEqual(listening.address, `127.0.0.1:${listening.port}`)
        const client = yield* rawClient(listening.port)
        client.socket.write(Buffer.concat([Uint8Array.of(0x04), Buffer.from("hello")]))
        yield* until("the bytes after the preamble", () => accepted[0]?.data.length === 5)
        assert.strictEqual(Buffer.from(accepted[0]!.data).toString(), "hello")
        assert.strictEqual(accepted[0]!.remoteAddress, `127.0.0.1:${client.socket.localPort}`)
        assert.isFalse(accepted[0]!.socket instanceof tls.TLSSocket)
        client.socket.write(Buffer.from(" again"))
        yield* until("later bytes", () => accepted[0]!.data.length === 11)
        assert.strictEqual(Buffer.from(accepted[0]!.data).toString(), "hello again")
        assert.deepStrictEqual(rejected, [])
      }))

    it.effect("hands on a nomad connection after its 0x06 even when the byte arrives alone", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener({ protocol: nomad })
        const client = yield* rawClient(listening.port)
        client.socket.write(Uint8Array.of(0x06))
        yield* until("the connection is handed on", () => accepted.length === 1)
        client.socket.write(Uint8Array.of(0x01, 0x02))
        yield* until("later bytes", () => accepted[0]!.data.length === 2)
        assert.deepStrictEqual(accepted[0]!.data, [0x01, 0x02])
        assert.deepStrictEqual(rejected, [])
      }))

    it.effect("rejects a type byte it does not serve with PreambleRejected and closes the connection", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener({ protocol: consul })
        const client = yield* rawClient(listening.port)
        client.socket.write(Uint8Array.of(0x06))
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "PreambleRejected")
        assert.strictEqual(rejected[0]!.detail, "unknown type byte 6")
        assert.strictEqual(rejected[0]!.address, `127.0.0.1:${client.socket.localPort}`)
        assert.isFalse(rejected[0]!.isRetryable)
        yield* until("the client sees the close", () => client.state.closed)
        assert.strictEqual(accepted.length, 0)
      }))

    it.effect("refuses the TLS byte when TLS is not configured", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener()
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port: listening.port, tls: clientTls }))
        assert.strictEqual(error.reason, "TlsFailed")
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "PreambleRejected")
        assert.strictEqual(rejected[0]!.detail, "TLS is not configured")
        assert.strictEqual(accepted.length, 0)
      }))

    it.effect("reports ConnectionLost when the client hangs up before the preamble", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener()
        const client = yield* rawClient(listening.port)
        client.socket.end()
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "ConnectionLost")
        assert.strictEqual(rejected[0]!.detail, "closed during preamble")
        assert.isTrue(rejected[0]!.isRetryable)
        assert.strictEqual(accepted.length, 0)
      }))
  })

  describe("TLS", () => {
    for (const protocol of [consul, nomad]) {
      it.effect(`serves ${protocol.name} over TLS to Transport.dial, both ways`, () =>
        Effect.gen(function*() {
          const { listening, accepted, rejected } = yield* recordingListener({ protocol, tls: serverTls })
          const socket = yield* Transport.dial({ host: "127.0.0.1", port: listening.port, protocol, tls: clientTls })
          socket.write(Buffer.from("inside"))
          yield* until("the bytes inside TLS", () => accepted[0]?.data.length === 6)
          const conn = accepted[0]!
          assert.isTrue(conn.socket instanceof tls.TLSSocket)
          assert.isTrue((conn.socket as tls.TLSSocket).encrypted)
          assert.strictEqual(Buffer.from(conn.data).toString(), "inside")
          const back: Array<number> = []
          socket.on("data", (chunk: Buffer) => back.push(...chunk))
          conn.socket.write(Buffer.from("reply"))
          yield* until("the reply", () => back.length === 5)
          assert.strictEqual(Buffer.from(back).toString(), "reply")
          assert.deepStrictEqual(rejected, [])
        }))
    }

    it.effect("runs a yamux session over TLS end to end", () =>
      Effect.gen(function*() {
        const listening = yield* Listener.listen({ tls: serverTls }, ({ socket, remoteAddress }) =>
          Effect.gen(function*() {
            const session = yield* Session.make(socket, { role: "server", address: remoteAddress, enableKeepAlive: false })
            const stream: Stream = yield* session.accept
            for (;;) {
              const chunk = yield* stream.read
              if (chunk === undefined) break
              yield* stream.write(chunk)
            }
            yield* stream.close
            yield* session.closed
          }).pipe(Effect.ignore))
        const socket = yield* Transport.dial({ host: "localhost", port: listening.port, tls: clientTls })
        const session = yield* Session.make(socket, { role: "client", enableKeepAlive: false })
        const stream = yield* session.open
        const payload = Buffer.alloc(1024 * 1024)
        for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff
        const writer = yield* Effect.forkChild(Effect.andThen(stream.write(payload), stream.close))
        const parts: Array<Uint8Array> = []
        for (;;) {
          const chunk = yield* stream.read
          if (chunk === undefined) break
          parts.push(chunk)
        }
        yield* Fiber.join(writer)
        assert.isTrue(Buffer.concat(parts).equals(payload))
      }))

    it.effect("refuses plaintext when TLS is configured", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener({ tls: serverTls })
        const socket = yield* Transport.dial({ host: "127.0.0.1", port: listening.port })
        let closed = false
        socket.on("close", () => {
          closed = true
        })
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "PreambleRejected")
        assert.strictEqual(rejected[0]!.detail, "TLS required, got type byte 4")
        yield* until("the client sees the close", () => closed)
        assert.strictEqual(accepted.length, 0)
      }))

    it.effect("rejects a wrong type byte inside TLS", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener({ tls: serverTls })
        const client = yield* handTlsClient(listening.port, 0x03, Uint8Array.of(0x05))
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "PreambleRejected")
        assert.strictEqual(rejected[0]!.detail, "unknown type byte 5 inside TLS")
        yield* until("the client sees the close", () => client.state.closed)
        assert.strictEqual(accepted.length, 0)
      }))

    it.effect("accepts a client certificate from the trusted CA when it verifies clients", () =>
      Effect.gen(function*() {
        const { listening, accepted } = yield* recordingListener({ tls: { ...serverTls, verifyClient: true } })
        yield* Transport.dial({
          host: "127.0.0.1",
          port: listening.port,
          tls: { ...clientTls, cert: fixtures.clientCert, key: fixtures.clientKey }
        })
        yield* until("the connection is handed on", () => accepted.length === 1)
        const peer = (accepted[0]!.socket as tls.TLSSocket).getPeerCertificate()
        assert.strictEqual(peer.subject.CN, "client.dc1.consul")
        assert.isTrue((accepted[0]!.socket as tls.TLSSocket).authorized)
      }))

    for (
      const [name, cert] of [
        ["no client certificate", {}],
        ["a client certificate from an untrusted CA", { cert: fixtures.otherClientCert, key: fixtures.otherClientKey }]
      ] as const
    ) {
      it.effect(`rejects ${name} with TlsFailed when it verifies clients`, () =>
        Effect.gen(function*() {
          const { listening, accepted, rejected } = yield* recordingListener({ tls: { ...serverTls, verifyClient: true } })
          // With TLS 1.3 the client may finish its side before the server refuses it.
          yield* Effect.exit(Transport.dial({ host: "127.0.0.1", port: listening.port, tls: { ...clientTls, ...cert } }))
          yield* until("the rejection", () => rejected.length === 1)
          assert.strictEqual(rejected[0]!.reason, "TlsFailed")
          assert.match(rejected[0]!.detail ?? "", /certificate/i)
          yield* flush()
          assert.strictEqual(accepted.length, 0)
        }))
    }
  })

  describe("handshake timeout", () => {
    it.effect("rejects with HandshakeTimeout a client that sends nothing for 5 s", () =>
      Effect.gen(function*() {
        const { listening, rejected } = yield* recordingListener()
        const client = yield* rawClient(listening.port)
        const clientAddress = `127.0.0.1:${client.socket.localPort}`
        yield* flush(20)
        yield* TestClock.adjust("4999 millis")
        yield* flush()
        assert.deepStrictEqual(rejected, [])
        assert.isFalse(client.state.closed)
        yield* TestClock.adjust("1 millis")
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "HandshakeTimeout")
        assert.strictEqual(rejected[0]!.address, clientAddress)
        assert.isFalse(rejected[0]!.isRetryable)
        yield* until("the client sees the close", () => client.state.closed)
      }))

    it.effect("times out a TLS handshake that stalls after the TLS byte", () =>
      Effect.gen(function*() {
        const { listening, rejected } = yield* recordingListener({ tls: serverTls, handshakeTimeout: "1 second" })
        const client = yield* rawClient(listening.port)
        client.socket.write(Uint8Array.of(0x03))
        yield* flush(20)
        yield* TestClock.adjust("999 millis")
        yield* flush()
        assert.deepStrictEqual(rejected, [])
        yield* TestClock.adjust("1 millis")
        yield* until("the rejection", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "HandshakeTimeout")
        yield* until("the client sees the close", () => client.state.closed)
      }))

    it.effect("does not limit a connection's life once its preamble is done", () =>
      Effect.gen(function*() {
        const { listening, accepted, rejected } = yield* recordingListener()
        const client = yield* rawClient(listening.port)
        client.socket.write(Uint8Array.of(0x04))
        yield* until("the connection is handed on", () => accepted.length === 1)
        yield* TestClock.adjust("1 minute")
        yield* flush()
        assert.isFalse(client.state.closed)
        assert.deepStrictEqual(rejected, [])
      }))
  })

  describe("connection limits", () => {
    it.effect("closes a connection right after accept once maxConnsPerClient are open from its address", () =>
      Effect.gen(function*() {
        const { listening, rejected } = yield* recordingListener({ maxConnsPerClient: 2 })
        // Counted from accept: these two never send their preamble.
        const first = yield* rawClient(listening.port, "127.0.0.1")
        yield* rawClient(listening.port, "127.0.0.1")
        const third = yield* rawClient(listening.port, "127.0.0.1")
        const thirdPort = third.socket.localPort
        yield* until("the refusal", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.reason, "TooManyConnections")
        assert.strictEqual(rejected[0]!.detail, "2 connections open from 127.0.0.1 (maxConnsPerClient 2)")
        assert.strictEqual(rejected[0]!.address, `127.0.0.1:${thirdPort}`)
        assert.isTrue(rejected[0]!.isRetryable)
        yield* until("the refused client sees the close", () => third.state.closed)
        assert.deepStrictEqual(listening.connections(), { open: 2, refused: 1 })

        // Another address has a count of its own.
        const other = yield* rawClient(listening.port, "127.0.0.2")
        other.socket.write(Uint8Array.of(0x04))
        yield* until("the other address is served", () => listening.connections().open === 3)

        // Once one closes, its address may connect again.
        first.socket.destroy()
        yield* until("the closed connection to be released", () => listening.connections().open === 2)
        const again = yield* rawClient(listening.port, "127.0.0.1")
        yield* until("the new connection to be counted", () => listening.connections().open === 3)
        assert.isFalse(again.state.closed)
        assert.strictEqual(listening.connections().refused, 1)
      }))

    it.effect("counts maxConns across all client addresses", () =>
      Effect.gen(function*() {
        const { listening, rejected } = yield* recordingListener({ maxConns: 3, maxConnsPerClient: 2 })
        yield* rawClient(listening.port, "127.0.0.1")
        yield* rawClient(listening.port, "127.0.0.1")
        yield* rawClient(listening.port, "127.0.0.2")
        const fourth = yield* rawClient(listening.port, "127.0.0.3")
        yield* until("the refusal", () => rejected.length === 1)
        assert.strictEqual(rejected[0]!.detail, "3 connections open (maxConns 3)")
        yield* until("the refused client sees the close", () => fourth.state.closed)
        assert.deepStrictEqual(listening.connections(), { open: 3, refused: 1 })
      }))

    it.effect("defaults to Consul's 100 connections per client address", () =>
      Effect.gen(function*() {
        assert.strictEqual(Listener.defaultMaxConnsPerClient, 100)
        assert.strictEqual(Listener.defaultMaxConns, 10_000)
        const { listening, rejected } = yield* recordingListener()
        for (let i = 0; i < 100; i++) yield* rawClient(listening.port)
        yield* until("100 connections to be counted", () => listening.connections().open === 100)
        const over = yield* rawClient(listening.port)
        yield* until("the 101st to be refused", () => over.state.closed)
        assert.strictEqual(rejected[0]!.reason, "TooManyConnections")
        assert.deepStrictEqual(listening.connections(), { open: 100, refused: 1 })
      }))

    it.effect("fails at listen, typed, when the TLS settings cannot be parsed, rather than on every connection", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Listener.listen({ tls: { cert: "not a certificate", key: "not a key" } }, () => Effect.void)
        )
        assert.strictEqual(error.reason, "TlsFailed")
        assert.match(error.detail ?? "", /^invalid TLS settings: /)
      }))
  })

  describe("lifecycle", () => {
    it.effect("fails with ListenFailed, not retryable, when the port is taken", () =>
      Effect.gen(function*() {
        const { listening } = yield* recordingListener()
        const error = yield* Effect.flip(Listener.listen({ port: listening.port }, () => Effect.void))
        assert.strictEqual(error.reason, "ListenFailed")
        assert.isFalse(error.isRetryable)
        assert.strictEqual(error.address, listening.address)
        assert.match(error.detail ?? "", /EADDRINUSE/)
      }))

    it.effect("stops listening and closes live connections when its Scope closes", () =>
      Effect.gen(function*() {
        const port = yield* closedPort
        const scope = yield* Scope.make()
        const { accepted } = yield* Scope.provide(recordingListener({ port }), scope)
        const client = yield* rawClient(port)
        client.socket.write(Uint8Array.of(0x04))
        yield* until("the connection is handed on", () => accepted.length === 1)
        yield* Scope.close(scope, Exit.void)
        yield* until("the client sees the close", () => client.state.closed)
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port }))
        assert.strictEqual(error.reason, "DialFailed")
      }))
  })
})
