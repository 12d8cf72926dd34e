/**
 * ConnPool's spans, when `observability.tracing` is on: a `get` (or `use`)
 * that has to wait shows the wait as a child of the caller's span,
 * `connpool.wait` for a turn and `connpool.dial` for a new connection (its
 * attempts and `onGet` included), each with `db.client.connection.pool.name`
 * and, when it fails, `error.type` (`PoolTimeout`, `PoolClosed`,
 * `DialFailed`, ...). A `get` that takes an idle connection at once makes no
 * span: the fast path stays as it is. Both are `Spans.leaf`s (not current
 * inside), so spans the user's `dial` makes nest under the caller's span.
 *
 * @since 0.1.0
 */
import type { Effect } from "effect"
import { DB_POOL_NAME, errorTypeOf } from "../observability/Semconv.ts"
import * as Spans from "../observability/Spans.ts"
import type { PoolError } from "./PoolError.ts"

/** A wait for one of the pool's turns. */
export const wait = (pool: string, effect: Effect.Effect<void, PoolError>): Effect.Effect<void, PoolError> =>
  Spans.leaf("connpool.wait", { kind: "internal", attributes: { [DB_POOL_NAME]: pool } }, errorTypeOf, () => effect)

/** A dial for a `get` that found no idle connection. */
export const dial = (pool: string, effect: Effect.Effect<void, PoolError>): Effect.Effect<void, PoolError> =>
  Spans.leaf("connpool.dial", { kind: "internal", attributes: { [DB_POOL_NAME]: pool } }, errorTypeOf, () => effect)
