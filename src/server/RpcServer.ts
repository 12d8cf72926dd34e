/**
 * An msgpack-rpc server on the same stack as the client: listener, preamble,
 * optional TLS, a yamux session per connection, and on every accepted stream
 * a loop serving one request after another, as Go's `rpc.ServeCodec` does.
 *
 * TypeScript services can answer Go clients with it, and tests and the demo
 * need no Go.
 *
 * Every resource a client can make it hold is bounded, with named defaults
 * (see `ServeOptions.ts`): connections in total and per client IP, streams
 * per session and in total, request bytes per session and in total. A stream
 * the client resets interrupts its handler, and a handler that dies answers
 * `"internal error"` without taking its stream or session down.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import type { Scope } from "effect"
import type { MuxSession } from "../mux/MuxSession.ts"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { Encoder } from "../msgpackrpc/Encoder.ts"
import type { ByteTransport } from "../wire/ByteTransport.ts"
import * as Listener from "../wire/Listener.ts"
import { consul } from "../wire/Protocol.ts"
import { formatAddress } from "../wire/Transport.ts"
import type { TransportError } from "../wire/TransportError.ts"
import * as Session from "../yamux/Session.ts"
import { Budget } from "./Budget.ts"
import { StreamServer } from "./StreamServer.ts"
import type { Counters, Origin, Shared } from "./StreamServer.ts"
import { ServerConfigError } from "./ServerConfigError.ts"
import { ServerObserver } from "./ServerObserver.ts"
import * as ServeOptions from "./ServeOptions.ts"

export type { Limits, ServeOptions } from "./ServeOptions.ts"
export {
  defaultMaxBufferedBytes,
  defaultMaxBufferedBytesPerSession,
  defaultMaxConns,
  defaultMaxConnsPerClient,
  defaultMaxMessageSize,
  defaultMaxStreams,
  defaultMaxStreamsPerSession
} from "./ServeOptions.ts"
export { ServerConfigError } from "./ServerConfigError.ts"

/** Serves a typed `RpcPool.method` with the same Schemas (MethodHandler.ts). */
export { handle } from "./MethodHandler.ts"

/** What a handler knows about the call it serves. */
export interface CallContext {
  readonly method: string
  /** The client, `host:port`. */
  readonly remoteAddress: string
  readonly server: Server
  /** The yamux session the call arrived on (e.g. to send GoAway). */
  readonly session: MuxSession
}

/**
 * Serves one method. A failure becomes the reply's `Error` string (its
 * `message`), exactly what a Go handler returning an `error` produces. A
 * defect (a throw, `Effect.die`, anything but an Effect) answers
 * `"internal error"`, is logged and counted, and the stream carries on.
 * The handler is interrupted when the client resets its stream.
 */
export type Handler = (args: Value, context: CallContext) => Effect.Effect<unknown, { readonly message: string }>

/** Counters since the server started (what `Test.Stats` reports). */
export interface ServerStats {
  /** TCP connections accepted whose preamble was right (not those refused by a limit). */
  readonly conns: number
  /** yamux streams accepted. */
  readonly streams: number
  /** Calls answered. */
  readonly served: number
  /** Streaming RPCs acked (their handler ran). */
  readonly streamingRpcs: number
  /** Sessions alive now. */
  readonly live: number
}

/** What the limits see now, and what they refused since the server started. */
export interface LimitStats {
  /** Connections open now, from accept until closed (handshakes included). */
  readonly openConns: number
  /** Connections closed right after accept by `maxConns` or `maxConnsPerClient`. */
  readonly refusedConns: number
  /** Streams being served now. */
  readonly servingStreams: number
  /** Streams reset on accept by `maxStreamsPerSession` or `maxStreams` (those yamux refused before are not seen). */
  readonly refusedStreams: number
  /** Request bytes held now, all sessions together. */
  readonly bufferedBytes: number
  /** Streams reset because their request bytes would pass `maxBufferedBytesPerSession` or `maxBufferedBytes`. */
  readonly overBudget: number
  /** Calls answered `"internal error"`: their handler died or their reply could not be encoded. */
  readonly internalErrors: number
}

export interface Server extends Listener.Listening {
  readonly stats: () => ServerStats
  readonly limitStats: () => LimitStats
  /** The limits in force, defaults applied. */
  readonly limits: ServeOptions.Limits
}

/**
 * A server that listens on nothing: hand it sessions or transports (an
 * in-memory pair's end, a socket accepted elsewhere) and it serves each, as
 * `serve` serves an accepted connection. The simulator runs the server so.
 */
export interface Detached extends Server {
  /**
   * Serves a server-role yamux session until it closes: accepts its streams and
   * serves each in a fiber of the current Scope, which the caller closes to
   * end them. Counted as one connection.
   */
  readonly serveSession: (session: Session.Session, remoteAddress: string) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Runs a server session (with the `session` options) on `transport`, its
   * preamble already read, and serves it as `serveSession` does; closing the
   * Scope closes the session and destroys the transport.
   */
  readonly serveTransport: (transport: ByteTransport, remoteAddress: string) => Effect.Effect<void, never, Scope.Scope>
}

/** What `serve` and `make` share: the counters, the byte budget, and the serving of one session. */
const engine = (options: ServeOptions.ServeOptions, config: ServeOptions.Config, server: () => Server) => {
  const { limits } = config
  const counters: Counters = {
    conns: 0,
    streams: 0,
    served: 0,
    live: 0,
    serving: 0,
    refusedStreams: 0,
    overBudget: 0,
    internalErrors: 0,
    streamingRpcs: 0
  }
  const budget = new Budget(limits.maxBufferedBytes)
  const shared: Shared = {
    handlers: options.handlers,
    streaming: options.streaming ?? {},
    streamByte: (options.protocol ?? consul).streamByte,
    streamingByte: (options.protocol ?? consul).streamingByte,
    decoder: config.decoder,
    encoder: new Encoder(),
    counters,
    server,
    observer: undefined
  }

  const serveSession = (session: Session.Session, remoteAddress: string): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function*() {
      counters.conns++
      const scope = yield* Effect.scope
      counters.live++
      yield* Effect.addFinalizer(() => Effect.sync(() => counters.live--))
      const origin: Origin = {
        remoteAddress,
        session,
        budget: new Budget(limits.maxBufferedBytesPerSession, budget),
        serving: 0
      }
      const accept = Effect.flatMap(session.accept, (stream) => {
        counters.streams++
        // Counts fibers, not yamux streams: a handler that ignores interruption outlives its reset stream.
        if (origin.serving >= limits.maxStreamsPerSession || counters.serving >= limits.maxStreams) {
          counters.refusedStreams++
          return stream.reset
        }
        const served = new StreamServer(shared, origin, stream)
        return Effect.map(Effect.forkIn(served.serve(), scope), (fiber) => {
          fiber.addObserver(served.done)
          // A client that resets its stream no longer wants the reply: stop the handler, free its slot.
          stream.onFinish = () => {
            if (stream.state === "Reset") fiber.interruptUnsafe()
          }
          // Reset before the hook was in place (the run loop may yield between fork and here).
          if (stream.state === "Reset") fiber.interruptUnsafe()
        })
      })
      yield* Effect.forkIn(Effect.ignore(Effect.forever(accept)), scope)
      yield* session.closed
    })

  const serveTransport = (transport: ByteTransport, remoteAddress: string): Effect.Effect<void, never, Scope.Scope> =>
    Effect.flatMap(
      Session.make(transport, { ...config.session, role: "server", address: remoteAddress }),
      (session) => serveSession(session, remoteAddress)
    )

  const stats = (): ServerStats => ({
    conns: counters.conns,
    streams: counters.streams,
    served: counters.served,
    streamingRpcs: counters.streamingRpcs,
    live: counters.live
  })
  const limitStats = (connections: Listener.ConnectionCounts): LimitStats => ({
    openConns: connections.open,
    refusedConns: connections.refused,
    servingStreams: counters.serving,
    refusedStreams: counters.refusedStreams,
    bufferedBytes: budget.held,
    overBudget: counters.overBudget,
    internalErrors: counters.internalErrors
  })
  return { shared, serveSession, serveTransport, stats, limitStats }
}

const checked = (options: ServeOptions.ServeOptions): Effect.Effect<ServeOptions.Config, ServerConfigError> => {
  const config = ServeOptions.make(options)
  return config instanceof ServerConfigError ? Effect.fail(config) : Effect.succeed(config)
}

/**
 * Listens and serves until the Scope closes; closing it closes every session.
 * Fails with `ServerConfigError`, before listening, when an option is invalid.
 *
 * @category constructors
 */
export const serve = (
  options: ServeOptions.ServeOptions
): Effect.Effect<Server, TransportError | ServerConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* checked(options)
    const { limits } = config
    let server: Server | undefined
    const serving = engine(options, config, () => server!)
    const listening = yield* Listener.listen(
      { ...options, maxConns: limits.maxConns, maxConnsPerClient: limits.maxConnsPerClient },
      ({ remoteAddress, socket }) => serving.serveTransport(socket, remoteAddress),
      // Counted in limitStats; a line each would flood the log under the very floods the limits are for.
      (error) => Effect.logDebug(`RpcServer: connection refused: ${error.message}`)
    )
    const { metrics, tracing } = config.observability
    if (metrics || tracing) {
      const observer = new ServerObserver({
        context: yield* Effect.context<never>(),
        config: config.observability,
        system: (options.protocol ?? consul).name,
        listening,
        counters: serving.shared.counters,
        handlers: options.handlers,
        clock: yield* Clock.Clock
      })
      serving.shared.observer = observer
      yield* Effect.addFinalizer(() => Effect.sync(() => observer.close()))
    }
    server = {
      ...listening,
      limits,
      stats: serving.stats,
      limitStats: () => serving.limitStats(listening.connections())
    }
    return server
  })

/**
 * A server that listens on nothing (see `Detached`): the same handlers,
 * limits and stats as `serve`, for sessions and transports handed to it.
 * `host` and `port` (default `127.0.0.1:0`) only name it to its handlers;
 * the connection limits, the handshake and TLS belong to a listener and do
 * not apply, nor does `observability` (it reports no metrics or spans: nothing
 * would remove its series). Fails with `ServerConfigError` when an option is invalid.
 *
 * @category constructors
 */
export const make = (options: ServeOptions.ServeOptions): Effect.Effect<Detached, ServerConfigError> =>
  Effect.map(checked(options), (config) => {
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? 0
    const serving = engine(options, config, () => server)
    const stats = serving.stats
    // Sessions being served; nothing is refused without a listener.
    const connections = (): Listener.ConnectionCounts => ({ open: stats().live, refused: 0 })
    const server: Detached = {
      host,
      port,
      address: formatAddress(host, port),
      connections,
      limits: config.limits,
      stats,
      limitStats: () => serving.limitStats(connections()),
      serveSession: serving.serveSession,
      serveTransport: serving.serveTransport
    }
    return server
  })
