/**
 * The RPC pool's metrics: `rpc.client.call.duration` as OpenTelemetry names
 * it, and the pool's own counts under `connpool.rpc.*` (docs/observability.md
 * lists every series and attribute).
 *
 * A call pays for one histogram value, found through three map reads; the
 * counts (sessions, streams, waiters, dials) are the ones `RpcStats` already
 * keeps, read only when the metrics are read. A server's series are made,
 * all at zero, when the pool first meets the server (a call's start, before
 * any dial), and removed when its stats are evicted or the pool closes.
 *
 * @since 0.1.0
 */
import type { Context } from "effect"
import { CallDurations } from "../observability/CallDurations.ts"
import { Observed } from "../observability/Observed.ts"
import * as S from "../observability/Semconv.ts"
import type { Conn } from "./Conn.ts"
import type { Counters } from "./RpcStats.ts"
import type { Target } from "./Target.ts"

/**
 * Method names with series of their own per server: 256. Later names are
 * recorded as `_OTHER`, so a caller inventing names cannot grow the
 * registry without end.
 */
export const maxMethodsPerServer = 256

/** What the series of a server read: its live Conn, if any. */
export type ConnOf = (key: string) => Conn | undefined

/** The series of one server of the pool. */
export class ServerSeries {
  private readonly observed: Observed
  private readonly durations: CallDurations
  /** Method names with series of their own, at most `maxMethodsPerServer`. */
  private readonly methods = new Set<string>()

  constructor(context: Context.Context<never>, pool: string, system: string, target: Target, counters: Counters, connOf: ConnOf) {
    const observed = new Observed(context)
    this.observed = observed
    const port = String(target.port)
    this.durations = new CallDurations(
      observed,
      "rpc.client.call.duration",
      "Duration of outbound RPCs, from the call to its reply or failure, in seconds.",
      { [S.RPC_SYSTEM_NAME]: system, [S.SERVER_ADDRESS]: target.host, [S.SERVER_PORT]: port }
    )
    const own = { [S.CONNPOOL_POOL_NAME]: pool, [S.SERVER_ADDRESS]: target.host, [S.SERVER_PORT]: port }
    const key = target.key
    observed.upDown("connpool.rpc.sessions", "Open sessions (TCP connections) to the server: 0 or 1.", own, () =>
      connOf(key) === undefined ? 0 : 1)
    const streams = "Stream clients of the server's session, idle (kept for reuse) or used (carrying a call)."
    observed.upDown("connpool.rpc.streams", streams, { ...own, "connpool.rpc.stream.state": "idle" }, () =>
      connOf(key)?.idleStreams ?? 0)
    observed.upDown("connpool.rpc.streams", streams, { ...own, "connpool.rpc.stream.state": "used" }, () =>
      connOf(key)?.inUse ?? 0)
    observed.upDown(
      "connpool.rpc.pending_calls",
      "Callers waiting for a dial to the server or for a stream under maxStreamsPerSession.",
      own,
      () => counters.pending
    )
    observed.counter("connpool.rpc.dials", "Sessions dialled to the server successfully.", own, () => counters.dials)
    observed.counter("connpool.rpc.dial.failures", "Dials to the server that failed.", own, () => counters.dialFailures)
  }

  /**
   * Records one call of `method` that took `seconds`, failed with `errorType`
   * (undefined: succeeded). Past the bound, a new name shares the one `_OTHER` series.
   */
  record(method: string, seconds: number, errorType: string | undefined): void {
    let name = method
    if (!this.methods.has(method)) {
      if (this.methods.size < maxMethodsPerServer) this.methods.add(method)
      else name = S.OTHER
    }
    this.durations.of(name, errorType).record(seconds)
  }

  remove(): void {
    this.observed.remove()
  }
}

/** The metrics of one pool: the series of each server it has met. */
export class RpcMetrics {
  private readonly context: Context.Context<never>
  private readonly pool: string
  private readonly system: string
  private readonly connOf: ConnOf
  private readonly servers = new Map<string, ServerSeries>()

  constructor(options: {
    readonly context: Context.Context<never>
    readonly pool: string
    /** `rpc.system.name`: the protocol's name (`consul`, `nomad`, or a custom protocol's). */
    readonly system: string
    readonly connOf: ConnOf
  }) {
    this.context = options.context
    this.pool = options.pool
    this.system = options.system
    this.connOf = options.connOf
  }

  /** The series of `target`, made at zero on first sight. */
  server(target: Target, counters: Counters): ServerSeries {
    let series = this.servers.get(target.key)
    if (series === undefined) {
      series = new ServerSeries(this.context, this.pool, this.system, target, counters, this.connOf)
      this.servers.set(target.key, series)
    }
    return series
  }

  /** The server's stats were evicted: its series go too (its counts would start again from zero). */
  forget(key: string): void {
    this.servers.get(key)?.remove()
    this.servers.delete(key)
  }

  /** The pool closed: every series goes, so the registry holds nothing of it. */
  close(): void {
    for (const series of this.servers.values()) series.remove()
    this.servers.clear()
  }
}
