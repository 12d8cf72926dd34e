/**
 * Rebalancing (Consul's `RebalanceServers`, Nomad's the same): shuffle a
 * copy of the list, ping its head and rotate it while the ping fails, then
 * adopt the copy if some server answered. Spreading clients over servers
 * this way keeps long-lived clients from piling onto long-lived servers.
 * The timer is a `Schedule` whose delays come from the profile's formula.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Random, Schedule } from "effect"
import type { RpcPool } from "../rpc/RpcPool.ts"
import type { StatsRecorder } from "./ClusterStats.ts"
import type { Profile } from "./Profile.ts"
import type { ServerList } from "./ServerList.ts"

/** What the background work of a cluster (rebalance, discovery) operates on. */
export interface Maintenance {
  readonly list: ServerList
  readonly pool: RpcPool.Service
  readonly stats: StatsRecorder
  readonly pingTimeout: Duration.Duration
}

/** `Status.Ping` on `server`, recorded as its `lastPing`; true when it answered. */
export const pingServer = (m: Maintenance, server: string): Effect.Effect<boolean> =>
  m.pool.ping(server, { timeout: m.pingTimeout }).pipe(
    Effect.matchEffect({
      onSuccess: (rtt) =>
        Effect.map(Clock.currentTimeMillis, (at) => {
          m.stats.of(server).lastPing = { at, rttMillis: Duration.toMillis(rtt) }
          return true
        }),
      onFailure: (error) =>
        Effect.map(Clock.currentTimeMillis, (at) => {
          m.stats.of(server).lastPing = { at, error: error.message }
          return false
        })
    })
  )

/**
 * One rebalance. True when a server answered and the shuffled order was
 * adopted; false when none answered (the list keeps its order and is marked
 * offline, with any seed discovery had dropped put back) or when the chosen
 * head was removed while the pings ran (Consul freezes in place then).
 */
export const rebalance = (m: Maintenance): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    const order = yield* Random.shuffle(m.list.snapshot())
    let found = false
    // Ping the head of the copy; a server that fails goes to the copy's back.
    for (let i = 0; i < order.length && !found; i++) {
      found = yield* pingServer(m, order[0]!)
      if (!found) order.push(order.shift()!)
    }
    m.stats.totals.rebalances++
    if (!found) {
      m.stats.totals.rebalancesOffline++
      m.list.markOffline()
      return false
    }
    return m.list.reconcile(order)
  })

/**
 * The rebalance timer: the profile's first delay, then its formula with a
 * fresh uniform draw from `Random` and the list's size at that moment; or
 * the user's Schedule as it is.
 */
export const rebalanceSchedule = (
  timer: Profile | Schedule.Schedule<unknown>,
  members: number,
  list: ServerList
): Schedule.Schedule<unknown> =>
  Schedule.isSchedule(timer)
    ? timer
    : Schedule.forever.pipe(
      Schedule.modifyDelay(({ attempt }) =>
        attempt === 1
          ? Effect.succeed(timer.firstRebalance)
          : Effect.map(Random.next, (u) => timer.rebalanceDelay(u, members, Math.max(1, list.size)))
      )
    )
