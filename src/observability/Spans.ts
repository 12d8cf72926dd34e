/**
 * Spans as the pools and servers make them: `Effect.useSpan` with the span
 * made the parent of what runs inside, `error.type` set when it fails, and
 * no stack trace captured (effect takes one per span by default, an `Error`
 * allocated per call for a frame that would only point here).
 *
 * @since 0.1.0
 */
import { Clock, Effect, Exit } from "effect"
import type { Cause, Tracer } from "effect"
import { ERROR_TYPE } from "./Semconv.ts"

const noStack = { captureStackTrace: false } as const

/**
 * Runs `effect` in a span named `name`, the current span its parent. On
 * failure the span gets `error.type` = `errorType(cause)` (and effect's own
 * error status); an interruption is an error too, as the conventions ask of a
 * cancelled call.
 */
export const span = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  kind: Tracer.SpanKind,
  attributes: Record<string, unknown>,
  errorType: (cause: Cause.Cause<E>) => string
): Effect.Effect<A, E, R> =>
  Effect.useSpan(name, { kind, attributes }, (span) =>
    Effect.withParentSpan(
      Effect.onExit(effect, (exit) => {
        if (Exit.isFailure(exit)) span.attribute(ERROR_TYPE, errorType(exit.cause))
        return Effect.void
      }),
      span,
      noStack
    ))

/** Adds an event to the current span, if there is one; for paths taken rarely (a retry, a failover). */
export const event = (name: string, attributes: Record<string, unknown>): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.option(Effect.currentSpan),
    (current) =>
      current._tag === "None"
        ? Effect.void
        : Effect.map(Clock.currentTimeNanos, (now) => current.value.event(name, now, attributes))
  )
