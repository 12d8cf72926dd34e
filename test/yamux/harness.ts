/**
 * Shared helpers for the yamux suites: loopback socket pairs and in-memory pairs, sessions on
 * both ends and a scripted raw peer that writes hand-made frames and records what our Session
 * sends.
 *
 * Nothing here sleeps: `flush` only lets the event loop deliver bytes between TestClock steps.
 */
import { Effect, Fiber } from "effect"
import type { Exit, Scope } from "effect"
import * as net from "node:net"
import type { ByteTransport } from "../../src/wire/ByteTransport.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import { encodeHeader, FrameDecoder, typeData, typePing, typeWindowUpdate } from "../../src/yamux/Frame.ts"
import type { FrameHandler } from "../../src/yamux/Frame.ts"
import * as Session from "../../src/yamux/Session.ts"

/** Lets real I/O flow: `turns` rounds of `setImmediate`, no timers. */
export const flush = (turns = 8): Effect.Effect<void> =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      let left = turns
      const step = (): void => {
        if (left-- <= 0) resolve()
        else setImmediate(step)
      }
      step()
    })
  )

/**
 * Flushes until `predicate` holds, giving up after `turns` rounds (bytes on loopback arrive in a
 * few turns; a large transfer needs more). Fails the test with `what` when it never holds.
 */
export const until = (what: string, predicate: () => boolean, rounds = 1000): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < rounds; i++) {
      if (predicate()) return
      yield* flush(2)
    }
    if (!predicate()) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
  })

/** The fiber's exit if it has finished, else undefined. */
export const poll = <A, E>(fiber: Fiber.Fiber<A, E>): Exit.Exit<A, E> | undefined => fiber.pollUnsafe()

/** A connected loopback TCP pair, destroyed with the Scope. */
export const socketPair: Effect.Effect<{ readonly client: net.Socket; readonly server: net.Socket }, never, Scope.Scope> =
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ client: net.Socket; server: net.Socket }>((resolve, reject) => {
        let accepted: net.Socket | undefined
        let connected: net.Socket | undefined
        const done = () => {
          if (accepted !== undefined && connected !== undefined) {
            listener.close()
            resolve({ client: connected, server: accepted })
          }
        }
        // No Nagle, as Transport and Listener do: small frames must not wait for delayed ACKs.
        const listener = net.createServer({ noDelay: true }, (socket) => {
          accepted = socket
          done()
        })
        listener.on("error", reject)
        listener.listen(0, "127.0.0.1", () => {
          const { port } = listener.address() as net.AddressInfo
          const socket = net.createConnection({ host: "127.0.0.1", port, noDelay: true }, () => {
            connected = socket
            done()
          })
        })
      })
    ),
    ({ client, server }) =>
      Effect.sync(() => {
        client.destroy()
        server.destroy()
      })
  )

/** A connected in-memory pair, destroyed with the Scope. */
export const memoryPair = (options: MemoryTransport.PairOptions = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => MemoryTransport.makePair(options)),
    (pair) =>
      Effect.sync(() => {
        pair.client.destroy()
        pair.server.destroy()
      })
  )

/** Two sessions talking over an in-memory pair. */
export const memorySessionPair = (
  clientOptions: Partial<Session.MakeOptions> = {},
  serverOptions: Partial<Session.MakeOptions> = {},
  pairOptions: MemoryTransport.PairOptions = {}
) =>
  Effect.gen(function*() {
    const pair = yield* memoryPair(pairOptions)
    const client = yield* Session.make(pair.client, { ...clientOptions, role: "client" })
    const server = yield* Session.make(pair.server, { ...serverOptions, role: "server" })
    return { client, server, pair }
  })

/** Two sessions talking over a loopback pair. */
export const sessionPair = (
  clientOptions: Partial<Session.MakeOptions> = {},
  serverOptions: Partial<Session.MakeOptions> = {}
) =>
  Effect.gen(function*() {
    const sockets = yield* socketPair
    const client = yield* Session.make(sockets.client, { ...clientOptions, role: "client" })
    const server = yield* Session.make(sockets.server, { ...serverOptions, role: "server" })
    return { client, server, sockets }
  })

/** `RawPeer.sync` numbers its pings from here, clear of the ids a test picks. */
const syncBase = 0x7f000000

export interface RecordedFrame {
  readonly type: number
  readonly flags: number
  readonly streamId: number
  readonly length: number
  /** Data frame body (empty for other types). */
  readonly data: Buffer
}

/**
 * The far end of a Session, driven by hand. It decodes everything our Session writes into
 * `frames` and writes whatever bytes the test scripts.
 */
export class RawPeer<T extends ByteTransport = net.Socket> implements FrameHandler {
  readonly frames: Array<RecordedFrame> = []
  readonly received: Array<Buffer> = []
  closed = false
  /** Answer our Session's pings automatically. */
  answerPings = false
  private readonly decoder = new FrameDecoder(this, 0xffffffff)
  private current: { type: number; flags: number; streamId: number; length: number; pieces: Array<Buffer> } | undefined
  readonly socket: T

  constructor(socket: T) {
    this.socket = socket
    socket.on("data", (chunk: Uint8Array) => {
      this.received.push(Buffer.from(chunk))
      this.decoder.push(chunk)
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      this.closed = true
    })
  }

  onHeader(type: number, flags: number, streamId: number, length: number): void {
    if (type === typePing && (flags & 2) !== 0 && this.issued.has(length)) {
      this.synced.add(length)
      return
    }
    if (type === typeData && length > 0) {
      this.current = { type, flags, streamId, length, pieces: [] }
      return
    }
    this.frames.push({ type, flags, streamId, length, data: Buffer.alloc(0) })
    if (type === typePing && (flags & 1) !== 0 && this.answerPings) this.send(encodeHeader(typePing, 2, 0, length))
  }

  onData(_streamId: number, piece: Uint8Array, last: boolean): void {
    const current = this.current!
    current.pieces.push(Buffer.from(piece))
    if (last) {
      this.frames.push({ ...current, data: Buffer.concat(current.pieces) })
      this.current = undefined
    }
  }

  private readonly issued = new Set<number>()
  private readonly synced = new Set<number>()
  private nextSync = syncBase

  /**
   * Waits until our Session has processed everything this peer sent so far: frames are
   * handled in order, so once the answer to a ping sent now arrives, all earlier frames were
   * seen. The answers are kept out of `frames`.
   */
  get sync(): Effect.Effect<void> {
    const id = this.nextSync++
    this.issued.add(id)
    this.send(encodeHeader(typePing, 1, 0, id))
    return Effect.andThen(until(`ping ${id} answered`, () => this.synced.has(id)), flush())
  }

  send(...chunks: Array<Uint8Array>): void {
    this.socket.write(Buffer.concat(chunks))
  }

  /** A frame header plus body as one buffer. */
  static frame(type: number, flags: number, streamId: number, payloadOrLength: Uint8Array | number): Buffer {
    if (typeof payloadOrLength === "number") return Buffer.from(encodeHeader(type, flags, streamId, payloadOrLength))
    return Buffer.concat([encodeHeader(type, flags, streamId, payloadOrLength.length), payloadOrLength])
  }

  /** Frames matching a filter. */
  where(predicate: (frame: RecordedFrame) => boolean): Array<RecordedFrame> {
    return this.frames.filter(predicate)
  }

  pings(): Array<RecordedFrame> {
    return this.where((f) => f.type === typePing && (f.flags & 1) !== 0)
  }

  windowUpdates(streamId: number): Array<RecordedFrame> {
    return this.where((f) => f.type === typeWindowUpdate && f.streamId === streamId)
  }
}

/** Our Session on one end of a loopback pair, a RawPeer on the other. */
export const withRawPeer = (options: Partial<Session.MakeOptions> & { readonly role: Session.Role }) =>
  Effect.gen(function*() {
    const sockets = yield* socketPair
    const peer = new RawPeer(sockets.server)
    const session = yield* Session.make(sockets.client, options)
    return { session, peer, socket: sockets.client }
  })

/** Reads a stream to EOF and concatenates what it got. */
export const readAll = (stream: { readonly read: Effect.Effect<Uint8Array | undefined, unknown> }) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    for (;;) {
      const chunk = yield* stream.read
      if (chunk === undefined) return Buffer.concat(parts)
      parts.push(chunk)
    }
  })

/** Deterministic bytes for payloads. */
export const pattern = (size: number, seed = 1): Buffer => {
  const buf = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    buf[i] = x & 0xff
  }
  return buf
}
