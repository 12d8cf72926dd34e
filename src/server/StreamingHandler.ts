/**
 * Streaming-RPC handlers for `RpcServer` (Nomad's `StreamingRpcHandler`): what a
 * method does with the values the client sends and how it answers, framed as
 * Nomad frames them (`StreamErrWrapper`).
 *
 * - `duplex((requests, send, context) => Effect)`: the handler reads the
 *   client's values (a request, then exec-like input) from `requests` and
 *   sends payloads with `send`, for as long as it runs.
 * - `frames((request, context) => Stream)`: the handler turns the client's one
 *   request into a Stream of payloads, as `FileSystem.Logs` and `Agent.Monitor` do.
 *
 * A handler may also send `Heartbeat` where it sends payloads.
 *
 * Either way the server acks the method, sends a heartbeat on the handler's
 * Schedule, ends the stream (EOF) when the handler ends, sends its failure as
 * an error frame (`{Message, Code}`), and interrupts it when the client closes
 * or resets its side: that is how Nomad's clients cancel.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Schedule, Stream } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { CallContext } from "./RpcServer.ts"

/** Nomad's heartbeat interval: one second, so a client can tell a quiet stream from a dead one. */
export const defaultHeartbeatInterval = Duration.seconds(1)

/** What a streaming handler fails with: sent as the error frame's `Message` and `Code`. */
export interface StreamingError {
  readonly message: string
  readonly code?: number | undefined
}

/** Sent for a heartbeat frame (`{}`) where a handler sends payloads, besides the scheduled ones. */
export const Heartbeat: unique symbol = Symbol.for("effect-connpool/StreamingHandler/Heartbeat")

/** What a handler sends: a payload (a string as its UTF-8 bytes) or a `Heartbeat`. */
export type Outbound = Uint8Array | string | typeof Heartbeat

/**
 * Sends one frame. A `Uint8Array` is written uncopied: leave it unchanged
 * until `send` has completed. When the client has gone, `send` interrupts
 * the handler.
 */
export type Send = (frame: Outbound) => Effect.Effect<void>

export interface StreamingOptions {
  /**
   * When heartbeats (`{}`) go out, after the ack: each step of the Schedule
   * sends one. Default every second (`defaultHeartbeatInterval`), as Nomad's
   * handlers do; `false` sends none.
   */
  readonly heartbeat?: Schedule.Schedule<unknown> | false | undefined
}

/** A streaming method, made by `duplex` or `frames`. */
export interface StreamingHandler {
  readonly _tag: "StreamingHandler"
  readonly run: (
    requests: Stream.Stream<Value>,
    send: Send,
    context: CallContext
  ) => Effect.Effect<void, StreamingError>
  readonly heartbeat: Schedule.Schedule<unknown> | false
}

/**
 * A handler that reads the client's values and sends payloads as it likes (Nomad's exec).
 * `requests` ends when the client half-closes, which also interrupts the handler. While the
 * handler does not read `requests`, the client's values wait in the stream's window.
 *
 * @category constructors
 */
export const duplex = (
  run: (requests: Stream.Stream<Value>, send: Send, context: CallContext) => Effect.Effect<void, StreamingError>,
  options?: StreamingOptions
): StreamingHandler => ({
  _tag: "StreamingHandler",
  run,
  heartbeat: options?.heartbeat ?? Schedule.spaced(defaultHeartbeatInterval)
})

/**
 * A handler that answers the client's one request with a Stream of payloads (Nomad's logs and
 * monitor). The stream ends with the Stream; its failure is the error frame.
 *
 * @category constructors
 */
export const frames = <E extends StreamingError>(
  handler: (request: Value, context: CallContext) => Stream.Stream<Outbound, E>,
  options?: StreamingOptions
): StreamingHandler =>
  duplex(
    (requests, send, context) =>
      Effect.flatMap(Stream.runHead(requests), (request) =>
        // A client that closes before sending its request wants nothing.
        Option.isNone(request) ? Effect.void : Stream.runForEach(handler(request.value, context), send)),
    options
  )

/** True for what `duplex` and `frames` make. */
export const isStreamingHandler = (u: unknown): u is StreamingHandler =>
  typeof u === "object" && u !== null && (u as { readonly _tag?: unknown })._tag === "StreamingHandler"
