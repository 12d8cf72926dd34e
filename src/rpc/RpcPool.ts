/**
 * The RPC pool of the first seed (Consul `agent/pool`), as an Effect service:
 * one TCP connection and yamux session per server shared by every caller,
 * msgpack-rpc stream clients reused from a free list, one dial per server
 * however many callers arrive, idle sessions reaped, and shutdown as the
 * closing of the Layer's Scope.
 *
 * **Example** (Providing the pool and retrying safe failures)
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { RpcPool } from "effect-connpool"
 *
 * const leader = RpcPool.rpc("10.0.0.1:8300", "Status.Leader", {}).pipe(
 *   Effect.retry({ schedule: Schedule.exponential("100 millis"), times: 3, while: (e) => e.isRetryable })
 * )
 * Effect.runPromise(leader.pipe(Effect.provide(RpcPool.PoolLayer({ maxTime: "2 minutes" }))))
 * ```
 *
 * @since 0.1.0
 */
import { Cause, Clock, Config, Context, Duration, Effect, Exit, Layer, Schedule, Schema, SchemaTransformation, Scope } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { asBytes, DefaultMaxBufferedBytes, DefaultMaxMessageBytes } from "../msgpackrpc/Decoder.ts"
import type { DecoderOptions, Value } from "../msgpackrpc/Decoder.ts"
import { RemoteError } from "../msgpackrpc/RemoteError.ts"
import type { CallError, StreamClient } from "../msgpackrpc/StreamClient.ts"
import type { Protocol } from "../wire/Protocol.ts"
import * as Protocols from "../wire/Protocol.ts"
import type { ClientTls } from "../wire/Tls.ts"
import * as Transport from "../wire/Transport.ts"
import { TransportError } from "../wire/TransportError.ts"
import type * as YamuxConfig from "../yamux/Config.ts"
import * as Session from "../yamux/Session.ts"
import { Conn } from "./Conn.ts"
import { Deadlines } from "./Deadlines.ts"
import type { Deadline } from "./Deadlines.ts"
import { DialLimiter } from "./DialLimiter.ts"
import * as PoolStats from "./PoolStats.ts"
import { RpcError } from "./RpcError.ts"
import type { RpcErrorReason } from "./RpcError.ts"

/** Idle time before a session is reaped: 2 minutes, Consul's server default. */
export const defaultMaxTime = Duration.minutes(2)
/** Idle stream clients kept per session: 64, Consul's server default. */
export const defaultMaxStreams = 64
/** Connect plus handshake: 10 seconds, Consul's `DefaultDialTimeout`. */
export const defaultDialTimeout = Duration.seconds(10)
/** Deadline per call: 60 seconds, Consul's `rpc_client_timeout`. */
export const defaultCallTimeout = Duration.seconds(60)
/** How often the reaper looks for idle sessions: 1 second, as Consul's `reap`. */
export const defaultReapInterval = Duration.seconds(1)
/**
 * Largest reply value the pool buffers and decodes: 64 MiB, the msgpack
 * decoder's own default. Consul caps KV values and transactions at 512 KiB,
 * but catalog and health listings of a large cluster run to tens of MiB, so
 * the limit sits well above legitimate replies while bounding what one stream
 * can make the process hold (the header and body: at most twice this).
 */
export const defaultMaxMessageSize = DefaultMaxMessageBytes
/**
 * Stream clients checked out or idle at once on one session: 1024. Four times
 * yamux's accept backlog (256), so a Go server's accept loop is never the
 * bottleneck below it, and far under yamux's stream limit (8192), so the
 * pool queues callers before the session would refuse streams.
 */
export const defaultMaxStreamsPerSession = 1024
/**
 * Callers per server that may wait at once for a dial or a stream: 10,000.
 * Each waiter is one parked fiber (about a KiB); the bound keeps a dead or
 * saturated server from collecting an unbounded backlog, far above any burst
 * a healthy server sees.
 */
export const defaultMaxPendingCalls = 10_000

export declare namespace RpcPool {
  export interface Options {
    /** Idle time before a session with no callers is closed. Default 2 minutes; 0 turns reaping off. */
    readonly maxTime?: Duration.Input | undefined
    /** Idle stream clients kept per session; extras are closed when returned. Default 64. */
    readonly maxStreams?: number | undefined
    /** Preamble bytes. Default `consul`. */
    readonly protocol?: Protocol | undefined
    /** Speak TLS behind the protocol's TLS byte, verifying the server by default. */
    readonly tls?: ClientTls | undefined
    /** Connect plus handshake. Default 10 seconds. */
    readonly dialTimeout?: Duration.Input | undefined
    /** Deadline for each call, from acquiring the session to the reply. Default 60 seconds. */
    readonly callTimeout?: Duration.Input | undefined
    /** Reaper period. Default 1 second. */
    readonly reapInterval?: Duration.Input | undefined
    /** yamux tunables for every session (keepalive, windows, timeouts). */
    readonly session?: YamuxConfig.Options | undefined
    /** Limits on each reply (nesting, buffering); `maxMessageSize` wins over `decoder.maxMessageBytes`. */
    readonly decoder?: DecoderOptions | undefined
    /**
     * Largest reply value, in bytes. Default 64 MiB (`defaultMaxMessageSize`).
     * A larger reply fails its call with `MessageTooLarge` (not retryable) as
     * soon as its header announces the size; only its stream is reset.
     */
    readonly maxMessageSize?: number | undefined
    /**
     * Stream clients checked out or idle at once per session. Default 1024
     * (`defaultMaxStreamsPerSession`). Callers beyond it wait on the same
     * session for a stream to come back, within their call timeout; no second
     * session is opened.
     */
    readonly maxStreamsPerSession?: number | undefined
    /**
     * Callers per server that may wait at once for a dial or a stream. Default
     * 10,000 (`defaultMaxPendingCalls`), at least 1. One more fails at once
     * with `TooManyPending`, which is retryable (nothing was sent).
     */
    readonly maxPendingCalls?: number | undefined
  }

  export interface CallOptions {
    /** Overrides `callTimeout` for this call. */
    readonly timeout?: Duration.Input | undefined
  }

  export interface Service {
    /**
     * Calls `method` on the server at `address` (`host:port`) and returns the decoded reply.
     * A `Uint8Array` of 64 KiB or more in `args` is written from the caller's buffer, not a copy
     * (`Encoder.ZeroCopyBytes`): leave it unchanged until the call has ended.
     */
    readonly rpc: (address: string, method: string, args: unknown, options?: CallOptions) => Effect.Effect<
      Value,
      RpcError
    >
    /** `Status.Ping`, timed. */
    readonly ping: (address: string, options?: CallOptions) => Effect.Effect<Duration.Duration, RpcError>
    readonly stats: Effect.Effect<PoolStats.PoolStats>
  }
}

export class RpcPool extends Context.Service<RpcPool, RpcPool.Service>()("effect-connpool/RpcPool") {}

const streamOpenReasons: ReadonlySet<string> = new Set([
  "RemoteGoAway",
  "LocalGoAway",
  "StreamsExhausted",
  "TooManyStreams"
])

const muxReason = (error: MuxError): RpcErrorReason => {
  if (error.reason === "ProtocolError") return "ProtocolError"
  if (error.reason === "StreamReset" || error.reason === "StreamClosed") return "StreamReset"
  if (streamOpenReasons.has(error.reason)) return "StreamOpenFailed"
  return "ConnectionLost"
}

const toRpcError = (
  error: CallError | TransportError | RpcError,
  address: string,
  method: string,
  sent: boolean
): RpcError => {
  if (error instanceof RpcError) return error
  if (error instanceof RemoteError) {
    return new RpcError({ reason: "RemoteError", address, method, sent: true, detail: error.message })
  }
  if (error instanceof TransportError) {
    return new RpcError({
      reason: error.reason === "DialTimeout" ? "DialTimeout" : "DialFailed",
      address,
      method,
      sent: false,
      detail: error.detail ?? error.reason,
      cause: error
    })
  }
  if (error instanceof CodecError) {
    // After the request went out, TooLarge is the reply decoder's maxMessageBytes (or buffering) limit:
    // the reply is well-formed, just too big. Before, it is the encoder refusing the args.
    const reason = sent && error.reason === "TooLarge" ? "MessageTooLarge" : "ProtocolError"
    return new RpcError({ reason, address, method, sent, detail: error.message, cause: error })
  }
  return new RpcError({
    reason: muxReason(error),
    address,
    method,
    sent,
    detail: error.detail ?? error.reason,
    cause: error
  })
}

/** A parsed `host:port` and the canonical key the pool maps it under. */
interface Target {
  readonly key: string
  readonly host: string
  readonly port: number
}

/** One run of a call: what its deadline must reset, and what its error must report. */
interface Call {
  sent: boolean
  /** The stream client while the request and reply are in flight. */
  client: StreamClient | undefined
  readonly deadline: Deadline
}

/** Distinct address strings whose parse is remembered. */
const maxCachedTargets = 1024

/** Marks the one retry of the seed: the stream could not be opened, so dial afresh once. */
const Retry: unique symbol = Symbol("Retry")

/**
 * Builds the pool in the current Scope; closing the Scope shuts it down:
 * every session closed, waiting callers released with `PoolClosed`, the
 * reaper stopped.
 *
 * @category constructors
 */
export const make = (options: RpcPool.Options = {}): Effect.Effect<RpcPool.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxTime = Duration.toMillis(options.maxTime ?? defaultMaxTime)
    const maxStreams = Math.max(0, options.maxStreams ?? defaultMaxStreams)
    const protocol = options.protocol ?? Protocols.consul
    const dialTimeout = options.dialTimeout ?? defaultDialTimeout
    const callTimeoutMillis = Duration.toMillis(Duration.fromInputUnsafe(options.callTimeout ?? defaultCallTimeout))
    const reapInterval = options.reapInterval ?? defaultReapInterval
    const maxMessageSize = Math.max(
      1,
      Math.floor(options.maxMessageSize ?? options.decoder?.maxMessageBytes ?? defaultMaxMessageSize)
    )
    const decoder: DecoderOptions = {
      ...options.decoder,
      maxMessageBytes: maxMessageSize,
      // A reply is two values (header and body), both held until the second is whole.
      maxBufferedBytes: options.decoder?.maxBufferedBytes ?? Math.max(DefaultMaxBufferedBytes, 2 * maxMessageSize)
    }
    const maxStreamsPerSession = Math.max(1, options.maxStreamsPerSession ?? defaultMaxStreamsPerSession)
    // At least 1: the caller that starts a dial waits for it too, and with 0 no call could ever dial.
    const maxPendingCalls = Math.max(1, options.maxPendingCalls ?? defaultMaxPendingCalls)

    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const now = () => clock.currentTimeMillisUnsafe()

    const conns = new Map<string, Conn>()
    const counters = new Map<string, PoolStats.Counters>()
    let closed = false
    // Sessions and dial fibers live in a child scope made before the shutdown
    // finalizer below, so that finalizer runs first (finalizers run in reverse):
    // waiters and in-flight calls already see `closed` and fail with PoolClosed.
    const connsScope = yield* Scope.fork(scope)
    const limiter = new DialLimiter<string, Conn, RpcError>((dial) => {
      runFork(Effect.forkIn(dial, connsScope))
    })
    const deadlines = new Deadlines(clock, (timer) => runFork(timer))

    const countersFor = (key: string): PoolStats.Counters => {
      let c = counters.get(key)
      if (c === undefined) {
        c = PoolStats.makeCounters()
        counters.set(key, c)
      }
      return c
    }

    const poolClosed = (address: string, method: string) =>
      new RpcError({ reason: "PoolClosed", address, method, sent: false })

    yield* Scope.addFinalizer(
      scope,
      Effect.suspend(() => {
        closed = true
        deadlines.clear()
        limiter.failAll((key) => poolClosed(key, ""))
        const all = [...conns.values()]
        conns.clear()
        return Effect.forEach(all, (conn) => conn.close, { discard: true })
      })
    )

    /** Consul `clearConn`: doom the Conn; close it now if nobody is on it. */
    const clearConn = (conn: Conn): Effect.Effect<void> =>
      Effect.suspend(() => {
        conn.shouldClose = true
        if (conns.get(conn.address) === conn) conns.delete(conn.address)
        return conn.callers === 0 ? conn.close : Effect.void
      })

    /** Consul `releaseConn`, plus a touch so a long call does not count as idle. */
    const releaseConn = (conn: Conn): Effect.Effect<void> =>
      Effect.suspend(() => {
        conn.callers--
        conn.lastUsed = now()
        return conn.callers === 0 && conn.shouldClose ? conn.close : Effect.void
      })

    const dial = (key: string, host: string, port: number): Effect.Effect<Conn, RpcError> =>
      Effect.gen(function*() {
        const connScope = yield* Scope.fork(connsScope)
        const session = yield* Transport.dial({ host, port, protocol, tls: options.tls, dialTimeout }).pipe(
          Effect.flatMap((socket) => Session.make(socket, { ...options.session, role: "client", address: key })),
          Scope.provide(connScope),
          Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(connScope, exit)),
          Effect.mapError((error) => toRpcError(error, key, "", false)),
          Effect.tapError(() => Effect.sync(() => countersFor(key).dialFailures++))
        )
        if (closed) {
          yield* Scope.close(connScope, Exit.void)
          return yield* Effect.fail(poolClosed(key, ""))
        }
        const conn = new Conn({
          address: key,
          session,
          scope: connScope,
          maxStreams,
          streamByte: protocol.streamByte,
          decoder,
          now: now(),
          maxStreamsInUse: maxStreamsPerSession,
          maxPending: maxPendingCalls,
          pending: countersFor(key)
        })
        conns.set(key, conn)
        countersFor(key).dials++
        // A session that dies on its own (EOF, keepalive) leaves the map at once.
        yield* Effect.forkIn(Effect.flatMap(session.closed, () => clearConn(conn)), connScope)
        return conn
      })

    /** Joins the dial for `key` as one of its `maxPendingCalls` waiters, or fails with `TooManyPending`. */
    const awaitDial = (key: string, host: string, port: number): Effect.Effect<Conn, RpcError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.suspend(() => {
          const gauge = countersFor(key)
          if (gauge.pending >= maxPendingCalls) {
            return Effect.fail(
              new RpcError({
                reason: "TooManyPending",
                address: key,
                method: "",
                sent: false,
                detail: `${gauge.pending} callers already wait (maxPendingCalls ${maxPendingCalls})`
              })
            )
          }
          gauge.pending++
          return Effect.ensuring(restore(limiter.join(key, dial(key, host, port))), Effect.sync(() => gauge.pending--))
        })
      )

    /**
     * The Conn for `key`, dialling through the limiter when there is none. The
     * caller marks it for use inside its uninterruptible region, so an
     * interruption can never leave a caller counted that will not release.
     */
    const acquire = (key: string, host: string, port: number): Effect.Effect<Conn, RpcError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(poolClosed(key, ""))
        const conn = conns.get(key)
        if (conn !== undefined && conn.usable) return Effect.succeed(conn)
        const fresh = awaitDial(key, host, port)
        // A Conn the server sent GoAway on is still mapped: retire it (closed once its callers leave).
        return conn === undefined ? fresh : Effect.andThen(clearConn(conn), fresh)
      })

    /** Parsed addresses: `rpc` is called with the same few strings millions of times. */
    const targets = new Map<string, Target | undefined>()
    const targetFor = (address: string): Target | undefined => {
      let target = targets.get(address)
      if (target === undefined && !targets.has(address)) {
        const parsed = Transport.parseAddress(address)
        target = parsed && { key: Transport.formatAddress(parsed.host, parsed.port), host: parsed.host, port: parsed.port }
        // Bounded: a caller inventing addresses must not grow the cache without end.
        if (targets.size >= maxCachedTargets) targets.clear()
        targets.set(address, target)
      }
      return target
    }

    const rpc = (
      address: string,
      method: string,
      args: unknown,
      callOptions?: RpcPool.CallOptions
    ): Effect.Effect<Value, RpcError> => {
      const target = targetFor(address)
      if (target === undefined) {
        return Effect.fail(
          new RpcError({ reason: "DialFailed", address, method, sent: false, detail: "not a host:port address" })
        )
      }
      const { host, key, port } = target
      const counters = countersFor(key)
      const timeout = callOptions?.timeout === undefined
        ? callTimeoutMillis
        : Duration.toMillis(Duration.fromInputUnsafe(callOptions.timeout))

      const timedOut = (call: Call) =>
        new RpcError({
          reason: "CallTimeout",
          address: key,
          method,
          sent: call.sent,
          detail: `no reply within ${Duration.format(Duration.millis(timeout))}`
        })

      /** The call proper, on a client this caller holds; `conn` is marked for use. */
      const callOn = (
        call: Call,
        conn: Conn,
        client: StreamClient,
        restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
        mayRetry: boolean
      ): Effect.Effect<Value | typeof Retry, RpcError> => {
        call.client = client
        return Effect.flatMap(Effect.exit(restore(client.call(method, args))), (exit): Effect.Effect<Value | typeof Retry, RpcError> => {
          call.client = undefined
          call.sent = client.sent
          // A deadline that fired as the reply landed has reset the stream: the reply stands, the stream does not.
          if (Exit.isSuccess(exit) && !call.deadline.expired) {
            return Effect.as(Effect.andThen(conn.returnClient(client), releaseConn(conn)), exit.value)
          }
          if (Exit.isSuccess(exit)) {
            return Effect.as(Effect.andThen(conn.discardClient(client), releaseConn(conn)), exit.value)
          }
          const error = Cause.findErrorOption(exit.cause)
          // The server refused the stream (its GoAway crossed our SYN, or its backlog was
          // full): no handler saw the request, so this is a failed open, retried the same way.
          if (client.stream.refused && !call.deadline.expired && error._tag === "Some" && error.value instanceof MuxError) {
            call.sent = false
            const refused = error.value
            return conn.discardClient(client).pipe(
              Effect.andThen(releaseConn(conn)),
              Effect.andThen(
                mayRetry ? Effect.succeed(Retry) : Effect.fail(
                  new RpcError({
                    reason: "StreamOpenFailed",
                    address: key,
                    method,
                    sent: false,
                    detail: `${refused.detail ?? refused.reason} refused`,
                    cause: refused
                  })
                )
              )
            )
          }
          // Consul and Nomad close the stream after any error, remote ones included: a Go
          // server's ServeRequest loop FINs the stream after an unknown method or undecodable
          // args, so reusing it would fail the next, unrelated call.
          const remote = error._tag === "Some" && error.value instanceof RemoteError
          const sessionDead = error._tag === "Some" && error.value instanceof MuxError && error.value.isSessionFatal
          return Effect.andThen(
            remote ? conn.closeClient(client) : conn.discardClient(client),
            Effect.andThen(
              sessionDead ? clearConn(conn) : Effect.void,
              Effect.andThen(
                releaseConn(conn),
                Effect.failCause(
                  Cause.map(exit.cause, (e) =>
                    closed
                      ? poolClosed(key, method)
                      : call.deadline.expired
                      ? timedOut(call)
                      : toRpcError(e, key, method, call.sent))
                )
              )
            )
          )
        })
      }

      /** Dial or open a stream, which may wait: bounded by what is left of the deadline. */
      const slowPath = (call: Call, mayRetry: boolean): Effect.Effect<Value | typeof Retry, RpcError> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(restore(acquire(key, host, port)), (conn) => {
            conn.markForUse(now())
            return Effect.flatMap(Effect.exit(restore(conn.takeClient)), (taken): Effect.Effect<Value | typeof Retry, RpcError> => {
              if (Exit.isSuccess(taken)) return callOn(call, conn, taken.value, restore, mayRetry)
              const error = Cause.findErrorOption(taken.cause)
              // Timed out waiting for a stream, or too many waiting: the session is fine, keep it.
              if (Cause.hasInterruptsOnly(taken.cause) || (error._tag === "Some" && error.value instanceof RpcError)) {
                return Effect.andThen(releaseConn(conn), Effect.failCause(taken.cause as Cause.Cause<RpcError>))
              }
              // Consul: "possible that the TCP session closed due to timeout": drop it, dial once more.
              return clearConn(conn).pipe(
                Effect.andThen(releaseConn(conn)),
                Effect.andThen(
                  error._tag === "None"
                    ? Effect.failCause(taken.cause as Cause.Cause<never>)
                    : mayRetry
                    ? Effect.succeed(Retry)
                    : Effect.fail(
                      new RpcError({
                        reason: "StreamOpenFailed",
                        address: key,
                        method,
                        sent: false,
                        detail: error.value.message,
                        cause: error.value
                      })
                    )
                )
              )
            })
          })
        ).pipe(
          Effect.timeoutOrElse({
            duration: Math.max(0, call.deadline.at - now()),
            orElse: () => Effect.fail(timedOut(call))
          })
        )

      // Uninterruptible from taking the client to the call: an interruption in between would strand the
      // client and leave the Conn counting a caller that never releases it.
      const attempt = (call: Call, mayRetry: boolean): Effect.Effect<Value | typeof Retry, RpcError> =>
        Effect.uninterruptibleMask((restore) =>
          Effect.suspend(() => {
            if (call.deadline.expired) return Effect.fail(timedOut(call))
            const conn = closed ? undefined : conns.get(key)
            const client = conn !== undefined && conn.usable ? conn.takeIdle() : undefined
            if (conn === undefined || client === undefined) return restore(slowPath(call, mayRetry))
            conn.markForUse(now())
            return callOn(call, conn, client, restore, mayRetry)
          })
        )

      return Effect.suspend(() => {
        counters.calls++
        // Per run, not per rpc(): Effect.retry runs the same Effect again, and each run reports its own request.
        const call: Call = {
          sent: false,
          client: undefined,
          // At the deadline, reset the stream the call waits on; the call then fails with CallTimeout.
          deadline: deadlines.add(timeout, Effect.suspend(() => call.client?.reset ?? Effect.void))
        }
        return Effect.flatMap(attempt(call, true), (result) =>
          result === Retry ? (attempt(call, false) as Effect.Effect<Value, RpcError>) : Effect.succeed(result)).pipe(
            Effect.onExit((exit) => {
              deadlines.remove(call.deadline)
              if (Exit.isSuccess(exit)) counters.ok++
              else {
                const error = Cause.findErrorOption(exit.cause)
                if (error._tag === "Some") {
                  counters.failures[error.value.reason] = (counters.failures[error.value.reason] ?? 0) + 1
                }
              }
              return Effect.void
            })
          )
      })
    }

    const ping = (address: string, callOptions?: RpcPool.CallOptions) =>
      Effect.gen(function*() {
        const start = yield* Clock.currentTimeNanos
        yield* rpc(address, "Status.Ping", {}, callOptions)
        return Duration.nanos((yield* Clock.currentTimeNanos) - start)
      })

    const stats = Effect.sync(() => {
      const addresses: Array<PoolStats.AddressStats> = []
      for (const [address, c] of counters) {
        const conn = conns.get(address)
        addresses.push({
          address,
          sessions: conn === undefined ? 0 : 1,
          streamsIdle: conn?.idleStreams ?? 0,
          streamsInUse: conn?.inUse ?? 0,
          callers: conn?.callers ?? 0,
          pending: c.pending,
          dials: c.dials,
          dialFailures: c.dialFailures,
          calls: c.calls,
          ok: c.ok,
          failures: { ...c.failures }
        })
      }
      return PoolStats.total(addresses)
    })

    /** Consul `reap`: close sessions idle for `maxTime` with no callers, outside any call. */
    const reap = Effect.suspend(() => {
      const t = now()
      const idle: Array<Conn> = []
      for (const [key, conn] of conns) {
        if (conn.callers === 0 && t - conn.lastUsed >= maxTime) {
          conns.delete(key)
          idle.push(conn)
        }
      }
      return Effect.forEach(idle, (conn) => conn.close, { discard: true })
    })
    if (maxTime > 0) yield* Effect.forkIn(Effect.repeat(reap, Schedule.spaced(reapInterval)), scope)

    return { rpc, ping, stats } satisfies RpcPool.Service
  })

/**
 * The pool as a Layer: provide it to a program and every `rpc` in it shares
 * the pool; the pool shuts down when the Layer's Scope closes.
 *
 * @category layers
 */
export const PoolLayer = (options: RpcPool.Options = {}): Layer.Layer<RpcPool> =>
  Layer.effect(RpcPool, make(options))

/**
 * Options read from effect's `Config` (environment by default):
 * `CONNPOOL_MAX_TIME`, `CONNPOOL_MAX_STREAMS`, `CONNPOOL_PROTOCOL`
 * (`consul`|`nomad`), `CONNPOOL_DIAL_TIMEOUT`, `CONNPOOL_CALL_TIMEOUT`,
 * `CONNPOOL_MAX_MESSAGE_SIZE` (bytes), `CONNPOOL_MAX_STREAMS_PER_SESSION` and
 * `CONNPOOL_MAX_PENDING_CALLS`, each falling back to its default. TLS stays
 * in code: certificates are not environment strings.
 *
 * @category layers
 */
export const PoolLayerConfig = (
  overrides: Omit<
    RpcPool.Options,
    | "maxTime"
    | "maxStreams"
    | "protocol"
    | "dialTimeout"
    | "callTimeout"
    | "maxMessageSize"
    | "maxStreamsPerSession"
    | "maxPendingCalls"
  > = {}
) =>
  Layer.effect(
    RpcPool,
    Effect.gen(function*() {
      const config = yield* Config.all({
        maxTime: Config.Duration("CONNPOOL_MAX_TIME").pipe(Config.withDefault(defaultMaxTime)),
        maxStreams: Config.Int("CONNPOOL_MAX_STREAMS").pipe(Config.withDefault(defaultMaxStreams)),
        protocol: Config.Literals(["consul", "nomad"], "CONNPOOL_PROTOCOL").pipe(
          Config.withDefault("consul" as const)
        ),
        dialTimeout: Config.Duration("CONNPOOL_DIAL_TIMEOUT").pipe(Config.withDefault(defaultDialTimeout)),
        callTimeout: Config.Duration("CONNPOOL_CALL_TIMEOUT").pipe(Config.withDefault(defaultCallTimeout)),
        maxMessageSize: Config.Int("CONNPOOL_MAX_MESSAGE_SIZE").pipe(Config.withDefault(defaultMaxMessageSize)),
        maxStreamsPerSession: Config.Int("CONNPOOL_MAX_STREAMS_PER_SESSION").pipe(
          Config.withDefault(defaultMaxStreamsPerSession)
        ),
        maxPendingCalls: Config.Int("CONNPOOL_MAX_PENDING_CALLS").pipe(Config.withDefault(defaultMaxPendingCalls))
      })
      return yield* make({ ...overrides, ...config, protocol: Protocols.byName[config.protocol] })
    })
  )

/** `rpc` on the pool in context. */
export const rpc = (
  address: string,
  method: string,
  args: unknown,
  options?: RpcPool.CallOptions
): Effect.Effect<Value, RpcError, RpcPool> => RpcPool.use((pool) => pool.rpc(address, method, args, options))

/** `Status.Ping` on the pool in context, timed. */
export const ping = (address: string, options?: RpcPool.CallOptions): Effect.Effect<Duration.Duration, RpcError, RpcPool> =>
  RpcPool.use((pool) => pool.ping(address, options))

/** A snapshot of the pool's stats. */
export const stats: Effect.Effect<PoolStats.PoolStats, never, RpcPool> = RpcPool.use((pool) => pool.stats)

/**
 * Go `[]byte` for `method` schemas: go-msgpack writes it in the str family, so
 * it decodes as a `string` when its bytes are valid UTF-8 and as a
 * `Uint8Array` otherwise; this Schema turns either into a `Uint8Array` and
 * encodes a `Uint8Array` as is.
 *
 * @category schemas
 */
export const Bytes = Schema.Union([Schema.String, Schema.Uint8Array]).pipe(
  Schema.decodeTo(
    Schema.Uint8Array,
    SchemaTransformation.transform<Uint8Array, string | Uint8Array>({ decode: asBytes, encode: (bytes) => bytes })
  )
)

/**
 * A typed method: args are encoded with `args`, the reply is decoded with
 * `reply`; a reply that does not match fails with `ReplyMismatch`, never a cast.
 *
 * **Example**
 * ```ts
 * const Echo = RpcPool.method("Test.Echo", {
 *   args: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String }),
 *   reply: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String, Served: Schema.Number })
 * })
 * const reply = yield* Echo(addr, { Payload: new Uint8Array(8), Seq: 1, Note: "hi" })
 * ```
 *
 * @category constructors
 */
export const method = <Args extends Schema.Top, Reply extends Schema.Top>(
  name: string,
  schemas: { readonly args: Args; readonly reply: Reply }
) => {
  const encode = Schema.encodeUnknownEffect(schemas.args)
  const decode = Schema.decodeUnknownEffect(schemas.reply)
  return (
    address: string,
    args: Args["Type"],
    options?: RpcPool.CallOptions
  ): Effect.Effect<Reply["Type"], RpcError, RpcPool | Args["EncodingServices"] | Reply["DecodingServices"]> =>
    Effect.gen(function*() {
      const encoded = yield* encode(args).pipe(
        Effect.mapError((error) =>
          new RpcError({ reason: "ReplyMismatch", address, method: name, sent: false, detail: `args: ${error.message}` })
        )
      )
      const reply = yield* rpc(address, name, encoded, options)
      return yield* decode(reply).pipe(
        Effect.mapError((error) =>
          new RpcError({ reason: "ReplyMismatch", address, method: name, sent: true, detail: error.message })
        )
      )
    })
}
