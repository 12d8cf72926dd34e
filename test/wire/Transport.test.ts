import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as net from "node:net"
import * as tls from "node:tls"
import type { Scope } from "effect"
import * as Listener from "../../src/wire/Listener.ts"
import { consul, custom, nomad } from "../../src/wire/Protocol.ts"
import * as Transport from "../../src/wire/Transport.ts"
import { closedPort, fixtures, flush, recordingServer, until } from "./fixtures.ts"

const trusting = { ca: fixtures.ca }

/** A plaintext server that answers whatever arrives with an HTTP error, as a web server on the port would. */
const httpServer: Effect.Effect<number, never, Scope.Scope> = Effect.acquireRelease(
  Effect.promise(() =>
    new Promise<net.Server>((resolve) => {
      const server = net.createServer((socket) => {
        socket.on("error", () => {})
        socket.once("data", () => socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"))
      })
      server.listen(0, "127.0.0.1", () => resolve(server))
    })
  ),
  (server) => Effect.sync(() => server.close())
).pipe(Effect.map((server) => (server.address() as net.AddressInfo).port))

/** The first `error` the socket emits. */
const nextError = (socket: net.Socket): Effect.Effect<Error> =>
  Effect.callback<Error>((resume) => {
    socket.once("error", (error) => resume(Effect.succeed(error)))
  })

describe("Transport", () => {
  describe("addresses", () => {
    it("formats host:port and brackets IPv6 hosts", () => {
      assert.strictEqual(Transport.formatAddress("127.0.0.1", 8300), "127.0.0.1:8300")
      assert.strictEqual(Transport.formatAddress("server.dc1.consul", 4647), "server.dc1.consul:4647")
      assert.strictEqual(Transport.formatAddress("::1", 8300), "[::1]:8300")
      assert.strictEqual(Transport.formatAddress("fe80::1%eth0", 1), "[fe80::1%eth0]:1")
    })

    it("parses host:port and [v6]:port, trimming blanks", () => {
      assert.deepStrictEqual(Transport.parseAddress("127.0.0.1:8300"), { host: "127.0.0.1", port: 8300 })
      assert.deepStrictEqual(Transport.parseAddress("  localhost:0 "), { host: "localhost", port: 0 })
      assert.deepStrictEqual(Transport.parseAddress("[::1]:65535"), { host: "::1", port: 65535 })
      assert.deepStrictEqual(Transport.parseAddress("server.dc1.consul:8300"), { host: "server.dc1.consul", port: 8300 })
    })

    it("refuses addresses without a port, with a port out of range, or an unbracketed IPv6 host", () => {
      for (const bad of ["localhost", "localhost:", ":8300", "host:65536", "host:123456", "::1:8300", "[::1]", "host:80x", ""]) {
        assert.isUndefined(Transport.parseAddress(bad), bad)
      }
    })

    it("round-trips every formatted address", () => {
      for (const [host, port] of [["127.0.0.1", 1], ["::1", 8300], ["2001:db8::42", 65535], ["a.b", 0]] as const) {
        assert.deepStrictEqual(Transport.parseAddress(Transport.formatAddress(host, port)), { host, port })
      }
    })
  })

  describe("plaintext preamble", () => {
    for (const [protocol, byte] of [[consul, 0x04], [nomad, 0x06], [custom({ tlsByte: 9, muxByte: 0x2a }), 0x2a]] as const) {
      it.effect(`writes ${protocol.name}'s yamux byte 0x${byte.toString(16).padStart(2, "0")} first, then the caller's bytes`, () =>
        Effect.gen(function*() {
          const server = yield* recordingServer()
          const socket = yield* Transport.dial({ host: "127.0.0.1", port: server.port, protocol })
          socket.write(Buffer.from("yamux"))
          yield* until("six bytes", () => server.connections[0]?.outer.length === 6)
          assert.deepStrictEqual(server.connections[0]!.outer, [byte, ...Buffer.from("yamux")])
          assert.isFalse(socket instanceof tls.TLSSocket)
        }))
    }

    it.effect("destroys the socket when the dial's Scope closes", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer()
        const socket = yield* Effect.scoped(Transport.dial({ host: "127.0.0.1", port: server.port }))
        assert.isTrue(socket.destroyed)
        yield* until("the server sees the close", () => server.connections[0]?.closed === true)
      }))
  })

  describe("TLS", () => {
    for (const [protocol, outer, inner] of [[consul, 0x03, 0x04], [nomad, 0x04, 0x06]] as const) {
      it.effect(`writes ${protocol.name}'s TLS byte in the clear and its yamux byte inside TLS`, () =>
        Effect.gen(function*() {
          const server = yield* recordingServer({ tls: { cert: fixtures.serverCert, key: fixtures.serverKey } })
          const socket = yield* Transport.dial({ host: "127.0.0.1", port: server.port, protocol, tls: trusting })
          assert.isTrue(socket instanceof tls.TLSSocket)
          assert.isTrue((socket as tls.TLSSocket).authorized)
          socket.write(Buffer.from("hi"))
          yield* until("three bytes inside TLS", () => server.connections[0]?.inner.length === 3)
          const conn = server.connections[0]!
          assert.deepStrictEqual(conn.outer, [outer])
          assert.deepStrictEqual(conn.inner, [inner, ...Buffer.from("hi")])
          assert.isUndefined(conn.tlsError)
        }))
    }

    it.effect("verifies the certificate against the dialled name, or serverName when given", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ tls: { cert: fixtures.serverCert, key: fixtures.serverKey } })
        const byName = yield* Transport.dial({ host: "localhost", port: server.port, tls: trusting })
        assert.isTrue((byName as tls.TLSSocket).authorized)
        const bySan = yield* Transport.dial({
          host: "127.0.0.1",
          port: server.port,
          tls: { ...trusting, serverName: "server.dc1.consul" }
        })
        assert.isTrue((bySan as tls.TLSSocket).authorized)
      }))

    it.effect("fails with TlsFailed when the server's certificate is not from a trusted CA", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ tls: { cert: fixtures.otherServerCert, key: fixtures.otherServerKey } })
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port: server.port, tls: trusting }))
        assert.strictEqual(error._tag, "TransportError")
        assert.strictEqual(error.reason, "TlsFailed")
        assert.strictEqual(error.address, `127.0.0.1:${server.port}`)
        assert.match(error.detail ?? "", /certificate/i)
        assert.isFalse(error.isRetryable)
        yield* until("the server sees the close", () => server.connections[0]?.closed === true)
      }))

    it.effect("accepts an untrusted certificate only when verify is off", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ tls: { cert: fixtures.otherServerCert, key: fixtures.otherServerKey } })
        const socket = yield* Transport.dial({ host: "127.0.0.1", port: server.port, tls: { ...trusting, verify: false } })
        assert.isFalse((socket as tls.TLSSocket).authorized)
        socket.write(Buffer.from("x"))
        yield* until("bytes inside TLS", () => server.connections[0]?.inner.length === 2)
        assert.deepStrictEqual(server.connections[0]!.inner, [0x04, 0x78])
      }))

    it.effect("fails with TlsFailed when serverName does not match the certificate", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ tls: { cert: fixtures.serverCert, key: fixtures.serverKey } })
        const error = yield* Effect.flip(Transport.dial({
          host: "127.0.0.1",
          port: server.port,
          tls: { ...trusting, serverName: "server.dc2.consul" }
        }))
        assert.strictEqual(error.reason, "TlsFailed")
        assert.match(error.detail ?? "", /does not match/)
        assert.match(error.detail ?? "", /server\.dc2\.consul/)
      }))
  })

  describe("failures", () => {
    it.effect("says the preamble byte is probably wrong when the server hangs up right after it", () =>
      Effect.gen(function*() {
        const server = yield* Listener.listen({ protocol: nomad }, () => Effect.never)
        const socket = yield* Transport.dial({ host: "127.0.0.1", port: server.port, protocol: consul })
        const error = yield* nextError(socket)
        assert.strictEqual(
          error.message,
          "EOF before any reply: the server closed the connection right after our preamble (yamux byte 0x04, " +
            "consul numbering) without sending anything; if this repeats, it expects another preamble (--protocol) or TLS"
        )
      }))

    it.effect("raises no preamble hint once the server has answered", () =>
      Effect.gen(function*() {
        const server = yield* Listener.listen({}, ({ socket }) =>
          Effect.sync(() => {
            socket.write("x")
            socket.end()
          }))
        const socket = yield* Transport.dial({ host: "127.0.0.1", port: server.port })
        const errors: Array<Error> = []
        socket.on("error", (error) => errors.push(error))
        socket.resume()
        yield* until("the server's close arrives", () => socket.readableEnded)
        assert.deepStrictEqual(errors, [])
      }))

    it.effect("says the server probably serves plaintext when it hangs up on our TLS byte", () =>
      Effect.gen(function*() {
        const server = yield* Listener.listen({}, () => Effect.never)
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port: server.port, tls: trusting }))
        assert.strictEqual(error.reason, "TlsFailed")
        assert.isFalse(error.isRetryable)
        assert.match(
          error.detail ?? "",
          /: the server closed the connection on our TLS byte 0x03 \(consul numbering\) without answering; it probably serves plaintext only, or expects another protocol \(--protocol\)$/
        )
      }))

    it.effect("says the server speaks plaintext when it answers the TLS handshake with other bytes", () =>
      Effect.gen(function*() {
        const port = yield* httpServer
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port, tls: trusting }))
        assert.strictEqual(error.reason, "TlsFailed")
        assert.match(error.detail ?? "", /^ERR_SSL_[A-Z_]+: the server answered the TLS handshake with bytes that are not TLS/)
      }))

    it.effect("fails with DialFailed on a closed port", () =>
      Effect.gen(function*() {
        const port = yield* closedPort
        const error = yield* Effect.flip(Transport.dial({ host: "127.0.0.1", port }))
        assert.strictEqual(error.reason, "DialFailed")
        assert.strictEqual(error.address, `127.0.0.1:${port}`)
        assert.match(error.detail ?? "", /ECONNREFUSED/)
        assert.isTrue(error.isRetryable)
        assert.strictEqual(error.message, `DialFailed (127.0.0.1:${port}): ${error.detail}`)
      }))

    it.effect("fails with DialTimeout after 10 s when the TLS handshake stalls, and closes the connection", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ silent: true })
        const dial = yield* Effect.forkChild(Effect.scoped(
          Transport.dial({ host: "127.0.0.1", port: server.port, tls: trusting })
        ))
        yield* until("the server accepts", () => server.connections.length === 1)
        yield* flush()
        yield* TestClock.adjust("9999 millis")
        yield* flush()
        assert.isUndefined(dial.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        const error = yield* Effect.flip(Fiber.join(dial))
        assert.strictEqual(error.reason, "DialTimeout")
        assert.strictEqual(error.address, `127.0.0.1:${server.port}`)
        assert.isTrue(error.isRetryable)
        yield* until("the server sees the close", () => server.connections[0]!.closed)
      }))

    it.effect("honours a configured dial timeout", () =>
      Effect.gen(function*() {
        const server = yield* recordingServer({ silent: true })
        const dial = yield* Effect.forkChild(Effect.scoped(
          Transport.dial({ host: "127.0.0.1", port: server.port, tls: trusting, dialTimeout: "250 millis" })
        ))
        yield* until("the server accepts", () => server.connections.length === 1)
        yield* flush()
        yield* TestClock.adjust("249 millis")
        yield* flush()
        assert.isUndefined(dial.pollUnsafe())
        yield* TestClock.adjust("1 millis")
        assert.strictEqual((yield* Effect.flip(Fiber.join(dial))).reason, "DialTimeout")
      }))
  })
})
