/**
 * go-redis's `reaper`: every `idleCheckFrequency`, close the idle connections
 * past `connMaxIdleTime` or their lifetime, so a quiet pool gives its
 * connections back to the server before the server or a middlebox drops
 * them. Ages are monotonic (`Core.staleReason`); the loop is a `Schedule` on
 * a fiber in the pool's background Scope.
 *
 * @since 0.1.0
 */
import { Effect, Schedule } from "effect"
import type { Core } from "./Core.ts"

/** Closes every idle connection that is stale now; succeeds with how many. */
export const reapStaleConns = <A>(core: Core<A>): Effect.Effect<number> =>
  Effect.uninterruptible(Effect.suspend(() => {
    const now = core.now()
    const closes: Array<Effect.Effect<void>> = []
    for (const entry of core.idle.toArray()) {
      const reason = core.staleReason(entry, now)
      if (reason !== undefined) closes.push(core.discard(entry, reason))
    }
    if (closes.length === 0) return Effect.succeed(0)
    return Effect.as(Effect.all(closes, { discard: true }), closes.length)
  }))

/** The reaper fiber: `reapStaleConns` every `idleCheckFrequency`, the first a period after the start. */
export const reaper = <A>(core: Core<A>): Effect.Effect<void> =>
  Effect.andThen(
    Effect.sleep(core.config.idleCheckFrequency),
    Effect.repeat(reapStaleConns(core), Schedule.spaced(core.config.idleCheckFrequency))
  )
