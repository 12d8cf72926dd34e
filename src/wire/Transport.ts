/**
 * The client end of a connection: a TCP dial as a scoped resource, the
 * protocol preamble, and optional TLS behind the TLS byte.
 *
 * ```
 * plaintext: [muxByte] yamux…
 * TLS:       [tlsByte] <handshake> [muxByte] yamux…   (muxByte inside TLS)
 * ```
 *
 * Built on `node:net`/`node:tls` rather than `@effect/platform-node`'s
 * `NodeSocket`: the yamux session needs `cork`/`uncork` for batched writes,
 * `writableLength` for backpressure and an in-place TLS upgrade after a
 * plaintext byte (docs/decisions.md).
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { Duration, Effect } from "effect"
import type { Scope } from "effect"
import type { Protocol } from "./Protocol.ts"
import * as LentReads from "./LentReads.ts"
import { consul } from "./Protocol.ts"
import { pem } from "./Tls.ts"
import type { ClientTls } from "./Tls.ts"
import { TransportError } from "./TransportError.ts"

/** Consul's `DefaultDialTimeout`: 10 seconds, for connect and handshake together. */
export const defaultDialTimeout = Duration.seconds(10)

export interface DialOptions {
  readonly host: string
  readonly port: number
  /** Preamble bytes. Default: `consul`. */
  readonly protocol?: Protocol | undefined
  /** Speak TLS behind the protocol's TLS byte. */
  readonly tls?: ClientTls | undefined
  /** Default 10 seconds (`defaultDialTimeout`). */
  readonly dialTimeout?: Duration.Input | undefined
}

/** `host:port`, with IPv6 hosts bracketed. */
export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/** Parses `host:port` or `[v6]:port`. */
export const parseAddress = (address: string): { readonly host: string; readonly port: number } | undefined => {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(address.trim())
  if (match === null) return undefined
  const port = Number(match[3])
  if (port > 65535) return undefined
  return { host: match[1] ?? match[2]!, port }
}

// Errors after set-up are the session's business; without a listener Node would throw them.
const ignore = (): void => {}

const connect = (options: DialOptions, address: string): Effect.Effect<net.Socket, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<net.Socket, TransportError>((resume) => {
      const target = { host: options.host, port: options.port, noDelay: true, keepAlive: true }
      // Plaintext reads land in one reused buffer (LentReads.ts); TLS keeps Node's own reads.
      const socket = options.tls === undefined ? LentReads.connect(target) : net.createConnection(target)
      socket.on("error", ignore)
      const onError = (cause: Error) =>
        resume(Effect.fail(new TransportError({ reason: "DialFailed", address, detail: cause.message, cause })))
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }),
    (socket) => Effect.sync(() => socket.destroy()),
    // The dial timeout must be able to interrupt a connect in progress.
    { interruptible: true }
  )

const hex = (byte: number): string => `0x${byte.toString(16).padStart(2, "0")}`

/**
 * What a failed TLS handshake most likely means, beyond Node's message: a server that closes the
 * connection on our TLS byte without a byte of reply does not serve TLS there (or numbers its
 * preamble otherwise); one that answers with bytes that are not TLS speaks plaintext.
 */
const tlsFailure = (cause: Error, raw: net.Socket, protocol: Protocol): string => {
  const code = (cause as NodeJS.ErrnoException).code ?? ""
  if (raw.bytesRead === 0) {
    return `${cause.message}: the server closed the connection on our TLS byte ${hex(protocol.tlsByte)} ` +
      `(${protocol.name} numbering) without answering; it probably serves plaintext only, or expects ` +
      `another protocol (--protocol)`
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER" || code === "ERR_SSL_PACKET_LENGTH_TOO_LONG") {
    // OpenSSL's message is a file and line; the code says it.
    return `${code}: the server answered the TLS handshake with bytes that are not TLS; it probably serves ` +
      `plaintext here`
  }
  return cause.message
}

/**
 * A server that does not serve our preamble byte closes the connection without sending anything,
 * while a yamux server always answers our first stream. The session would report a bare EOF or
 * reset, so the likely cause is raised as the socket's error first (listeners run in order and the
 * session keeps the first reason).
 */
const explainEarlyClose = (socket: net.Socket, protocol: Protocol): void => {
  let explained = false
  const explain = (error?: Error) => {
    if (explained || error?.message.startsWith(earlyClose) === true || socket.bytesRead !== 0) return
    explained = true
    const what = error === undefined ? "closed the connection" : `reset the connection (${error.message})`
    socket.emit(
      "error",
      new Error(
        `${earlyClose}: the server ${what} right after our preamble (yamux byte ${hex(protocol.muxByte)}, ` +
          `${protocol.name} numbering) without sending anything; if this repeats, it expects another preamble ` +
          `(--protocol) or TLS`
      )
    )
  }
  socket.prependListener("end", () => explain())
  socket.prependListener("error", explain)
}
const earlyClose = "EOF before any reply"

const upgrade = (
  socket: net.Socket,
  options: ClientTls,
  host: string,
  address: string,
  protocol: Protocol
): Effect.Effect<tls.TLSSocket, TransportError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<tls.TLSSocket, TransportError>((resume) => {
      const secure = tls.connect({
        socket,
        ca: pem(options.ca),
        cert: pem(options.cert),
        key: pem(options.key),
        servername: options.serverName ?? (net.isIP(host) === 0 ? host : undefined),
        rejectUnauthorized: options.verify ?? true,
        // Certificates for IP addresses are checked against the IP, as Go does.
        checkServerIdentity: (hostname, cert) =>
          tls.checkServerIdentity(options.serverName ?? hostname ?? host, cert)
      })
      secure.on("error", ignore)
      const onError = (cause: Error) =>
        resume(
          Effect.fail(
            new TransportError({ reason: "TlsFailed", address, detail: tlsFailure(cause, socket, protocol), cause })
          )
        )
      secure.once("error", onError)
      secure.once("secureConnect", () => {
        secure.off("error", onError)
        secure.setNoDelay(true)
        resume(Effect.succeed(secure))
      })
      return Effect.sync(() => secure.destroy())
    }),
    (secure) => Effect.sync(() => secure.destroy()),
    { interruptible: true }
  )

/**
 * Dials `host:port`, writes the preamble (and runs the TLS handshake), and
 * returns the socket yamux should run on. Closing the Scope destroys it.
 *
 * **Details**
 * TCP keepalive and `noDelay` are on, as in Consul's `dial`. The dial timeout
 * covers connect, TLS handshake and preamble together. A plaintext socket
 * reads into one reused buffer and lends its `data` chunks (`LentReads.ts`).
 *
 * @category constructors
 */
export const dial = (options: DialOptions): Effect.Effect<net.Socket, TransportError, Scope.Scope> => {
  const address = formatAddress(options.host, options.port)
  const protocol = options.protocol ?? consul
  return Effect.gen(function*() {
    const socket = yield* connect(options, address)
    if (options.tls === undefined) {
      socket.write(Uint8Array.of(protocol.muxByte))
      explainEarlyClose(socket, protocol)
      return socket
    }
    socket.write(Uint8Array.of(protocol.tlsByte))
    const secure = yield* upgrade(socket, options.tls, options.host, address, protocol)
    secure.write(Uint8Array.of(protocol.muxByte))
    return secure as net.Socket
  }).pipe(
    Effect.timeoutOrElse({
      duration: options.dialTimeout ?? defaultDialTimeout,
      orElse: () => Effect.fail(new TransportError({ reason: "DialTimeout", address }))
    })
  )
}
