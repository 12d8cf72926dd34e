/**
 * One call on the cluster, with Consul's client retry loop
 * (`agent/consul/client.go RPC`): call the head; on failure tell the list
 * (`notifyFailed`), and if the failure is one `Classify` retries and the
 * hold timeout has not run out, wait a staggered exponential backoff and
 * call the new head. Every other failure returns at once, with the attempts
 * listed.
 *
 * The first attempt costs one list read, one counter and one `catch` over
 * the pool's call; everything else happens only after a failure.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Option, Random } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { RpcError } from "../rpc/RpcError.ts"
import type { RpcPool } from "../rpc/RpcPool.ts"
import { untilDeadline } from "../time/untilDeadline.ts"
import { classify } from "./Classify.ts"
import type { Attempt } from "./ClusterError.ts"
import { ClusterError } from "./ClusterError.ts"
import { failover } from "./ClusterObserver.ts"
import { invalidOption } from "./ClusterOptions.ts"
import type { StatsRecorder } from "./ClusterStats.ts"
import type { Profile } from "./Profile.ts"
import { backoff, blockingMillis } from "./Profile.ts"
import type { ServerList } from "./ServerList.ts"

export interface CallOptions extends RpcPool.CallOptions {
  /**
   * Running the call twice is harmless (a read), so a connection lost or a
   * stream reset after the request went out is retried on the next server,
   * as Consul retries EOF only for reads. Default false.
   */
  readonly idempotent?: boolean | undefined
  /** Overrides the cluster's hold timeout for this call. */
  readonly holdTimeout?: Duration.Input | undefined
}

/** What calls need from the cluster. */
export interface Caller {
  readonly list: ServerList
  readonly pool: RpcPool.Service
  readonly stats: StatsRecorder
  readonly holdMillis: number
  readonly blocking: Pick<Profile, "maxQueryTime" | "defaultQueryTime">
  /** The cluster's Clock, read once at construction (no lookup per call). */
  readonly clock: Clock.Clock
  /** The cluster's name, for its log lines. */
  readonly name: string
  /** Failovers are events on the call's span too. */
  readonly tracing: boolean
}

/** A call that has failed once: what its retries and its final error need. */
interface Run {
  readonly method: string
  readonly args: unknown
  readonly options: RpcPool.CallOptions | undefined
  readonly idempotent: boolean
  /** Monotonic Clock milliseconds at the first attempt. */
  readonly start: number
  /** Hold plus blocking time, in milliseconds from `start`: no retry after it. */
  readonly deadline: number
  readonly holdMillis: number
  readonly attempts: Array<Attempt>
  /** Retries so far, and the last backoff (the floor of the next). */
  retries: number
  previous: number
}

/** Monotonic milliseconds: a deadline must not move when the wall clock jumps. */
const nowMillis = (clock: Clock.Clock): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

const noServers = (method: string): ClusterError =>
  new ClusterError({ reason: "NoServers", address: "", method, attempts: [], exhausted: false, detail: "the server list is empty" })

/** The call's error: the last failure's reason, or `NoServers` when no server could be reached. */
const finalError = (c: Caller, run: Run, server: string, error: RpcError, retryable: boolean): ClusterError => {
  c.stats.totals.failed++
  const tried = new Set(run.attempts.map((a) => a.server))
  const unreachable = retryable && run.attempts.every((a) => !a.sent) && c.list.snapshot().every((s) => tried.has(s))
  return new ClusterError({
    reason: unreachable ? "NoServers" : error.reason,
    address: server,
    method: run.method,
    attempts: run.attempts,
    exhausted: retryable,
    detail: unreachable ? `no server reachable within ${Math.round(run.deadline)} ms` : error.detail,
    cause: error
  })
}

const attempt = (c: Caller, run: Run): Effect.Effect<Value, ClusterError> =>
  Effect.suspend(() => {
    const server = c.list.current()
    if (server === undefined) {
      c.stats.totals.failed++
      return Effect.fail(noServers(run.method))
    }
    c.stats.of(server).calls++
    return Effect.catch(
      c.pool.rpc(server, run.method, run.args, run.options),
      (error) => onFailure(c, run, server, error)
    )
  })

const onFailure = (
  c: Caller,
  run: Run,
  server: string,
  error: RpcError
): Effect.Effect<Value, ClusterError> => {
  const at = nowMillis(c.clock) - run.start
  const verdict = classify(error, run.idempotent)
  run.attempts.push({ server, reason: error.reason, detail: error.detail ?? error.reason, sent: error.sent, at })
  const counters = c.stats.of(server)
  counters.failures++
  const rotated = verdict.rotate && c.list.notifyFailed(server)
  if (rotated) counters.rotations++
  if (!verdict.retry) return Effect.fail(finalError(c, run, server, error, false))
  if (at >= run.deadline) return Effect.fail(finalError(c, run, server, error, true))
  run.retries++
  c.stats.totals.retries++
  return Effect.flatMap(Random.next, (u) => {
    // Never sleep past the deadline: the last attempt starts by then, so a call ends within
    // hold (plus blocking time) plus one call timeout.
    const wait = Math.min(backoff(run.holdMillis, run.retries, run.previous, u), Math.max(0, run.deadline - at))
    run.previous = wait
    const told = failover({
      name: c.name,
      tracing: c.tracing,
      method: run.method,
      server,
      error,
      retry: run.retries,
      waitMillis: wait,
      rotated
    })
    return Effect.andThen(told, Effect.andThen(Effect.sleep(untilDeadline(wait)), attempt(c, run)))
  })
}

/** A per-call hold timeout in milliseconds; undefined when it is not a positive duration. */
const callHold = (input: Duration.Input): number | undefined => {
  const d = Duration.fromInput(input)
  return Option.isSome(d) && Duration.isPositive(d.value) ? Duration.toMillis(d.value) : undefined
}

/**
 * `method` on the current server, retried on the next as the table in
 * `Classify` says, within the hold timeout (plus a blocking query's wait).
 * A blocking query without its own `timeout` gets `wait + hold` as its call
 * timeout, as Consul's pool gives it, so the pool does not cut it short.
 */
export const call = (c: Caller, method: string, args: unknown, options?: CallOptions): Effect.Effect<Value, ClusterError> =>
  Effect.suspend(() => {
    c.stats.totals.calls++
    const server = c.list.current()
    if (server === undefined) {
      c.stats.totals.failed++
      return Effect.fail(noServers(method))
    }
    const blocking = blockingMillis(args, c.blocking)
    const holdMillis = options?.holdTimeout === undefined ? c.holdMillis : callHold(options.holdTimeout)
    if (holdMillis === undefined) {
      c.stats.totals.failed++
      return Effect.fail(invalidOption("holdTimeout", "expected a duration > 0"))
    }
    const poolOptions = blocking > 0 && options?.timeout === undefined
      ? { timeout: Duration.millis(blocking + holdMillis) }
      : options
    const start = nowMillis(c.clock)
    c.stats.of(server).calls++
    return Effect.catch(c.pool.rpc(server, method, args, poolOptions), (error) =>
      onFailure(c, {
        method,
        args,
        options: poolOptions,
        idempotent: options?.idempotent === true,
        start,
        deadline: holdMillis + blocking,
        holdMillis,
        attempts: [],
        retries: 0,
        previous: 0
      }, server, error))
  })
