/**
 * What the RPC pool has done, per server and in total. Counters accumulate
 * from the pool's start; gauges are read when the snapshot is taken.
 *
 * @since 0.1.0
 */
import type { RpcErrorReason } from "./RpcError.ts"

export interface AddressStats {
  readonly address: string
  /** 1 while a session to this server is open, else 0. */
  readonly sessions: number
  /** Stream clients kept for reuse. */
  readonly streamsIdle: number
  /** Stream clients carrying a call now. */
  readonly streamsInUse: number
  /** Callers holding the session now. */
  readonly callers: number
  /** Callers waiting now for a dial or for a stream under `maxStreamsPerSession`. */
  readonly pending: number
  /** Sessions dialled successfully. */
  readonly dials: number
  /** Dials that failed. */
  readonly dialFailures: number
  /** Calls started. */
  readonly calls: number
  /** Calls that returned a reply. */
  readonly ok: number
  /** Failed calls by reason. */
  readonly failures: Readonly<Partial<Record<RpcErrorReason, number>>>
}

export interface PoolStats extends Omit<AddressStats, "address"> {
  readonly addresses: ReadonlyArray<AddressStats>
}

/** Mutable counters kept per address. */
export interface Counters {
  /** A gauge, kept here so the Conn of the same address shares it with the pool. */
  pending: number
  dials: number
  dialFailures: number
  calls: number
  ok: number
  failures: Partial<Record<RpcErrorReason, number>>
}

export const makeCounters = (): Counters => ({ pending: 0, dials: 0, dialFailures: 0, calls: 0, ok: 0, failures: {} })

export const total = (addresses: ReadonlyArray<AddressStats>): PoolStats => {
  const failures: Partial<Record<RpcErrorReason, number>> = {}
  let sessions = 0, streamsIdle = 0, streamsInUse = 0, callers = 0, pending = 0, dials = 0, dialFailures = 0, calls = 0, ok = 0
  for (const a of addresses) {
    sessions += a.sessions
    streamsIdle += a.streamsIdle
    streamsInUse += a.streamsInUse
    callers += a.callers
    pending += a.pending
    dials += a.dials
    dialFailures += a.dialFailures
    calls += a.calls
    ok += a.ok
    for (const [reason, n] of Object.entries(a.failures) as Array<[RpcErrorReason, number]>) {
      failures[reason] = (failures[reason] ?? 0) + n
    }
  }
  return { sessions, streamsIdle, streamsInUse, callers, pending, dials, dialFailures, calls, ok, failures, addresses }
}
