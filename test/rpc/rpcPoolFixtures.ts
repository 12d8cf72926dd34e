/**
 * Helpers of the RpcPool suites (`RpcPool*.test.ts`): I/O turns that are not timers, the embedded
 * test server and raw loopback peers (one that speaks bare yamux frames), a clock that counts its
 * sleepers, a port nobody listens on, and small readers of errors and values.
 */
import { assert } from "@effect/vitest"
import { Cause, Clock, Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import type { Protocol } from "../../src/wire/Protocol.ts"
import type { ServerTls } from "../../src/wire/Tls.ts"

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/** One event-loop turn, so loopback I/O can flow. Not a timer. */
export const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

export const settle = (turns = 10) => Effect.repeat(flush, { times: turns - 1 })

/** Lets I/O flow until `condition` holds (bounded by turns, not by time). */
export const waitUntil = (condition: () => boolean, what: string, turns = 2000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns; i++) {
      if (condition()) return
      yield* flush
    }
    assert.fail(`gave up waiting for ${what}`)
  })

/** Keepalive pings need real round trips; tests that move the clock far turn them off on both ends. */
export const quiet = { enableKeepAlive: false } as const

export interface TestServer extends RpcServer.Server {
  /** `Test.Sleep` calls whose handler has started (so their sleep is on the clock). */
  readonly sleeping: () => number
}

/**
 * The test service, plus `Test.GoAway` (sends GoAway on the caller's session)
 * and a `Test.Sleep` that counts the sleeps it has started.
 */
export const serve = (
  options: {
    readonly protocol?: Protocol
    readonly port?: number | undefined
    readonly tls?: ServerTls
    readonly maxMessageSize?: number
  } = {}
) =>
  Effect.gen(function*() {
    let sleeping = 0
    const server = yield* RpcServer.serve({
      protocol: options.protocol,
      port: options.port,
      tls: options.tls,
      maxMessageSize: options.maxMessageSize,
      session: quiet,
      handlers: {
        ...TestService.handlers,
        "Test.Sleep": (args, context) =>
          Effect.suspend(() => {
            sleeping++
            return TestService.handlers["Test.Sleep"]!(args, context)
          }),
        "Test.GoAway": (_, { session }) => Effect.as(session.goAway, {})
      }
    })
    return { ...server, sleeping: () => sleeping } satisfies TestServer
  })

export const fixture = (name: string) => fs.readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url))

export const serverTls: ServerTls = { cert: fixture("server.pem"), key: fixture("server-key.pem") }

export interface RawServer {
  readonly port: number
  readonly address: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Connections still open on the server side. */
  readonly open: () => number
}

/** A plain TCP listener that hands each connection to `onConnection` and speaks nothing. */
export const rawServer = (onConnection: (socket: net.Socket) => void, port = 0) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; readonly raw: RawServer }>(
      (resume) => {
        const sockets = new Set<net.Socket>()
        let accepted = 0
        const server = net.createServer((socket) => {
          accepted++
          sockets.add(socket)
          socket.on("error", () => {})
          socket.on("close", () => sockets.delete(socket))
          // Consume what arrives, or Node never reports the peer's close.
          socket.resume()
          onConnection(socket)
        })
        server.listen(port, "127.0.0.1", () => {
          const port = (server.address() as net.AddressInfo).port
          resume(Effect.succeed({
            server,
            sockets,
            raw: { port, address: `127.0.0.1:${port}`, accepted: () => accepted, open: () => sockets.size }
          }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  ).pipe(Effect.map(({ raw }) => raw))

export interface FakeConn {
  /** Stream ids the client opened (SYN), in order. */
  readonly syns: Array<number>
  /** Sends a normal GoAway. */
  readonly goAway: Effect.Effect<void>
  /** ACKs the client's stream `id`. */
  readonly ack: (id: number) => Effect.Effect<void>
}

export const yamuxFrame = (type: number, flags: number, streamId: number, length: number) => {
  const frame = Buffer.alloc(12)
  frame.writeUInt8(0, 0)
  frame.writeUInt8(type, 1)
  frame.writeUInt16BE(flags, 2)
  frame.writeUInt32BE(streamId, 4)
  frame.writeUInt32BE(length, 8)
  return frame
}

/** A yamux "server" that only records SYNs and sends the frames a test asks for. */
export const fakeYamux = Effect.gen(function*() {
  const conns: Array<FakeConn> = []
  const raw = yield* rawServer((socket) => {
    const syns: Array<number> = []
    const send = (frame: Buffer) =>
      Effect.callback<void>((resume) => {
        socket.write(frame, () => resume(Effect.void))
      })
    conns.push({ syns, goAway: send(yamuxFrame(3, 0, 0, 0)), ack: (id) => send(yamuxFrame(1, 2, id, 0)) })
    let pending = Buffer.alloc(0)
    let preamble = true
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk])
      if (preamble && pending.length > 0) {
        pending = pending.subarray(1)
        preamble = false
      }
      while (pending.length >= 12) {
        const type = pending.readUInt8(1)
        const flags = pending.readUInt16BE(2)
        const id = pending.readUInt32BE(4)
        const length = pending.readUInt32BE(8)
        const size = type === 0 ? 12 + length : 12
        if (pending.length < size) break
        if ((flags & 1) !== 0) syns.push(id)
        pending = pending.subarray(size)
      }
    })
  })
  return { ...raw, conns }
})

/** `clock`, counting the sleeps in progress on it and every sleep started. */
export const countSleeps = (clock: Clock.Clock): Clock.Clock & { readonly sleeping: () => number; readonly slept: () => number } => {
  let sleeping = 0
  let slept = 0
  return {
    currentTimeMillisUnsafe: () => clock.currentTimeMillisUnsafe(),
    currentTimeMillis: clock.currentTimeMillis,
    currentTimeNanosUnsafe: () => clock.currentTimeNanosUnsafe(),
    currentTimeNanos: clock.currentTimeNanos,
    monotonicTimeNanosUnsafe: () => clock.monotonicTimeNanosUnsafe(),
    monotonicTimeNanos: clock.monotonicTimeNanos,
    sleep: (duration) =>
      Effect.suspend(() => {
        sleeping++
        slept++
        return Effect.ensuring(clock.sleep(duration), Effect.sync(() => sleeping--))
      }),
    sleeping: () => sleeping,
    slept: () => slept
  }
}

/** The current clock, counting the sleeps in progress on it. */
export const countingClock = Effect.map(Clock.clockWith(Effect.succeed), countSleeps)

/** A loopback port where nothing listens. */
export const deadPort = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

export const rpcError = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  assert.isTrue(Exit.isFailure(exit), "expected the call to fail")
  if (!Exit.isFailure(exit)) throw new Error("unreachable")
  const error = Cause.findErrorOption(exit.cause)
  assert.strictEqual(error._tag, "Some", `expected a typed error, got ${Cause.pretty(exit.cause)}`)
  if (error._tag !== "Some") throw new Error("unreachable")
  assert.instanceOf(error.value, RpcError)
  return error.value
}

export const field = (value: Value, name: string): Value | undefined =>
  (value as Record<string, Value>)[name]

export const range = (n: number) => Array.from({ length: n }, (_, i) => i)

export const ping = (pool: RpcPool.RpcPool.Service, address: string) => pool.rpc(address, "Status.Ping", {})
