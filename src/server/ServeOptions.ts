/**
 * What `RpcServer.serve` takes, its limits with their defaults, and the check
 * that turns the options into one normalised `Config` before the server
 * listens. A bad value is a `ServerConfigError` at construction, never a
 * limit silently switched off (`NaN`) or a throw on every connection.
 *
 * **What the limits bound**
 * Connections (in total and per client IP), streams being served (per
 * session and in total), and request bytes held (per session and in total):
 * requests not yet whole, and each request until its reply is written. Past a
 * connection limit a connection is closed right after accept; past a stream
 * limit a stream is reset; past a byte budget the stream whose bytes would
 * pass it is reset. The session and its other streams carry on.
 *
 * @since 0.1.0
 */
import { Duration, Option } from "effect"
import { DefaultMaxBufferedBytes, DefaultMaxMessageBytes } from "../msgpackrpc/Decoder.ts"
import * as Observability from "../observability/Observability.ts"
import type { DecoderOptions } from "../msgpackrpc/Decoder.ts"
import { defaultMaxConns, defaultMaxConnsPerClient } from "../wire/Listener.ts"
import type { ListenOptions } from "../wire/Listener.ts"
import type * as YamuxConfig from "../yamux/Config.ts"
import { defaultMaxStreams as yamuxMaxStreams } from "../yamux/Config.ts"
import type { Handler } from "./RpcServer.ts"
import { isStreamingHandler } from "./StreamingHandler.ts"
import type { StreamingHandler } from "./StreamingHandler.ts"
import { ServerConfigError } from "./ServerConfigError.ts"

export { defaultMaxConns, defaultMaxConnsPerClient }

/**
 * Largest request value a server buffers and decodes: 64 MiB, the msgpack
 * decoder's default and the pool's `maxMessageSize`, so a default client and
 * server agree.
 */
export const defaultMaxMessageSize = DefaultMaxMessageBytes

/**
 * Streams served at once on one session: 2048. Twice RpcPool's
 * `maxStreamsPerSession` (1024), so our client never meets it, and a quarter of
 * yamux's 8192: at about 4 KiB an idle stream, a session holds at most 8 MiB of
 * stream state.
 */
export const defaultMaxStreamsPerSession = 2048

/**
 * Streams served at once across all sessions: 16,384, eight sessions at their
 * limit, about 64 MiB of idle stream state. Without it the per-session limit
 * times the connection limits bounds nothing in practice.
 */
export const defaultMaxStreams = 16_384

/**
 * Request bytes one session may hold: 128 MiB (or twice `maxMessageSize` when
 * that is larger), room for one request of the largest size in header and body.
 */
export const defaultMaxBufferedBytesPerSession = 2 * DefaultMaxMessageBytes

/** Request bytes all sessions together may hold: 256 MiB (or the per-session budget when larger). */
export const defaultMaxBufferedBytes = 4 * DefaultMaxMessageBytes

export interface ServeOptions extends ListenOptions {
  /** Handlers by `Service.Method`. */
  readonly handlers: Readonly<Record<string, Handler>>
  /**
   * Streaming-RPC handlers by method (`StreamingHandler.duplex` or `.frames`), served on
   * streams that open with the protocol's streaming byte (Nomad's 5). Each counts against
   * the stream limits for as long as it runs. Default none.
   */
  readonly streaming?: Readonly<Record<string, StreamingHandler>> | undefined
  /** yamux tunables for every session; `maxStreams` is capped at `maxStreamsPerSession`. */
  readonly session?: YamuxConfig.Options | undefined
  /** Limits on each request (nesting, buffering); `maxMessageSize` wins over `decoder.maxMessageBytes`. */
  readonly decoder?: DecoderOptions | undefined
  /**
   * Largest request value, in bytes. Default 64 MiB (`defaultMaxMessageSize`).
   * A larger request resets its stream as soon as its header announces the
   * size (the client sees `StreamReset`); the session and its other streams
   * carry on.
   */
  readonly maxMessageSize?: number | undefined
  /**
   * Streams served at once on one session. Default 2048
   * (`defaultMaxStreamsPerSession`). A stream beyond it is reset before it is
   * acknowledged (the client sees a refused open, which RpcPool retries once);
   * while a handler that ignores interruption outlives its reset stream, new
   * streams are reset on accept instead.
   */
  readonly maxStreamsPerSession?: number | undefined
  /**
   * Streams served at once across all sessions. Default 16,384
   * (`defaultMaxStreams`). A stream beyond it is reset on accept.
   */
  readonly maxStreams?: number | undefined
  /**
   * Request bytes one session may hold: bytes of requests not yet whole (a
   * large one counts its declared size from its header on, as the server then
   * allocates it), and each request's bytes until its reply is written. Default 128 MiB or twice
   * `maxMessageSize`, whichever is larger (`defaultMaxBufferedBytesPerSession`);
   * at least `maxMessageSize`. The stream whose bytes would pass it is reset.
   */
  readonly maxBufferedBytesPerSession?: number | undefined
  /**
   * Request bytes all sessions may hold together, as `maxBufferedBytesPerSession`.
   * Default 256 MiB or the per-session budget, whichever is larger
   * (`defaultMaxBufferedBytes`); at least `maxMessageSize`.
   */
  readonly maxBufferedBytes?: number | undefined
  /**
   * Metrics and spans (docs/observability.md): `rpc.server.call.duration`,
   * `connpool.server.*`, a SERVER span per call. Default: metrics on, spans
   * off (`Observability.defaultMetrics`, `Observability.defaultTracing`).
   */
  readonly observability?: Observability.Options | undefined
}

/** The limits a server runs with, defaults applied (`Infinity` where switched off). */
export interface Limits {
  readonly maxConns: number
  readonly maxConnsPerClient: number
  readonly maxStreamsPerSession: number
  readonly maxStreams: number
  readonly maxBufferedBytesPerSession: number
  readonly maxBufferedBytes: number
  readonly maxMessageSize: number
}

/** The options, checked and normalised once. */
export interface Config {
  readonly limits: Limits
  readonly decoder: DecoderOptions
  readonly session: YamuxConfig.Options
  readonly observability: Observability.Config
}

const invalid = (option: string, detail: string) => new ServerConfigError({ reason: "InvalidOption", option, detail })

const show = (value: unknown): string => {
  try {
    return typeof value === "string" ? JSON.stringify(value) : String(value)
  } catch {
    return typeof value
  }
}

/** A whole number at least 1, or `Infinity` where `unbounded` (a limit switched off on purpose). */
const count = (option: string, value: unknown, fallback: number, unbounded: boolean): number | ServerConfigError => {
  if (value === undefined) return fallback
  if (typeof value === "number" && ((Number.isSafeInteger(value) && value >= 1) || (unbounded && value === Infinity))) {
    return value
  }
  return invalid(option, `expected a whole number at least 1${unbounded ? " or Infinity" : ""}, got ${show(value)}`)
}

const duration = (option: string, value: unknown): ServerConfigError | undefined => {
  if (value === undefined) return undefined
  const parsed = Duration.fromInput(value as Duration.Input)
  if (Option.isNone(parsed)) return invalid(option, `expected a duration, got ${show(value)}`)
  return Duration.isZero(parsed.value) || Duration.isNegative(parsed.value)
    ? invalid(option, `expected a positive duration, got ${show(value)}`)
    : undefined
}

const sessionCounts = ["acceptBacklog", "maxStreams", "maxStreamWindowSize", "maxWriteBuffer"] as const
const sessionDurations = ["keepAliveInterval", "connectionWriteTimeout", "streamCloseTimeout", "streamOpenTimeout"] as const

const checkSession = (session: YamuxConfig.Options | undefined): ServerConfigError | undefined => {
  if (session === undefined) return undefined
  if (typeof session !== "object" || session === null) return invalid("session", `expected an object, got ${show(session)}`)
  for (const key of sessionCounts) {
    const checked = count(`session.${key}`, session[key], 1, false)
    if (checked instanceof ServerConfigError) return checked
  }
  for (const key of sessionDurations) {
    const checked = duration(`session.${key}`, session[key])
    if (checked !== undefined) return checked
  }
  const keepAlive = session.enableKeepAlive
  return keepAlive === undefined || typeof keepAlive === "boolean"
    ? undefined
    : invalid("session.enableKeepAlive", `expected a boolean, got ${show(keepAlive)}`)
}

const checkDecoder = (decoder: DecoderOptions | undefined): ServerConfigError | undefined => {
  if (decoder === undefined) return undefined
  if (typeof decoder !== "object" || decoder === null) return invalid("decoder", `expected an object, got ${show(decoder)}`)
  // Every decoder limit is a count of bytes, values or levels.
  for (const [key, value] of Object.entries(decoder)) {
    const checked = count(`decoder.${key}`, value, 1, false)
    if (checked instanceof ServerConfigError) return checked
  }
  return undefined
}

const checkHandlers = (handlers: unknown): ServerConfigError | undefined => {
  if (typeof handlers !== "object" || handlers === null) {
    return invalid("handlers", `expected an object of functions, got ${show(handlers)}`)
  }
  for (const [method, handler] of Object.entries(handlers)) {
    if (typeof handler !== "function") return invalid(`handlers.${method}`, `expected a function, got ${show(handler)}`)
  }
  return undefined
}

const checkStreaming = (streaming: unknown): ServerConfigError | undefined => {
  if (streaming === undefined) return undefined
  if (typeof streaming !== "object" || streaming === null) {
    return invalid("streaming", `expected an object of streaming handlers, got ${show(streaming)}`)
  }
  for (const [method, handler] of Object.entries(streaming)) {
    if (!isStreamingHandler(handler)) {
      return invalid(`streaming.${method}`, "expected a handler made by StreamingHandler.duplex or .frames")
    }
  }
  return undefined
}

const checkListen = (options: ServeOptions): ServerConfigError | undefined => {
  const port = options.port
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
    return invalid("port", `expected a port from 0 to 65535, got ${show(port)}`)
  }
  if (options.host !== undefined && typeof options.host !== "string") {
    return invalid("host", `expected a string, got ${show(options.host)}`)
  }
  return duration("handshakeTimeout", options.handshakeTimeout)
}

/**
 * Checks every option of `serve` and applies the defaults.
 *
 * @category constructors
 */
export const make = (options: ServeOptions): Config | ServerConfigError => {
  const early = checkHandlers(options.handlers) ?? checkStreaming(options.streaming) ?? checkListen(options) ??
    checkSession(options.session) ?? checkDecoder(options.decoder)
  if (early !== undefined) return early
  const observability = Observability.normalize(options.observability)
  if (Observability.isProblem(observability)) return invalid(observability.option, observability.detail)
  const maxConns = count("maxConns", options.maxConns, defaultMaxConns, true)
  if (maxConns instanceof ServerConfigError) return maxConns
  const maxConnsPerClient = count("maxConnsPerClient", options.maxConnsPerClient, defaultMaxConnsPerClient, true)
  if (maxConnsPerClient instanceof ServerConfigError) return maxConnsPerClient
  const maxStreamsPerSession = count(
    "maxStreamsPerSession",
    options.maxStreamsPerSession,
    defaultMaxStreamsPerSession,
    true
  )
  if (maxStreamsPerSession instanceof ServerConfigError) return maxStreamsPerSession
  const maxStreams = count("maxStreams", options.maxStreams, defaultMaxStreams, true)
  if (maxStreams instanceof ServerConfigError) return maxStreams
  const own = options.maxMessageSize !== undefined
  const maxMessageSize = count(
    own ? "maxMessageSize" : "decoder.maxMessageBytes",
    own ? options.maxMessageSize : options.decoder?.maxMessageBytes,
    defaultMaxMessageSize,
    false
  )
  if (maxMessageSize instanceof ServerConfigError) return maxMessageSize
  const maxBufferedBytesPerSession = count(
    "maxBufferedBytesPerSession",
    options.maxBufferedBytesPerSession,
    Math.max(defaultMaxBufferedBytesPerSession, 2 * maxMessageSize),
    true
  )
  if (maxBufferedBytesPerSession instanceof ServerConfigError) return maxBufferedBytesPerSession
  const maxBufferedBytes = count(
    "maxBufferedBytes",
    options.maxBufferedBytes,
    Math.max(defaultMaxBufferedBytes, maxBufferedBytesPerSession),
    true
  )
  if (maxBufferedBytes instanceof ServerConfigError) return maxBufferedBytes
  for (const [option, budget] of [["maxBufferedBytesPerSession", maxBufferedBytesPerSession], ["maxBufferedBytes", maxBufferedBytes]] as const) {
    if (budget < maxMessageSize) {
      return new ServerConfigError({
        reason: "Inconsistent",
        option,
        detail: `${budget} bytes cannot hold a request of maxMessageSize (${maxMessageSize} bytes)`
      })
    }
  }
  return {
    limits: {
      maxConns,
      maxConnsPerClient,
      maxStreamsPerSession,
      maxStreams,
      maxBufferedBytesPerSession,
      maxBufferedBytes,
      maxMessageSize
    },
    decoder: {
      ...options.decoder,
      maxMessageBytes: maxMessageSize,
      // A request is two values (header and args), both held until the second is whole.
      maxBufferedBytes: options.decoder?.maxBufferedBytes ?? Math.max(DefaultMaxBufferedBytes, 2 * maxMessageSize)
    },
    session: {
      ...options.session,
      // yamux resets SYNs beyond its limit before the ACK: the cheapest refusal, and one clients may retry.
      maxStreams: Math.min(options.session?.maxStreams ?? yamuxMaxStreams, maxStreamsPerSession)
    },
    observability
  }
}
