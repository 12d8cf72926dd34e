/**
 * Session tunables, with hashicorp/yamux `DefaultConfig` values so a session
 * behaves like Consul's and Nomad's on both ends.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

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
