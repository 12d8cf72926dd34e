/**
 * Spans as the pools and servers make them, with `error.type` set when they
 * fail and no stack trace captured (effect takes one per span by default: an
 * `Error` allocated per call for a frame that would only point here).
 *
 * Two kinds, by what runs inside:
 *
 * - `leaf`: the span is not made the current span of what runs inside it.
 *   Making it current (effect's `withSpan`) changes the fiber's context for
 *   the whole call, which measured +60 % CPU on an RPC call against +12 %
 *   for the span alone (docs/observability.md). The pools' own spans use
 *   this and give their children (`connpool.dial` under a call) their
 *   parent explicitly.
 * - `around`: the span is current inside, so spans made by code we do not
 *   own nest under it: a handler's under its SERVER span, the pool's under
 *   a cluster call.
 *
 * @since 0.1.0
 */
import { Clock, Effect, Exit } from "effect"
import type { Cause, Tracer } from "effect"
import { ERROR_TYPE } from "./Semconv.ts"

const noStack = { captureStackTrace: false } as const

export interface SpanOptions {
  readonly kind: Tracer.SpanKind
  readonly attributes: Record<string, unknown>
  /** The parent, when it is not the current span (a `leaf`'s child). */
  readonly parent?: Tracer.Span | undefined
}

const ended = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  span: Tracer.Span,
  errorType: (cause: Cause.Cause<E>) => string
): Effect.Effect<A, E, R> =>
  Effect.onExit(effect, (exit) => {
    if (Exit.isFailure(exit)) span.attribute(ERROR_TYPE, errorType(exit.cause))
    return Effect.void
  })

/**
 * Runs `use(span)` in a span named `name` whose parent is the current span
 * (or `options.parent`); the span is not current inside. On failure it gets
 * `error.type` = `errorType(cause)` and ends failed; an interruption too, as
 * the conventions ask of a cancelled call.
 */
export const leaf = <A, E, R>(
  name: string,
  options: SpanOptions,
  errorType: (cause: Cause.Cause<E>) => string,
  use: (span: Tracer.Span) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.useSpan(name, options, (span) => ended(use(span), span, errorType))

/** Runs `effect` in a span named `name`, current inside it, so the spans `effect` makes are its children. */
export const around = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options: SpanOptions,
  errorType: (cause: Cause.Cause<E>) => string
): Effect.Effect<A, E, R> =>
  Effect.useSpan(name, options, (span) => Effect.withParentSpan(ended(effect, span, errorType), span, noStack))

/** Adds an event to `span` now; for paths taken rarely (a retry). */
export const eventOn = (span: Tracer.Span, name: string, attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.map(Clock.currentTimeNanos, (now) => span.event(name, now, attributes))

/** Adds an event to the current span, if there is one (a failover, under a cluster call's span). */
export const event = (name: string, attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.option(Effect.currentSpan),
    (current) => current._tag === "None" ? Effect.void : eventOn(current.value, name, attributes)
  )
