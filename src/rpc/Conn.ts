/**
 * One server's connection in the RPC pool (Consul's `Conn`): the yamux
 * session, a LIFO free list of idle stream clients, the callers using it, and
 * whether it is doomed.
 *
 * ```
 *   live ── session fails / pool clears it ──▶ shouldClose ── last caller leaves ──▶ closed
 *     └──────────── reaped idle / pool shut down (no callers) ─────────────────────▶ closed
 * ```
 *
 * A doomed Conn serves the calls already on it and no new ones; its session is
 * closed when the last caller leaves.
 *
 * At most `maxStreamsInUse` stream clients are checked out or idle at once; a
 * caller beyond that waits for one to come back (bounded by its call timeout),
 * unless `maxPending` callers to this server already wait, when it fails at
 * once with `TooManyPending`.
 *
 * @since 0.1.0
 */
import { Effect, Scope } from "effect"
import { Exit } from "effect"
import { tooManyPending } from "./Classify.ts"
import type { RpcError } from "./RpcError.ts"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxSession, MuxStream } from "../mux/MuxSession.ts"
import { StreamClient } from "../msgpackrpc/StreamClient.ts"
import type { DecoderOptions } from "../msgpackrpc/Decoder.ts"

/** FIN for a stream in step or already closed by the server (a reset one is gone already); RST if out of step. */
const retire = (client: StreamClient): Effect.Effect<void> =>
  client.reusable || client.stream.isClosed ? client.close : client.reset

const closeAll = (clients: ReadonlyArray<StreamClient>): Effect.Effect<void> =>
  Effect.forEach(clients, retire, { discard: true })

/** An uninterruptible region's `restore`: what it wraps may be interrupted. */
/** The `restore` of the caller's `uninterruptibleMask`: what it wraps may be interrupted. */
export type Restore = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** Callers waiting for a dial or a stream to one server, shared by the pool and that server's Conns. */
export interface PendingGauge {
  pending: number
}

export class Conn {
  readonly address: string
  readonly session: MuxSession
  /** Owns the socket and session; closing it closes both. */
  readonly scope: Scope.Closeable
  private readonly maxStreams: number
  private readonly streamByte: number | undefined
  private readonly decoder: DecoderOptions | undefined
  private readonly free: Array<StreamClient> = []
  private readonly maxStreamsInUse: number
  private readonly maxPending: number
  private readonly gauge: PendingGauge
  /** Callers parked until a stream client is released (FIFO). */
  private readonly slotWaiters: Array<() => void> = []

  /** Callers between acquire and release. */
  callers = 0
  /**
   * Stream clients checked out by calls, counting those being opened. The free
   * list is only filled from these and only drawn on when not empty, so
   * `inUse + idleStreams <= maxStreamsInUse` always holds.
   */
  inUse = 0
  /** Monotonic millis (the pool's `now`) of the last acquire or release; the reaper ages idle Conns by it. */
  lastUsed: number
  shouldClose = false
  closed = false

  constructor(options: {
    readonly address: string
    readonly session: MuxSession
    readonly scope: Scope.Closeable
    readonly maxStreams: number
    readonly streamByte: number | undefined
    readonly decoder: DecoderOptions | undefined
    readonly now: number
    /** Stream clients checked out or idle at once. */
    readonly maxStreamsInUse: number
    /** Callers to this server that may wait at once (for a dial or a stream). */
    readonly maxPending: number
    readonly pending: PendingGauge
  }) {
    this.address = options.address
    this.session = options.session
    this.scope = options.scope
    this.maxStreams = options.maxStreams
    this.streamByte = options.streamByte
    this.decoder = options.decoder
    this.lastUsed = options.now
    this.maxStreamsInUse = options.maxStreamsInUse
    this.maxPending = options.maxPending
    this.gauge = options.pending
  }

  get idleStreams(): number {
    return this.free.length
  }

  /** True when new calls may use this Conn. */
  get usable(): boolean {
    // After the server's GoAway its idle streams would still work, but it asked for new work to go elsewhere.
    return !this.shouldClose && !this.closed && !this.session.isClosed && !this.session.peerGoneAway
  }

  markForUse(now: number): void {
    this.callers++
    this.lastUsed = now
  }

  /**
   * Consul `getClient`: the most recently returned stream client, or a new
   * stream, or (at `maxStreamsInUse`) a wait for a released one. Fails with
   * `RpcError` `TooManyPending` (method empty) when too many callers wait.
   *
   * Run it uninterruptibly and pass the `restore` of that region: only the
   * waits (an open awaiting a SYN slot, a wait for a stream) are restored to
   * interruptible. The client is counted in `inUse` the moment it is taken,
   * so its hand-over to the caller must not be interruptible: a caller
   * interrupted there (a fiber may yield at any step) would strand it, counted
   * in use for good with its stream open (found by the simulator).
   */
  takeClient(restore: Restore): Effect.Effect<StreamClient, MuxError | RpcError> {
    return Effect.suspend(() => this.take(restore))
  }

  /**
   * At the cap on a session that still takes streams. On a closed one, or one
   * the server sent GoAway on, the open fails at once and sends the caller to a
   * fresh dial instead of a wait.
   */
  private get saturated(): boolean {
    return this.inUse >= this.maxStreamsInUse && !this.closed && !this.session.isClosed && !this.session.peerGoneAway
  }

  private take(restore: Restore): Effect.Effect<StreamClient, MuxError | RpcError> {
    let stale: Array<StreamClient> | undefined
    for (let client = this.free.pop(); client !== undefined; client = this.free.pop()) {
      if (client.reusable) {
        this.inUse++
        return stale === undefined ? Effect.succeed(client) : Effect.as(closeAll(stale), client)
      }
      // The server FIN'd or reset it while it sat idle (a request on it would get EOF or RST), or sent bytes
      // nobody asked for (the next call would read them as its reply).
      stale ??= []
      stale.push(client)
    }
    const next = this.saturated
      ? Effect.suspend(() => this.waitForSlot(restore, () => this.take(restore)))
      : Effect.suspend(() => this.openClient(restore))
    return stale === undefined ? next : Effect.andThen(closeAll(stale), next)
  }

  /**
   * A new stream in a slot counted before the open, which may wait for the SYN backlog, so concurrent
   * openers cannot pass the cap together. Runs uninterruptibly but for the open.
   */
  private openSlot(restore: Restore): Effect.Effect<MuxStream, MuxError> {
    this.inUse++
    return Effect.onExit(
      restore(this.session.open),
      (exit) => Exit.isFailure(exit) ? Effect.sync(() => this.releaseSlot()) : Effect.void
    )
  }

  private openClient(restore: Restore): Effect.Effect<StreamClient, MuxError> {
    return Effect.map(this.openSlot(restore), (stream) => new StreamClient(stream, this.streamByte, this.decoder))
  }

  /**
   * A fresh stream for a streaming RPC (Nomad `StreamingRPC`), in a slot of its own like a
   * checked-out client: it never goes on the free list, and the caller gives the slot back
   * with `releaseStream`. At the cap an idle client is closed to make room, as a new stream
   * cannot reuse one; with none idle the caller waits like a call would.
   *
   * Run it uninterruptibly, passing the caller's `restore`: only the waits are interruptible,
   * and the stream is handed over inside the caller's region, so an interruption cannot fall
   * between the open and the caller keeping the stream (it would strand the slot and the stream).
   */
  openStream(restore: Restore): Effect.Effect<MuxStream, MuxError | RpcError> {
    return Effect.suspend(() => this.openStreamWith(restore))
  }

  private openStreamWith(restore: Restore): Effect.Effect<MuxStream, MuxError | RpcError> {
    if (this.inUse + this.free.length >= this.maxStreamsInUse && this.free.length > 0) {
      return Effect.andThen(retire(this.free.shift()!), Effect.suspend(() => this.openSlot(restore)))
    }
    return this.saturated
      ? this.waitForSlot(restore, () => this.openStreamWith(restore))
      : this.openSlot(restore)
  }

  /** A streaming RPC's stream is done (the caller closes or resets it): its slot goes to a waiter. */
  releaseStream(): void {
    this.releaseSlot()
  }

  /** Parks until a slot frees (interruptibly, through `restore`), then runs `next`; runs uninterruptibly otherwise. */
  private waitForSlot<A>(
    restore: Restore,
    next: () => Effect.Effect<A, MuxError | RpcError>
  ): Effect.Effect<A, MuxError | RpcError> {
    const gauge = this.gauge
    if (gauge.pending >= this.maxPending) return Effect.fail(tooManyPending(this.address, gauge.pending, this.maxPending))
    gauge.pending++
    // Set by the wake-up itself, so an interruption racing it can hand the wake-up on.
    let woken = false
    const park = Effect.callback<void>((resume) => {
      const waiter = () => {
        woken = true
        resume(Effect.void)
      }
      this.slotWaiters.push(waiter)
      return Effect.sync(() => {
        const i = this.slotWaiters.indexOf(waiter)
        if (i >= 0) this.slotWaiters.splice(i, 1)
      })
    })
    const untilSlot = (): Effect.Effect<void> =>
      Effect.flatMap(restore(park), () => {
        if (!this.saturated) return Effect.void
        // Another caller took the slot first: wait for the next one.
        woken = false
        return untilSlot()
      })
    return Effect.onExit(untilSlot(), (exit) =>
      Effect.sync(() => {
        gauge.pending--
        if (Exit.isFailure(exit) && woken) this.slotWaiters.shift()?.()
      })).pipe(Effect.andThen(Effect.suspend(next)))
  }

  /**
   * A checked-out client went back or away: one waiter may take its place. The
   * wake-up runs the waiter at once, so callers update the free list first.
   */
  private releaseSlot(): void {
    this.inUse--
    this.slotWaiters.shift()?.()
  }

  /**
   * The most recently returned client when it is live, without waiting or
   * opening: the call path's fast lane. `undefined` sends the caller to
   * `takeClient`.
   */
  takeIdle(): StreamClient | undefined {
    const client = this.free[this.free.length - 1]
    if (client === undefined || !client.reusable) return undefined
    this.free.pop()
    this.inUse++
    return client
  }

  /**
   * Consul `returnClient`: keep up to `maxStreams` idle clients, close the rest. A stream with bytes left
   * after its reply is out of step: never kept, and reset.
   */
  returnClient(client: StreamClient): Effect.Effect<void> {
    if (this.free.length < this.maxStreams && this.usable && client.reusable) {
      this.free.push(client)
      this.releaseSlot()
      return Effect.void
    }
    this.releaseSlot()
    return retire(client)
  }

  /** A client whose call got a remote error is in step but not reused (Consul's `sc.Close()`): FIN it. */
  closeClient(client: StreamClient): Effect.Effect<void> {
    this.releaseSlot()
    return client.close
  }

  /** A client whose call failed is out of step: reset it. */
  discardClient(client: StreamClient): Effect.Effect<void> {
    this.releaseSlot()
    return client.reset
  }

  /** Closes the session and every stream on it. Idempotent. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    this.free.length = 0
    // Waiters wake once the session is closed, so their open fails and they go to a fresh dial (or PoolClosed).
    return Effect.andThen(
      Scope.close(this.scope, Exit.void),
      Effect.sync(() => {
        for (const waiter of this.slotWaiters.splice(0)) waiter()
      })
    )
  })
}
