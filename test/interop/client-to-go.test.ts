/**
 * Our client stack against HashiCorp's Go stack: the RpcPool (and, for the stream faults we
 * send ourselves, the yamux Session and StreamClient directly) talking to the Go reference
 * server in test/interop/go/server, consul and nomad numbering, plaintext and TLS.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Fiber, Layer } from "effect"
import type { Scope } from "effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import type * as net from "node:net"
import { MuxError } from "../../src/mux/MuxError.ts"
import type { MuxStream } from "../../src/mux/MuxSession.ts"
import { asBytes } from "../../src/msgpackrpc/Decoder.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import type { ClientTls } from "../../src/wire/Tls.ts"
import * as Transport from "../../src/wire/Transport.ts"
import { TransportError } from "../../src/wire/TransportError.ts"
import * as Session from "../../src/yamux/Session.ts"
import { buildGoPeer, goAvailable, goServer, type GoProtocol, type GoServer, tlsFixtures } from "./goPeer.ts"

const protocols: ReadonlyArray<GoProtocol> = ["consul", "nomad"]

// Empty, 1 byte, fixstr/str8 (31/32), str8/str16 (255/256), str16/str32 (65535/65536/65537),
// one yamux window (256 KiB) and a byte either side, then several windows.
const sizes = [0, 1, 31, 32, 255, 256, 65535, 65536, 65537, 262143, 262144, 262145, 1024 * 1024, 8 * 1024 * 1024]

interface Stats {
  readonly Conns: number
  readonly Streams: number
  readonly Served: number
  readonly Live: number
}

const clientTls: ClientTls = {
  ca: fs.readFileSync(tlsFixtures.ca),
  cert: fs.readFileSync(tlsFixtures.clientCert),
  key: fs.readFileSync(tlsFixtures.clientKey)
}

/** The pool, built from `PoolLayer` in the test's Scope. */
const pool = (options: RpcPool.RpcPool.Options): Effect.Effect<RpcPool.RpcPool.Service, RpcPool.InvalidOption, Scope.Scope> =>
  Effect.map(Layer.build(RpcPool.PoolLayer(options)), (context) => Context.get(context, RpcPool.RpcPool))

const record = (v: Value): { readonly [key: string]: Value } => {
  assert.isTrue(v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !Array.isArray(v), `not a map: ${v}`)
  return v as { readonly [key: string]: Value }
}

/** Go returns an empty []byte as nil. */
const bytesOf = (v: Value | undefined): Uint8Array => {
  if (v === null) return new Uint8Array(0)
  assert.isTrue(typeof v === "string" || v instanceof Uint8Array, `not bytes: ${typeof v}`)
  return asBytes(v as string | Uint8Array)
}

const assertSameBytes = (actual: Uint8Array, expected: Uint8Array, what: string) => {
  assert.strictEqual(actual.length, expected.length, `${what}: length`)
  // Buffer.equals, because deepStrictEqual on 8 MiB takes seconds.
  assert.isTrue(Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected), `${what}: bytes differ`)
}

const stats = (service: RpcPool.RpcPool.Service, address: string) =>
  Effect.map(service.rpc(address, "Test.Stats", {}), (v) => record(v) as unknown as Stats)

const rpcError = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.isTrue(error !== undefined && error._tag === "Fail" && error.error instanceof RpcError, `not an RpcError: ${exit}`)
  return (error as { readonly error: RpcError }).error
}

/** Polls a Go-side counter that changes when a TCP connection ends (no event reaches us for it). */
const eventually = <A>(probe: Effect.Effect<A, RpcError>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    let last = yield* probe
    for (let i = 0; i < 100 && !done(last); i++) {
      yield* Effect.sleep("20 millis")
      last = yield* probe
    }
    return last
  })

/** The Go server's log arrives on a pipe, possibly after the socket event that prompted the check. */
const logged = (server: GoServer, pattern: RegExp) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && !pattern.test(server.stderr()); i++) yield* Effect.sleep("20 millis")
    return server.stderr()
  })

describe.runIf(goAvailable(import.meta.url))("our client -> Go server", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  for (const name of protocols) {
    const protocol = Protocols.byName[name]

    describe(`${name} over the pool`, () => {
      it.live("echoes every boundary payload size byte for byte, with Seq and Note", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          for (const [i, size] of sizes.entries()) {
            const payload = randomBytes(size)
            // A uint64 beyond 2^53 must come back exact, as a bigint.
            const seq = i % 2 === 0 ? i + 1 : 2n ** 63n + BigInt(i)
            const note = `note ${size} ✓`
            const reply = record(yield* rpc.rpc(server.address, "Test.Echo", { Payload: payload, Seq: seq, Note: note }))
            assertSameBytes(bytesOf(reply["Payload"]), payload, `size ${size}`)
            if (size === 0) assert.strictEqual(reply["Payload"], null)
            assert.strictEqual(reply["Seq"], seq, `size ${size}: Seq`)
            assert.strictEqual(reply["Note"], note)
            assert.strictEqual(reply["Served"], i + 1)
          }
          const s = yield* rpc.stats
          assert.strictEqual(s.dials, 1)
          assert.strictEqual(s.ok, sizes.length)
        }))

      it.live("shares one TCP connection between 300 concurrent callers, one stream each", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const callers = 300
          const rpc = yield* pool({ protocol, maxStreams: callers })
          yield* Effect.forEach(
            Array.from({ length: callers }, (_, c) => c),
            (c) =>
              Effect.gen(function*() {
                for (let i = 0; i < 8; i++) {
                  const seq = c * 1000 + i
                  const payload = randomBytes(64 + c)
                  const reply = record(yield* rpc.rpc(server.address, "Test.Echo", { Payload: payload, Seq: seq, Note: `c${c}` }))
                  assert.strictEqual(reply["Seq"], seq)
                  assert.strictEqual(reply["Note"], `c${c}`)
                  assertSameBytes(bytesOf(reply["Payload"]), payload, `caller ${c} call ${i}`)
                }
              }),
            { concurrency: callers, discard: true }
          )
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 1)
          assert.strictEqual(go.Live, 1)
          assert.strictEqual(go.Served, callers * 8 + 1)
          // Every caller opened at most one stream and later calls reused it.
          assert.isAtMost(go.Streams, callers)
          assert.isAtLeast(go.Streams, callers * 0.8)
          const s = yield* rpc.stats
          assert.strictEqual(s.dials, 1)
          assert.strictEqual(s.streamsIdle, go.Streams)
        }))

      it.live("turns Test.Fail into a RemoteError with Go's message and keeps the session usable", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          const error = rpcError(yield* Effect.exit(rpc.rpc(server.address, "Test.Fail", { Message: "boom: no such thing" })))
          assert.strictEqual(error.reason, "RemoteError")
          assert.strictEqual(error.detail, "boom: no such thing")
          assert.strictEqual(error.method, "Test.Fail")
          assert.isFalse(error.isRetryable)
          const unknown = rpcError(yield* Effect.exit(rpc.rpc(server.address, "Test.Nope", {})))
          assert.strictEqual(unknown.reason, "RemoteError")
          assert.match(unknown.detail ?? "", /can't find method Test\.Nope/)

          // Go's ServeRequest loop FINs the stream after an unknown method (as Consul's does), so
          // the pool must not reuse a stream that answered with an error: this call comes at once.
          assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {})
          const go = yield* stats(rpc, server.address)
          assert.deepStrictEqual(go, { Conns: 1, Streams: 3, Served: 4, Live: 1 })
          assert.deepStrictEqual((yield* rpc.stats).failures, { RemoteError: 2 })
        }))

      it.live("returns the Go server's address from Status.Leader", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          assert.strictEqual(yield* rpc.rpc(server.address, "Status.Leader", {}), server.address)
          assert.isTrue(Duration.isDuration(yield* rpc.ping(server.address)))
        }))

      it.live("does not hand a stream the Go server FIN'd to the next call", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          for (let i = 0; i < 5; i++) {
            assert.deepStrictEqual(yield* rpc.rpc(server.address, "Test.CloseStream", {}), {})
            // Go writes the FIN after the reply; Node runs a call made at once in the same
            // event-loop turn as the reply, before it reads the FIN (a Go client would lose
            // the same race). What is tested is the pool once the FIN is in.
            yield* Effect.sleep("20 millis")
            assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {}, `round ${i}`)
            assert.strictEqual(yield* rpc.rpc(server.address, "Status.Leader", {}), server.address)
          }
          const s = yield* rpc.stats
          assert.deepStrictEqual(s.failures, {})
          assert.strictEqual(s.dials, 1)
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 1)
          // Each round's CloseStream ends the stream it ran on, so the next call opens one more.
          assert.strictEqual(go.Streams, 6)
        }))

      it.live("survives a stream the Go server resets: a typed StreamReset at most, then calls succeed", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          const failures: Array<RpcError> = []
          for (let i = 0; i < 5; i++) {
            // No pause here: the next call may be the one that meets the RST.
            for (const method of ["Test.ResetStream", "Status.Ping"]) {
              const exit = yield* Effect.exit(rpc.rpc(server.address, method, {}))
              if (Exit.isFailure(exit)) failures.push(rpcError(exit))
            }
            for (let k = 0; k < 3; k++) assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {})
          }
          for (const f of failures) {
            assert.strictEqual(f.reason, "StreamReset", f.message)
            assert.instanceOf(f.cause, MuxError)
          }
          assert.isAtMost(failures.length, 5)
          // With the RST read before the next call, nothing fails at all.
          yield* rpc.rpc(server.address, "Test.ResetStream", {})
          yield* Effect.sleep("20 millis")
          assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {})
          assert.strictEqual((yield* rpc.stats).dials, 1)
          assert.strictEqual((yield* stats(rpc, server.address)).Conns, 1)
        }))

      it.live("finishes calls in flight after Go's GoAway and sends new calls to a fresh session", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          yield* rpc.rpc(server.address, "Status.Ping", {})
          const inFlight = yield* Effect.forEach(
            [0, 1, 2],
            () => Effect.forkChild(rpc.rpc(server.address, "Test.Sleep", { Millis: 300 }))
          )
          // Their requests are queued before the GoAway call's (one writer, in order).
          for (let i = 0; i < 1000 && (yield* rpc.stats).streamsInUse < 3; i++) yield* Effect.yieldNow
          assert.strictEqual((yield* rpc.stats).streamsInUse, 3)

          assert.deepStrictEqual(yield* rpc.rpc(server.address, "Test.GoAway", {}), {})
          for (let i = 0; i < 50 && (yield* rpc.stats).dials < 2; i++) {
            assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {}, `call ${i} after GoAway`)
          }
          assert.strictEqual((yield* rpc.stats).dials, 2)
          assert.isTrue(inFlight.every((f) => f.pollUnsafe() === undefined), "the Test.Sleep calls ended too early")

          for (const exit of yield* Fiber.awaitAll(inFlight)) assert.isTrue(Exit.isSuccess(exit), String(exit))
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 2)
          // The old session is closed once its last call is done.
          const settled = yield* eventually(stats(rpc, server.address), (s) => s.Live === 1)
          assert.strictEqual(settled.Live, 1)
          const s = yield* rpc.stats
          assert.deepStrictEqual(s.failures, {})
          assert.strictEqual(s.sessions, 1)
        }))

      it.live("redials after the Go server closes the TCP connection", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol })
          assert.deepStrictEqual(yield* rpc.rpc(server.address, "Test.CloseSession", {}), {})
          // The call right after may still meet the old session before its EOF is read.
          const first = yield* Effect.exit(rpc.rpc(server.address, "Status.Ping", {}))
          if (Exit.isFailure(first)) assert.strictEqual(rpcError(first).reason, "ConnectionLost")
          for (let i = 0; i < 5; i++) assert.deepStrictEqual(yield* rpc.rpc(server.address, "Status.Ping", {}), {})
          const s = yield* rpc.stats
          assert.strictEqual(s.dials, 2)
          assert.strictEqual(s.sessions, 1)
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 2)
          assert.strictEqual(go.Live, 1)
        }))
    })

    describe(`${name} over TLS`, () => {
      it.live("calls a Go TLS server that requires our client certificate", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name, tls: true })
          const rpc = yield* pool({ protocol, tls: clientTls })
          assert.strictEqual(yield* rpc.rpc(server.address, "Status.Leader", {}), server.address)
          for (const size of [0, 65536, 262145, 1024 * 1024]) {
            const payload = randomBytes(size)
            const reply = record(yield* rpc.rpc(server.address, "Test.Echo", { Payload: payload, Seq: size, Note: "tls" }))
            assertSameBytes(bytesOf(reply["Payload"]), payload, `TLS size ${size}`)
            assert.strictEqual(reply["Seq"], size)
          }
          yield* Effect.forEach(
            Array.from({ length: 50 }, (_, i) => i),
            (i) => rpc.rpc(server.address, "Test.Echo", { Payload: randomBytes(100), Seq: i, Note: "" }),
            { concurrency: "unbounded", discard: true }
          )
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 1)
          assert.notMatch(server.stderr(), /handshake|non-TLS/)
        }))

      it.live("fails with a typed TLS error, and no plaintext retry, when the server's CA is not trusted", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name, tls: true })
          const wrongCa = yield* pool({ protocol, tls: { ...clientTls, ca: fs.readFileSync(tlsFixtures.otherCa) } })
          for (let i = 0; i < 2; i++) {
            const error = rpcError(yield* Effect.exit(wrongCa.rpc(server.address, "Status.Ping", {})))
            assert.strictEqual(error.reason, "DialFailed")
            assert.isFalse(error.sent)
            assert.instanceOf(error.cause, TransportError)
            assert.strictEqual((error.cause as TransportError).reason, "TlsFailed")
            // The same certificate will be refused again: not worth a retry.
            assert.isFalse(error.isRetryable)
            assert.match(error.detail ?? "", /certificate/)
          }
          assert.strictEqual((yield* wrongCa.stats).dialFailures, 2)

          // A server whose certificate chains to the other CA, as seen by a client trusting ours.
          const impostor = yield* goServer({
            protocol: name,
            tls: { cert: tlsFixtures.otherServerCert, key: tlsFixtures.otherServerKey, verifyClient: false }
          })
          const rpc = yield* pool({ protocol, tls: clientTls })
          const error = rpcError(yield* Effect.exit(rpc.rpc(impostor.address, "Status.Ping", {})))
          assert.strictEqual(error.reason, "DialFailed")
          assert.strictEqual((error.cause as TransportError).reason, "TlsFailed")

          // Exactly the two refused handshakes reached the server: nothing fell back to plaintext.
          const go = yield* stats(rpc, server.address)
          assert.strictEqual(go.Conns, 3)
          assert.match(yield* logged(server, /TLS handshake .* failed/), /TLS handshake .* failed/)
          assert.notMatch(server.stderr() + impostor.stderr(), /non-TLS connection attempted/)
        }))

      it.live("gets a typed error when it speaks plaintext to a Go TLS server", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name, tls: true })
          const rpc = yield* pool({ protocol })
          const error = rpcError(yield* Effect.exit(rpc.rpc(server.address, "Status.Ping", {})))
          assert.include(["ConnectionLost", "StreamOpenFailed"], error.reason, error.message)
          assert.match(error.message, /right after our preamble .* it expects another preamble \(--protocol\) or TLS/)
          assert.match(yield* logged(server, /non-TLS connection attempted/), /non-TLS connection attempted/)
          assert.strictEqual((yield* rpc.stats).sessions, 0)
        }))

      it.live("says the preamble byte is probably wrong when a Go server of the other numbering hangs up", () =>
        Effect.gen(function*() {
          const other = name === "consul" ? "nomad" : "consul"
          const server = yield* goServer({ protocol: other })
          const rpc = yield* pool({ protocol })
          const error = rpcError(yield* Effect.exit(rpc.rpc(server.address, "Status.Ping", {})))
          assert.strictEqual(error.reason, "ConnectionLost", error.message)
          assert.include(
            error.message,
            `right after our preamble (yamux byte 0x0${protocol.muxByte}, ${name} numbering) without sending anything`
          )
          // Consul's yamux byte 4 is Nomad's TLS byte; Nomad's 6 is nothing to Consul.
          const refused = /unsupported type byte|TLS connection attempted/
          assert.match(yield* logged(server, refused), refused)
        }))

      it.live("says the server probably serves plaintext when our TLS byte meets a plaintext Go server", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const rpc = yield* pool({ protocol, tls: clientTls })
          const error = rpcError(yield* Effect.exit(rpc.rpc(server.address, "Status.Ping", {})))
          assert.strictEqual(error.reason, "DialFailed", error.message)
          assert.isFalse(error.isRetryable)
          assert.match(error.message, /closed the connection on our TLS byte .* probably serves plaintext only/)
        }))
    })

    describe(`${name}: FIN, RST and GoAway from our yamux session`, () => {
      const connectWithSocket = (server: GoServer, p: Protocol) =>
        Effect.flatMap(
          Transport.dial({ host: server.host, port: server.port, protocol: p }),
          (socket) => Effect.map(Session.make(socket, { role: "client", address: server.address }), (session) => ({ socket, session }))
        )

      const connect = (server: GoServer, p: Protocol) => Effect.map(connectWithSocket(server, p), ({ session }) => session)

      /**
       * Completes once the session has read the peer's GoAway. Go's test server sends it from the
       * handler's goroutine after the reply is on the wire, so nothing we send afterwards (a ping
       * included) is ordered after it: wait for the frame itself. The check runs after each chunk
       * the socket delivers, once the session's own `data` listener is done with it (a reply's
       * reader may resume while its chunk is still being decoded, GoAway behind it), and once now
       * for a chunk already in hand. The timeout only bounds a failure.
       */
      const peerGoneAway = (socket: net.Socket, session: Session.Session) =>
        Effect.callback<void>((resume) => {
          let done = false
          const check = () =>
            setImmediate(() => {
              if (done || !session.peerGoneAway) return
              done = true
              socket.off("data", check)
              resume(Effect.void)
            })
          socket.on("data", check)
          check()
          return Effect.sync(() => {
            done = true
            socket.off("data", check)
          })
        }).pipe(Effect.timeout("10 seconds"))

      const call = (stream: MuxStream, client: StreamClient, method: string, args: unknown = {}) =>
        Effect.map(client.call(method, args), (v) => ({ stream, v }))

      const open = (session: Session.Session) =>
        Effect.map(session.open, (stream) => ({ stream, client: new StreamClient(stream, protocol.streamByte) }))

      it.live("closes a stream with FIN: Go closes its side, we read EOF, the session carries on", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const session = yield* connect(server, protocol)
          const a = yield* open(session)
          assert.deepStrictEqual((yield* call(a.stream, a.client, "Status.Ping")).v, {})
          assert.strictEqual(session.numStreams, 1)
          yield* a.stream.close
          const eof = yield* a.stream.read.pipe(Effect.timeout("5 seconds"))
          assert.strictEqual(eof, undefined)
          assert.isTrue(a.stream.isClosed)
          assert.strictEqual(session.numStreams, 0)

          const b = yield* open(session)
          assert.strictEqual((yield* call(b.stream, b.client, "Status.Leader")).v, server.address)
          const go = record((yield* call(b.stream, b.client, "Test.Stats")).v)
          assert.deepStrictEqual(go, { Conns: 1, Streams: 2, Served: 3, Live: 1 })
          assert.isFalse(session.isClosed)
        }))

      it.live("resets streams with RST, idle or mid-call, and Go keeps serving new streams", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const session = yield* connect(server, protocol)
          const a = yield* open(session)
          yield* call(a.stream, a.client, "Status.Ping")
          yield* a.stream.reset
          assert.isTrue(a.stream.isClosed)
          assert.strictEqual(session.numStreams, 0)

          const b = yield* open(session)
          const sleeping = yield* Effect.forkChild(b.client.call("Test.Sleep", { Millis: 200 }))
          for (let i = 0; i < 1000 && !b.client.sent; i++) yield* Effect.yieldNow
          assert.isTrue(b.client.sent)
          yield* b.stream.reset
          const exit = yield* Fiber.await(sleeping)
          assert.isTrue(Exit.isFailure(exit))
          const reason = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
          assert.isTrue(reason?._tag === "Fail" && reason.error instanceof MuxError && reason.error.reason === "StreamReset")

          const c = yield* open(session)
          for (let i = 0; i < 3; i++) assert.deepStrictEqual((yield* call(c.stream, c.client, "Status.Ping")).v, {})
          const go = record((yield* call(c.stream, c.client, "Test.Stats")).v)
          assert.strictEqual(go["Conns"], 1)
          assert.strictEqual(go["Streams"], 3)
          assert.strictEqual(go["Live"], 1)
          assert.isFalse(session.isClosed)
        }))

      it.live("sends GoAway without disturbing Go's handling of our streams, old or new", () =>
        Effect.gen(function*() {
          // Go could no longer open streams to us afterwards, but the Go server never opens
          // any, so only the other direction is observable here.
          const server = yield* goServer({ protocol: name })
          const session = yield* connect(server, protocol)
          const a = yield* open(session)
          yield* call(a.stream, a.client, "Status.Ping")
          yield* session.goAway
          // A ping round trip proves Go has read the GoAway before the next calls.
          yield* session.ping
          const payload = randomBytes(300_000)
          const echo = record((yield* call(a.stream, a.client, "Test.Echo", { Payload: payload, Seq: 7, Note: "" })).v)
          assertSameBytes(bytesOf(echo["Payload"]), payload, "echo after GoAway")
          const b = yield* open(session)
          assert.deepStrictEqual((yield* call(b.stream, b.client, "Status.Ping")).v, {})
          const go = record((yield* call(b.stream, b.client, "Test.Stats")).v)
          assert.deepStrictEqual(go, { Conns: 1, Streams: 2, Served: 4, Live: 1 })
          assert.isFalse(session.isClosed)
          assert.notMatch(server.stderr(), /\[ERR\]/)
        }))

      it.live("reads Go's FIN and GoAway: the FIN'd stream reports EOF, new streams are refused, old ones work", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: name })
          const { session, socket } = yield* connectWithSocket(server, protocol)
          const a = yield* open(session)
          yield* call(a.stream, a.client, "Test.CloseStream")
          assert.strictEqual(yield* a.stream.read.pipe(Effect.timeout("5 seconds")), undefined)
          assert.isTrue(a.stream.isClosed)

          const b = yield* open(session)
          yield* call(b.stream, b.client, "Test.GoAway")
          yield* peerGoneAway(socket, session)
          assert.isTrue(session.peerGoneAway)
          const refused = yield* Effect.exit(session.open)
          assert.isTrue(Exit.isFailure(refused))
          const reason = Exit.isFailure(refused) ? refused.cause.reasons.find((r) => r._tag === "Fail") : undefined
          assert.isTrue(reason?._tag === "Fail" && reason.error.reason === "RemoteGoAway")
          assert.strictEqual((yield* call(b.stream, b.client, "Status.Leader")).v, server.address)
        }))
    })
  }
})
