/**
 * The server end of a connection: listen, read the preamble, run the TLS
 * handshake when the TLS byte arrives, and hand the socket on.
 *
 * A server given TLS settings refuses plaintext; a server without them refuses
 * the TLS byte. Either way the peer gets a closed connection, never a silent
 * fallback.
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { Duration, Effect, Scope } from "effect"
import type { Protocol } from "./Protocol.ts"
import { consul } from "./Protocol.ts"
import { pem } from "./Tls.ts"
import type { ServerTls } from "./Tls.ts"
import { formatAddress } from "./Transport.ts"
import { TransportError } from "./TransportError.ts"

/** Consul's and Nomad's `rpc_handshake_timeout`: 5 seconds for the preamble. */
export const defaultHandshakeTimeout = Duration.seconds(5)

export interface ListenOptions {
  /** Default `127.0.0.1`. */
  readonly host?: string | undefined
  /** Default 0, meaning a free port chosen by the OS. */
  readonly port?: number | undefined
  /** Default `consul`. */
  readonly protocol?: Protocol | undefined
  /** Serve only TLS, behind the protocol's TLS byte. */
  readonly tls?: ServerTls | undefined
  /** Default 5 seconds (`defaultHandshakeTimeout`). */
  readonly handshakeTimeout?: Duration.Input | undefined
}

export interface Accepted {
  /** Plain or TLS socket, positioned after the preamble. */
  readonly socket: net.Socket
  readonly remoteAddress: string
}

export interface Listening {
  readonly host: string
  readonly port: number
  /** `host:port` */
  readonly address: string
}

const ignore = (): void => {}

/** Reads exactly one byte, leaving anything after it buffered in the socket. */
const readByte = (socket: net.Socket, address: string): Effect.Effect<number, TransportError> =>
  Effect.callback<number, TransportError>((resume) => {
    const cleanup = () => {
      socket.off("readable", onReadable)
      socket.off("end", onEnd)
      socket.off("close", onEnd)
    }
    const onReadable = () => {
      const byte: Buffer | null = socket.read(1)
      if (byte !== null) {
        cleanup()
        resume(Effect.succeed(byte[0]!))
      }
    }
    const onEnd = () => {
      cleanup()
      resume(Effect.fail(new TransportError({ reason: "ConnectionLost", address, detail: "closed during preamble" })))
    }
    socket.on("readable", onReadable)
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    onReadable()
    return Effect.sync(cleanup)
  })

const secure = (socket: net.Socket, options: ServerTls, address: string): Effect.Effect<tls.TLSSocket, TransportError> =>
  Effect.callback<tls.TLSSocket, TransportError>((resume) => {
    const verifyClient = options.verifyClient ?? false
    const secured = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: pem(options.cert), key: pem(options.key), ca: pem(options.ca) }),
      requestCert: verifyClient,
      rejectUnauthorized: verifyClient
    })
    secured.on("error", ignore)
    const onError = (cause: Error) =>
      resume(Effect.fail(new TransportError({ reason: "TlsFailed", address, detail: cause.message, cause })))
    secured.once("error", onError)
    secured.once("secure", () => {
      secured.off("error", onError)
      // Node applies the client-certificate check (onServerSocketSecure) only to sockets a
      // tls.Server made: a standalone server TLSSocket completes the handshake with a
      // certificate from any CA and never sets `authorized`. Apply the same check here.
      if (verifyClient) {
        const handle = (secured as unknown as { _handle?: { verifyError?: () => Error | null } | null })._handle
        const verifyError = typeof handle?.verifyError === "function"
          ? handle.verifyError()
          : new Error("cannot verify the client certificate")
        if (verifyError !== null || secured.getPeerX509Certificate() === undefined) {
          const detail = `client certificate rejected: ${verifyError?.message ?? "no certificate"}`
          secured.destroy()
          return resume(Effect.fail(new TransportError({ reason: "TlsFailed", address, detail, cause: verifyError })))
        }
        secured.authorized = true
      }
      resume(Effect.succeed(secured))
    })
    return Effect.sync(() => secured.destroy())
  })

const reject = (address: string, detail: string) =>
  Effect.fail(new TransportError({ reason: "PreambleRejected", address, detail }))

/**
 * Reads the preamble off a fresh connection and returns the socket yamux runs
 * on (the TLS socket after an upgrade).
 */
export const handshake = (
  socket: net.Socket,
  options: Pick<ListenOptions, "protocol" | "tls" | "handshakeTimeout">,
  address: string
): Effect.Effect<net.Socket, TransportError> => {
  const protocol = options.protocol ?? consul
  return Effect.gen(function*() {
    const first = yield* readByte(socket, address)
    if (options.tls === undefined) {
      if (first === protocol.muxByte) return socket
      return yield* reject(address, first === protocol.tlsByte ? "TLS is not configured" : `unknown type byte ${first}`)
    }
    if (first !== protocol.tlsByte) return yield* reject(address, `TLS required, got type byte ${first}`)
    const secured = yield* secure(socket, options.tls, address)
    const inner = yield* readByte(secured, address)
    if (inner !== protocol.muxByte) return yield* reject(address, `unknown type byte ${inner} inside TLS`)
    return secured as net.Socket
  }).pipe(
    Effect.timeoutOrElse({
      duration: options.handshakeTimeout ?? defaultHandshakeTimeout,
      orElse: () => Effect.fail(new TransportError({ reason: "HandshakeTimeout", address }))
    })
  )
}

/**
 * Listens until the Scope closes. Each connection runs `handle` in a fiber
 * owned by that Scope, inside a Scope of its own that destroys the socket.
 * Connections whose preamble is wrong are closed, and `onReject` hears why.
 *
 * @category constructors
 */
export const listen = (
  options: ListenOptions,
  handle: (accepted: Accepted) => Effect.Effect<void, never, Scope.Scope>,
  onReject: (error: TransportError) => Effect.Effect<void> = () => Effect.void
): Effect.Effect<Listening, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const host = options.host ?? "127.0.0.1"
    const server = net.createServer({ pauseOnConnect: true, noDelay: true, keepAlive: true })
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const serve = (raw: net.Socket) => {
      raw.on("error", ignore)
      const remoteAddress = formatAddress(raw.remoteAddress ?? "?", raw.remotePort ?? 0)
      const connection = Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
        const socket = yield* handshake(raw, options, remoteAddress)
        yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
        yield* handle({ socket, remoteAddress })
      }).pipe(Effect.catch(onReject), Effect.scoped)
      runFork(Effect.forkIn(connection, scope))
    }
    server.on("connection", serve)
    const port = yield* Effect.callback<number, TransportError>((resume) => {
      server.once("error", (cause) =>
        resume(Effect.fail(
          new TransportError({
            reason: "DialFailed",
            address: formatAddress(host, options.port ?? 0),
            detail: `listen: ${cause.message}`,
            cause
          })
        )))
      server.listen(options.port ?? 0, host, () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    })
    server.on("error", ignore)
    yield* Scope.addFinalizer(scope, Effect.sync(() => server.close()))
    return { host, port, address: formatAddress(host, port) }
  })
