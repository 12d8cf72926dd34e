/**
 * Discovery: refresh the list from the servers' own view of the cluster
 * (`Status.Peers`, the raft peers' RPC addresses in Consul and Nomad), as
 * Nomad's client refreshes its servers from heartbeats. New servers are
 * pinged before they are added (Nomad's `setServersImpl`, unless `force`),
 * servers no longer listed are dropped, an empty or unusable answer changes
 * nothing, and the list is never emptied; the seeds come back when a
 * rebalance finds no server answering.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { parseServer } from "./ClusterOptions.ts"
import type { Maintenance } from "./Rebalance.ts"
import { pingServer } from "./Rebalance.ts"

/** What one discovery round changed. */
export interface Discovered {
  /** The server that answered. */
  readonly from: string
  readonly added: ReadonlyArray<string>
  readonly removed: ReadonlyArray<string>
  /** New servers left out because they did not answer a ping. */
  readonly unreachable: ReadonlyArray<string>
}

/** Peers a new server list may hold; more is not a cluster's raft configuration. */
const maxPeers = 1024

/** The `host:port` strings of an answer, deduplicated; malformed entries are skipped. */
export const parsePeers = (reply: Value): Array<string> => {
  if (!Array.isArray(reply)) return []
  const peers: Array<string> = []
  for (const item of reply.slice(0, maxPeers)) {
    const server = typeof item === "string" ? parseServer(item) : undefined
    if (server !== undefined && !peers.includes(server)) peers.push(server)
  }
  return peers
}

/** Asks the servers in list order until one answers `method`; undefined when none does. */
const ask = (m: Maintenance, method: string): Effect.Effect<{ readonly from: string; readonly reply: Value } | undefined> =>
  Effect.gen(function*() {
    for (const server of m.list.snapshot()) {
      const reply = yield* m.pool.rpc(server, method, {}, { timeout: m.pingTimeout }).pipe(
        Effect.map((reply) => ({ from: server, reply })),
        Effect.orElseSucceed(() => undefined)
      )
      if (reply !== undefined) return reply
    }
    return undefined
  })

/** One discovery round; undefined when no server answered or the answer listed no usable server. */
export const discover = (
  m: Maintenance,
  options: { readonly method: string; readonly force: boolean }
): Effect.Effect<Discovered | undefined> =>
  Effect.gen(function*() {
    const answer = yield* ask(m, options.method)
    if (answer === undefined) return undefined
    const peers = parsePeers(answer.reply)
    if (peers.length === 0) return undefined
    m.stats.totals.discoveries++

    const fresh = peers.filter((s) => !m.list.has(s))
    const reachable = options.force
      ? fresh
      : (yield* Effect.forEach(fresh, (s) => Effect.map(pingServer(m, s), (ok) => (ok ? s : undefined)), {
        concurrency: 4
      })).filter((s): s is string => s !== undefined)
    // The pings yielded: read the list again.
    const listed = new Set(peers)
    const gone = m.list.snapshot().filter((s) => !listed.has(s))
    const kept = m.list.size - gone.length
    // Replacing every known server by nothing reachable would leave calls nowhere to go.
    if (kept + reachable.length === 0) return undefined

    const added = reachable.filter((s) => m.list.add(s))
    const removed = gone.filter((s) => m.list.remove(s))
    m.stats.totals.discovered += added.length
    m.stats.totals.departed += removed.length
    return {
      from: answer.from,
      added,
      removed,
      unreachable: fresh.filter((s) => !reachable.includes(s))
    }
  })
