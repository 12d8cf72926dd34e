/**
 * Session tunables, with hashicorp/yamux `DefaultConfig` values so a session
 * behaves like Consul's and Nomad's on both ends.
 *
 * @since 0.1.0
 */
import { Duration, Option } from "effect"

/** Un-ACKed outbound SYNs before `open` waits; also the inbound accept queue. Default 256. */
export const defaultAcceptBacklog = 256
/** Interval between keepalive pings. Default 30 seconds. */
export const defaultKeepAliveInterval = Duration.seconds(30)
/** How long a ping (and a blocked frame write) may take. Default 10 seconds. */
export const defaultConnectionWriteTimeout = Duration.seconds(10)
/** Per-stream receive window. Default 256 KiB, the protocol's initial window. */
export const defaultMaxStreamWindowSize = 256 * 1024
/** After a local FIN, how long to wait for the peer's before resetting. Default 5 minutes. */
export const defaultStreamCloseTimeout = Duration.minutes(5)
/** How long an opened stream may wait for its ACK before the session is closed. Default 75 seconds. */
export const defaultStreamOpenTimeout = Duration.seconds(75)
/** Live streams a session allows (opened plus accepted). Default 8192. */
export const defaultMaxStreams = 8192
/** Bytes queued on the socket before writers wait for it to drain. Default 1 MiB. */
export const defaultMaxWriteBuffer = 1024 * 1024

/** The protocol fixes the initial window; a larger configured window is granted by a WindowUpdate. */
export const initialStreamWindow = 256 * 1024

/**
 * Options accepted by `Session.make`; every field falls back to the default above.
 */
export interface Options {
  readonly acceptBacklog?: number | undefined
  readonly enableKeepAlive?: boolean | undefined
  readonly keepAliveInterval?: Duration.Input | undefined
  readonly connectionWriteTimeout?: Duration.Input | undefined
  readonly maxStreamWindowSize?: number | undefined
  readonly streamCloseTimeout?: Duration.Input | undefined
  readonly streamOpenTimeout?: Duration.Input | undefined
  readonly maxStreams?: number | undefined
  readonly maxWriteBuffer?: number | undefined
}

/** Normalised options. */
export interface Config {
  readonly acceptBacklog: number
  readonly enableKeepAlive: boolean
  readonly keepAliveInterval: Duration.Duration
  readonly connectionWriteTimeout: Duration.Duration
  readonly maxStreamWindowSize: number
  readonly streamCloseTimeout: Duration.Duration
  readonly streamOpenTimeout: Duration.Duration
  readonly maxStreams: number
  readonly maxWriteBuffer: number
}

/** An option whose value cannot be used, and why. */
export interface Problem {
  readonly option: string
  readonly detail: string
}

const countProblem = (option: string, value: number | undefined): Problem | undefined =>
  value === undefined || (Number.isInteger(value) && value >= 0)
    ? undefined
    : { option, detail: `expected an integer >= 0, got ${String(value)}` }

const durationProblem = (option: string, value: Duration.Input | undefined, positive: boolean): Problem | undefined => {
  if (value === undefined) return undefined
  const d = typeof value === "number" && Number.isNaN(value) ? Option.none() : Duration.fromInput(value)
  if (Option.isNone(d) || Duration.isNegative(d.value) || (positive && Duration.isZero(d.value))) {
    return { option, detail: `expected a duration ${positive ? "> 0" : ">= 0"}, got ${String(value)}` }
  }
  return undefined
}

/**
 * The first option `make` could not use as given: a count that is not a
 * whole number >= 0 (NaN, negative, fractional, infinite), or a duration that
 * does not parse or is negative (the keepalive interval must also be above
 * zero). Values in range but below what the protocol needs are not problems:
 * `make` clamps them.
 *
 * `Session.make` itself only clamps; a pool or server that takes session
 * options checks them here first and fails its construction with a typed error.
 */
export const check = (options: Options = {}): Problem | undefined =>
  countProblem("acceptBacklog", options.acceptBacklog) ??
    countProblem("maxStreamWindowSize", options.maxStreamWindowSize) ??
    countProblem("maxStreams", options.maxStreams) ??
    countProblem("maxWriteBuffer", options.maxWriteBuffer) ??
    durationProblem("keepAliveInterval", options.keepAliveInterval, true) ??
    durationProblem("connectionWriteTimeout", options.connectionWriteTimeout, false) ??
    durationProblem("streamCloseTimeout", options.streamCloseTimeout, false) ??
    durationProblem("streamOpenTimeout", options.streamOpenTimeout, false)

/** Applies defaults and clamps, once, where a session is made. */
export const make = (options: Options = {}): Config => ({
  acceptBacklog: Math.max(1, options.acceptBacklog ?? defaultAcceptBacklog),
  enableKeepAlive: options.enableKeepAlive ?? true,
  keepAliveInterval: Duration.fromInputUnsafe(options.keepAliveInterval ?? defaultKeepAliveInterval),
  connectionWriteTimeout: Duration.fromInputUnsafe(options.connectionWriteTimeout ?? defaultConnectionWriteTimeout),
  // Go's VerifyConfig refuses windows below the initial one; clamp rather than fail.
  maxStreamWindowSize: Math.max(initialStreamWindow, options.maxStreamWindowSize ?? defaultMaxStreamWindowSize),
  streamCloseTimeout: Duration.fromInputUnsafe(options.streamCloseTimeout ?? defaultStreamCloseTimeout),
  streamOpenTimeout: Duration.fromInputUnsafe(options.streamOpenTimeout ?? defaultStreamOpenTimeout),
  maxStreams: Math.max(1, options.maxStreams ?? defaultMaxStreams),
  maxWriteBuffer: Math.max(64 * 1024, options.maxWriteBuffer ?? defaultMaxWriteBuffer)
})
