/**
 * The RPC pool's options: each default as a named constant, and `normalize`,
 * which applies the defaults and checks every value once, when the pool is
 * made, so a bad option fails the pool's construction with a typed
 * `InvalidOption` instead of a call later (or a throw).
 *
 * @since 0.1.0
 */
import { Duration, Option } from "effect"
import { DefaultMaxBufferedBytes, DefaultMaxMessageBytes } from "../msgpackrpc/Decoder.ts"
import type { DecoderOptions } from "../msgpackrpc/Decoder.ts"
import * as Observability from "../observability/Observability.ts"
import { InvalidOption } from "../pool/PoolError.ts"
import type { Protocol } from "../wire/Protocol.ts"
import { consul } from "../wire/Protocol.ts"
import type { ClientTls } from "../wire/Tls.ts"
import * as YamuxConfig from "../yamux/Config.ts"

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
/** Default `name`: `"RpcPool"`. */
export const defaultName = "RpcPool"

/**
 * **Validation.** Counts must be whole numbers >= 0 and durations must parse
 * and be >= 0 (`reapInterval` > 0); NaN, negative, fractional or infinite
 * counts and unparsable durations fail the pool's construction with
 * `InvalidOption` naming the option. A count of 0 where at least 1 is needed
 * (`maxStreamsPerSession`, `maxPendingCalls`, `maxMessageSize`) is raised to 1.
 * The `session` options are checked the same way (`YamuxConfig.check`).
 */
export interface Options {
  /**
   * Names the pool in its log lines and on its `connpool.rpc.*` metrics
   * (`connpool.pool.name`). Default `"RpcPool"` (`defaultName`); give two
   * pools of one process different names, or their per-server series mix.
   */
  readonly name?: string | undefined
  /**
   * Metrics and spans (docs/observability.md). Default: metrics on, spans off
   * (`Observability.defaultMetrics`, `Observability.defaultTracing`).
   */
  readonly observability?: Observability.Options | undefined
  /**
   * Idle time before a session with no callers is closed. Default 2 minutes
   * (`defaultMaxTime`); 0 turns reaping off. Measured on the monotonic clock.
   */
  readonly maxTime?: Duration.Input | undefined
  /** Idle stream clients kept per session; extras are closed when returned. Default 64 (`defaultMaxStreams`). */
  readonly maxStreams?: number | undefined
  /** Preamble bytes. Default `consul`. */
  readonly protocol?: Protocol | undefined
  /** Speak TLS behind the protocol's TLS byte, verifying the server by default. */
  readonly tls?: ClientTls | undefined
  /** Connect plus handshake. Default 10 seconds (`defaultDialTimeout`). */
  readonly dialTimeout?: Duration.Input | undefined
  /**
   * Deadline for each call, from acquiring the session to the reply. Default
   * 60 seconds (`defaultCallTimeout`). Measured on the monotonic clock, so a
   * wall clock that steps (NTP, a VM resumed) does not move it.
   */
  readonly callTimeout?: Duration.Input | undefined
  /** Reaper period, above 0. Default 1 second (`defaultReapInterval`). */
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

/** The options with defaults applied and checked. Durations the hot path uses are millis. */
export interface Config {
  readonly name: string
  readonly observability: Observability.Config
  /** 0: reaping off. */
  readonly maxTimeMillis: number
  readonly maxStreams: number
  readonly protocol: Protocol
  readonly tls: ClientTls | undefined
  readonly dialTimeout: Duration.Duration
  readonly callTimeoutMillis: number
  readonly reapInterval: Duration.Duration
  readonly session: YamuxConfig.Options | undefined
  readonly decoder: DecoderOptions
  readonly maxStreamsPerSession: number
  readonly maxPendingCalls: number
}

const invalid = (option: string, detail: string) => new InvalidOption({ pool: "RpcPool", option, detail })

const count = (option: string, value: number | undefined, fallback: number): number | InvalidOption => {
  const n = value ?? fallback
  return Number.isInteger(n) && n >= 0 ? n : invalid(option, `expected an integer >= 0, got ${String(n)}`)
}

/**
 * A duration input as a Duration, or None when it does not parse, is NaN
 * (which `Duration.fromInput` reads as 0) or is negative.
 */
export const toDuration = (input: Duration.Input): Option.Option<Duration.Duration> => {
  if (typeof input === "number" && Number.isNaN(input)) return Option.none()
  const d = Duration.fromInput(input)
  return Option.isSome(d) && Duration.isNegative(d.value) ? Option.none() : d
}

const duration = (
  option: string,
  value: Duration.Input | undefined,
  fallback: Duration.Duration,
  positive = false
): Duration.Duration | InvalidOption => {
  const d = value === undefined ? Option.some(fallback) : toDuration(value)
  if (Option.isNone(d) || (positive && Duration.isZero(d.value))) {
    return invalid(option, `expected a duration ${positive ? "> 0" : ">= 0"}, got ${String(value)}`)
  }
  return d.value
}

/**
 * Applies the defaults and checks every option, or returns the first
 * `InvalidOption`.
 *
 * @category constructors
 */
export const normalize = (options: Options): Config | InvalidOption => {
  const name = options.name ?? defaultName
  if (typeof name !== "string") return invalid("name", `expected a string, got ${typeof name}`)
  const observability = Observability.normalize(options.observability)
  if (Observability.isProblem(observability)) return invalid(observability.option, observability.detail)
  const maxTime = duration("maxTime", options.maxTime, defaultMaxTime)
  if (!Duration.isDuration(maxTime)) return maxTime
  const dialTimeout = duration("dialTimeout", options.dialTimeout, defaultDialTimeout)
  if (!Duration.isDuration(dialTimeout)) return dialTimeout
  const callTimeout = duration("callTimeout", options.callTimeout, defaultCallTimeout)
  if (!Duration.isDuration(callTimeout)) return callTimeout
  const reapInterval = duration("reapInterval", options.reapInterval, defaultReapInterval, true)
  if (!Duration.isDuration(reapInterval)) return reapInterval
  const maxStreams = count("maxStreams", options.maxStreams, defaultMaxStreams)
  if (typeof maxStreams !== "number") return maxStreams
  const maxMessageSize = count(
    "maxMessageSize",
    options.maxMessageSize ?? options.decoder?.maxMessageBytes,
    defaultMaxMessageSize
  )
  if (typeof maxMessageSize !== "number") return maxMessageSize
  const maxStreamsPerSession = count("maxStreamsPerSession", options.maxStreamsPerSession, defaultMaxStreamsPerSession)
  if (typeof maxStreamsPerSession !== "number") return maxStreamsPerSession
  const maxPendingCalls = count("maxPendingCalls", options.maxPendingCalls, defaultMaxPendingCalls)
  if (typeof maxPendingCalls !== "number") return maxPendingCalls
  const sessionProblem = YamuxConfig.check(options.session)
  if (sessionProblem !== undefined) return invalid(`session.${sessionProblem.option}`, sessionProblem.detail)

  const messageSize = Math.max(1, maxMessageSize)
  return {
    name,
    observability,
    maxTimeMillis: Duration.toMillis(maxTime),
    maxStreams,
    protocol: options.protocol ?? consul,
    tls: options.tls,
    dialTimeout,
    callTimeoutMillis: Duration.toMillis(callTimeout),
    reapInterval,
    session: options.session,
    decoder: {
      ...options.decoder,
      maxMessageBytes: messageSize,
      // A reply is two values (header and body), both held until the second is whole.
      maxBufferedBytes: options.decoder?.maxBufferedBytes ?? Math.max(DefaultMaxBufferedBytes, 2 * messageSize)
    },
    maxStreamsPerSession: Math.max(1, maxStreamsPerSession),
    // At least 1: the caller that starts a dial waits for it too, and with 0 no call could ever dial.
    maxPendingCalls: Math.max(1, maxPendingCalls)
  }
}
