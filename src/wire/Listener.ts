/**
 * The server end of a connection: listen, read the preamble, run the TLS
 * handshake when the TLS byte arrives, and hand the socket on.
 *
 * A server given TLS settings refuses plaintext; a server without them refuses
 * the TLS byte. Either way the peer gets a closed connection, never a silent
 * fallback.
 *
 * Connections are counted from accept, in total and per client IP address;
 * one over either limit is closed at once, before its preamble is read, as
 * Consul's `rpcConnLimiter` does.
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import * as tls from "node:tls"
import { Duration, Effect, Scope } from "effect"
import type { Protocol } from "./Protocol.ts"
import * as LentReads from "./LentReads.ts"
import { consul } from "./Protocol.ts"
import { pem } from "./Tls.ts"
import type { ServerTls } from "./Tls.ts"
import { formatAddress } from "./Transport.ts"
import { TransportError } from "./TransportError.ts"

/** Consul's and Nomad's `rpc_handshake_timeout`: 5 seconds for the preamble. */
export const defaultHandshakeTimeout = Duration.seconds(5)

/**
 * Connections open at once from all clients: 10,000. Consul sets no such limit
 * and leaves it to the file-descriptor limit; a bound here keeps a flood of
 * clients (each under the per-client limit) from taking every descriptor.
 */
export const defaultMaxConns = 10_000

/** Consul's and Nomad's `rpc_max_conns_per_client`: 100 connections open at once from one IP address. */
export const defaultMaxConnsPerClient = 100

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
  /**
   * Connections open at once, counted from accept until closed (handshakes
   * included). One more is closed right after accept and counted in
   * `connections().refused`. Default 10,000 (`defaultMaxConns`).
   */
  readonly maxConns?: number | undefined
  /**
   * Connections open at once from one IP address, as Consul's and Nomad's
   * `rpc_max_conns_per_client`. One more is closed right after accept and
   * counted in `connections().refused`. Default 100 (`defaultMaxConnsPerClient`).
   */
  readonly maxConnsPerClient?: number | undefined
}

export interface Accepted {
  /**
   * Plain or TLS socket, positioned after the preamble. A plaintext one reads
   * into one reused buffer and lends its `data` chunks (`LentReads.ts`).
   */
  readonly socket: net.Socket
  readonly remoteAddress: string
}

export interface Listening {
  readonly host: string
  readonly port: number
  /** `host:port` */
  readonly address: string
  /** Connections open now, and those closed at accept by `maxConns` or `maxConnsPerClient` since listening. */
  readonly connections: () => ConnectionCounts
}

export interface ConnectionCounts {
  readonly open: number
  readonly refused: number
}

/** The client's IP address; an IPv4 client of a dual-stack listener counts as its IPv4 address. */
const clientIp = (address: string | undefined): string =>
  address === undefined ? "?" : address.startsWith("::ffff:") ? address.slice(7) : address

/** Open connections in total and per client IP, against the two limits (Consul's `connlimit`). */
class ConnectionLimiter {
  open = 0
  refused = 0
  private readonly perClient = new Map<string, number>()
  private readonly maxConns: number
  private readonly maxConnsPerClient: number

  constructor(maxConns: number, maxConnsPerClient: number) {
    this.maxConns = maxConns
    this.maxConnsPerClient = maxConnsPerClient
  }

  /** Counts the connection in, or says which limit refuses it. */
  admit(ip: string): string | undefined {
    const fromClient = this.perClient.get(ip) ?? 0
    const refusal = this.open >= this.maxConns
      ? `${this.open} connections open (maxConns ${this.maxConns})`
      : fromClient >= this.maxConnsPerClient
      ? `${fromClient} connections open from ${ip} (maxConnsPerClient ${this.maxConnsPerClient})`
      : undefined
    if (refusal !== undefined) {
      this.refused++
      return refusal
    }
    this.open++
    this.perClient.set(ip, fromClient + 1)
    return undefined
  }

  release(ip: string): void {
    this.open--
    const fromClient = (this.perClient.get(ip) ?? 1) - 1
    // Forget a client once it has nothing open, so the map is as large as the open connections.
    if (fromClient <= 0) this.perClient.delete(ip)
    else this.perClient.set(ip, fromClient)
  }
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

/** The TLS settings, parsed once for every connection. */
interface Secure {
  readonly context: tls.SecureContext
  readonly verifyClient: boolean
}

const secureContext = (options: ServerTls, address: string): Effect.Effect<Secure, TransportError> =>
  Effect.try({
    try: () => ({
      context: tls.createSecureContext({ cert: pem(options.cert), key: pem(options.key), ca: pem(options.ca) }),
      verifyClient: options.verifyClient ?? false
    }),
    catch: (cause) =>
      new TransportError({
        reason: "TlsFailed",
        address,
        detail: `invalid TLS settings: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

const secure = (socket: net.Socket, options: Secure, address: string): Effect.Effect<tls.TLSSocket, TransportError> =>
  Effect.callback<tls.TLSSocket, TransportError>((resume) => {
    const verifyClient = options.verifyClient
    const secured = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: options.context,
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
const handshake = (
  socket: net.Socket,
  protocol: Protocol,
  secured: Secure | undefined,
  timeout: Duration.Duration,
  address: string
): Effect.Effect<net.Socket, TransportError> =>
  Effect.gen(function*() {
    const first = yield* readByte(socket, address)
    if (secured === undefined) {
      if (first === protocol.muxByte) return socket
      return yield* reject(address, first === protocol.tlsByte ? "TLS is not configured" : `unknown type byte ${first}`)
    }
    if (first !== protocol.tlsByte) return yield* reject(address, `TLS required, got type byte ${first}`)
    const tlsSocket = yield* secure(socket, secured, address)
    const inner = yield* readByte(tlsSocket, address)
    if (inner !== protocol.muxByte) return yield* reject(address, `unknown type byte ${inner} inside TLS`)
    return tlsSocket as net.Socket
  }).pipe(
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(new TransportError({ reason: "HandshakeTimeout", address }))
    })
  )

/**
 * Listens until the Scope closes. Each connection runs `handle` in a fiber
 * owned by that Scope, inside a Scope of its own that destroys the socket.
 * Connections refused by a limit or whose preamble is wrong are closed, and
 * `onReject` hears why (`TooManyConnections`, `PreambleRejected`, ...).
 * Fails with `ListenFailed` when it cannot listen (port in use, no permission).
 *
 * Options are taken as valid (`RpcServer.serve` checks them first): an invalid
 * `handshakeTimeout` or TLS setting fails here, a `NaN` limit refuses nothing.
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
    const protocol = options.protocol ?? consul
    const timeout = Duration.fromInputUnsafe(options.handshakeTimeout ?? defaultHandshakeTimeout)
    const secured = options.tls === undefined
      ? undefined
      : yield* secureContext(options.tls, formatAddress(host, options.port ?? 0))
    const limiter = new ConnectionLimiter(
      options.maxConns ?? defaultMaxConns,
      options.maxConnsPerClient ?? defaultMaxConnsPerClient
    )
    const server = net.createServer({ pauseOnConnect: true, noDelay: true, keepAlive: true })
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const serve = (accepted: net.Socket) => {
      // Nothing has been read yet (pauseOnConnect): a plaintext-only server reads into one reused buffer.
      const raw = secured === undefined ? LentReads.adopt(accepted) : accepted
      raw.on("error", ignore)
      const remoteAddress = formatAddress(raw.remoteAddress ?? "?", raw.remotePort ?? 0)
      const ip = clientIp(raw.remoteAddress)
      const refusal = limiter.admit(ip)
      if (refusal !== undefined) {
        raw.destroy()
        const error = new TransportError({ reason: "TooManyConnections", address: remoteAddress, detail: refusal })
        runFork(Effect.forkIn(onReject(error), scope))
        return
      }
      const connection = Effect.gen(function*() {
        yield* Effect.addFinalizer(() => Effect.sync(() => raw.destroy()))
        const socket = yield* handshake(raw, protocol, secured, timeout, remoteAddress)
        yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
        yield* handle({ socket, remoteAddress })
      }).pipe(
        Effect.catch(onReject),
        Effect.scoped,
        Effect.ensuring(Effect.sync(() => limiter.release(ip)))
      )
      runFork(Effect.forkIn(connection, scope))
    }
    server.on("connection", serve)
    const port = yield* Effect.callback<number, TransportError>((resume) => {
      server.once("error", (cause) =>
        resume(Effect.fail(
          new TransportError({
            reason: "ListenFailed",
            address: formatAddress(host, options.port ?? 0),
            detail: cause.message,
            cause
          })
        )))
      server.listen(options.port ?? 0, host, () => resume(Effect.succeed((server.address() as net.AddressInfo).port)))
    })
    server.on("error", ignore)
    yield* Scope.addFinalizer(scope, Effect.sync(() => server.close()))
    const connections = (): ConnectionCounts => ({ open: limiter.open, refused: limiter.refused })
    return { host, port, address: formatAddress(host, port), connections }
  })
