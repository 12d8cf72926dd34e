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
 *   default it is closed. At `dialTimeout` it is interrupted. With no finite
 *   `dialTimeout` nothing would bound the dial, so it is interrupted at once.
 * - Interrupting a dial ends its connect only if the dial's acquire is
 *   interruptible (`Effect.acquireRelease(connect, close, { interruptible:
 *   true })`). One that is not keeps running, counted in `abandoned`, and
 *   nothing waits for it: whatever it opens is closed when it returns.
 * - `shutdown` (the pool closing) interrupts every dial still running.
 * - The connection is handed over from inside the dial fiber's own exit
 *   handler (`onOpen` or `onOrphan`), synchronously: from then on the
 *   receiver owns it, and there is no moment when nobody does. A timeout
 *   that fires after the hand-over sees it and succeeds instead.
 *
 * @since 0.1.0
 */
import type { Schedule } from "effect"
import { Cause, Context, Duration, Effect, Exit, Fiber, Scope } from "effect"
import { DB_POOL_NAME } from "../observability/Semconv.ts"
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
  /**
   * Dials nobody waits for any more (timed out, their caller gave up, or the
   * pool closed) whose fiber has not ended yet. An interruptible dial ends at
   * once, or by `dialTimeout` when its caller gave up; one that lingers is a
   * dial whose acquire ignores interruption.
   */
  readonly abandoned: () => number
  /**
   * The pool closed: interrupts every dial in progress (their callers get
   * the pool's error) and fails later attempts at once, without retrying.
   */
  readonly shutdown: () => void
}

/**
 * Told of each dial attempt's outcome (the pool's metrics): `now` when it
 * starts, `created` with that reading when it opens, `failed` when it fails
 * (an interrupted attempt is neither).
 *
 * @category models
 * @since 0.1.0
 */
export interface DialObserver {
  readonly now: () => number
  readonly created: (start: number) => void
  readonly failed: () => void
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
  readonly observer?: DialObserver | undefined
}): Dialer<A> => {
  const { dialRetry, dialTimeout, name, observer, services } = options
  const annotations = { [DB_POOL_NAME]: name }
  const open = Effect.mapError(
    Effect.updateContext(
      options.dial as Effect.Effect<A, E, never>,
      (input: Context.Context<Scope.Scope>) => Context.merge(services, input)
    ),
    (cause): DialError => new DialFailed({ pool: name, cause })
  ) as Effect.Effect<A, DialError, Scope.Scope>
  const timeoutError = new DialTimeout({ pool: name, timeout: dialTimeout })
  const closedError = new DialFailed({ pool: name, cause: "the pool closed while dialling" })
  const finite = Duration.isFinite(dialTimeout)
  // Every dial fiber still running; they are detached, so the pool's close
  // reaches them only through this set.
  const running = new Set<Fiber.Fiber<unknown, unknown>>()
  // The attempts awaiting a dial, woken with the pool's error when it closes.
  const closing = new Set<() => void>()
  let abandoned = 0
  let closed = false

  const attempt = (onOpen: OnOpen<A>, onOrphan: OnOpen<A> = closeOrphan): Effect.Effect<void, DialError> =>
    Effect.uninterruptibleMask((restore) => {
      if (closed) return Effect.fail(closedError)
      const scope = Scope.makeUnsafe()
      const start = observer?.now() ?? 0
      let gaveUp = false
      let taken = false
      let ended = false
      const opening = Effect.provideService(open, Scope.Scope, scope)
      // Its own bound, for when its caller gives up and stops timing it.
      const bounded = finite
        ? Effect.timeoutOrElse(opening, { duration: dialTimeout, orElse: () => Effect.fail(timeoutError) })
        : opening
      const dial = Effect.onExitPrimitive(
        bounded,
        (exit: Exit.Exit<A, DialError>) => {
          if (exit._tag === "Failure") {
            if (Cause.hasInterruptsOnly(exit.cause)) return Scope.close(scope, exit)
            observer?.failed()
            const error = Cause.findErrorOption(exit.cause)
            const why = error._tag === "Some" ? error.value.message : Cause.pretty(exit.cause)
            return Effect.andThen(
              Effect.annotateLogs(Effect.logDebug(`${name}: dial failed: ${why}`), annotations),
              Scope.close(scope, exit)
            )
          }
          observer?.created(start)
          const dialled = Effect.annotateLogs(Effect.logDebug(`${name}: connection dialled`), annotations)
          if (gaveUp) return Effect.andThen(dialled, onOrphan(exit.value, scope) ?? Effect.void)
          taken = true
          return Effect.andThen(dialled, onOpen(exit.value, scope) ?? Effect.void)
        }
      )
      /** Nobody waits for the dial any more; it is counted until its fiber ends. */
      const abandon = (fiber: Fiber.Fiber<unknown, unknown>, interrupt: boolean) => {
        if (!gaveUp && !ended) abandoned++
        gaveUp = true
        if (interrupt) fiber.interruptUnsafe()
      }
      return Effect.flatMap(Effect.forkDetach(dial), (fiber) => {
        running.add(fiber)
        fiber.addObserver(() => {
          ended = true
          running.delete(fiber)
          if (gaveUp) abandoned--
        })
        // Awaits the dial, or the pool closing: then the caller gets the
        // pool's error at once even if the dial's acquire ignores the interrupt.
        const done = Effect.callback<void, DialError>((resume) => {
          if (closed) return resume(Effect.fail(closedError))
          const onClose = () => {
            if (!taken) abandon(fiber, false)
            resume(Effect.fail(closedError))
          }
          closing.add(onClose)
          const remove = fiber.addObserver((exit) => {
            closing.delete(onClose)
            resume(exit._tag === "Success" ? Effect.void : Effect.failCause(exit.cause as Cause.Cause<DialError>))
          })
          return Effect.sync(() => {
            closing.delete(onClose)
            remove()
          })
        })
        const timed = finite
          ? Effect.timeoutOrElse(done, {
            duration: dialTimeout,
            orElse: () => {
              if (taken) return Effect.void
              abandon(fiber, true)
              return Effect.fail(timeoutError)
            }
          })
          : done
        return Effect.onInterrupt(restore(timed), () =>
          Effect.sync(() => {
            // Left to finish within its own dialTimeout, so a connect that
            // succeeds can still be pooled; interrupted at once when nothing
            // would bound it.
            if (!taken) abandon(fiber, !finite)
          }))
      })
    })

  return {
    attempt,
    dial: (onOpen, onOrphan) =>
      Effect.retry(attempt(onOpen, onOrphan), { schedule: dialRetry, while: () => !closed }),
    abandoned: () => abandoned,
    shutdown: () => {
      closed = true
      for (const wake of Array.from(closing)) wake()
      for (const fiber of Array.from(running)) fiber.interruptUnsafe()
    }
  }
}
