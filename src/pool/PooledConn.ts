/**
 * One pooled connection: the handle `get` returns and the pool's record of
 * where the connection is.
 *
 * ```text
 *            dial (get, newConn)            put (healthy, room, pool open)
 *   (none) ──────────────────────► InUse ───────────────────────────────► Idle
 *     │                             │ ▲                                    │
 *     │ dial (minIdleConns warm-up) │ └────────── get (healthy) ───────────┤
 *     └─────────────────────────────┼──────────────────────────────────► Idle
 *                                   │ put (not pooled, closeOnPut, no      │ stale on get, reaper,
 *                                   │ room, onPut failed, closed pool),    │ close signal, filter,
 *                                   │ remove, closeConn, pool close        │ hooks failed on get,
 *                                   ▼                                      ▼ pool close
 *                                 Closed ◄─────────────────────────────────┘
 * ```
 *
 * A connection's turn (`turn`) is held only in `InUse`, only by connections
 * handed out by `get`, and is given back exactly once: by whichever
 * transition leaves `InUse` first. While `InUse` it has one `holder`, the
 * lease it was lent under; only that lease can give it back. An idle entry
 * whose hooks run before a hand-out is `InUse` with no holder and no turn.
 *
 * @since 0.1.0
 */
import type { Fiber, Scope } from "effect"
import type { CloseReason } from "./PoolStats.ts"

/**
 * The handle of a connection lent by the pool: a lease, given back once.
 * After it was given back (or the pool closed the connection) it is stale:
 * `put`, `remove` and `closeConn` ignore it, even when the same connection
 * has since been lent to someone else under another lease.
 *
 * @category models
 * @since 0.1.0
 */
export interface PooledConn<A> {
  /** The connection the dial opened. */
  readonly conn: A
  /** When it was dialled (wall-clock `Clock` millis, read now: the wall clock may have stepped since). */
  readonly createdAt: number
  /** When it was last handed out or put back (wall-clock `Clock` millis, as `createdAt`). */
  readonly usedAt: number
}

/**
 * What an entry needs of its pool: its identity, and its clock to turn a
 * monotonic reading into wall-clock time.
 *
 * @category models
 * @since 0.1.0
 */
export interface EntryOwner {
  wallTime(monotonic: number): number
}

/**
 * Where a connection is. See the module diagram.
 *
 * @category models
 * @since 0.1.0
 */
export type ConnState = "Idle" | "InUse" | "Closed"

/**
 * The pool's record of one connection; the object handed out as its
 * `PooledConn`.
 *
 * @category models
 * @since 0.1.0
 */
export class Entry<A> implements PooledConn<A> {
  state: ConnState = "InUse"
  /** When it was last handed out or put back (monotonic millis, the pool's `now()`). */
  lastUsed: number
  /** Holds one of the pool's turns (only while `InUse`, only when lent by `get`). */
  turn = false
  /**
   * The lease it is lent under while `InUse`: the only handle that may give
   * it back. Cleared when it comes back or is closed.
   */
  holder: object | undefined = undefined
  /** Matched by `filter` while in use: closed, not pooled, when it comes back. */
  closeOnPut = false
  /** Its close signal fired: the peer closed it. Closed (and counted stale) when it comes back. */
  dead = false
  /** Why the pool closed it, once `Closed` (for the debug line). */
  closeReason: CloseReason | undefined = undefined
  /** Watches the dial's close signal; interrupted when the pool closes the connection. */
  watcher: Fiber.Fiber<void> | undefined = undefined
  idlePrev: Entry<A> | undefined = undefined
  idleNext: Entry<A> | undefined = undefined

  /** The pool it belongs to, so a foreign handle is recognised. */
  readonly owner: EntryOwner
  readonly conn: A
  /** Closing it closes the connection. */
  readonly scope: Scope.Closeable
  /** When it was dialled (monotonic millis). */
  readonly born: number
  /** When its lifetime ends (monotonic millis, `Infinity` for never). */
  readonly expiresAt: number
  /** False for `newConn` connections: closed on put instead of pooled. */
  readonly pooled: boolean

  constructor(
    owner: EntryOwner,
    conn: A,
    scope: Scope.Closeable,
    born: number,
    expiresAt: number,
    pooled: boolean
  ) {
    this.owner = owner
    this.conn = conn
    this.scope = scope
    this.born = born
    this.expiresAt = expiresAt
    this.pooled = pooled
    this.lastUsed = born
  }

  get createdAt(): number {
    return this.owner.wallTime(this.born)
  }

  get usedAt(): number {
    return this.owner.wallTime(this.lastUsed)
  }
}
