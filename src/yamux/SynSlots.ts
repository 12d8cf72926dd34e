/**
 * Streams this session opened that the peer has not yet acknowledged
 * (hashicorp/yamux's `synCh`): at most `acceptBacklog` at once, so we never
 * overrun the peer's accept queue; `open` waits for a slot. Each holds an open
 * timer that closes the session when no ACK comes in time (Go's
 * `StreamOpenTimeout`, yamux PR #96).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Duration, Fiber } from "effect"

export class SynSlots {
  private readonly limit: number
  private readonly openTimeout: Duration.Duration
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>
  private readonly pending = new Map<number, Fiber.Fiber<void>>()
  private readonly waiters: Array<() => void> = []

  constructor(limit: number, openTimeout: Duration.Duration, fork: (effect: Effect.Effect<void>) => Fiber.Fiber<void>) {
    this.limit = limit
    this.openTimeout = openTimeout
    this.fork = fork
  }

  get full(): boolean {
    return this.pending.size >= this.limit
  }

  /** Completes when a slot is released (the caller then checks again). */
  readonly released: Effect.Effect<void> = Effect.callback<void>((resume) => {
    const waiter = () => resume(Effect.void)
    this.waiters.push(waiter)
    return Effect.sync(() => {
      const i = this.waiters.indexOf(waiter)
      if (i >= 0) this.waiters.splice(i, 1)
    })
  })

  /** Stream `id` takes a slot; `onTimeout` runs unless it is released within the open timeout. */
  take(id: number, onTimeout: () => void): void {
    this.pending.set(
      id,
      this.fork(Effect.andThen(Effect.sleep(this.openTimeout), Effect.sync(() => {
        if (this.pending.delete(id)) onTimeout()
      })))
    )
  }

  /** Stream `id` was ACKed, reset or forgotten: its slot goes to the next waiting `open`. */
  release(id: number): void {
    const timer = this.pending.get(id)
    if (timer === undefined) return
    this.pending.delete(id)
    timer.interruptUnsafe()
    this.waiters.shift()?.()
  }

  /** The session closed: timers stop, every waiting `open` wakes (and finds the session closed). */
  close(): void {
    for (const timer of this.pending.values()) timer.interruptUnsafe()
    this.pending.clear()
    for (const waiter of this.waiters.splice(0)) waiter()
  }
}
