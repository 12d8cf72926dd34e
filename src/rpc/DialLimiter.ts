/**
 * At most one dial per key (Consul's lead-thread `limiter`), as one `Deferred`
 * per key: the first caller starts the dial, everyone (the first caller
 * included) awaits the same Deferred and gets the same Conn or the same error.
 *
 * The dial runs in a fiber owned by the pool, not by the caller, so a caller
 * that times out or is interrupted does not cancel the dial for the others.
 * The pool map and this limiter are keyed by the same string, so a waiter can
 * never look for the leader's result under another key (Consul's "lead
 * thread didn't get connection").
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Exit } from "effect"

export class DialLimiter<K, A, E> {
  private readonly inFlight = new Map<K, Deferred.Deferred<A, E>>()
  private readonly fork: (effect: Effect.Effect<void>) => void

  /** `fork` runs the dial detached from the caller, in the pool's Scope. */
  constructor(fork: (effect: Effect.Effect<void>) => void) {
    this.fork = fork
  }

  /** Dials in flight now. */
  get size(): number {
    return this.inFlight.size
  }

  /** True while a dial for `key` is in flight: a caller joining now waits for another's dial. */
  has(key: K): boolean {
    return this.inFlight.has(key)
  }

  /** Joins the dial in flight for `key`, or starts `dial` if there is none. */
  join(key: K, dial: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.suspend(() => {
      const existing = this.inFlight.get(key)
      if (existing !== undefined) return Deferred.await(existing)
      const deferred = Deferred.makeUnsafe<A, E>()
      this.inFlight.set(key, deferred)
      this.fork(Effect.flatMap(Effect.exit(dial), (exit) =>
        Effect.sync(() => {
          if (this.inFlight.get(key) === deferred) this.inFlight.delete(key)
          Deferred.doneUnsafe(deferred, exit)
        })))
      return Deferred.await(deferred)
    })
  }

  /** Releases every waiter with the error for its key (shutdown). */
  failAll(error: (key: K) => E): void {
    for (const [key, deferred] of this.inFlight) Deferred.doneUnsafe(deferred, Exit.fail(error(key)))
    this.inFlight.clear()
  }
}
