/**
 * The fault plan: a fiber that, every few simulated milliseconds, injects one
 * of the scenario's faults. Faults that last (a paused reader, a server down
 * or dark) are undone by a child fiber after a while; interrupting the chaos
 * fiber at the end of the workload ends those too.
 */
import { Effect } from "effect"
import { oneHour } from "../yamux/steppedClock.ts"
import type { KvLoad } from "./KvLoad.ts"
import type { Runtime } from "./Runtime.ts"
import type { FaultKind, Scenario } from "./Scenario.ts"
import type { Network, SimServer } from "./World.ts"


export const inject = (
  runtime: Runtime,
  scenario: Scenario,
  network: Network,
  servers: ReadonlyMap<string, SimServer>,
  kv: KvLoad | undefined
): Effect.Effect<void> => {
  const { prng } = runtime
  const all = [...servers.values()]
  /** Undoes a lasting fault later, in a child of the chaos fiber. */
  const later = (millis: number, undo: Effect.Effect<void>) =>
    Effect.asVoid(Effect.forkChild(Effect.andThen(Effect.sleep(millis), undo)))

  const one = (kind: FaultKind): Effect.Effect<void> =>
    Effect.suspend(() => {
      switch (kind) {
        case "reset":
        case "destroy":
        case "sever":
        case "slowReader": {
          const links = network.live("rpc")
          if (links.length === 0) return Effect.void
          const link = prng.pick(links)
          const end = prng.chance(0.5) ? link.client : link.server
          const side = end === link.client ? "client" : "server"
          runtime.event(`fault ${kind} link ${link.id} ${side}`)
          if (kind === "reset") end.reset()
          else if (kind === "destroy") end.destroy()
          else if (kind === "sever") link.sever()
          else {
            end.pause()
            return later(prng.range(1, 800), Effect.sync(() => end.resume()))
          }
          return Effect.void
        }
        case "restart": {
          const server = prng.pick(all)
          if (!server.up) return Effect.void
          runtime.event(`fault restart ${server.address}`)
          return Effect.andThen(server.stop, later(prng.range(0, 600), server.start))
        }
        case "dark": {
          const server = prng.pick(all)
          runtime.event(`fault dark ${server.address}`)
          server.dark = true
          return later(prng.range(10, 1500), Effect.sync(() => {
            server.dark = false
          }))
        }
        case "goAway": {
          const server = prng.pick(all)
          const live = server.sessions.filter((s) => !s.isClosed)
          if (live.length === 0) return Effect.void
          runtime.event(`fault goAway ${server.address}`)
          return prng.pick(live).goAway
        }
        case "wallStep": {
          const step = prng.pick([-oneHour, oneHour, -1000])
          runtime.event(`fault wall step ${step}`)
          runtime.stepWall(step)
          return Effect.void
        }
        case "stall": {
          // The process stalls (GC, a paused VM): time jumps while work is runnable.
          const millis = prng.range(1, 3000)
          runtime.event(`fault stall ${millis}`)
          runtime.stall(millis)
          return runtime.testClock!.adjust(millis)
        }
        case "kvReset": {
          const links = network.live("kv")
          if (links.length === 0) return Effect.void
          const link = prng.pick(links)
          runtime.event(`fault kv reset link ${link.id}`)
          link.client.reset()
          return Effect.void
        }
        case "kvDown": {
          if (kv === undefined || !kv.up) return Effect.void
          runtime.event("fault kv down")
          kv.up = false
          return later(prng.range(10, 600), Effect.sync(() => {
            kv.up = true
          }))
        }
      }
    })

  if (scenario.faults.length === 0) return Effect.void
  return Effect.forever(
    Effect.andThen(Effect.sleep(prng.range(1, 2 * scenario.faultGapMillis)), Effect.suspend(() => one(prng.pick(scenario.faults))))
  )
}
