/**
 * Helpers for the wire suites: the TLS fixtures, hand-made servers that record the bytes a
 * client sends (outside and inside TLS), and an event-loop flush.
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import { readFileSync } from "node:fs"
import * as net from "node:net"
import * as tls from "node:tls"
import { fileURLToPath } from "node:url"

const dir = fileURLToPath(new URL("../fixtures/tls/", import.meta.url))
const read = (name: string): string => readFileSync(dir + name, "utf8")

export const fixtures = {
  ca: read("ca.pem"),
  serverCert: read("server.pem"),
  serverKey: read("server-key.pem"),
  clientCert: read("client.pem"),
  clientKey: read("client-key.pem"),
  otherCa: read("other-ca.pem"),
  otherServerCert: read("other-server.pem"),
  otherServerKey: read("other-server-key.pem"),
  otherClientCert: read("other-client.pem"),
  otherClientKey: read("other-client-key.pem")
}

/** The I/O helpers are the yamux harness's; one copy. */
export { flush, until } from "../yamux/harness.ts"

export interface Recorded {
  /** Bytes before any TLS upgrade (for a TLS connection: only the outer type byte). */
  readonly outer: Array<number>
  /** Bytes decrypted inside TLS. */
  readonly inner: Array<number>
  tlsError: Error | undefined
  closed: boolean
  readonly socket: net.Socket
}

export interface RecordingServer {
  readonly port: number
  readonly connections: Array<Recorded>
}

/**
 * A server that records what clients send. With `tls`, it reads one byte in the clear and then
 * runs a TLS server handshake, like a Consul or Nomad server; with `silent`, it accepts,
 * reads and drops everything, and never answers.
 */
export const recordingServer = (options: {
  readonly tls?: { readonly cert: string; readonly key: string } | undefined
  readonly silent?: boolean | undefined
} = {}): Effect.Effect<RecordingServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: net.Server; result: RecordingServer }>((resolve) => {
        const connections: Array<Recorded> = []
        const server = net.createServer({ noDelay: true }, (socket) => {
          const rec: Recorded = { outer: [], inner: [], tlsError: undefined, closed: false, socket }
          connections.push(rec)
          socket.on("error", () => {})
          socket.on("close", () => {
            rec.closed = true
          })
          // Silent: read and drop everything (so a client's close is seen), never answer.
          if (options.silent === true) return void socket.resume()
          const serverTls = options.tls
          if (serverTls === undefined) {
            socket.on("data", (chunk: Buffer) => rec.outer.push(...chunk))
            return
          }
          socket.once("data", (chunk: Buffer) => {
            socket.pause()
            rec.outer.push(chunk[0]!)
            if (chunk.length > 1) socket.unshift(chunk.subarray(1))
            const secure = new tls.TLSSocket(socket, {
              isServer: true,
              secureContext: tls.createSecureContext({ cert: serverTls.cert, key: serverTls.key })
            })
            secure.on("error", (error) => {
              rec.tlsError = error
            })
            secure.on("data", (data: Buffer) => rec.inner.push(...data))
          })
        })
        server.listen(0, "127.0.0.1", () => {
          resolve({ server, result: { port: (server.address() as net.AddressInfo).port, connections } })
        })
      })
    ),
    ({ server, result }) =>
      Effect.sync(() => {
        for (const c of result.connections) c.socket.destroy()
        server.close()
      })
  ).pipe(Effect.map(({ result }) => result))

/** A loopback port with nothing listening on it. */
export const closedPort: Effect.Effect<number> = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
)

/** Connects a raw TCP client (no preamble), destroyed with the Scope. */
export const rawClient = (port: number, localAddress?: string): Effect.Effect<
  { readonly socket: net.Socket; readonly received: Array<number>; readonly state: { closed: boolean } },
  never,
  Scope.Scope
> =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ socket: net.Socket; received: Array<number>; state: { closed: boolean } }>((resolve) => {
        const received: Array<number> = []
        const state = { closed: false }
        const socket = net.createConnection({ host: "127.0.0.1", port, noDelay: true, localAddress }, () =>
          resolve({ socket, received, state }))
        socket.on("error", () => {})
        socket.on("data", (chunk: Buffer) => received.push(...chunk))
        socket.on("close", () => {
          state.closed = true
        })
      })
    ),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )
