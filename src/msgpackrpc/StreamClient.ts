/**
 * One msgpack-rpc client on one multiplexed stream (the seed's `StreamClient`):
 * one call at a time, request and reply matched by `Seq`.
 *
 * **Details**
 * A request is `{ServiceMethod, Seq}` then the args, written as one buffer; a
 * reply is `{ServiceMethod, Seq, Error}` then the body. A non-empty `Error`
 * fails the call with `RemoteError` and leaves the stream usable. Any other
 * failure (transport, malformed bytes, a reply for another `Seq`, EOF) leaves
 * the stream out of step: the owner must discard it.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import type { MuxStream } from "../mux/MuxSession.ts"
import { CodecError } from "./CodecError.ts"
import { Decoder } from "./Decoder.ts"
import type { DecoderOptions, Value } from "./Decoder.ts"
import { sharedEncoder } from "./Encoder.ts"
import { RemoteError } from "./RemoteError.ts"

export type CallError = MuxError | CodecError | RemoteError

/** Like Go's `CallWithCodec`, sequence numbers come from one process-wide counter. */
let nextSeq = 0

interface ResponseHeader {
  readonly Seq: number | bigint
  readonly Error: string
}

const isResponseHeader = (v: Value): v is Value & ResponseHeader => {
  if (v === null || typeof v !== "object" || v instanceof Uint8Array || Array.isArray(v)) return false
  const h = v as Record<string, Value>
  const seq = h["Seq"]
  const error = h["Error"]
  return (typeof seq === "number" || typeof seq === "bigint") &&
    (error === undefined || error === null || typeof error === "string")
}

export class StreamClient {
  readonly stream: MuxStream
  private readonly decoder: Decoder
  /** Nomad's per-stream type byte, sent once in front of the first request. */
  private prefix: number | undefined
  /**
   * Whether the last call's request was fully written. A request that was not
   * cannot have run on the server, so retrying it is safe.
   */
  sent = false

  constructor(stream: MuxStream, streamByte: number | undefined, options?: DecoderOptions) {
    this.stream = stream
    this.prefix = streamByte
    this.decoder = new Decoder(options)
  }

  /**
   * Calls `method` with `args` and returns the decoded reply body. Fails with
   * `CodecError` before anything is written if `args` cannot be encoded.
   */
  call(method: string, args: unknown): Effect.Effect<Value, CallError> {
    return Effect.suspend(() => {
      nextSeq = nextSeq === Number.MAX_SAFE_INTEGER ? 1 : nextSeq + 1
      const seq = nextSeq
      let request = sharedEncoder.encodeRequest(method, seq, args)
      if (request instanceof CodecError) return Effect.fail(request)
      if (this.prefix !== undefined) {
        const prefixed = new Uint8Array(request.length + 1)
        prefixed[0] = this.prefix
        prefixed.set(request, 1)
        request = prefixed
        this.prefix = undefined
      }
      this.sent = false
      return Effect.flatMap(this.stream.write(request), () => {
        this.sent = true
        return this.reply(method, seq, undefined)
      })
    })
  }

  /** Reads values until header and body are complete, pulling chunks only when the decoder needs them. */
  private reply(
    method: string,
    seq: number,
    header: ResponseHeader | undefined
  ): Effect.Effect<Value, CallError> {
    for (;;) {
      const value = this.decoder.next()
      if (value === undefined) {
        return Effect.flatMap(this.stream.read, (chunk) => {
          if (chunk === undefined) {
            return Effect.fail(
              new MuxError({ reason: "StreamClosed", address: "", detail: `EOF before the reply to ${method}` })
            )
          }
          this.decoder.push(chunk)
          return this.reply(method, seq, header)
        })
      }
      if (value instanceof CodecError) return Effect.fail(value)
      if (header === undefined) {
        if (!isResponseHeader(value)) {
          return Effect.fail(new CodecError({ reason: "InvalidHeader", message: "reply header is not a net/rpc Response" }))
        }
        if (Number(value.Seq) !== seq) {
          return Effect.fail(
            new CodecError({ reason: "InvalidHeader", message: `reply for Seq ${value.Seq}, expected ${seq}` })
          )
        }
        header = value
        continue
      }
      if (typeof header.Error === "string" && header.Error !== "") {
        return Effect.fail(new RemoteError({ method, message: header.Error }))
      }
      return Effect.succeed(value)
    }
  }

  /** Ends the stream politely (FIN); the server's loop then ends too. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => this.stream.close)

  /** Discards an out-of-step stream at once (RST). */
  readonly reset: Effect.Effect<void> = Effect.suspend(() => this.stream.reset)
}
