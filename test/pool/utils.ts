/**
 * Test helpers for the pool suites: a probe dialer that counts its dials and
 * closes with `Ref`s, and checks that a pool's turns are all free.
 */
import { assert } from "@effect/vitest"
import type { Duration, Scope } from "effect"
import { Deferred, Effect, Fiber, Ref, Schedule } from "effect"
import type * as ConnPool from "../../src/pool/index.ts"

/** A dial retry schedule with no retry: the first failure is the dial's failure. */
export const once = Schedule.recurs(0)

/** A fake connection. Completing `peerClosed` plays the server closing it. */
export interface FakeConn {
  readonly id: number
  readonly peerClosed: Deferred.Deferred<void>
}

export interface Probe {
  /** The dial to give the pool: an acquireRelease counted in `opened`/`closed`. */
  readonly dial: Effect.Effect<FakeConn, string, Scope.Scope>
  /** The close signal to give the pool. */
  readonly closeSignal: (conn: FakeConn) => Effect.Effect<void>
  /** Dial attempts started. */
  readonly attempts: Effect.Effect<number>
  /** Connections opened. */
  readonly opened: Effect.Effect<number>
  /** Connections closed (their release ran). */
  readonly closed: Effect.Effect<number>
  /** Whether the connection with this id was closed (its release ran). */
  readonly isClosed: (id: number) => boolean
  /** From now on dials fail with this error (undefined: succeed again). */
  readonly failWith: (error: string | undefined) => Effect.Effect<void>
  /** From now on dials take this long before they open (undefined: instant). */
  readonly delayBy: (delay: Duration.Input | undefined) => Effect.Effect<void>
  /** From now on closing a connection takes this long. */
  readonly closeDelayBy: (delay: Duration.Input | undefined) => Effect.Effect<void>
  /** The peer closes this connection. */
  readonly kill: (conn: FakeConn) => Effect.Effect<void>
}

export const makeProbe: Effect.Effect<Probe> = Effect.gen(function*() {
  const attempts = yield* Ref.make(0)
  const opened = yield* Ref.make(0)
  const closed = yield* Ref.make(0)
  const failure = yield* Ref.make<string | undefined>(undefined)
  const delay = yield* Ref.make<Duration.Input | undefined>(undefined)
  const closeDelay = yield* Ref.make<Duration.Input | undefined>(undefined)
  const open = Effect.gen(function*() {
    yield* Ref.update(attempts, (n) => n + 1)
    const wait = yield* Ref.get(delay)
    if (wait !== undefined) yield* Effect.sleep(wait)
    const error = yield* Ref.get(failure)
    if (error !== undefined) return yield* Effect.fail(error)
    const id = yield* Ref.updateAndGet(opened, (n) => n + 1)
    const peerClosed = yield* Deferred.make<void>()
    return { id, peerClosed } satisfies FakeConn
  })
  const closedIds = new Set<number>()
  const release = (conn: FakeConn) =>
    Effect.gen(function*() {
      const wait = yield* Ref.get(closeDelay)
      if (wait !== undefined) yield* Effect.sleep(wait)
      closedIds.add(conn.id)
      yield* Ref.update(closed, (n) => n + 1)
    })
  return {
    dial: Effect.acquireRelease(open, release),
    isClosed: (id) => closedIds.has(id),
    closeSignal: (conn) => Deferred.await(conn.peerClosed),
    attempts: Ref.get(attempts),
    opened: Ref.get(opened),
    closed: Ref.get(closed),
    failWith: (error) => Ref.set(failure, error),
    delayBy: (d) => Ref.set(delay, d),
    closeDelayBy: (d) => Ref.set(closeDelay, d),
    kill: (conn) => Effect.asVoid(Deferred.succeed(conn.peerClosed, undefined))
  }
})

/** Lets forked fibers and scheduled wake-ups run. */
export const settle: Effect.Effect<void> = Effect.gen(function*() {
  for (let i = 0; i < 10; i++) yield* Effect.yieldNow
})

/**
 * Asserts every one of the pool's `turns` turns is free and none extra
 * exists: `turns` gets succeed without waiting, one more has to wait. Then
 * gives them all back. Catches a turn freed twice as surely as one leaked.
 */
export const assertTurnsIntact = <A>(pool: ConnPool.ConnPool<A>, turns: number) =>
  Effect.gen(function*() {
    yield* settle
    const before = yield* pool.stats
    assert.strictEqual(before.pendingRequests, 0, "no get is pending")
    const held: Array<ConnPool.PooledConn<A>> = []
    for (let i = 0; i < turns; i++) held.push(yield* pool.get)
    const after = yield* pool.stats
    assert.strictEqual(after.waitCount, before.waitCount, `${turns} gets took a turn without waiting`)
    const extra = yield* Effect.forkChild(pool.get)
    yield* settle
    assert.isUndefined(extra.pollUnsafe(), `get #${turns + 1} waits: no extra turn exists`)
    yield* Fiber.interrupt(extra)
    for (const conn of held) yield* pool.put(conn)
    yield* settle
    assert.strictEqual((yield* pool.stats).pendingRequests, 0)
  })

/** The failure reason tag of a pool effect's error. */
export const reasonOf = <A>(effect: Effect.Effect<A, ConnPool.PoolError>) =>
  Effect.map(Effect.flip(effect), (error) => error.reason._tag)
