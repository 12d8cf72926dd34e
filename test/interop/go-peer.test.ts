/**
 * Validates the Go reference peer against itself (Go client -> Go server) and pins the exact
 * frames the Go server puts on the wire, before any TypeScript stack is tested against it.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import {
  buildGoPeer,
  callGoClient,
  goAvailable,
  goClient,
  goClientArgs,
  goServer,
  type GoProtocol,
  type GoServer,
  tlsFixtures
} from "./goPeer.ts"

const variants: ReadonlyArray<{ readonly name: string; readonly protocol: GoProtocol; readonly tls: boolean }> = [
  { name: "plaintext consul", protocol: "consul", tls: false },
  { name: "plaintext nomad", protocol: "nomad", tls: false },
  { name: "TLS consul", protocol: "consul", tls: true },
  { name: "TLS nomad", protocol: "nomad", tls: true }
]

// Boundaries: empty, 1 byte, str16 max/str32 min, one yamux window and one byte past it, big.
const sizes = [0, 1, 65535, 65536, 262144, 262145, 8 * 1024 * 1024]

const connection = (server: GoServer) =>
  goClientArgs({ address: server.address, protocol: server.protocol, tls: server.tls })

interface Stats {
  readonly Conns: number
  readonly Streams: number
  readonly Served: number
  readonly Live: number
}

describe.runIf(goAvailable(import.meta.url))("Go peer", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  for (const v of variants) {
    describe(v.name, () => {
      it.live("echoes payloads of every boundary size byte-for-byte", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: v.protocol, tls: v.tls })
          for (const size of sizes) {
            const calls = size >= 1024 * 1024 ? 4 : 40
            const run = yield* goClient([
              ...connection(server),
              "-calls",
              String(calls),
              "-concurrency",
              "2",
              "-size",
              String(size)
            ])
            assert.strictEqual(run.code, 0, `size ${size}: ${run.stdout}\n${run.stderr}`)
            assert.strictEqual(run.json?.ok, calls, `size ${size}`)
            assert.strictEqual(run.json?.failed, 0)
            assert.strictEqual(run.json?.sessions, 1)
            assert.strictEqual(run.json?.tls, v.tls)
          }
        }))

      it.live("serves 200 concurrent callers over one yamux session", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: v.protocol, tls: v.tls })
          const run = yield* goClient([...connection(server), "-calls", "4000", "-concurrency", "200", "-size", "512"])
          assert.strictEqual(run.code, 0, run.stdout + run.stderr)
          assert.strictEqual(run.json?.ok, 4000)
          assert.strictEqual(run.json?.sessions, 1)
          assert.isAtMost(run.json?.streams ?? Infinity, 200)
          const stats = yield* Effect.promise(() => callGoClient(connection(server), "Test.Stats"))
          assert.strictEqual((stats.json?.reply as Stats).Served, 4001)
        }))

      it.live("returns Test.Fail's message as a remote error and keeps serving", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: v.protocol, tls: v.tls })
          const failed = yield* Effect.promise(() =>
            callGoClient(connection(server), "Test.Fail", { Message: "boom: no such thing" })
          )
          assert.strictEqual(failed.code, 1)
          assert.strictEqual(failed.json?.ok, false)
          assert.strictEqual(failed.json?.remote, true)
          assert.strictEqual(failed.json?.error, "boom: no such thing")

          const leader = yield* Effect.promise(() => callGoClient(connection(server), "Status.Leader"))
          assert.strictEqual(leader.json?.reply, server.address)
          const ping = yield* Effect.promise(() => callGoClient(connection(server), "Status.Ping"))
          assert.deepStrictEqual(ping.json?.reply, {})
          const unknown = yield* Effect.promise(() => callGoClient(connection(server), "Test.Nope"))
          assert.strictEqual(unknown.json?.remote, true)
          assert.match(unknown.json?.error ?? "", /can't find method Test\.Nope/)
        }))

      it.live("counts conns, streams, calls and live sessions in Test.Stats", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: v.protocol, tls: v.tls })
          const stats = (run: { readonly json: { readonly reply: unknown } | undefined }) => run.json?.reply as Stats
          const first = stats(yield* Effect.promise(() => callGoClient(connection(server), "Test.Stats")))
          assert.deepStrictEqual(first, { Conns: 1, Streams: 1, Served: 1, Live: 1 })

          const load = yield* goClient([...connection(server), "-calls", "10", "-concurrency", "2"])
          // One goroutine may finish every call before the other starts: one or two streams.
          const loadStreams = load.json?.streams ?? 0
          assert.isTrue(loadStreams === 1 || loadStreams === 2, `streams ${loadStreams}`)

          // The first two clients have exited; their sessions must be gone (Live back to 1).
          let last = first
          let probes = 0
          for (; probes < 50; probes++) {
            last = stats(yield* Effect.promise(() => callGoClient(connection(server), "Test.Stats")))
            if (last.Live === 1) break
            yield* Effect.sleep("50 millis")
          }
          assert.strictEqual(last.Live, 1)
          assert.strictEqual(last.Conns, 3 + probes)
          assert.strictEqual(last.Streams, 2 + loadStreams + probes)
          assert.strictEqual(last.Served, 12 + probes)

          const echo = yield* Effect.promise(() =>
            callGoClient(connection(server), "Test.Echo", { Payload: Buffer.from("hi").toString("base64"), Seq: 42, Note: "n" })
          )
          assert.deepStrictEqual(echo.json?.reply, { Payload: "hi", Seq: 42, Note: "n", Served: last.Served + 1 })
        }))

      it.live("survives client-side GoAway, FIN and RST from the Go client", () =>
        Effect.gen(function*() {
          const server = yield* goServer({ protocol: v.protocol, tls: v.tls })
          for (const fault of ["goaway", "fin", "rst", "abandon-fin", "abandon-rst"]) {
            const run = yield* goClient([...connection(server), "-calls", "100", "-concurrency", "4", "-size", "100", "-fault", fault])
            assert.strictEqual(run.code, 0, `${fault}: ${run.stdout}\n${run.stderr}`)
            assert.strictEqual(run.json?.ok, 100, fault)
          }
        }))
    })
  }

  describe("TLS verification", () => {
    it.live("a client rejects a server whose certificate chains to an untrusted CA", () =>
      Effect.gen(function*() {
        const server = yield* goServer({
          tls: { cert: tlsFixtures.otherServerCert, key: tlsFixtures.otherServerKey, verifyClient: false }
        })
        const run = yield* goClient([...goClientArgs({ address: server.address, tls: true }), "-calls", "1"])
        assert.notStrictEqual(run.code, 0)
        assert.match(run.json?.fatal ?? "", /unknown authority/)
      }))

    it.live("a TLS server refuses plaintext and clients without a trusted certificate", () =>
      Effect.gen(function*() {
        const server = yield* goServer({ tls: true })
        const plain = yield* goClient([...goClientArgs({ address: server.address }), "-calls", "1"])
        assert.strictEqual(plain.json?.ok, 0)
        const noCert = yield* goClient([...goClientArgs({ address: server.address, tls: { cert: null } }), "-calls", "1"])
        assert.strictEqual(noCert.json?.ok, 0)
        const otherCert = yield* goClient([
          ...goClientArgs({
            address: server.address,
            tls: { cert: tlsFixtures.otherClientCert, key: tlsFixtures.otherClientKey }
          }),
          "-calls",
          "1"
        ])
        assert.strictEqual(otherCert.json?.ok, 0)
        assert.match(server.stderr(), /client didn't provide a certificate/)
        assert.match(server.stderr(), /non-TLS connection attempted/)
        const good = yield* goClient([
          ...goClientArgs({ address: `localhost:${server.port}`, tls: { serverName: "server.dc1.consul" } }),
          "-calls",
          "1"
        ])
        assert.strictEqual(good.json?.ok, 1)
      }))
  })

  describe("wire bytes from the Go server (plaintext consul, hand-built frames)", () => {
    it.live("replies to Status.Ping exactly as wire-protocol.md §1.4 shows", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        raw.send(syn(1), data(1, request(1, "Status.Ping", [0x80])))
        const ack = yield* raw.next
        assert.deepStrictEqual(frameHead(ack), { type: 1, flags: 2, stream: 1, length: 0 })
        const reply = yield* raw.next
        assert.deepStrictEqual(frameHead(reply), { type: 0, flags: 0, stream: 1, length: 40 })
        assert.deepStrictEqual(hex(reply.body), hex(response(1, "Status.Ping", [0x80])))
      }))

    it.live("encodes []byte and strings as raw str (fixstr/str16/str32, never str8 or bin) and an empty payload as nil", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        const payload = Array.from({ length: 40 }, (_, i) => i)
        const note = Buffer.from("a note that needs more than 31 bytes")
        // We send str8 and bin8 on purpose: Go must accept both and answer in its own encoding.
        const args = [
          0x83,
          ...str("Note"),
          0xd9,
          note.length,
          ...note,
          ...str("Payload"),
          0xc4,
          payload.length,
          ...payload,
          ...str("Seq"),
          0x07
        ]
        raw.send(syn(1), data(1, request(1, "Test.Echo", args)))
        yield* raw.next // ACK
        const reply = yield* raw.next
        const head = response(1, "Test.Echo", [])
        assert.deepStrictEqual(hex(reply.body.subarray(0, head.length)), hex(head))
        const expected = [
          0x84,
          ...str("Note"),
          0xda,
          0,
          note.length,
          ...note,
          ...str("Payload"),
          0xda,
          0,
          40,
          ...payload,
          ...str("Seq"),
          0x07,
          ...str("Served")
        ]
        assert.deepStrictEqual(hex(reply.body.subarray(head.length, head.length + expected.length)), hex(expected))

        raw.send(data(1, request(2, "Test.Echo", [0x81, ...str("Payload"), 0xa0])))
        const empty = yield* raw.next
        const body = empty.body.subarray(response(2, "Test.Echo", []).length)
        const nilPayload = [0x84, ...str("Note"), 0xa0, ...str("Payload"), 0xc0]
        assert.deepStrictEqual(hex(body.subarray(0, nilPayload.length)), hex(nilPayload))
      }))

    it.live("Test.GoAway replies, then sends GoAway(normal), then RSTs new streams", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        raw.send(syn(1), data(1, request(1, "Test.GoAway", [0x80])))
        yield* raw.next // ACK
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(1, "Test.GoAway", [0x80])))
        assert.deepStrictEqual(frameHead(yield* raw.next), { type: 3, flags: 0, stream: 0, length: 0 })
        raw.send(syn(3))
        assert.deepStrictEqual(frameHead(yield* raw.next), { type: 1, flags: 8, stream: 3, length: 0 })
        // Existing streams keep working after GoAway.
        raw.send(data(1, request(2, "Status.Ping", [0x80])))
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(2, "Status.Ping", [0x80])))
      }))

    it.live("Test.CloseStream replies, then FINs the stream", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        raw.send(syn(1), data(1, request(1, "Test.CloseStream", [0x80])))
        yield* raw.next // ACK
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(1, "Test.CloseStream", [0x80])))
        assert.deepStrictEqual(frameHead(yield* raw.next), { type: 1, flags: 4, stream: 1, length: 0 })
      }))

    it.live("Test.ResetStream replies, then RSTs the stream", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        raw.send(syn(1), data(1, request(1, "Test.ResetStream", [0x80])))
        yield* raw.next // ACK
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(1, "Test.ResetStream", [0x80])))
        assert.deepStrictEqual(frameHead(yield* raw.next), { type: 1, flags: 8, stream: 1, length: 0 })
        // The session is unaffected.
        raw.send(syn(3), data(3, request(2, "Status.Ping", [0x80])))
        yield* raw.next // ACK
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(2, "Status.Ping", [0x80])))
      }))

    it.live("Test.CloseSession replies, then closes the TCP connection without a GoAway", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const raw = yield* rawSession(server.port)
        raw.send(syn(1), data(1, request(1, "Test.CloseSession", [0x80])))
        yield* raw.next // ACK
        assert.deepStrictEqual(hex((yield* raw.next).body), hex(response(1, "Test.CloseSession", [0x80])))
        const end = yield* Effect.exit(raw.next)
        assert.isTrue(end._tag === "Failure")
        assert.isTrue(raw.closed())
      }))
  })
})

// ---------------------------------------------------------------------------------------------
// A deliberately tiny, independent yamux/msgpack framer, so these tests do not depend on the
// code under test.

interface Frame {
  readonly type: number
  readonly flags: number
  readonly stream: number
  readonly length: number
  readonly body: Buffer
}

const frameHead = (f: Frame) => ({ type: f.type, flags: f.flags, stream: f.stream, length: f.length })

const hex = (b: Uint8Array | ReadonlyArray<number>) => Buffer.from(b as Uint8Array).toString("hex")

const header = (type: number, flags: number, stream: number, length: number) => {
  const h = Buffer.alloc(12)
  h.writeUInt8(0, 0)
  h.writeUInt8(type, 1)
  h.writeUInt16BE(flags, 2)
  h.writeUInt32BE(stream, 4)
  h.writeUInt32BE(length, 8)
  return h
}

const syn = (stream: number) => header(1, 1, stream, 0)

const data = (stream: number, body: ReadonlyArray<number>) =>
  Buffer.concat([header(0, 0, stream, body.length), Buffer.from(body as Array<number>)])

const str = (s: string): Array<number> => {
  const b = Buffer.from(s)
  if (b.length >= 32) throw new Error("fixstr only")
  return [0xa0 | b.length, ...b]
}

// {Seq, ServiceMethod} then the args, as net-rpc-msgpackrpc writes a request.
const request = (seq: number, method: string, args: ReadonlyArray<number>): Array<number> => [
  0x82,
  ...str("Seq"),
  seq,
  ...str("ServiceMethod"),
  ...str(method),
  ...args
]

const response = (seq: number, method: string, body: ReadonlyArray<number>): Array<number> => [
  0x83,
  ...str("Error"),
  0xa0,
  ...str("Seq"),
  seq,
  ...str("ServiceMethod"),
  ...str(method),
  ...body
]

const rawSession = (port: number) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(port, "127.0.0.1", () => resolve(socket))
          socket.once("error", reject)
        })
    ),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(
    Effect.map((socket) => {
      socket.setNoDelay(true)
      socket.write(Buffer.from([0x04]))
      let buf = Buffer.alloc(0)
      let closed = false
      const frames: Array<Frame> = []
      let wake: (() => void) | undefined
      const parse = () => {
        for (;;) {
          if (buf.length < 12) return
          const type = buf.readUInt8(1)
          const length = buf.readUInt32BE(8)
          const bodyLen = type === 0 ? length : 0
          if (buf.length < 12 + bodyLen) return
          frames.push({
            type,
            flags: buf.readUInt16BE(2),
            stream: buf.readUInt32BE(4),
            length,
            body: Buffer.from(buf.subarray(12, 12 + bodyLen))
          })
          buf = buf.subarray(12 + bodyLen)
        }
      }
      socket.on("data", (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        parse()
        wake?.()
      })
      socket.on("close", () => {
        closed = true
        wake?.()
      })
      socket.on("error", () => {})
      const next: Effect.Effect<Frame, Error> = Effect.callback<Frame, Error>((resume) => {
        const check = () => {
          const f = frames.shift()
          if (f !== undefined) {
            wake = undefined
            resume(Effect.succeed(f))
          } else if (closed) {
            wake = undefined
            resume(Effect.fail(new Error("connection closed")))
          }
        }
        wake = check
        check()
        return Effect.sync(() => {
          if (wake === check) wake = undefined
        })
      }).pipe(
        Effect.timeoutOrElse({
          duration: "5 seconds",
          orElse: () => Effect.fail(new Error("no frame within 5 s"))
        })
      )
      return {
        send: (...chunks: ReadonlyArray<Buffer>) => socket.write(Buffer.concat(chunks)),
        next,
        closed: () => closed
      }
    })
  )
