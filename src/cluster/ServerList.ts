/**
 * The server list of Consul's router `Manager` (`agent/router/manager.go`):
 * the head is the current server, every call goes to it, and a server that
 * fails moves to the back. One mutable structure with short named
 * operations; JavaScript runs them one at a time, so Consul's locks and
 * copy-on-write are not needed, but its merge after a rebalance is (pings
 * yield, and the list may change meanwhile).
 *
 * @since 0.1.0
 */

export class ServerList {
  private servers: Array<string>
  /** The configured servers, kept as a fallback when discovery has replaced them. */
  readonly seeds: ReadonlyArray<string>
  /** No server answered the last rebalance's pings (Consul's `offline`). */
  offline = false

  /** `order`: the seeds in the order to start with (the cluster shuffles them). */
  constructor(seeds: ReadonlyArray<string>, order: ReadonlyArray<string> = seeds) {
    this.seeds = [...seeds]
    this.servers = [...order]
  }

  get size(): number {
    return this.servers.length
  }

  /** The server calls go to: the head (Consul's `FindServer`). */
  current(): string | undefined {
    return this.servers[0]
  }

  /** A copy, head first. */
  snapshot(): Array<string> {
    return [...this.servers]
  }

  has(server: string): boolean {
    return this.servers.includes(server)
  }

  /**
   * Consul's `NotifyFailedServer`: moves `server` to the back only if it is
   * still the head and there are at least two servers, so the callers that
   * fail together on one server rotate it once, not once each. True when it
   * moved.
   */
  notifyFailed(server: string): boolean {
    if (this.servers.length < 2 || this.servers[0] !== server) return false
    this.servers.push(this.servers.shift()!)
    return true
  }

  /**
   * Consul's `AddServer`: appends an unknown server (it gets traffic after a
   * rebalance or after the others fail) and clears `offline`. False when known.
   */
  add(server: string): boolean {
    this.offline = false
    if (this.has(server)) return false
    this.servers.push(server)
    return true
  }

  /** Drops `server`, unless it is the last one: the list is never emptied. */
  remove(server: string): boolean {
    const at = this.servers.indexOf(server)
    if (at < 0 || this.servers.length === 1) return false
    this.servers.splice(at, 1)
    return true
  }

  /**
   * Consul's `reconcileServerList`: adopts `order` (a rebalanced copy whose
   * head answered a ping) while keeping what changed meanwhile: servers
   * removed since the copy was taken are dropped, servers added are appended.
   * If the chosen head itself was removed, nothing changes ("freeze in
   * place" until the next rebalance) and the result is false.
   */
  reconcile(order: ReadonlyArray<string>): boolean {
    const head = order[0]
    if (head === undefined || !this.has(head)) return false
    const now = new Set(this.servers)
    const next = order.filter((s) => now.has(s))
    const taken = new Set(order)
    for (const s of this.servers) if (!taken.has(s)) next.push(s)
    this.servers = next
    this.offline = false
    return true
  }

  /**
   * No server answered: keep the order, mark the list offline and put back
   * any seed that discovery had removed, so the next call or rebalance can
   * try it. Returns the seeds put back.
   */
  markOffline(): Array<string> {
    this.offline = true
    const missing = this.seeds.filter((s) => !this.has(s))
    this.servers.push(...missing)
    return missing
  }

  /** A call or ping succeeded: the cluster is reachable. */
  markOnline(): void {
    this.offline = false
  }
}
