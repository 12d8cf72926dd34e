/**
 * The RPC pool of the first seed (Consul `agent/pool`), as an Effect service:
 * one TCP connection and yamux session per server shared by every caller,
 * msgpack-rpc stream clients reused from a free list, one dial per server
 * however many callers arrive, idle sessions reaped, and shutdown as the
 * closing of the Layer's Scope.
 *
 * **Details**
 * This module is the service, its Layers and the public functions. The parts
 * live beside it: `RpcOptions.ts` (defaults, validation), `State.ts` (the Conn
 * of each server, the dial limiter, the counters), `Call.ts` (one call's
 * path, its deadline and its one retry), `Reaper.ts`, `Shutdown.ts`, and
 * under them `Conn.ts` (one server's session and stream free list),
 * `DialLimiter.ts` and `Deadlines.ts`. docs/architecture.md draws the whole.
 *
 * **Example** (Providing the pool and retrying safe failures)
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { RpcPool } from "effect-connpool"
 *
 * const leader = RpcPool.rpc("127.0.0.1:8300", "Status.Leader", {}).pipe(
 *   Effect.retry({ schedule: Schedule.exponential("100 millis"), times: 3, while: (e) => e.isRetryable })
 * )
 * Effect.runPromise(leader.pipe(Effect.provide(RpcPool.PoolLayer({ maxTime: "2 minutes" }))))
 * ```
 *
 * @since 0.1.0
 */
import { Clock, Config, Context, Duration, Effect, Layer, Option, Scope, Stream } from "effect"
import type { Raws, Value } from "../msgpackrpc/Decoder.ts"
import { InvalidOption } from "../pool/PoolError.ts"
import * as Protocols from "../wire/Protocol.ts"
import { Connector } from "../wire/ByteTransport.ts"
import * as Call from "./Call.ts"
import { RpcError } from "./RpcError.ts"
import * as RpcOptions from "./RpcOptions.ts"
import type { RpcStats } from "./RpcStats.ts"
import * as Reaper from "./Reaper.ts"
import * as RpcTracing from "./RpcTracing.ts"
import { shutdown } from "./Shutdown.ts"
import { State, stateOf } from "./State.ts"
import * as StreamingRpc from "./StreamingRpc.ts"
import type { Target } from "./Target.ts"

export {
  defaultName,
  defaultCallTimeout,
  defaultDialTimeout,
  defaultMaxMessageSize,
  defaultMaxPendingCalls,
  defaultMaxStreams,
  defaultMaxStreamsPerSession,
  defaultMaxTime,
  defaultReapInterval
} from "./RpcOptions.ts"
export { maxIdleAddresses } from "./RpcStats.ts"
/** What `make` and the Layers fail with when an option cannot be used: the same class as `ConnPool`'s. */
export { InvalidOption }

export declare namespace RpcPool {
  /** The pool's options; each default is a named constant, each value is checked by `make`. */
  export type Options = RpcOptions.Options

  export interface CallOptions {
    /**
     * Overrides `callTimeout` for this call. A value that is not a duration
     * >= 0 fails the call with `RpcError` `InvalidOption`, sending nothing.
     */
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
    /** `Status.Ping`, timed on the monotonic clock. */
    readonly ping: (address: string, options?: CallOptions) => Effect.Effect<Duration.Duration, RpcError>
    readonly stats: Effect.Effect<RpcStats>
    /**
     * Opens a streaming RPC of `method` (Nomad's `StreamingRPC`) on a fresh stream of the
     * server's session, for as long as the Scope lasts: `send` values, `receive` the server's.
     * Needs a protocol with a streaming byte (`Protocol.nomad`). docs/streaming.md.
     */
    readonly streamingRpc: (
      address: string,
      method: string,
      options?: StreamingOptions
    ) => Effect.Effect<Duplex, RpcError, Scope.Scope>
    /**
     * A Nomad streaming RPC as a Stream of its frames: sends `request`, then emits each
     * `StreamErrWrapper` payload; an error frame fails it with `RemoteError` (and `code`), EOF
     * ends it. Interrupting or ending the Stream closes our side of the stream at once.
     */
    readonly stream: (
      address: string,
      method: string,
      request: unknown,
      options?: StreamOptions
    ) => Stream.Stream<Frame, RpcError>
  }

  export interface StreamingOptions {
    /**
     * Bounds the open: a dial if one is needed, the stream, the header and the server's ack.
     * Default: the pool's `callTimeout`. What follows the ack has no deadline. A value that is
     * not a duration >= 0 fails with `RpcError` `InvalidOption`.
     */
    readonly timeout?: Duration.Input | undefined
  }

  export interface StreamOptions extends StreamingOptions {
    /** Emit heartbeat frames (`{_tag: "Heartbeat"}`) too. Default false: they are dropped. */
    readonly heartbeats?: boolean | undefined
  }

  /** An open streaming RPC (`streamingRpc`). */
  export type Duplex = StreamingRpc.Duplex
  /** A frame of `stream`: `{_tag: "Payload", payload}` or `{_tag: "Heartbeat"}`. */
  export type Frame = StreamingRpc.Frame
}

export class RpcPool extends Context.Service<RpcPool, RpcPool.Service>()("effect-connpool/RpcPool") {}

/** A call's own timeout in millis, or undefined when it is not a duration >= 0. */
const timeoutMillis = (input: Duration.Input): number | undefined => {
  if (typeof input === "number") return input >= 0 ? input : undefined
  const d = RpcOptions.toDuration(input)
  return Option.isSome(d) ? Duration.toMillis(d.value) : undefined
}

const invalidOption = (address: string, method: string, detail: string) =>
  new RpcError({ reason: "InvalidOption", address, method, sent: false, detail })

/**
 * Builds the pool in the current Scope; closing the Scope shuts it down:
 * every session closed, waiting callers released with `PoolClosed`, the
 * reaper stopped.
 *
 * **Details**
 * Fails with `InvalidOption` (naming the option) when an option cannot be
 * used; see `RpcPool.Options` for the defaults and the rules. Connections
 * are opened with the `Connector` in context, `Transport.dial` by default.
 *
 * @category constructors
 */
export const make = (options: RpcPool.Options = {}): Effect.Effect<RpcPool.Service, InvalidOption, Scope.Scope> =>
  Effect.gen(function*() {
    const config = RpcOptions.normalize(options)
    if (config instanceof InvalidOption) return yield* Effect.fail(config)
    const scope = yield* Effect.scope
    const context = yield* Effect.context<never>()
    const runFork = Effect.runForkWith(context)
    // Made before the shutdown finalizer, so it closes after it (see State.connsScope).
    const connsScope = yield* Scope.fork(scope)
    const state = new State({
      config,
      clock: yield* Clock.Clock,
      connect: yield* Connector,
      connsScope,
      runFork: (effect) => runFork(effect),
      context
    })
    yield* Scope.addFinalizer(scope, shutdown(state))
    yield* Reaper.start(state, scope)

    /** The call's server and timeout, or why they cannot be used. */
    const resolve = (
      address: string,
      method: string,
      timeoutInput: Duration.Input | undefined
    ): { readonly target: Target; readonly timeout: number } | RpcError => {
      const target = state.targets.get(address)
      if (target === undefined) {
        return new RpcError({ reason: "DialFailed", address, method, sent: false, detail: "not a host:port address" })
      }
      const timeout = timeoutInput === undefined ? config.callTimeoutMillis : timeoutMillis(timeoutInput)
      if (timeout === undefined) {
        return invalidOption(target.key, method, `timeout: expected a duration >= 0, got ${String(timeoutInput)}`)
      }
      return { target, timeout }
    }

    const rpc = (
      address: string,
      method: string,
      args: unknown,
      callOptions?: RpcPool.CallOptions
    ): Effect.Effect<Value, RpcError> => {
      const resolved = resolve(address, method, callOptions?.timeout)
      if (resolved instanceof RpcError) return Effect.fail(resolved)
      const { target, timeout } = resolved
      return config.observability.tracing
        ? RpcTracing.client(config, target, method, (span) => Call.run(state, target, method, args, timeout, span))
        : Call.run(state, target, method, args, timeout)
    }

    const openStreaming = (
      address: string,
      method: string,
      timeout: Duration.Input | undefined,
      raws: Raws = "text"
    ) => {
      const resolved = resolve(address, method, timeout)
      return resolved instanceof RpcError
        ? Effect.fail(resolved)
        : StreamingRpc.open(state, resolved.target, method, resolved.timeout, raws)
    }

    const streamingRpc = (address: string, method: string, streamingOptions?: RpcPool.StreamingOptions) =>
      Effect.map(openStreaming(address, method, streamingOptions?.timeout), StreamingRpc.duplex)

    const stream = (address: string, method: string, request: unknown, streamOptions?: RpcPool.StreamOptions) =>
      Stream.unwrap(
        // Frames carry Go []byte: read as bytes, never as strings.
        Effect.flatMap(openStreaming(address, method, streamOptions?.timeout, "bytes"), (call) =>
          Effect.as(call.send(request), Stream.fromPull(Effect.succeed(call.pullFrame(streamOptions?.heartbeats ?? false)))))
      )

    const ping = (address: string, callOptions?: RpcPool.CallOptions) =>
      Effect.gen(function*() {
        const start = yield* Clock.monotonicTimeNanos
        yield* rpc(address, "Status.Ping", {}, callOptions)
        return Duration.nanos((yield* Clock.monotonicTimeNanos) - start)
      })

    const stats = Effect.sync(() => state.snapshot())

    const service: RpcPool.Service = { rpc, ping, stats, streamingRpc, stream }
    stateOf.set(service, state)
    return service
  })

/**
 * The pool as a Layer: provide it to a program and every `rpc` in it shares
 * the pool; the pool shuts down when the Layer's Scope closes. Building it
 * fails with `InvalidOption` when an option cannot be used.
 *
 * @category layers
 */
export const PoolLayer = (options: RpcPool.Options = {}): Layer.Layer<RpcPool, InvalidOption> =>
  Layer.effect(RpcPool, make(options))

/**
 * Options read from effect's `Config` (environment by default):
 * `CONNPOOL_MAX_TIME`, `CONNPOOL_MAX_STREAMS`, `CONNPOOL_PROTOCOL`
 * (`consul`|`nomad`), `CONNPOOL_DIAL_TIMEOUT`, `CONNPOOL_CALL_TIMEOUT`,
 * `CONNPOOL_MAX_MESSAGE_SIZE` (bytes), `CONNPOOL_MAX_STREAMS_PER_SESSION` and
 * `CONNPOOL_MAX_PENDING_CALLS`, each falling back to its default. TLS stays
 * in code: certificates are not environment strings. Building it fails with
 * effect's `ConfigError` on a value that does not parse, and with
 * `InvalidOption` on one that parses but cannot be used (a negative count).
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
        maxTime: Config.Duration("CONNPOOL_MAX_TIME").pipe(Config.withDefault(RpcOptions.defaultMaxTime)),
        maxStreams: Config.Int("CONNPOOL_MAX_STREAMS").pipe(Config.withDefault(RpcOptions.defaultMaxStreams)),
        protocol: Config.Literals(["consul", "nomad"], "CONNPOOL_PROTOCOL").pipe(
          Config.withDefault("consul" as const)
        ),
        dialTimeout: Config.Duration("CONNPOOL_DIAL_TIMEOUT").pipe(Config.withDefault(RpcOptions.defaultDialTimeout)),
        callTimeout: Config.Duration("CONNPOOL_CALL_TIMEOUT").pipe(Config.withDefault(RpcOptions.defaultCallTimeout)),
        maxMessageSize: Config.Int("CONNPOOL_MAX_MESSAGE_SIZE").pipe(Config.withDefault(RpcOptions.defaultMaxMessageSize)),
        maxStreamsPerSession: Config.Int("CONNPOOL_MAX_STREAMS_PER_SESSION").pipe(
          Config.withDefault(RpcOptions.defaultMaxStreamsPerSession)
        ),
        maxPendingCalls: Config.Int("CONNPOOL_MAX_PENDING_CALLS").pipe(Config.withDefault(RpcOptions.defaultMaxPendingCalls))
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

/** `streamingRpc` on the pool in context: an open streaming RPC for as long as the Scope lasts. */
export const streamingRpc = (
  address: string,
  method: string,
  options?: RpcPool.StreamingOptions
): Effect.Effect<RpcPool.Duplex, RpcError, RpcPool | Scope.Scope> =>
  RpcPool.use((pool) => pool.streamingRpc(address, method, options))

/** `stream` on the pool in context: a Nomad streaming RPC's frames. */
export const stream = (
  address: string,
  method: string,
  request: unknown,
  options?: RpcPool.StreamOptions
): Stream.Stream<RpcPool.Frame, RpcError, RpcPool> =>
  Stream.unwrap(RpcPool.use((pool) => Effect.succeed(pool.stream(address, method, request, options))))

/** A snapshot of the pool's stats. */
export const stats: Effect.Effect<RpcStats, never, RpcPool> = RpcPool.use((pool) => pool.stats)

export { Bytes, method } from "./Method.ts"
export type { Method, Schemas } from "./Method.ts"
