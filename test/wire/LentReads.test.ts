/**
 * Sockets that read into one reused buffer (`LentReads.ts`), on loopback: what the dial and accept paths
 * hand the session.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as net from "node:net"
import * as LentReads from "../../src/wire/LentReads.ts"
import * as Listener from "../../src/wire/Listener.ts"
import * as Transport from "../../src/wire/Transport.ts"
import { rawClient, until } from "./fixtures.ts"

/**
 * A server that writes `chunks` to each client, one per turn of the event loop, then closes; with `afterByte`,
 * only once the client has sent two bytes (so the client listens before anything arrives).
 */
const writingServer = (chunks: ReadonlyArray<Uint8Array>, afterByte = false) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<net.Server>((resolve) => {
        const server = net.createServer({ noDelay: true }, (socket) => {
          socket.on("error", () => {})
          let i = 0
          const next = (): void => {
            if (i === chunks.length) return void socket.end()
            socket.write(chunks[i++]!, () => setImmediate(next))
          }
          if (!afterByte) return next()
          // Two bytes: a dialed client's preamble, then the byte that says it listens.
          let got = 0
          const onData = (chunk: Buffer) => {
            got += chunk.length
            if (got < 2) return
            socket.off("data", onData)
            next()
          }
          socket.on("data", onData)
        })
        server.listen(0, "127.0.0.1", () => resolve(server))
      })
    ),
    (server) => Effect.sync(() => server.close())
  ).pipe(Effect.map((server) => (server.address() as net.AddressInfo).port))

describe("LentReads", () => {
  it.live("lends every read of every dialed socket from one buffer, in order and whole", () =>
    Effect.gen(function*() {
      const chunks = Array.from({ length: 20 }, (_, i) => new Uint8Array(1000 + i).fill(i))
      const port = yield* writingServer(chunks)
      const received: Array<Array<number>> = [[], []]
      const buffers = new Set<ArrayBufferLike>()
      const ended = [false, false]
      for (const k of [0, 1]) {
        const socket = LentReads.connect({ host: "127.0.0.1", port })
        yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
        socket.on("data", (lent: Uint8Array) => {
          buffers.add(lent.buffer)
          received[k]!.push(...lent)
        })
        socket.on("end", () => (ended[k] = true))
      }
      yield* until("both sockets read to the end", () => ended[0]! && ended[1]!)
      const all = chunks.flatMap((c) => [...c])
      assert.deepStrictEqual(received[0], all)
      assert.deepStrictEqual(received[1], all)
      // Every read of both sockets landed in the same memory: no allocation per read.
      assert.strictEqual(buffers.size, 1)
    }))

  it.live("keeps what arrives before anyone listens, and hands it over in order", () =>
    Effect.gen(function*() {
      const chunks = Array.from({ length: 5 }, (_, i) => new Uint8Array(300).fill(i + 1))
      const port = yield* writingServer(chunks)
      const socket = LentReads.connect({ host: "127.0.0.1", port })
      yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
      // Nobody listens while the server writes: the reads are copied and held, not dropped.
      yield* until("the reads are held", () => socket.readableLength >= 300)
      const received: Array<number> = []
      let ended = false
      socket.on("data", (chunk: Uint8Array) => received.push(...chunk))
      socket.on("end", () => (ended = true))
      yield* until("the socket read to the end", () => ended)
      assert.deepStrictEqual(received, chunks.flatMap((c) => [...c]))
    }))

  it.live("dials plaintext with lent reads: Transport.dial's reads land in the shared buffer", () =>
    Effect.gen(function*() {
      const port = yield* writingServer([new Uint8Array(10).fill(7), new Uint8Array(10).fill(8)], true)
      const buffers = new Set<ArrayBufferLike>()
      let ended = 0
      const lent = LentReads.connect({ host: "127.0.0.1", port })
      yield* Effect.addFinalizer(() => Effect.sync(() => lent.destroy()))
      lent.on("data", (chunk: Uint8Array) => buffers.add(chunk.buffer))
      lent.on("end", () => ended++)
      lent.write(Uint8Array.of(0, 0))
      const dialed = yield* Transport.dial({ host: "127.0.0.1", port })
      dialed.on("data", (chunk: Uint8Array) => buffers.add(chunk.buffer))
      dialed.on("end", () => ended++)
      // The preamble byte went out with the dial; the server answers only now that we listen.
      dialed.write(Uint8Array.of(0))
      yield* until("both sockets read to the end", () => ended === 2)
      assert.strictEqual(buffers.size, 1)
    }))

  it.live("hands an accepted plaintext connection on with lent reads, bytes after the preamble included", () =>
    Effect.gen(function*() {
      const accepted: Array<{ readonly data: Array<number>; readonly buffers: Set<ArrayBufferLike> }> = []
      const listening = yield* Listener.listen({}, ({ socket }) =>
        Effect.callback<void>((resume) => {
          const conn = { data: [] as Array<number>, buffers: new Set<ArrayBufferLike>() }
          accepted.push(conn)
          socket.on("data", (chunk: Uint8Array) => {
            conn.buffers.add(chunk.buffer)
            conn.data.push(...chunk)
          })
          socket.on("close", () => resume(Effect.void))
        }))
      const client = yield* rawClient(listening.port)
      client.socket.write(Uint8Array.of(0x04, 1, 2, 3))
      yield* until("the bytes after the preamble", () => accepted[0]?.data.length === 3)
      for (let i = 0; i < 5; i++) {
        client.socket.write(new Uint8Array(100).fill(i))
        yield* until(`write ${i}`, () => accepted[0]!.data.length === 3 + 100 * (i + 1))
      }
      assert.deepStrictEqual(accepted[0]!.data.slice(0, 3), [1, 2, 3])
      // After the bytes held with the preamble, reads are lent from the one shared buffer.
      assert.isAtMost(accepted[0]!.buffers.size, 2)
    }))
})
