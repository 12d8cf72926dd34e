/**
 * The `minIdleConns` warm-up: a background fiber that keeps that many idle
 * connections open, dialling one at a time, woken whenever a connection is
 * handed out or closed (`check`).
 *
 * A warm-up dial takes a turn and a dial slot like a `get` would, so it never
 * takes the pool past its size, but never waits for either: when callers
 * hold every turn they dial for themselves. It stops at the first failure
 * (the breaker counts it) and starts again at the next `check`.
 *
 * @since 0.1.0
 */
import { Effect, Exit, Scope } from "effect"
import type { Core } from "./Core.ts"
import { Signal } from "./Signal.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class Warmer<A> {
  /** Warm-up dials in progress, counted against `minIdleConns`. */
  warming = 0
  private readonly signal = new Signal()
  private readonly core: Core<A>

  constructor(core: Core<A>) {
    this.core = core
  }

  private needsWarm(): boolean {
    const core = this.core
    return core.idle.size + this.warming < core.config.minIdleConns &&
      core.conns.size + core.dialing < core.config.turns &&
      !core.breaker.isOpen && !core.closed
  }

  /** Wakes the warm-up fiber if idle connections are below `minIdleConns`. */
  check(): void {
    if (this.core.config.minIdleConns > 0 && this.needsWarm()) this.signal.notify()
  }

  /** One warm-up dial; succeeds with whether to go on. */
  private readonly warmOne: Effect.Effect<boolean> = Effect.suspend(() => {
    const core = this.core
    if (!this.needsWarm() || core.turns.free === 0 || core.dials.free === 0) return Effect.succeed(false)
    if (!core.turns.tryTake()) return Effect.succeed(false)
    if (!core.dials.tryTake()) {
      core.turns.release()
      return Effect.succeed(false)
    }
    this.warming++
    core.dialing++
    let done = false
    const finish = () => {
      if (done) return
      done = true
      this.warming--
      core.dialing--
      core.dials.release()
      core.turns.release()
    }
    const dial = core.dialer.dial((conn, scope) => {
      if (core.closed) {
        finish()
        core.counters.closes.close++
        return Scope.close(scope, Exit.void)
      }
      const entry = core.adoptIdle(conn, scope)
      // The idle connection is in place before the turn goes to a waiter.
      finish()
      return core.watch(entry)
    })
    return dial.pipe(
      Effect.tapError((error) => Effect.sync(() => core.closed || core.breaker.recordFailure(error))),
      Effect.onExit(() => Effect.sync(finish)),
      Effect.as(true),
      Effect.catch(() => Effect.succeed(false))
    )
  })

  /** Warm-up dials, one after another, until enough idle connections are open or one fails. */
  private readonly warmUp: Effect.Effect<void> = Effect.flatMap(
    this.warmOne,
    (more) => more ? this.warmUp : Effect.void
  )

  /** The warm-up fiber's loop. */
  readonly loop: Effect.Effect<never> = Effect.forever(Effect.andThen(this.signal.wait, this.warmUp))
}
