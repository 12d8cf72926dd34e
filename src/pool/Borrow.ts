/**
 * One run of `ConnPool.use`: what it holds, so that its exit gives back
 * exactly that. On the fast path (`Checkout.takeIdle`: a free turn and a
 * healthy idle connection) that is one entry, lent to the borrow itself;
 * anything slower (a wait, a dial, a hook, stale connections to close) goes
 * through a full `Lease`, made only then.
 *
 * @since 0.1.0
 */
import type { Exit, Fiber } from "effect"
import { Effect } from "effect"
import { giveBackHeld, takeIdle } from "./Checkout.ts"
import type { Core } from "./Core.ts"
import { Lease } from "./Lease.ts"
import type { Entry } from "./PooledConn.ts"
import type { PoolError } from "./PoolError.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class Borrow<A> {
  private readonly core: Core<A>
  /** The entry the fast path lent it. */
  private entry: Entry<A> | undefined = undefined
  /** The acquisition of the slow path. */
  private lease: Lease<A> | undefined = undefined

  constructor(core: Core<A>) {
    this.core = core
  }

  /** Takes a connection and runs `f` with it. */
  run<B, E, R>(fiber: Fiber.Fiber<unknown, unknown>, f: (conn: A) => Effect.Effect<B, E, R>): Effect.Effect<B, E | PoolError, R> {
    const entry = takeIdle(this.core, this)
    if (entry !== undefined) {
      this.entry = entry
      return f(entry.conn)
    }
    const lease = this.lease = new Lease(this.core, true)
    const pending = lease.start(fiber)
    if (pending === undefined) return f(lease.conn)
    return Effect.flatMap(pending, () => f(lease.conn))
  }

  /** The exit: put back on success, removed on failure or interruption. */
  finish(exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> | undefined {
    if (this.lease !== undefined) return this.lease.finishUse(exit)
    const entry = this.entry
    // Nothing taken, or the pool closed the connection meanwhile.
    if (entry === undefined || entry.holder !== this) return undefined
    return giveBackHeld(this.core, entry, exit._tag === "Success")
  }
}
