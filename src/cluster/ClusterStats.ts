/**
 * What the cluster has done, per server and in total. Counters accumulate
 * from the cluster's start; the list order, `current` and `offline` are read
 * when the snapshot is taken.
 *
 * @since 0.1.0
 */

/** The last `Status.Ping` of a server (by a rebalance or before discovery adds it). */
export interface LastPing {
  /** Clock time of the ping's end, in epoch milliseconds. */
  readonly at: number
  /** Round trip in milliseconds when it answered. */
  readonly rttMillis?: number | undefined
  /** The failure's message when it did not. */
  readonly error?: string | undefined
}

export interface ServerStats {
  readonly address: string
  /** Attempts sent to this server (first tries and retries). */
  readonly calls: number
  /** Attempts that failed, whatever the reason. */
  readonly failures: number
  /** Times a failure moved it from the head to the back. */
  readonly rotations: number
  readonly lastPing?: LastPing | undefined
}

export interface ClusterStats {
  /** The server calls go to now (the head), undefined when the list is empty. */
  readonly current: string | undefined
  /** No server answered the last rebalance's pings. */
  readonly offline: boolean
  /** The list, head first. */
  readonly servers: ReadonlyArray<ServerStats>
  /** Calls made on the cluster (each may take several attempts). */
  readonly calls: number
  /** Calls that failed after their last attempt. */
  readonly failed: number
  /** Attempts after the first, over all calls. */
  readonly retries: number
  /** Rotations over all servers. */
  readonly rotations: number
  /** Rebalances run, and how many found no server answering. */
  readonly rebalances: number
  readonly rebalancesOffline: number
  /** Discovery rounds answered, and the servers they added and removed in all. */
  readonly discoveries: number
  readonly discovered: number
  readonly departed: number
}

/** Mutable counters per server. */
export interface Counters {
  calls: number
  failures: number
  rotations: number
  lastPing: LastPing | undefined
}

/** Mutable totals. */
export interface Totals {
  calls: number
  failed: number
  retries: number
  rebalances: number
  rebalancesOffline: number
  discoveries: number
  discovered: number
  departed: number
}

export class StatsRecorder {
  readonly totals: Totals = {
    calls: 0,
    failed: 0,
    retries: 0,
    rebalances: 0,
    rebalancesOffline: 0,
    discoveries: 0,
    discovered: 0,
    departed: 0
  }
  private readonly byServer = new Map<string, Counters>()

  /** The counters of `server`, created on first use; kept after it leaves the list. */
  of(server: string): Counters {
    let c = this.byServer.get(server)
    if (c === undefined) {
      c = { calls: 0, failures: 0, rotations: 0, lastPing: undefined }
      this.byServer.set(server, c)
    }
    return c
  }

  /** Rotations over all servers, those that left the list included. */
  get rotations(): number {
    let rotations = 0
    for (const c of this.byServer.values()) rotations += c.rotations
    return rotations
  }

  snapshot(list: ReadonlyArray<string>, offline: boolean): ClusterStats {
    const rotations = this.rotations
    const servers = list.map((address): ServerStats => {
      const c = this.of(address)
      return { address, calls: c.calls, failures: c.failures, rotations: c.rotations, lastPing: c.lastPing }
    })
    return { current: list[0], offline, servers, rotations, ...this.totals }
  }
}
