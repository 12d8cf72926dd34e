/**
 * Fault injectors for the fault suite, all on loopback:
 *
 * - `serve`: the test service plus `Test.GoAway`, counting the `Test.Sleep` calls it has started;
 * - `proxy`: a TCP proxy in front of a real server that can make the connections open now go
 *   silent without FIN or RST (a half-open link) or stop reading what the client sends;
 * - `badPeer`: a server that takes the preamble and then answers the client's first stream with
 *   one scripted fault (garbage, a wrong yamux version, a 4 GiB frame, invalid msgpack, a stream
 *   RST, a refused stream, a TCP RST, a hang-up or silence);
 * - `watchWrites`: the largest `writableLength` of the client sockets to one port.
 *
 * Nothing here sleeps: I/O is let through with `until`/`flush` (setImmediate turns), and time
 * moves only when a test moves the TestClock.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import type { Scope } from "effect"
import * as net from "node:net"
import { RpcError } from "../../src/rpc/RpcError.ts"
import {
  encodeHeader,
  flagACK,
  flagRST,
  flagSYN,
  FrameDecoder,
  typeData,
  typePing,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"

export { flush, until } from "../yamux/harness.ts"

const ignore = (): void => {}

// `quiet`, `serve` (the test service with GoAway and counted sleeps) and `TestServer` are the RPC pool suites' own.
export { quiet, serve, type TestServer } from "../rpc/rpcPoolFixtures.ts"

// ---------------------------------------------------------------------------
// Proxy
// ---------------------------------------------------------------------------

type LinkMode = "pass" | "blackhole" | "stopReading"

interface Link {
  readonly client: net.Socket
  readonly upstream: net.Socket
  mode: LinkMode
}

export interface Proxy {
  readonly port: number
  readonly address: string
  /** Client connections accepted so far. */
  readonly accepted: () => number
  /** Client connections not closed yet. */
  readonly open: () => number
  /**
   * Every connection open now goes silent both ways: nothing is read or forwarded, and
   * neither side gets a FIN or RST (a partition, or a peer that froze). New connections pass.
   * Returns an Effect that destroys exactly those connections, for when both ends gave up.
   */
  readonly blackhole: Effect.Effect<Effect.Effect<void>>
  /** Stops reading what the clients of the connections open now send. New connections pass. */
  readonly stopReading: Effect.Effect<void>
}

/** A loopback TCP proxy to `127.0.0.1:upstreamPort`, closed with the Scope. */
export const proxy = (upstreamPort: number): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: net.Server; readonly links: Set<Link>; readonly proxy: Proxy }>((resume) => {
      const links = new Set<Link>()
      let accepted = 0
      const server = net.createServer({ noDelay: true }, (client) => {
        accepted++
        const upstream = net.createConnection({ host: "127.0.0.1", port: upstreamPort, noDelay: true })
        const link: Link = { client, upstream, mode: "pass" }
        links.add(link)
        client.on("error", ignore)
        upstream.on("error", ignore)
        // Writes before the upstream connects are buffered by the socket.
        client.on("data", (chunk: Buffer) => {
          if (link.mode !== "blackhole") upstream.write(chunk)
        })
        upstream.on("data", (chunk: Buffer) => {
          if (link.mode !== "blackhole") client.write(chunk)
        })
        // A hang-up on one side is passed on, except across a silent link, where nothing is.
        client.on("close", () => {
          links.delete(link)
          if (link.mode !== "blackhole") upstream.destroy()
        })
        upstream.on("close", () => {
          if (link.mode !== "blackhole") client.destroy()
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        const each = (f: (link: Link) => void) => Effect.sync(() => links.forEach(f))
        resume(Effect.succeed({
          server,
          links,
          proxy: {
            port,
            address: `127.0.0.1:${port}`,
            accepted: () => accepted,
            open: () => links.size,
            blackhole: Effect.sync(() => {
              const silenced = [...links]
              for (const link of silenced) {
                link.mode = "blackhole"
                link.client.pause()
                link.upstream.pause()
              }
              return Effect.sync(() => {
                for (const link of silenced) {
                  links.delete(link)
                  link.client.destroy()
                  link.upstream.destroy()
                }
              })
            }),
            stopReading: each((link) => {
              link.mode = "stopReading"
              link.client.pause()
            })
          }
        }))
      })
    }),
    ({ links, server }) =>
      Effect.sync(() => {
        for (const link of links) {
          link.client.destroy()
          link.upstream.destroy()
        }
        server.close()
      })
  ).pipe(Effect.map(({ proxy }) => proxy))

// ---------------------------------------------------------------------------
// Bad peers
// ---------------------------------------------------------------------------

/** What a bad peer does when the client opens its first stream. */
export type BadPeerFault =
  | "garbage"
  | "wrongVersion"
  | "hugeFrame"
  | "invalidMsgpack"
  | "streamReset"
  | "streamRefused"
  | "tcpReset"
  | "hangUp"
  | "silence"

export interface BadPeer {
  readonly fault: BadPeerFault
  readonly port: number
  readonly address: string
  /** Connections accepted so far. */
  readonly accepted: () => number
  /** Connections not closed yet. */
  readonly open: () => number
  /** Stream ids the client opened (sent SYN for), on every connection. */
  readonly syns: () => ReadonlyArray<number>
  /** Stream ids the client reset (sent RST for). */
  readonly resets: () => ReadonlyArray<number>
  /** Pings the client sent. */
  readonly pings: () => number
}

const frame = (type: number, flags: number, streamId: number, payload: Uint8Array): Buffer =>
  Buffer.concat([encodeHeader(type, flags, streamId, payload.length), payload])

/** The bytes (or socket action) of each fault, answering stream `id`. */
const act = (fault: BadPeerFault, socket: net.Socket, id: number): void => {
  switch (fault) {
    case "garbage":
      // What an HTTP server says to bytes it does not understand: 'H' is not yamux version 0.
      socket.write("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
      return
    case "wrongVersion": {
      const header = Buffer.from(encodeHeader(typeWindowUpdate, flagACK, id, 0))
      header[0] = 1
      socket.write(header)
      return
    }
    case "hugeFrame":
      socket.write(encodeHeader(typeData, flagACK, id, 0xffffffff))
      return
    case "invalidMsgpack":
      // Well-formed yamux carrying 0xc1, the one byte msgpack never uses.
      socket.write(Buffer.concat([
        encodeHeader(typeWindowUpdate, flagACK, id, 0),
        frame(typeData, 0, id, Uint8Array.of(0xc1))
      ]))
      return
    case "streamReset":
      // Accepted, then reset.
      socket.write(encodeHeader(typeWindowUpdate, flagACK | flagRST, id, 0))
      return
    case "streamRefused":
      // Reset without an ACK: the open is refused, as after a GoAway or with a full backlog.
      socket.write(encodeHeader(typeWindowUpdate, flagRST, id, 0))
      return
    case "tcpReset":
      socket.resetAndDestroy()
      return
    case "hangUp":
      socket.end()
      return
    case "silence":
      return
  }
}

/**
 * A server that reads the one-byte preamble, decodes the client's yamux frames, and answers
 * the first stream the client opens on each connection with `fault` (every stream, for
 * `streamRefused`). It never answers pings.
 */
export const badPeer = (fault: BadPeerFault): Effect.Effect<BadPeer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ readonly server: net.Server; readonly sockets: Set<net.Socket>; readonly peer: BadPeer }>(
      (resume) => {
        const sockets = new Set<net.Socket>()
        const syns: Array<number> = []
        const resets: Array<number> = []
        let accepted = 0
        let pings = 0
        const server = net.createServer({ noDelay: true }, (socket) => {
          accepted++
          sockets.add(socket)
          socket.on("error", ignore)
          socket.on("close", () => sockets.delete(socket))
          let preamble = true
          let answered = false
          const decoder = new FrameDecoder({
            onHeader: (type, flags, streamId) => {
              if (type === typePing && (flags & flagSYN) !== 0) pings++
              if ((type === typeWindowUpdate || type === typeData) && (flags & flagRST) !== 0) resets.push(streamId)
              if ((flags & flagSYN) !== 0 && type !== typePing) syns.push(streamId)
              if ((flags & flagSYN) !== 0 && type !== typePing && (!answered || fault === "streamRefused")) {
                answered = true
                act(fault, socket, streamId)
              }
            },
            onData: ignore
          }, 0xffffffff)
          socket.on("data", (chunk: Buffer) => {
            if (preamble) {
              preamble = false
              chunk = chunk.subarray(1)
            }
            if (!socket.destroyed) decoder.push(chunk)
          })
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as net.AddressInfo).port
          resume(Effect.succeed({
            server,
            sockets,
            peer: {
              fault,
              port,
              address: `127.0.0.1:${port}`,
              accepted: () => accepted,
              open: () => sockets.size,
              syns: () => syns,
              resets: () => resets,
              pings: () => pings
            }
          }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  ).pipe(Effect.map(({ peer }) => peer))

// ---------------------------------------------------------------------------
// Observation
// ---------------------------------------------------------------------------

/**
 * Records, for the sockets whose remote port is `port`, the largest `writableLength` seen right
 * after a write: the bytes Node holds for a peer that does not read. The pool does not hand out
 * its sockets, so this watches `net.Socket.prototype.write` for the life of the Scope.
 */
export const watchWrites = (port: number): Effect.Effect<{ readonly max: () => number }, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const proto = net.Socket.prototype as unknown as Record<string, unknown>
      const own = Object.hasOwn(proto, "write")
      const original = proto["write"] as (this: net.Socket, ...args: Array<unknown>) => boolean
      let max = 0
      proto["write"] = function(this: net.Socket, ...args: Array<unknown>): boolean {
        const result = original.apply(this, args)
        if (this.remotePort === port) max = Math.max(max, this.writableLength)
        return result
      }
      const restore = () => {
        if (own) proto["write"] = original
        else delete proto["write"]
      }
      return { max: () => max, restore }
    }),
    ({ restore }) => Effect.sync(restore)
  )

/** The RpcError a failed exit carries; fails the test on success, a defect or another error. */
export const rpcErrorOf = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  if (Exit.isSuccess(exit)) throw new Error("expected the call to fail, it succeeded")
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag !== "Some" || !(error.value instanceof RpcError)) {
    throw new Error(`expected a typed RpcError, got ${Cause.pretty(exit.cause)}`)
  }
  return error.value
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

export interface Load {
  /** Calls that returned a reply, in all and per worker. */
  readonly ok: () => number
  readonly okBy: ReadonlyArray<number>
  /** Calls that failed with an RpcError, in all and per worker. */
  readonly failed: () => number
  readonly failedBy: ReadonlyArray<number>
  /** Every RpcError, in order. */
  readonly errors: ReadonlyArray<RpcError>
  /** Failures that were not an RpcError (defects, other errors): there must be none. */
  readonly untyped: ReadonlyArray<Cause.Cause<unknown>>
  /** Replies that did not answer their own request (checked by `call`'s `check`). */
  readonly crossed: () => number
  /** Longest call, by the clock `measure` reads (0 without one). */
  readonly longest: () => number
  /** Stops the workers after their current call and waits for them. */
  readonly stop: Effect.Effect<void>
}

/**
 * `workers` fibers calling `call(worker, n)` back to back until stopped, counting what
 * happens. `afterFailure` runs after each failed call (a live test paces retries with it);
 * `measure` reads a clock in milliseconds to time each call.
 */
export const startLoad = <A>(options: {
  readonly workers: number
  readonly call: (worker: number, n: number) => Effect.Effect<A, RpcError>
  readonly check?: ((worker: number, n: number, reply: A) => boolean) | undefined
  readonly afterFailure?: Effect.Effect<void> | undefined
  readonly measure?: (() => number) | undefined
}): Effect.Effect<Load, never, Scope.Scope> =>
  Effect.gen(function*() {
    const okBy = Array.from({ length: options.workers }, () => 0)
    const failedBy = Array.from({ length: options.workers }, () => 0)
    const errors: Array<RpcError> = []
    const untyped: Array<Cause.Cause<unknown>> = []
    let crossed = 0
    let longest = 0
    let stopped = false
    const worker = (w: number) =>
      Effect.gen(function*() {
        for (let n = 0; !stopped; n++) {
          const start = options.measure?.() ?? 0
          const exit = yield* Effect.exit(options.call(w, n))
          longest = Math.max(longest, (options.measure?.() ?? 0) - start)
          if (Exit.isSuccess(exit)) {
            okBy[w]!++
            if (options.check !== undefined && !options.check(w, n, exit.value)) crossed++
            continue
          }
          const error = Cause.findErrorOption(exit.cause)
          if (error._tag === "Some" && error.value instanceof RpcError) {
            failedBy[w]!++
            errors.push(error.value)
          } else {
            untyped.push(exit.cause)
          }
          if (options.afterFailure !== undefined) yield* options.afterFailure
        }
      })
    const fibers = yield* Effect.forEach(
      Array.from({ length: options.workers }, (_, w) => w),
      (w) => Effect.forkScoped(worker(w))
    )
    const sum = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0)
    return {
      ok: () => sum(okBy),
      okBy,
      failed: () => sum(failedBy),
      failedBy,
      errors,
      untyped,
      crossed: () => crossed,
      longest: () => longest,
      stop: Effect.suspend(() => {
        stopped = true
        return Effect.forEach(fibers, (fiber) => Effect.asVoid(Fiber.await(fiber)), { discard: true })
      })
    } satisfies Load
  })

/** Sum of a stats failure map. */
export const totalFailures = (failures: Readonly<Partial<Record<string, number>>>): number =>
  Object.values(failures).reduce<number>((a, b) => a + (b ?? 0), 0)

/** Reasons of a list of errors, counted, for assertion messages. */
export const reasons = (errors: ReadonlyArray<RpcError>): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const e of errors) out[e.reason] = (out[e.reason] ?? 0) + 1
  return out
}
