/**
 * A session's pings: ids, the callers waiting for their ACK, the round trip
 * measured on monotonic time, and the keepalive loop (hashicorp/yamux
 * `Ping` and `keepalive`).
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxErrorReason } from "../mux/MuxError.ts"
import { flagACK, flagSYN, typePing } from "./Frame.ts"

/** What pings need from their session. */
export interface PingHost {
  /** Set once the session closed. */
  readonly closedError: MuxError | undefined
  sendFrame(type: number, flags: number, streamId: number, length: number, payload: undefined, coalesce: boolean): void
  error(reason: MuxErrorReason, detail: string): MuxError
  fail(reason: MuxErrorReason, detail?: string, cause?: unknown): void
}

export class Pings {
  private readonly host: PingHost
  /** How long a ping may go unanswered. */
  private readonly timeout: Duration.Duration
  private nextId = 0
  private readonly waiters = new Map<number, () => void>()

  constructor(host: PingHost, timeout: Duration.Duration) {
    this.host = host
    this.timeout = timeout
  }

  /** One round trip; fails with `KeepAliveTimeout` after `timeout` unanswered, leaving the session open. */
  readonly ping: Effect.Effect<Duration.Duration, MuxError> = Effect.suspend(() => {
    const host = this.host
    if (host.closedError !== undefined) return Effect.fail(host.closedError)
    const id = this.nextId
    this.nextId = (this.nextId + 1) >>> 0
    return Effect.gen({ self: this }, function*() {
      // Monotonic: a wall clock stepped during the round trip must not bend it.
      const start = yield* Clock.monotonicTimeNanos
      yield* Effect.callback<void, MuxError>((resume) => {
        this.waiters.set(id, () => resume(host.closedError === undefined ? Effect.void : Effect.fail(host.closedError)))
        host.sendFrame(typePing, flagSYN, 0, id, undefined, true)
        return Effect.sync(() => {
          this.waiters.delete(id)
        })
      }).pipe(
        Effect.timeoutOrElse({
          duration: this.timeout,
          orElse: () => Effect.fail(host.error("KeepAliveTimeout", `ping ${id} unanswered`))
        })
      )
      const end = yield* Clock.monotonicTimeNanos
      return Duration.nanos(end - start)
    })
  })

  /** Pings every `interval`; the first failure closes the session with its reason. */
  keepalive(interval: Duration.Duration): Effect.Effect<void> {
    return Effect.schedule(this.ping, Schedule.spaced(interval)).pipe(
      Effect.catch((error) => Effect.sync(() => this.host.fail(error.reason, error.detail, error.cause))),
      Effect.asVoid
    )
  }

  /** A ping frame arrived: answer the peer's, or wake the caller of ours. */
  received(flags: number, id: number): void {
    if ((flags & flagSYN) !== 0) {
      this.host.sendFrame(typePing, flagACK, 0, id, undefined, true)
      return
    }
    const waiter = this.waiters.get(id)
    if (waiter !== undefined) {
      this.waiters.delete(id)
      waiter()
    }
  }

  /** The session closed: every caller waiting for an ACK fails with its error. */
  closeAll(): void {
    for (const waiter of this.waiters.values()) waiter()
    this.waiters.clear()
  }
}
