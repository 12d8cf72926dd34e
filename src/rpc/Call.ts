/**
 * One call's path through the pool, Consul's `RPC` → `getClient` → `releaseConn`:
 *
 * ```
 *   attempt ── idle client on a usable Conn (fast lane) ─────────────────┐
 *      └── slow path: acquire the Conn (maybe dial) ── take a client ────┤
 *                                                   (maybe open/wait)    ▼
 *   callOn: send, await the reply ── ok ──▶ return the client, release the Conn
 *      └── failed ──▶ discard or close the client, clear a dead session, release,
 *                     classify; a refused or failed stream open: once more, on a fresh dial
 * ```
 *
 * The call's deadline starts and ends here: registered with the pool's
 * `Deadlines` when the run starts, removed when it ends. At the deadline the
 * stream the call waits on is reset (the call then fails with `CallTimeout`);
 * the waits a stream reset cannot reach (a dial, a stream slot) are bounded
 * by what is left of it.
 *
 * @since 0.1.0
 */
import { Cause, Duration, Effect, Exit } from "effect"
import type { Tracer } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { RemoteError } from "../msgpackrpc/RemoteError.ts"
import type { StreamClient } from "../msgpackrpc/StreamClient.ts"
import { MuxError } from "../mux/MuxError.ts"
import { poolClosed, streamOpenFailed, toRpcError } from "./Classify.ts"
import type { Conn, Restore } from "./Conn.ts"
import type { Deadline } from "./Deadlines.ts"
import { errorTypeOf } from "../observability/Semconv.ts"
import { RpcError } from "./RpcError.ts"
import { countFailure } from "./RpcStats.ts"
import * as RpcTracing from "./RpcTracing.ts"
import type { State } from "./State.ts"
import type { Target } from "./Target.ts"

/** Marks the one retry of the seed: the stream could not be opened, so dial afresh once. */
const Retry: unique symbol = Symbol("Retry")
type Attempt = Effect.Effect<Value | typeof Retry, RpcError>

/** One run of a call: what its deadline must reset, and what its error must report. */
class Call {
  private readonly state: State
  private readonly target: Target
  private readonly method: string
  private readonly args: unknown
  private readonly timeout: number
  /** Whether the request may have reached the server. */
  private sent = false
  /** The stream client while the request and reply are in flight. */
  private client: StreamClient | undefined = undefined
  /** When the run started, in the pool's monotonic millis: one clock read serves the deadline, the fast lane and the metrics. */
  readonly start: number
  readonly deadline: Deadline
  /** The call's span when spans are on: the parent of its dial spans. */
  readonly span: Tracer.Span | undefined

  constructor(state: State, target: Target, method: string, args: unknown, timeout: number, span?: Tracer.Span) {
    this.span = span
    this.state = state
    this.target = target
    this.method = method
    this.args = args
    this.timeout = timeout
    this.start = state.now()
    // At the deadline, reset the stream the call waits on; the call then fails with CallTimeout.
    this.deadline = state.deadlines.add(timeout, Effect.suspend(() => this.client?.reset ?? Effect.void), this.start)
  }

  private timedOut(): RpcError {
    return new RpcError({
      reason: "CallTimeout",
      address: this.target.key,
      method: this.method,
      sent: this.sent,
      detail: `no reply within ${Duration.format(Duration.millis(this.timeout))}`
    })
  }

  /**
   * Uninterruptible from taking the client to the call: an interruption in
   * between would strand the client and leave the Conn counting a caller that
   * never releases it.
   */
  attempt(mayRetry: boolean): Attempt {
    return Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        if (this.deadline.expired) return Effect.fail(this.timedOut())
        const conn = this.state.usableConn(this.target.key)
        const client = conn?.takeIdle()
        if (conn === undefined || client === undefined) return restore(this.slowPath(mayRetry))
        // The retry comes after a dial: time has passed since the start.
        conn.markForUse(mayRetry ? this.start : this.state.now())
        return this.callOn(conn, client, restore, mayRetry)
      })
    )
  }

  /** Dial or open a stream, which may wait: bounded by what is left of the deadline. */
  private slowPath(mayRetry: boolean): Attempt {
    const state = this.state
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(restore(state.acquire(this.target, this.span)), (conn) => {
        conn.markForUse(state.now())
        // Only its waits are interruptible: a client taken is handed over, never dropped (see Conn.takeClient).
        return Effect.flatMap(Effect.exit(conn.takeClient(restore)), (taken): Attempt => {
          if (Exit.isSuccess(taken)) return this.callOn(conn, taken.value, restore, mayRetry)
          const error = Cause.findErrorOption(taken.cause)
          // Timed out waiting for a stream, or too many waiting: the session is fine, keep it.
          if (Cause.hasInterruptsOnly(taken.cause) || (error._tag === "Some" && error.value instanceof RpcError)) {
            return Effect.andThen(state.releaseConn(conn), Effect.failCause(taken.cause as Cause.Cause<RpcError>))
          }
          // Consul: "possible that the TCP session closed due to timeout": drop it, dial once more.
          return state.clearConn(conn).pipe(
            Effect.andThen(state.releaseConn(conn)),
            Effect.andThen(
              error._tag === "None"
                ? Effect.failCause(taken.cause as Cause.Cause<never>)
                : mayRetry
                ? Effect.succeed(Retry)
                : Effect.fail(streamOpenFailed(this.target.key, this.method, error.value.message, error.value))
            )
          )
        })
      })
    ).pipe(
      Effect.timeoutOrElse({
        duration: Math.max(0, this.deadline.at - state.now()),
        orElse: () => Effect.fail(this.timedOut())
      })
    )
  }

  /** The call proper, on a client this caller holds; `conn` is marked for use. */
  private callOn(conn: Conn, client: StreamClient, restore: Restore, mayRetry: boolean): Attempt {
    const state = this.state
    this.client = client
    return Effect.flatMap(Effect.exit(restore(client.call(this.method, this.args))), (exit): Attempt => {
      this.client = undefined
      this.sent = client.sent
      // A deadline that fired as the reply landed has reset the stream: the reply stands, the stream does not.
      if (Exit.isSuccess(exit)) {
        const done = this.deadline.expired ? conn.discardClient(client) : conn.returnClient(client)
        return Effect.as(Effect.andThen(done, state.releaseConn(conn)), exit.value)
      }
      const error = Cause.findErrorOption(exit.cause)
      // The server refused the stream (its GoAway crossed our SYN, or its backlog was
      // full): no handler saw the request, so this is a failed open, retried the same way.
      if (client.stream.refused && !this.deadline.expired && error._tag === "Some" && error.value instanceof MuxError) {
        this.sent = false
        const refused = error.value
        return conn.discardClient(client).pipe(
          Effect.andThen(state.releaseConn(conn)),
          Effect.andThen(
            mayRetry
              ? Effect.succeed(Retry)
              : Effect.fail(
                streamOpenFailed(this.target.key, this.method, `${refused.detail ?? refused.reason} refused`, refused)
              )
          )
        )
      }
      // Consul and Nomad close the stream after any error, remote ones included: a Go
      // server's ServeRequest loop FINs the stream after an unknown method or undecodable
      // args, so reusing it would fail the next, unrelated call.
      const remote = error._tag === "Some" && error.value instanceof RemoteError
      const sessionDead = error._tag === "Some" && error.value instanceof MuxError && error.value.isSessionFatal
      return Effect.andThen(
        remote ? conn.closeClient(client) : conn.discardClient(client),
        Effect.andThen(
          sessionDead ? state.clearConn(conn) : Effect.void,
          Effect.andThen(
            state.releaseConn(conn),
            Effect.failCause(Cause.map(exit.cause, (e) => this.classify(e)))
          )
        )
      )
    })
  }

  private classify(error: Parameters<typeof toRpcError>[0]): RpcError {
    if (this.state.closed) return poolClosed(this.target.key, this.method)
    if (this.deadline.expired) return this.timedOut()
    return toRpcError(error, this.target.key, this.method, this.sent)
  }
}

/** The seed's one retry; an event on the call's span when spans are on. */
const retryOnce = (target: Target, call: Call): Attempt =>
  call.span === undefined ? call.attempt(false) : Effect.andThen(RpcTracing.retried(call.span, target), call.attempt(false))

/**
 * Runs one call of `method` on `target` with a deadline of `timeout` millis,
 * counting it in the target's stats and metrics (the span is `RpcTracing.client`'s). Each run (an `Effect.retry` runs it
 * again) has its own deadline and reports whether its own request was sent.
 */
export const run = (
  state: State,
  target: Target,
  method: string,
  args: unknown,
  timeout: number,
  span?: Tracer.Span
): Effect.Effect<Value, RpcError> =>
  Effect.suspend(() => {
    const counters = state.countersFor(target.key)
    counters.calls++
    // Held while the call runs, so the address's counters are not evicted under it.
    counters.active++
    const series = state.metrics?.server(target, counters)
    const call = new Call(state, target, method, args, timeout, span)
    return Effect.flatMap(call.attempt(true), (result) =>
      result === Retry ? (retryOnce(target, call) as Effect.Effect<Value, RpcError>) : Effect.succeed(result)).pipe(
        Effect.onExit((exit) => {
          state.deadlines.remove(call.deadline)
          counters.active--
          if (Exit.isSuccess(exit)) counters.ok++
          else {
            const error = Cause.findErrorOption(exit.cause)
            if (error._tag === "Some") countFailure(counters, error.value.reason)
          }
          series?.record(method, (state.now() - call.start) / 1000, Exit.isSuccess(exit) ? undefined : errorTypeOf(exit.cause))
          return Effect.void
        })
      )
  })
