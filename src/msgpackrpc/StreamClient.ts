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
 * **Hygiene**: a reply is returned only when its `Seq` is the request's. A
 * second copy of the previous call's reply is skipped (the stream is then out
 * of step, but this call is not failed for it); any other `Seq` fails the call
 * with `InvalidHeader`. `reusable` tells the owner whether the stream may carry
 * another call: nothing may be left after the reply, in the decoder or unread
 * on the stream, or the next call would read it as its own reply.
 *
 * A large reply is decoded a slice at a time, giving the event loop a turn
 * between slices (`Decoder.step`).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { MuxError } from "../mux/MuxError.ts"
import type { MuxStream } from "../mux/MuxSession.ts"
import { ResponseReader } from "./Codec.ts"
import { CodecError } from "./CodecError.ts"
import { type DecoderOptions, type Value, Yield } from "./Decoder.ts"
import { sharedEncoder } from "./Encoder.ts"
import { RemoteError } from "./RemoteError.ts"

export type CallError = MuxError | CodecError | RemoteError

/** Like Go's `CallWithCodec`, sequence numbers come from one process-wide counter. */
let nextSeq = 0

/**
 * @internal Restarts what every StreamClient of the process shares: the Seq
 * counter and the shared encoder's slab. The simulator calls it before each
 * seed: a Seq's encoded length and where the slab cuts a request into parts
 * shape the bytes on the wire, so a seed replays only from the same start.
 */
export const resetForReplay = (): void => {
  nextSeq = 0
  sharedEncoder.dropSlab()
}

export class StreamClient {
  readonly stream: MuxStream
  private readonly reader: ResponseReader
  /** Nomad's per-stream type byte, sent once in front of the first request. */
  private prefix: number | undefined
  /**
   * Whether the last call's request was fully written. A request that was not
   * cannot have run on the server, so retrying it is safe.
   */
  sent = false
  /** The `Seq` of the last reply returned, whose duplicate a hostile or broken server might send again. */
  private lastSeq = -1
  /** Something arrived that belongs to no call: the stream is not reused. */
  private outOfStep = false

  constructor(stream: MuxStream, streamByte: number | undefined, options?: DecoderOptions) {
    this.stream = stream
    this.prefix = streamByte
    this.reader = new ResponseReader(options)
  }

  /** The stream's receive mode while a reply is awaited: bytes go straight to the reader, copied once. */
  private readonly sink = (lent: Uint8Array): boolean => this.reader.receive(lent)

  /**
   * Calls `method` with `args` and returns the decoded reply body. Fails with
   * `CodecError` before anything is written if `args` cannot be encoded.
   */
  call(method: string, args: unknown): Effect.Effect<Value, CallError> {
    return Effect.suspend(() => {
      nextSeq = nextSeq === Number.MAX_SAFE_INTEGER ? 1 : nextSeq + 1
      const seq = nextSeq
      // Reset first: an args encoding failure must not report the previous call's request as sent.
      this.sent = false
      const parts = sharedEncoder.encodeRequestParts(method, seq, args)
      if (parts instanceof CodecError) return Effect.fail(parts)
      if (this.prefix !== undefined) {
        const first = parts[0]!
        const prefixed = new Uint8Array(first.length + 1)
        prefixed[0] = this.prefix
        prefixed.set(first, 1)
        parts[0] = prefixed
        this.prefix = undefined
      }
      // Receiving only while a call waits for its reply (until `reply` has it, or the stream is discarded):
      // between calls, stray bytes stay in the stream, within its window, and make it not `reusable`.
      this.stream.receiveInto(this.sink)
      return Effect.flatMap(this.writeParts(parts, 0), () => {
        this.sent = true
        return this.reply(method, seq)
      })
    })
  }

  private writeParts(parts: Array<Uint8Array>, i: number): Effect.Effect<void, MuxError> {
    const write = this.stream.write(parts[i]!)
    return i === parts.length - 1 ? write : Effect.flatMap(write, () => this.writeParts(parts, i + 1))
  }

  /**
   * True when the stream may carry another call: it is open, and nothing
   * arrived after the last reply (nothing buffered in our decoder or unread on
   * the stream, no stray reply skipped). A stream that sat idle is checked
   * again when it is taken, as bytes may have arrived meanwhile.
   */
  get reusable(): boolean {
    return !this.stream.isClosed && !this.outOfStep && this.reader.bufferedBytes === 0 &&
      this.stream.bufferedBytes === 0
  }

  /** Reads until a whole response is in, pulling chunks only when the reader needs them. */
  private reply(method: string, seq: number): Effect.Effect<Value, CallError> {
    const message = this.reader.step()
    // A large reply: let other fibers and the event loop run between slices of its decoding.
    if (message === Yield) return Effect.flatMap(Effect.yieldNow, () => this.reply(method, seq))
    if (message === undefined) {
      return Effect.flatMap(this.stream.received, (more) =>
        more
          ? this.reply(method, seq)
          : Effect.fail(
            new MuxError({ reason: "StreamClosed", address: "", detail: `EOF before the reply to ${method}` })
          ))
    }
    if (message instanceof CodecError) return Effect.fail(message)
    this.stream.receiveInto(undefined)
    // Go's client trusts the order; we check, as a reply for another call means the stream is out of step.
    const replySeq = message.header.Seq
    if (replySeq !== seq) {
      if (replySeq === this.lastSeq) {
        // The previous call's reply again: it answers nothing we wait for. Skip it, keep reading for ours.
        this.outOfStep = true
        this.stream.receiveInto(this.sink)
        return this.reply(method, seq)
      }
      this.outOfStep = true
      return Effect.fail(
        new CodecError({ reason: "InvalidHeader", message: `reply for Seq ${replySeq}, expected ${seq}` })
      )
    }
    this.lastSeq = seq
    if (message.header.Error !== "") return Effect.fail(new RemoteError({ method, message: message.header.Error }))
    return Effect.succeed(message.body)
  }

  /** Ends the stream politely (FIN); the server's loop then ends too. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => this.stream.close)

  /** Discards an out-of-step stream at once (RST). */
  readonly reset: Effect.Effect<void> = Effect.suspend(() => this.stream.reset)
}
