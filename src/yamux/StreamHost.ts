/**
 * What a stream needs from its session, so `Stream.ts` holds only the stream's
 * own state machine and the session's frame loop stays in `Session.ts`.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import type { MuxError } from "../mux/MuxError.ts"
import type { Stream } from "./Stream.ts"

export interface StreamHost {
  readonly address: string
  readonly maxStreamWindowSize: number
  /** True while the transport's write buffer is over its limit. */
  readonly congested: boolean
  /**
   * Completes when the transport drained, or when `onPark`'s wake-up is called
   * (the stream was reset under its writer); fails when the session closed or
   * nothing drained within the write timeout.
   */
  awaitDrain(onPark: (wake: () => void) => void): Effect.Effect<void, MuxError>
  /** Queues a frame; `coalesce` copies a small payload next to its header. */
  sendFrame(
    type: number,
    flags: number,
    streamId: number,
    length: number,
    payload: Uint8Array | undefined,
    coalesce: boolean
  ): void
  sendWindowUpdate(flags: number, streamId: number, delta: number): void
  /** The peer ACKed an opened stream: release its SYN slot. */
  established(stream: Stream): void
  /** This side sent FIN first: start the close timeout. */
  closing(stream: Stream): void
  /** The stream is closed or reset: drop it from the session. */
  forget(stream: Stream): void
}
