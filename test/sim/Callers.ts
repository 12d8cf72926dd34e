/**
 * What the RPC and cluster workloads share: callers side by side, each
 * making its calls one after another; interruption of a call in flight at
 * a random step; and the check of how an interrupted call ended.
 */
import { Effect } from "effect"
import type { Fiber } from "effect"
import type { Runtime } from "./Runtime.ts"

/** Millis a call may end past its deadline: timers fire on time, so only rounding. */
export const slackMillis = 1

/** A call in flight that the workload may interrupt. */
export interface Interruptible {
  readonly token: string
  fiber: Fiber.Fiber<unknown, unknown> | undefined
  interruptedAt: number | undefined
}

/** `callers` callers side by side, each making `perCaller` calls one after another. */
export const eachCaller = (
  callers: number,
  perCaller: number,
  call: (caller: number, n: number) => Effect.Effect<void>
): Effect.Effect<void> =>
  Effect.forEach(
    Array.from({ length: callers }, (_, i) => i),
    (i) => Effect.forEach(Array.from({ length: perCaller }, (_, j) => j), (j) => call(i, j), { discard: true }),
    { concurrency: "unbounded", discard: true }
  )

/** Called between scheduler steps: with `chance`, interrupts one call in flight, wherever it is. */
export const maybeInterrupt = (runtime: Runtime, chance: number, inflight: ReadonlySet<Interruptible>): void => {
  if (chance === 0 || inflight.size === 0 || !runtime.prng.chance(chance)) return
  const calls = [...inflight].filter((c) => c.fiber !== undefined && c.interruptedAt === undefined)
  if (calls.length === 0) return
  const call = runtime.prng.pick(calls)
  call.interruptedAt = runtime.monotonic()
  runtime.event(`interrupt ${call.token}`)
  call.fiber!.interruptUnsafe()
}

/** An interrupted call: someone interrupted it, and it ended at once (stalls excused). */
export const checkInterrupted = (runtime: Runtime, what: string, call: Interruptible, now: number): void => {
  if (call.interruptedAt === undefined) return runtime.violate(`${what} was interrupted by nobody`)
  const after = now - call.interruptedAt - runtime.stalledBetween(call.interruptedAt, now)
  if (after > slackMillis) runtime.violate(`${what} took ${now - call.interruptedAt} ms to end after its interruption`)
}
