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
 *   connect itself. Instead a timed-out or abandoned attempt fails at once,
 *   without awaiting the dial fiber. That fiber is therefore detached rather
 *   than owned by the pool's scope: it is awaited by the attempt that started
 *   it (whose own fiber the scope owns), or interrupted, or bounded by its
 *   own `dialTimeout`.
 * - A timed-out attempt interrupts its dial fiber: should the connection
 *   open anyway, it is closed as soon as its acquire returns.
 * - An attempt whose caller gave up (was interrupted) leaves its dial to
 *   finish within `dialTimeout`: a connection it opens goes to the
 *   attempt's `onOrphan`, so the pool can keep it for the next caller (as
 *   go-redis does) instead of throwing away a connect that succeeded; by
 *   default it is closed. With no finite `dialTimeout` nothing would bound
 *   the dial, so it is interrupted instead.
 * - The connection is handed over from inside the dial fiber's own exit
 *   handler (`onOpen` or `onOrphan`), synchronously: from then on the
 *   receiver owns it, and there is no moment when nobody does. A timeout
 *   that fires after the hand-over sees it and succeeds instead.
 *
 * @since 0.1.0
 */
import type { Schedule } from "effect"
import { Context, Duration, Effect, Exit, Fiber, Scope } from "effect"
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
  /**
   * One attempt, no retry. `onOrphan` receives a connection that opened after
   * the caller gave up; without it, such a connection is closed.
   */
  readonly attempt: (onOpen: OnOpen<A>, onOrphan?: OnOpen<A>) => Effect.Effect<void, DialError>
  /** Attempts retried on `dialRetry`; fails with the last attempt's error. */
  readonly dial: (onOpen: OnOpen<A>, onOrphan?: OnOpen<A>) => Effect.Effect<void, DialError>
}

const closeOrphan: OnOpen<unknown> = (_, scope) => Scope.close(scope, Exit.void)

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

  const attempt = (onOpen: OnOpen<A>, onOrphan: OnOpen<A> = closeOrphan): Effect.Effect<void, DialError> =>
    Effect.uninterruptibleMask((restore) => {
      const scope = Scope.makeUnsafe()
      let abandoned = false
      let taken = false
      const opening = Effect.provideService(open, Scope.Scope, scope)
      // Its own bound, for when its caller gives up and stops timing it.
      const bounded = finite
        ? Effect.timeoutOrElse(opening, { duration: dialTimeout, orElse: () => Effect.fail(timeoutError) })
        : opening
      const dial = Effect.onExitPrimitive(
        bounded,
        (exit: Exit.Exit<A, DialError>) => {
          if (exit._tag === "Failure") return Scope.close(scope, exit)
          if (abandoned) return onOrphan(exit.value, scope)
          taken = true
          return onOpen(exit.value, scope)
        }
      )
      return Effect.flatMap(Effect.forkDetach(dial), (fiber) => {
        const done: Effect.Effect<void, DialError> = Effect.flatMap(Fiber.await(fiber), Effect.asVoid)
        const timed = finite
          ? Effect.timeoutOrElse(done, {
            duration: dialTimeout,
            orElse: () => {
              if (taken) return Effect.void
              abandoned = true
              fiber.interruptUnsafe()
              return Effect.fail(timeoutError)
            }
          })
          : done
        return Effect.onInterrupt(restore(timed), () =>
          Effect.sync(() => {
            if (taken) return
            abandoned = true
            if (!finite) fiber.interruptUnsafe()
          }))
      })
    })

  return {
    attempt,
    dial: (onOpen, onOrphan) => Effect.retry(attempt(onOpen, onOrphan), dialRetry)
  }
}
