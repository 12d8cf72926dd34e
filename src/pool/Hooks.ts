/**
 * The user's hooks around a borrow (go-redis v9's `OnGet`/`OnPut` pool
 * hooks, generic-pool's `testOnBorrow`), and how a hook's outcome is read:
 * a connection whose hook fails or dies is unusable, closed and counted
 * (`stats.unusable`), never handed out or pooled.
 *
 * Hooks are for what `closeSignal` cannot see: a connection that is open
 * but unusable (a Redis connection left in a MULTI, a SQL session in a
 * failed transaction).
 *
 * @since 0.1.0
 */
import { Effect, Exit } from "effect"

/**
 * @category models
 * @since 0.1.0
 */
export interface Hooks<A> {
  /** Runs on every hand-out, after `validate`; a failure makes the connection unusable. */
  readonly onGet: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /** Runs on every put, before the connection is pooled; a failure closes it instead. */
  readonly onPut: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  /** Runs on the hand-out of a connection idle `validateAfterMillis` or longer. */
  readonly validate: ((conn: A) => Effect.Effect<unknown, unknown>) | undefined
  readonly validateAfterMillis: number
}

/** What a hook's run says of its connection. */
export type Verdict = "usable" | "unusable" | "interrupted"

/** Reads a hook's exit: it succeeded, it failed or died, or the borrower was interrupted meanwhile. */
export const verdictOf = (exit: Exit.Exit<unknown, unknown>): Verdict =>
  Exit.isSuccess(exit) ? "usable" : Exit.hasInterrupts(exit) ? "interrupted" : "unusable"

const succeeded: Effect.Effect<Exit.Exit<unknown, unknown>> = Effect.succeed(Exit.void)

/**
 * Runs `hook` interruptibly and captures its exit; run it where the caller
 * is uninterruptible, so that whatever the outcome the caller goes on to
 * settle the connection.
 */
const run = <A>(hook: (conn: A) => Effect.Effect<unknown, unknown>, conn: A): Effect.Effect<Exit.Exit<unknown, unknown>> =>
  Effect.exit(Effect.interruptible(Effect.suspend(() => hook(conn))))

/** Whether handing out an idle connection, idle `idleMillis`, runs a hook. */
export const vetsIdle = <A>(hooks: Hooks<A>, idleMillis: number): boolean =>
  hooks.onGet !== undefined || (hooks.validate !== undefined && idleMillis >= hooks.validateAfterMillis)

/** `validate` (if due after `idleMillis` idle), then `onGet`. */
export const vetIdle = <A>(hooks: Hooks<A>, conn: A, idleMillis: number): Effect.Effect<Exit.Exit<unknown, unknown>> => {
  const validate = hooks.validate !== undefined && idleMillis >= hooks.validateAfterMillis
    ? run(hooks.validate, conn)
    : succeeded
  const onGet = hooks.onGet
  if (onGet === undefined) return validate
  return Effect.flatMap(validate, (exit) => Exit.isSuccess(exit) ? run(onGet, conn) : Effect.succeed(exit))
}

/** `onGet` on a freshly dialled connection. */
export const vetNew = <A>(hooks: Hooks<A>, conn: A): Effect.Effect<Exit.Exit<unknown, unknown>> =>
  hooks.onGet === undefined ? succeeded : run(hooks.onGet, conn)

/** `onPut` on a connection coming back. */
export const vetPut = <A>(hooks: Hooks<A>, conn: A): Effect.Effect<Exit.Exit<unknown, unknown>> =>
  hooks.onPut === undefined ? succeeded : run(hooks.onPut, conn)
