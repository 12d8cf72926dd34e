/**
 * What the RPC pool has done, per server and in total. Counters accumulate
 * from the pool's start; gauges are read when the snapshot is taken.
 *
 * The per-address table is bounded: a caller that invents addresses (or a
 * cluster that churns through thousands of servers) must not grow it without
 * end. An address keeps its counters while it has a session, a caller or a
 * dial in flight; past that, at most `maxIdleAddresses` addresses are kept,
 * the least recently used evicted first. An evicted address's counters are
 * folded into the totals, which therefore keep counting; if the address comes
 * back its own counters start again from zero.
 *
 * @since 0.1.0
 */
import type { RpcErrorReason } from "./RpcError.ts"

/**
 * Addresses with no session, caller or dial whose counters are kept: 1024.
 * A Consul agent talks to a handful of servers; a churning cluster view or a
 * caller inventing addresses stops here, at roughly 400 KiB of counters.
 */
export const maxIdleAddresses = 1024

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

/**
 * The pool's totals (every address since the pool started, evicted ones
 * included) and the addresses it still keeps.
 */
export interface RpcStats extends Omit<AddressStats, "address"> {
  readonly addresses: ReadonlyArray<AddressStats>
}

/** Mutable counters kept per address. */
export interface Counters {
  /** A gauge, kept here so the Conn of the same address shares it with the pool. */
  pending: number
  /** Calls of this address now running (a gauge): their counters must not be evicted under them. */
  active: number
  dials: number
  dialFailures: number
  calls: number
  ok: number
  failures: Partial<Record<RpcErrorReason, number>>
}

export const makeCounters = (): Counters => ({
  pending: 0,
  active: 0,
  dials: 0,
  dialFailures: 0,
  calls: 0,
  ok: 0,
  failures: {}
})

/** The gauges of an address's session, when it has one. */
export interface SessionGauges {
  readonly idleStreams: number
  readonly inUse: number
  readonly callers: number
}

/** Counts a failed call under its reason. */
export const countFailure = (counters: Counters, reason: RpcErrorReason): void => {
  counters.failures[reason] = (counters.failures[reason] ?? 0) + 1
}

const addInto = (into: Counters, from: Counters): void => {
  into.dials += from.dials
  into.dialFailures += from.dialFailures
  into.calls += from.calls
  into.ok += from.ok
  for (const [reason, n] of Object.entries(from.failures) as Array<[RpcErrorReason, number]>) {
    into.failures[reason] = (into.failures[reason] ?? 0) + n
  }
}

/**
 * Counters by address. Addresses with a session are *pinned*: their counters
 * live with the session's Conn and stay out of the LRU. The rest sit in an
 * LRU of at most `limit` entries (oldest first in the Map's order).
 */
export class StatsTable {
  private readonly limit: number
  /** Told of each evicted address (the pool's metrics drop its series). */
  private readonly onEvict: ((key: string) => void) | undefined
  private readonly idle = new Map<string, Counters>()
  private readonly pinned = new Map<string, Counters>()
  /** What evicted addresses had counted. */
  private readonly evicted = makeCounters()
  /** Addresses evicted so far (for tests). */
  evictions = 0

  constructor(limit: number = maxIdleAddresses, onEvict?: (key: string) => void) {
    this.limit = limit
    this.onEvict = onEvict
  }

  /** Addresses whose counters are kept now. */
  get size(): number {
    return this.idle.size + this.pinned.size
  }

  /**
   * The counters of `key`, made if new. An unpinned address becomes the most
   * recently used, and the least recently used idle ones past the limit go.
   */
  get(key: string): Counters {
    const pinned = this.pinned.get(key)
    if (pinned !== undefined) return pinned
    let counters = this.idle.get(key)
    if (counters === undefined) counters = makeCounters()
    else this.idle.delete(key)
    this.idle.set(key, counters)
    this.evict()
    return counters
  }

  /** `key` has a session now: its counters leave the LRU until `unpin`. */
  pin(key: string, counters: Counters): void {
    this.idle.delete(key)
    this.pinned.set(key, counters)
  }

  /** `key`'s session is gone: its counters rejoin the LRU as the most recent. */
  unpin(key: string): void {
    const counters = this.pinned.get(key)
    if (counters === undefined) return
    this.pinned.delete(key)
    this.idle.set(key, counters)
    this.evict()
  }

  /**
   * Evicts the oldest idle addresses past the limit. One a caller still uses
   * (waiting, or a call running) is skipped: its counters would change after
   * being folded in, and the pending gauge would lose its waiters.
   */
  private evict(): void {
    let excess = this.idle.size - this.limit
    if (excess <= 0) return
    for (const [key, counters] of this.idle) {
      if (counters.pending === 0 && counters.active === 0) {
        this.idle.delete(key)
        addInto(this.evicted, counters)
        this.evictions++
        this.onEvict?.(key)
        if (--excess === 0) return
      }
    }
  }

  /** A snapshot: every kept address, and totals that include the evicted ones. */
  snapshot(sessionOf: (key: string) => SessionGauges | undefined): RpcStats {
    const addresses: Array<AddressStats> = []
    const row = (address: string, c: Counters): void => {
      const session = sessionOf(address)
      addresses.push({
        address,
        sessions: session === undefined ? 0 : 1,
        streamsIdle: session?.idleStreams ?? 0,
        streamsInUse: session?.inUse ?? 0,
        callers: session?.callers ?? 0,
        pending: c.pending,
        dials: c.dials,
        dialFailures: c.dialFailures,
        calls: c.calls,
        ok: c.ok,
        failures: { ...c.failures }
      })
    }
    for (const [address, c] of this.pinned) row(address, c)
    for (const [address, c] of this.idle) row(address, c)
    return total(addresses, this.evicted)
  }
}

const total = (addresses: ReadonlyArray<AddressStats>, evicted: Counters): RpcStats => {
  const failures: Partial<Record<RpcErrorReason, number>> = { ...evicted.failures }
  let sessions = 0, streamsIdle = 0, streamsInUse = 0, callers = 0, pending = 0
  let dials = evicted.dials, dialFailures = evicted.dialFailures, calls = evicted.calls, ok = evicted.ok
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
