/**
 * The pool's shutdown, run as a finalizer of the Scope the pool was made in:
 * mark the pool closed (calls in flight and new ones fail with `PoolClosed`),
 * stop the deadline timer, release every dial waiter, and close every
 * session. Sessions whose calls are still running close under them; those
 * calls end at once with `PoolClosed`.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { poolClosed } from "./Classify.ts"
import type { State } from "./State.ts"

export const shutdown = (state: State): Effect.Effect<void> =>
  Effect.suspend(() => {
    state.closed = true
    state.deadlines.clear()
    state.limiter.failAll((key) => poolClosed(key, ""))
    // The registry must not keep the pool's gauges (and through them the pool) alive.
    state.metrics?.close()
    const all = state.takeConns(() => true)
    return Effect.forEach(all, (conn) => Effect.andThen(state.logDebug(conn.address, "session closed: pool closed"), conn.close), {
      discard: true
    })
  })
