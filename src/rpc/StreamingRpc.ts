/**
 * Nomad's streaming RPC on the pool's sessions (`helper/pool` `StreamingRPC`,
 * `nomad/client_rpc.go` `streamingRpcImpl`): a fresh stream of the server's
 * session, its type byte and `StreamingRpcHeader`, the server's ack, then
 * back-to-back msgpack values both ways for as long as the caller's Scope lasts.
 *
 * ```
 *   open ── acquire the Conn (maybe dial), count a caller ── openStream (a slot, never the free list)
 *        ── write [0x05] {Method} ── read {Error} ── "" ─▶ Duplex, until the Scope closes
 *                                                 └─ "Unknown rpc method" ─▶ RemoteError
 *   the Scope closes ─▶ FIN (RST if the stream is out of step), the slot back, the caller released
 * ```
 *
 * **Why the session stays**: an open streaming RPC is a caller on its Conn,
 * so the reaper, which closes only Conns without callers, never takes its
 * session (Nomad PR #10710 fixed the same in its own pool). A session that
 * dies fails the stream's reads with `ConnectionLost`.
 *
 * **Backpressure**: values are read from the stream only when the consumer
 * pulls, one at a time. yamux grants the server more window only as bytes
 * are read, so a slow consumer holds at most the stream's window in yamux's
 * buffer plus what the decoder holds of the value it is working through.
 *
 * **Receive mode** from the first read on: the socket's lent reads go
 * straight to the decoder, which copies each byte once, a large frame into
 * one buffer of its size that its payload is then a view of (not a view of
 * a reused read buffer: it stays valid). The window still follows the
 * consumer: bytes count as read at once only while they go into the value
 * the consumer waits for; once a whole value is in, nothing more counts until
 * the consumer has taken every value and asks again, so the decoder holds at
 * most a window and the frame in hand. `RpcPool.stream`'s frames are decoded
 * with str values as bytes (`Raws`): a payload is Go `[]byte`, never checked
 * for UTF-8, decoded into a string and encoded back.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit, Scope, Semaphore, Stream } from "effect"
import type { Pull } from "effect"
import { CodecError } from "../msgpackrpc/CodecError.ts"
import { Decoder } from "../msgpackrpc/Decoder.ts"
import type { Raws, Value } from "../msgpackrpc/Decoder.ts"
import { sharedEncoder } from "../msgpackrpc/Encoder.ts"
import * as Streaming from "../msgpackrpc/Streaming.ts"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxStream } from "../mux/MuxSession.ts"
import { poolClosed, toRpcError } from "./Classify.ts"
import type { Conn, Restore } from "./Conn.ts"
import { RpcError } from "./RpcError.ts"
import type { State } from "./State.ts"
import type { Target } from "./Target.ts"

/**
 * A frame of `RpcPool.stream`: a `StreamErrWrapper`'s payload, or (with
 * `heartbeats: true`) a heartbeat. An error frame fails the stream instead.
 */
export type Frame = Exclude<Streaming.Frame, { readonly _tag: "Error" }>

/** One streaming RPC, open or opening, in the caller's Scope. */
export interface Duplex {
  /** Sends one msgpack value (a request, an exec input frame). Sends are queued in order. */
  readonly send: (value: unknown) => Effect.Effect<void, RpcError>
  /**
   * The server's values in order, ending at its EOF. Pulled from the stream
   * as the consumer asks, so the consumer's pace holds the server back. Run
   * it again to go on where the last run stopped.
   */
  readonly receive: Stream.Stream<Value, RpcError>
  /** Half-closes our side (FIN): Nomad's handlers take it as the client going away. */
  readonly close: Effect.Effect<void>
  /** Bytes received and not yet handed out: yamux's buffer plus the decoder's. */
  readonly bufferedBytes: number
}

const endOfStream = Symbol("endOfStream")

/**
 * What a closed streaming RPC reads and drops while its server winds down: 1 MiB, four
 * default windows. A server still sending past it is not listening for our FIN: reset.
 */
export const drainLimit = 1024 * 1024

/** Reads and drops until EOF (or any failure); past `limit` bytes, resets the stream. */
const drain = (stream: MuxStream, limit: number): Effect.Effect<void> => {
  let dropped = 0
  const loop: Effect.Effect<void> = Effect.matchEffect(stream.read, {
    onFailure: () => Effect.void,
    onSuccess: (chunk) => {
      if (chunk === undefined) return Effect.void
      dropped += chunk.length
      return dropped > limit ? stream.reset : loop
    }
  })
  return loop
}

/** One streaming RPC's state: its Conn, its stream, the decoder over the server's bytes. */
export class StreamingCall {
  private readonly state: State
  private readonly target: Target
  private readonly method: string
  private readonly conn: Conn
  private readonly decoder: Decoder
  private stream: MuxStream | undefined = undefined
  /** The server's EOF was read. */
  private eof = false
  /** The stream is out of step (bad bytes, an open cut short): reset it, do not FIN it. */
  private broken = false
  /** An error frame ended the stream. */
  private ended = false
  /** The stream is in receive mode: its bytes go to the decoder as they arrive. */
  private receiving = false
  private readonly writeLock = Semaphore.makeUnsafe(1)
  private readonly readLock = Semaphore.makeUnsafe(1)

  constructor(state: State, target: Target, method: string, conn: Conn, raws: Raws) {
    this.state = state
    this.target = target
    this.method = method
    this.conn = conn
    this.decoder = new Decoder(state.config.decoder, raws)
  }

  /**
   * Receive mode's sink. Bytes that went into the value the consumer waits for count as read at once (the
   * window reopens without waiting for its fiber); once a whole value is in, nothing more does until the
   * consumer has taken it and waits again (`received`), so what arrives meanwhile stays within the window.
   */
  private readonly sink = (lent: Uint8Array): boolean => this.decoder.receive(lent) && !this.decoder.complete

  private classify(error: MuxError | CodecError): RpcError {
    if (this.state.closed) return poolClosed(this.target.key, this.method)
    if (error instanceof CodecError) this.broken = true
    return toRpcError(error, this.target.key, this.method, true)
  }

  /**
   * Opens the stream, sends the header and reads the ack. Run uninterruptibly with the caller's
   * `restore`: the stream is kept (`this.stream`) before anything can interrupt, so `release`
   * always gives its slot back; the waits, the write and the ack are interruptible.
   */
  open(restore: Restore): Effect.Effect<void, RpcError> {
    return Effect.suspend(() => {
      const header = Streaming.encodeHeader(this.method, this.state.config.protocol.streamingByte)
      if (header instanceof CodecError) return Effect.fail(toRpcError(header, this.target.key, this.method, false))
      return this.conn.openStream(restore).pipe(
        Effect.mapError((error) =>
          error instanceof RpcError ? error : toRpcError(error, this.target.key, this.method, false)
        ),
        Effect.flatMap((stream) => {
          this.stream = stream
          return restore(Effect.andThen(Effect.mapError(stream.write(header), (error) => this.classify(error)), this.ack))
        })
      )
    })
  }

  private readonly ack: Effect.Effect<void, RpcError> = Effect.flatMap(Effect.suspend(() => this.next), (ack) => {
    if (ack === endOfStream) return Effect.fail(this.refused("the server closed the stream before its ack"))
    const error = Streaming.parseAck(ack)
    if (error instanceof CodecError) return Effect.fail(this.classify(error))
    return error === "" ? Effect.void : Effect.fail(this.refused(error))
  })

  /** Used after its Scope closed: the stream is gone. */
  private released(): RpcError {
    return new RpcError({
      reason: "StreamReset",
      address: this.target.key,
      method: this.method,
      sent: false,
      detail: "the streaming RPC's Scope has closed"
    })
  }

  private refused(detail: string): RpcError {
    return new RpcError({ reason: "RemoteError", address: this.target.key, method: this.method, sent: false, detail })
  }

  /** The server's next value, or `endOfStream` at its EOF. */
  private readonly next: Effect.Effect<Value | typeof endOfStream, RpcError> = Effect.suspend(() => {
    const v = this.decoder.next()
    if (v instanceof CodecError) return Effect.fail(this.classify(v))
    if (v !== undefined) return Effect.succeed(v)
    if (this.eof || this.ended) {
      const truncated = this.decoder.end()
      return truncated === undefined ? Effect.succeed(endOfStream) : Effect.fail(this.classify(truncated))
    }
    const stream = this.stream
    if (stream === undefined) return Effect.fail(this.released())
    if (!this.receiving) {
      this.receiving = true
      stream.receiveInto(this.sink)
    }
    // Everything the decoder held is taken: what went to the sink counts as read now.
    return Effect.matchEffect(stream.received, {
      onFailure: (error) => Effect.fail(this.classify(error)),
      onSuccess: (more) => {
        if (!more) this.eof = true
        return this.next
      }
    })
  })

  /** `receive`'s pull: one value at a time (what the decoder holds ahead of it is bounded by the window). */
  readonly pullValue: Pull.Pull<readonly [Value], RpcError> = this.readLock.withPermit(
    Effect.flatMap(this.next, (v) => v === endOfStream ? Cause.done() : Effect.succeed([v] as const))
  )

  /** `RpcPool.stream`'s pull: payload frames, heartbeats when asked for, an error frame as a failure. */
  pullFrame(heartbeats: boolean): Pull.Pull<readonly [Frame], RpcError> {
    const pull: Pull.Pull<readonly [Frame], RpcError> = Effect.flatMap(this.next, (v) => {
      if (v === endOfStream) return Cause.done()
      const frame = Streaming.parseFrame(v)
      if (frame instanceof CodecError) return Effect.fail(this.classify(frame))
      switch (frame._tag) {
        case "Payload":
          return Effect.succeed([frame] as const)
        case "Heartbeat":
          return heartbeats ? Effect.succeed([frame] as const) : pull
        case "Error":
          this.ended = true
          this.stopReceiving()
          return Effect.fail(
            new RpcError({
              reason: "RemoteError",
              address: this.target.key,
              method: this.method,
              sent: true,
              detail: frame.message,
              code: frame.code
            })
          )
      }
    })
    return pull
  }

  readonly send = (value: unknown): Effect.Effect<void, RpcError> =>
    this.writeLock.withPermit(Effect.suspend(() => {
      const stream = this.stream
      if (stream === undefined) return Effect.fail(this.released())
      const bytes = sharedEncoder.encode(value)
      if (bytes instanceof CodecError) return Effect.fail(toRpcError(bytes, this.target.key, this.method, false))
      return Effect.mapError(stream.write(bytes), (error) => this.classify(error))
    }))

  readonly close: Effect.Effect<void> = Effect.suspend(() => this.stream?.close ?? Effect.void)

  get bufferedBytes(): number {
    // In receive mode what the stream counts as unread went to the decoder: counted there, not twice.
    return (this.receiving ? 0 : this.stream?.bufferedBytes ?? 0) + this.decoder.bufferedBytes
  }

  /** Out of receive mode: what the server still sends waits in the stream, within its window. */
  private stopReceiving(): void {
    if (!this.receiving) return
    this.receiving = false
    this.stream?.receiveInto(undefined)
  }

  /**
   * FIN (RST when out of step), the stream's slot back, the caller released. Runs once.
   * Before the server's EOF, what it still sends is read and dropped in the background (up
   * to `drainLimit`), so a handler blocked on a full window gets to notice our FIN.
   */
  readonly release: Effect.Effect<void> = Effect.suspend(() => {
    const stream = this.stream
    this.stream = undefined
    if (stream === undefined) return this.state.releaseConn(this.conn)
    // Out of receive mode first, so that `drain` reads (and drops) what the server still sends.
    if (this.receiving) {
      this.receiving = false
      stream.receiveInto(undefined)
    }
    this.conn.releaseStream()
    const end = this.broken
      ? stream.reset
      : this.eof
      ? stream.close
      : Effect.andThen(stream.close, Effect.forkIn(drain(stream, drainLimit), this.conn.scope))
    return Effect.andThen(end, this.state.releaseConn(this.conn))
  })

  /** Marks the open as cut short: the server may be halfway through the header or ack. */
  abandon(): void {
    this.broken = true
  }
}

const timedOut = (target: Target, method: string, timeout: number): RpcError =>
  new RpcError({
    reason: "CallTimeout",
    address: target.key,
    method,
    sent: false,
    detail: `streaming RPC not acknowledged within ${Duration.format(Duration.millis(timeout))}`
  })

/**
 * Opens a streaming RPC of `method` on `target` in the current Scope; its
 * open (a dial if needed, the stream, the header and the ack) is bounded by
 * `timeout` millis, what follows by nothing. Closing the Scope ends it.
 * `raws: "bytes"` decodes every str value as bytes (`RpcPool.stream`'s frames).
 */
export const open = (
  state: State,
  target: Target,
  method: string,
  timeout: number,
  raws: Raws = "text"
): Effect.Effect<StreamingCall, RpcError, Scope.Scope> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      if (state.config.protocol.streamingByte === undefined) {
        return yield* Effect.fail(
          new RpcError({
            reason: "InvalidOption",
            address: target.key,
            method,
            sent: false,
            detail: `protocol ${state.config.protocol.name} has no streaming RPC (Nomad's has)`
          })
        )
      }
      const scope = yield* Effect.scope
      const deadline = state.now() + timeout
      // Waiting on the race is interruptible (an uninterruptible fiber would not pass an
      // interruption on to the raced effect, so the open could not be cancelled before its
      // timeout); the raced effect keeps its own masks.
      const within = <A>(effect: Effect.Effect<A, RpcError>) =>
        restore(Effect.timeoutOrElse(effect, {
          duration: Math.max(0, deadline - state.now()),
          orElse: () => Effect.fail(timedOut(target, method, timeout))
        }))
      const conn = yield* within(state.acquire(target))
      conn.markForUse(state.now())
      const call = new StreamingCall(state, target, method, conn, raws)
      // Only the open's waits are interruptible: the stream is kept before anything can stop it.
      const opened = yield* Effect.exit(within(Effect.uninterruptibleMask((waits) => call.open(waits))))
      if (Exit.isFailure(opened)) {
        // A refused method leaves the stream in step (the server closes it); anything else may not.
        const error = Cause.findErrorOption(opened.cause)
        if (error._tag === "None" || error.value.reason !== "RemoteError") call.abandon()
        yield* call.release
        return yield* Effect.failCause(opened.cause)
      }
      yield* Scope.addFinalizer(scope, call.release)
      return call
    })
  )

/** The Duplex of an open call. */
export const duplex = (call: StreamingCall): Duplex => {
  const receive = Stream.fromPull(Effect.succeed(call.pullValue))
  return {
    send: call.send,
    receive,
    close: call.close,
    get bufferedBytes() {
      return call.bufferedBytes
    }
  }
}
