/**
 * Opening one connection: each attempt runs the user's `dial` in a fresh
 * `Scope` under `dialTimeout`, failed attempts are retried on `dialRetry`,
 * and a failed, timed-out or abandoned attempt closes its scope, so nothing
 * it opened leaks.
 *
 * **Details**
 *
 * - The dial runs in its own fiber. A dial usually acquires its socket with
 *   `Effect.acquireRelease`, whose acquire is uninterruptible, so a timeout
 *   (or a closing pool) that waited for the dial to stop would wait for the
 *   connect itself. Instead a timed-out or abandoned attempt fails at once;
 *   the dial fiber is interrupted without being awaited and, should the
 *   connection open anyway, closes it as soon as its acquire returns. That
 *   fiber is therefore detached rather than owned by the pool's scope: every
 *   dial fiber is either awaited by the attempt that started it (whose own
 *   fiber the scope owns) or already interrupted.
 * - The connection is handed over from inside the dial fiber's own exit
 *   handler (`onOpen`), synchronously: from then on the receiver owns it,
 *   and there is no moment when nobody does. A timeout that fires after the
 *   hand-over sees it and succeeds instead.
 *
 * @since 0.1.0
 */
import type { Exit, Schedule } from "effect"
import { Context, Duration, Effect, Fiber, Scope } from "effect"
import type { DialError } from "./PoolError.ts"
import { DialFailed, DialTimeout } from "./PoolError.ts"

/**
 * Receives a freshly opened connection and its scope. Returns an effect to
 * run before the dial completes (it runs uninterruptibly), or undefined.
 *
 * @category models
 * @since 0.1.0
 */
export type OnOpen<A> = (conn: A, scope: Scope.Closeable) => Effect.Effect<void> | undefined

/**
 * @category models
 * @since 0.1.0
 */
export interface Dialer<A> {
  /** One attempt, no retry. */
  readonly attempt: (onOpen: OnOpen<A>) => Effect.Effect<void, DialError>
  /** Attempts retried on `dialRetry`; fails with the last attempt's error. */
  readonly dial: (onOpen: OnOpen<A>) => Effect.Effect<void, DialError>
}

/**
 * @category constructors
 * @since 0.1.0
 */
export const make = <A, E, R>(options: {
  readonly dial: Effect.Effect<A, E, R>
  /** The services `make` ran with; the dialling fiber's own override them. */
  readonly services: Context.Context<never>
  readonly name: string
  readonly dialTimeout: Duration.Duration
  readonly dialRetry: Schedule.Schedule<unknown, DialError>
}): Dialer<A> => {
  const { dialRetry, dialTimeout, name, services } = options
  const open = Effect.mapError(
    Effect.updateContext(
      options.dial as Effect.Effect<A, E, never>,
      (input: Context.Context<Scope.Scope>) => Context.merge(services, input)
    ),
    (cause): DialError => new DialFailed({ pool: name, cause })
  ) as Effect.Effect<A, DialError, Scope.Scope>
  const timeoutError = new DialTimeout({ pool: name, timeout: dialTimeout })
  const finite = Duration.isFinite(dialTimeout)

  const attempt = (onOpen: OnOpen<A>): Effect.Effect<void, DialError> =>
    Effect.uninterruptibleMask((restore) => {
      const scope = Scope.makeUnsafe()
      let abandoned = false
      let taken = false
      const dial = Effect.onExitPrimitive(
        Effect.provideService(open, Scope.Scope, scope),
        (exit: Exit.Exit<A, DialError>) => {
          if (exit._tag === "Success" && !abandoned) {
            taken = true
            return onOpen(exit.value, scope)
          }
          return Scope.close(scope, exit)
        }
      )
      return Effect.flatMap(Effect.forkDetach(dial), (fiber) => {
        const abandon = () => {
          abandoned = true
          fiber.interruptUnsafe()
        }
        const done: Effect.Effect<void, DialError> = Effect.flatMap(Fiber.await(fiber), Effect.asVoid)
        const timed = finite
          ? Effect.timeoutOrElse(done, {
            duration: dialTimeout,
            orElse: () => {
              if (taken) return Effect.void
              abandon()
              return Effect.fail(timeoutError)
            }
          })
          : done
        return Effect.onInterrupt(restore(timed), () =>
          Effect.sync(() => {
            if (!taken) abandon()
          }))
      })
    })

  return {
    attempt,
    dial: (onOpen) => Effect.retry(attempt(onOpen), dialRetry)
  }
}
