/**
 * The two synchronous halves of a borrow that `get` (`Lease`) and `use`
 * (`Borrow`) share: the fast-path hand-out and the give-back.
 *
 * `takeIdle` is the fast path: when a turn and a healthy idle connection
 * with no hook due are free, both are taken and lent in one synchronous
 * step, with no wait, fiber, scope or `Lease` state machine; when anything
 * is missing nothing is taken, and the caller goes the slow way. Doing it
 * all or nothing keeps the accounting of `Lease` out of the fast path: the
 * turn moves straight to the entry (`entry.turn`), so it is freed exactly
 * once, by whichever give-back or close leaves `InUse` first.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Core } from "./Core.ts"
import * as Hooks from "./Hooks.ts"
import type { Entry } from "./PooledConn.ts"

/**
 * Takes a free turn and a healthy idle connection with no hook due, and
 * lends the connection to `holder`, holding the turn. Undefined when any of
 * it is missing: nothing was taken.
 *
 * @since 0.1.0
 */
export const takeIdle = <A>(core: Core<A>, holder: object): Entry<A> | undefined => {
  const fifo = core.config.poolFIFO
  const entry = core.idle.peek(fifo)
  if (entry === undefined || core.closed || !core.turns.canTake()) return undefined
  const now = core.now()
  if (core.staleReason(entry, now) !== undefined || Hooks.vetsIdle(core.hooks, now - entry.lastUsed)) return undefined
  core.turns.tryTake()
  core.idle.pop(fifo)
  core.counters.hits++
  // From asking to a connection in hand: no time passed.
  core.metrics?.waitTime.recordZero()
  entry.turn = true
  core.lend(entry, holder, now)
  return entry
}

/**
 * Gives back an entry for its holder (the caller checked that it holds it):
 * put, or removed when `put` is false. With an `onPut` hook a put runs it
 * first, interruptibly: the holder lets go of the entry before, so a second
 * give-back is stale, and the entry is closed if the hook fails or is
 * interrupted. Returns what must still run (uninterruptibly), if anything.
 *
 * @since 0.1.0
 */
export const giveBackHeld = <A>(
  core: Core<A>,
  entry: Entry<A>,
  put: boolean,
  reason?: "validate"
): Effect.Effect<void> | undefined => {
  if (!put) return core.removeUnsafe(entry, reason)
  if (core.hooks.onPut === undefined || core.closed) return core.putUnsafe(entry)
  entry.holder = undefined
  return Effect.flatMap(Hooks.vetPut(core.hooks, entry.conn), (exit) =>
    Effect.suspend(() => {
      const verdict = Hooks.verdictOf(exit)
      if (verdict === "usable") return core.putUnsafe(entry) ?? Effect.void
      return core.removeUnsafe(entry, verdict === "unusable" ? "validate" : "remove") ?? Effect.void
    }))
}
