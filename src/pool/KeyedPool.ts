/**
 * A bounded pool per key (per server address, say), created on first use
 * and closed once unused: go-redis's cluster client keeps one pool per node
 * this way, and effect 3's `KeyedPool` did it for effect's `Pool`.
 *
 * Each key's pool is a `ConnPool` made with the same options and the key's
 * dial, in a scope of its own. A key's pool that has had no borrower, waiter
 * or dial for `idleTimeToLive` is closed (its idle connections with it) by a
 * fiber per key that sleeps until then, on the monotonic clock.
 *
 * **Why not `RcMap`.** effect's `RcMap` is the natural base, and was
 * measured against what this needs: its idle TTL is measured on the wall
 * clock (`currentTimeMillis`), which must not move a pool's deadlines; each
 * borrow would hold a reference through a `Scope` of its own, a scope per
 * `use` where ConnPool's own fast path allocates none (the pool already
 * knows whether anyone borrows); a full map refuses a new key without
 * evicting an idle one; and a closed map interrupts the caller where a pool
 * fails with `PoolClosed`. The bookkeeping left is a map and a per-key
 * timer.
 *
 * @since 0.1.0
 */
import type { Context, Fiber } from "effect"
import { Deferred, Duration, Effect, Exit, Layer, MutableHashMap, Option, Scope } from "effect"
import type { Pipeable } from "effect/Pipeable"
import { pipeArguments } from "effect/Pipeable"
import { untilDeadline } from "../time/untilDeadline.ts"
import type { ConnPool } from "./ConnPool.ts"
import { coreOf, giveBackLease, make, use } from "./ConnPool.ts"
import type { Core } from "./Core.ts"
import { readOptions } from "./OptionReader.ts"
import type { PooledConn } from "./PooledConn.ts"
import { InvalidOption, PoolClosed, PoolError, TooManyKeys } from "./PoolError.ts"
import type { Options } from "./PoolOptions.ts"
import { normalize } from "./PoolOptions.ts"
import type { PoolStats } from "./PoolStats.ts"
import * as Stats from "./PoolStats.ts"

/** Default `idleTimeToLive`: a key's pool unused for 5 minutes is closed. @since 0.1.0 */
export const defaultIdleTimeToLive: Duration.Duration = Duration.minutes(5)
/** Default `capacity`: no cap on keys (`Infinity`). @since 0.1.0 */
export const defaultCapacity = Infinity

/**
 * Options of `makeKeyed`: those of `ConnPool.make`, applied to every key's
 * pool, with a dial and a name per key.
 *
 * @category models
 * @since 0.1.0
 */
export interface KeyedOptions<K, A, E, R> extends Omit<Options<A, E, R>, "dial" | "name"> {
  /** Opens one connection to `key`, as `Options.dial`. */
  readonly dial: (key: K) => Effect.Effect<A, E, R>
  /** Names a key's pool in its errors. Default `String(key)`. */
  readonly name?: ((key: K) => string) | undefined
  /** A key's pool with no borrower, waiter or dial for this long is closed. `Infinity` keeps it. Default 5 min. */
  readonly idleTimeToLive?: Duration.Input | undefined
  /**
   * Most keys with a pool at once. A new key beyond it closes the key's pool
   * unused longest, if one is unused now; otherwise it fails with
   * `TooManyKeys`. Default no cap.
   */
  readonly capacity?: number | undefined
}

/**
 * Stats of a keyed pool: per key, and the totals over every key's pool,
 * closed ones included (their counters keep counting).
 *
 * @category models
 * @since 0.1.0
 */
export interface KeyedStats<K> {
  readonly total: PoolStats
  readonly keys: ReadonlyArray<readonly [K, PoolStats]>
}

/**
 * @category type IDs
 * @since 0.1.0
 */
export const KeyedTypeId = "~effect-connpool/KeyedConnPool"

/**
 * A pool per key. `get`/`put`/`remove` and `useKeyed` are `ConnPool`'s, per
 * key; a handle goes back to the pool it came from.
 *
 * @category models
 * @since 0.1.0
 */
export interface KeyedConnPool<K, A> extends Pipeable {
  readonly [KeyedTypeId]: typeof KeyedTypeId
  /** The key's pool if it has one now, without creating it (`useKeyed`'s fast path). */
  readonly lookupUnsafe: (key: K) => ConnPool<A> | undefined
  /** The key's pool, created on first use. Closed when the key expires: prefer `get` and `useKeyed`. */
  readonly pool: (key: K) => Effect.Effect<ConnPool<A>, PoolError>
  readonly get: (key: K) => Effect.Effect<PooledConn<A>, PoolError>
  readonly put: (handle: PooledConn<A>) => Effect.Effect<void>
  readonly remove: (handle: PooledConn<A>, reason?: unknown) => Effect.Effect<void>
  /** Keys that have a pool now. */
  readonly keys: Effect.Effect<ReadonlyArray<K>>
  readonly stats: Effect.Effect<KeyedStats<K>>
  /** Closes the key's pool now (borrowed connections included); the next use makes a new one. */
  readonly invalidate: (key: K) => Effect.Effect<void>
  /** Closes every key's pool; later calls fail with `PoolClosed`. Closing the scope does this too. */
  readonly close: Effect.Effect<void>
}

interface Slot<A> {
  /** Set once the key's pool is made; until then, callers await `ready`. */
  pool: ConnPool<A> | undefined
  core: Core<A> | undefined
  readonly ready: Deferred.Deferred<ConnPool<A>, PoolError>
  readonly scope: Scope.Closeable
  /** Lookups so far, so the expiry never closes a pool someone has just looked up. */
  lookups: number
  /** The expiry fiber, in the keyed pool's scope: a fiber of the key's own scope could not close it. */
  expiry: Fiber.Fiber<void> | undefined
}

interface Keyed<K, A> {
  readonly slots: MutableHashMap.MutableHashMap<K, Slot<A>>
  closed: boolean
  /** Counters of the keys' pools closed so far. */
  retired: PoolStats
}

/**
 * Creates a keyed pool in the current `Scope`; closing the scope closes
 * every key's pool. Invalid options fail with `InvalidOption` here, once,
 * not on a key's first use.
 *
 * **Example** (A pool per Redis address)
 *
 * ```ts
 * import { Effect } from "effect"
 * import { ConnPool } from "effect-connpool"
 *
 * const program = Effect.gen(function*() {
 *   const pools = yield* ConnPool.makeKeyed({
 *     dial: (port: number) => Effect.acquireRelease(Effect.succeed({ port }), () => Effect.void),
 *     name: (port) => `127.0.0.1:${port}`,
 *     poolSize: 4,
 *     idleTimeToLive: "1 minute"
 *   })
 *   return yield* ConnPool.useKeyed(pools, 6380, (conn) => Effect.succeed(conn.port))
 * }).pipe(Effect.scoped)
 * // => 6380
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeKeyed = <K, A, E, R>(
  options: KeyedOptions<K, A, E, R>
): Effect.Effect<KeyedConnPool<K, A>, PoolError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const checked = checkOptions(options)
    if (checked instanceof InvalidOption) return yield* Effect.fail(new PoolError({ reason: checked }))
    const { capacity, ttl } = checked
    const scope = yield* Effect.scope
    const services = yield* Effect.context<Exclude<R, Scope.Scope>>()
    const keyed: Keyed<K, A> = { slots: MutableHashMap.empty(), closed: false, retired: Stats.empty }
    // The pools it made, so a handle of any other pool is recognised as foreign.
    const ours = new WeakSet<Core<A>>()
    const owns = (core: Core<A>) => ours.has(core)
    const nameOf = (key: K) => options.name?.(key) ?? String(key)
    const failClosed = (key: K) =>
      Effect.fail(new PoolError({ reason: new PoolClosed({ pool: nameOf(key) }) }))

    /** Forgets the key, if `slot` is still its pool. */
    const forget = (key: K, slot: Slot<A>): void => {
      const current = MutableHashMap.get(keyed.slots, key)
      if (Option.isSome(current) && current.value === slot) MutableHashMap.remove(keyed.slots, key)
    }

    /** Closes a key's pool and forgets the key; its counters stay in the totals. */
    const retire = (key: K, slot: Slot<A>): Effect.Effect<void> =>
      Effect.withFiber((fiber) => {
        forget(key, slot)
        const expiry = slot.expiry
        slot.expiry = undefined
        // Not when the expiry itself retires the key: it ends by itself.
        if (expiry !== undefined && expiry !== fiber) expiry.interruptUnsafe()
        return Scope.close(slot.scope, Exit.void)
      })

    /** The key's expiry: wakes when it may have been unused for `ttl`, and closes it if so. */
    const expiry = (key: K, slot: Slot<A>): Effect.Effect<void> => {
      let seen = slot.lookups
      const check: Effect.Effect<void> = Effect.suspend(() => {
        const core = slot.core!
        if (core.closed) return Effect.void
        const idleFor = core.now() - core.lastActive
        if (core.isQuiet() && idleFor >= ttl) {
          if (slot.lookups === seen) return retire(key, slot)
          // Looked up meanwhile: its borrow is about to start.
          seen = slot.lookups
          return Effect.andThen(Effect.yieldNow, check)
        }
        seen = slot.lookups
        const wait = core.isQuiet() ? ttl - idleFor : ttl
        return Effect.andThen(Effect.sleep(untilDeadline(wait)), check)
      })
      return check
    }

    /** Makes the key's pool in the slot, starting its expiry. */
    const open = (key: K, slot: Slot<A>): Effect.Effect<ConnPool<A>, PoolError> => {
      // Added first, so it runs last: the counters go to the totals once the pool has closed.
      const keep = Scope.addFinalizer(slot.scope, Effect.sync(() => {
        if (slot.core !== undefined) keyed.retired = Stats.sum(keyed.retired, slot.core.stats())
      }))
      const made = make({ ...options, dial: options.dial(key), name: nameOf(key) } as Options<A, E, R>).pipe(
        Scope.provide(slot.scope),
        Effect.provideContext(services as Context.Context<Exclude<R, Scope.Scope>>)
      )
      return Effect.andThen(keep, made).pipe(
        Effect.tap((pool) =>
          Effect.suspend(() => {
            slot.pool = pool
            slot.core = coreOf(pool)
            ours.add(slot.core)
            if (ttl === Infinity) return Effect.void
            return Effect.map(Effect.forkIn(expiry(key, slot), scope), (fiber) => {
              slot.expiry = fiber
            })
          })
        ),
        Effect.onExit((exit) =>
          Effect.andThen(
            Exit.isFailure(exit) ? Effect.andThen(Effect.sync(() => forget(key, slot)), Scope.close(slot.scope, exit)) : Effect.void,
            Deferred.done(slot.ready, exit)
          )
        )
      )
    }

    /** Room for one more key: closes the quiet key's pool unused longest, or fails. */
    const makeRoom = (key: K): Effect.Effect<void, PoolError> => {
      if (MutableHashMap.size(keyed.slots) < capacity) return Effect.void
      let victim: readonly [K, Slot<A>] | undefined
      for (const [k, slot] of keyed.slots) {
        const core = slot.core
        if (core === undefined || !core.isQuiet()) continue
        if (victim === undefined || core.lastActive < victim[1].core!.lastActive) victim = [k, slot]
      }
      if (victim === undefined) {
        return Effect.fail(new PoolError({ reason: new TooManyKeys({ pool: nameOf(key), capacity }) }))
      }
      return retire(victim[0], victim[1])
    }

    const pool = (key: K): Effect.Effect<ConnPool<A>, PoolError> =>
      Effect.suspend(() => {
        if (keyed.closed) return failClosed(key)
        const found = MutableHashMap.get(keyed.slots, key)
        if (Option.isSome(found)) {
          const slot = found.value
          slot.lookups++
          return slot.pool !== undefined ? Effect.succeed(slot.pool) : Deferred.await(slot.ready)
        }
        return Effect.uninterruptible(Effect.andThen(
          makeRoom(key),
          Effect.suspend(() => {
            if (keyed.closed) return failClosed(key)
            const again = MutableHashMap.get(keyed.slots, key)
            if (Option.isSome(again)) return Deferred.await(again.value.ready)
            const slot: Slot<A> = {
              pool: undefined,
              core: undefined,
              ready: Deferred.makeUnsafe(),
              scope: Scope.forkUnsafe(scope, "sequential"),
              lookups: 1,
              expiry: undefined
            }
            MutableHashMap.set(keyed.slots, key, slot)
            return open(key, slot)
          })
        ))
      })

    const closeAll: Effect.Effect<void> = Effect.uninterruptible(Effect.suspend(() => {
      keyed.closed = true
      const slots = Array.from(keyed.slots)
      return Effect.forEach(slots, ([key, slot]) => retire(key, slot), { concurrency: "unbounded", discard: true })
    }))
    yield* Scope.addFinalizer(scope, closeAll)

    const self: KeyedConnPool<K, A> = {
      [KeyedTypeId]: KeyedTypeId,
      lookupUnsafe: (key) => {
        if (keyed.closed) return undefined
        const found = MutableHashMap.get(keyed.slots, key)
        if (Option.isNone(found)) return undefined
        found.value.lookups++
        return found.value.pool
      },
      pool,
      get: (key) => Effect.flatMap(pool(key), (p) => p.get),
      put: (handle) => giveBackLease(handle, true, owns, "put"),
      remove: (handle, reason) => giveBackLease(handle, false, owns, "remove", reason),
      keys: Effect.sync(() => Array.from(MutableHashMap.keys(keyed.slots))),
      stats: Effect.sync(() => {
        const keys: Array<readonly [K, PoolStats]> = []
        let total = keyed.retired
        for (const [key, slot] of keyed.slots) {
          if (slot.core === undefined || slot.core.closed) continue
          const stats = slot.core.stats()
          keys.push([key, stats])
          total = Stats.sum(total, stats)
        }
        return { total, keys }
      }),
      invalidate: (key) =>
        Effect.suspend(() => {
          const found = MutableHashMap.get(keyed.slots, key)
          return Option.isSome(found) ? retire(key, found.value) : Effect.void
        }),
      close: closeAll,
      pipe() {
        return pipeArguments(this, arguments)
      }
    }
    return self
  })

/** The keyed options and their defaults, checked once with every per-key option. */
const checkOptions = <K, A, E, R>(
  options: KeyedOptions<K, A, E, R>
): { readonly capacity: number; readonly ttl: number } | InvalidOption => {
  const own = readOptions(options, "KeyedConnPool", (read) => {
    read.fn("dial")
    read.fn("name")
    return {
      capacity: read.count("capacity", defaultCapacity, 1, true),
      ttl: Duration.toMillis(read.duration("idleTimeToLive", defaultIdleTimeToLive))
    }
  })
  if (own instanceof InvalidOption) return own
  // Every key's pool gets these options: check them now, with a stand-in dial.
  const perKey = normalize({ ...options, dial: Effect.void, name: "KeyedConnPool" } as Options<unknown, never, never>)
  return perKey instanceof InvalidOption ? perKey : own
}

/**
 * Borrows a connection of `key`'s pool for one effect, as `use`.
 *
 * @category combinators
 * @since 0.1.0
 */
export const useKeyed = <K, A, B, E, R>(
  self: KeyedConnPool<K, A>,
  key: K,
  f: (conn: A) => Effect.Effect<B, E, R>
): Effect.Effect<B, E | PoolError, R> =>
  Effect.suspend(() => {
    const pool = self.lookupUnsafe(key)
    return pool !== undefined ? use(pool, f) : Effect.flatMap(self.pool(key), (pool) => use(pool, f))
  })

/**
 * A Layer providing a keyed pool under `tag`; every key's pool closes with
 * the layer.
 *
 * @category layers
 * @since 0.1.0
 */
export const layerKeyed = <I, K, A, E, R>(
  tag: Context.Key<I, KeyedConnPool<K, A>>,
  options: KeyedOptions<K, A, E, R>
): Layer.Layer<I, PoolError, Exclude<R, Scope.Scope>> => Layer.effect(tag, makeKeyed(options))
