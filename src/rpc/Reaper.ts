/**
 * Consul's `reap`: every `reapInterval`, close the sessions that have had no
 * caller for `maxTime`. Idleness is measured on the monotonic clock (`Conn`'s
 * `lastUsed`), so a wall clock that steps neither reaps a busy pool early nor
 * keeps an idle one for an hour. The loop is a `Schedule` on a fiber the
 * pool's Scope owns.
 *
 * @since 0.1.0
 */
import { Effect, Schedule } from "effect"
import type { Scope } from "effect"
import type { State } from "./State.ts"

/** One pass: close sessions idle for `maxTime` with no callers, outside any call. */
export const reap = (state: State): Effect.Effect<void> =>
  Effect.suspend(() => {
    const now = state.now()
    const maxTime = state.config.maxTimeMillis
    const idle = state.takeConns((conn) => conn.callers === 0 && now - conn.lastUsed >= maxTime)
    return Effect.forEach(
      idle,
      (conn) => Effect.andThen(state.logDebug(conn.address, `session closed: reaped, idle for ${Math.round(now - conn.lastUsed)} ms`), conn.close),
      { discard: true }
    )
  })

/** Forks the reaper into `scope`, unless `maxTime` is 0 (reaping off). */
export const start = (state: State, scope: Scope.Scope): Effect.Effect<void> =>
  state.config.maxTimeMillis > 0
    ? Effect.asVoid(Effect.forkIn(Effect.repeat(reap(state), Schedule.spaced(state.config.reapInterval)), scope))
    : Effect.void
