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
 * @since 0.1.0
 */
import { Effect, Scope } from "effect"
import { Exit } from "effect"
import type { MuxError } from "../mux/MuxError.ts"
import type { MuxSession } from "../mux/MuxSession.ts"
import { StreamClient } from "../msgpackrpc/StreamClient.ts"
import type { DecoderOptions } from "../msgpackrpc/Decoder.ts"

/** Sends our FIN on streams the server already closed (a reset one is gone already). */
const closeAll = (clients: ReadonlyArray<StreamClient>): Effect.Effect<void> =>
  Effect.forEach(clients, (client) => client.close, { discard: true })

export class Conn {
  readonly address: string
  readonly session: MuxSession
  /** Owns the socket and session; closing it closes both. */
  readonly scope: Scope.Closeable
  private readonly maxStreams: number
  private readonly streamByte: number | undefined
  private readonly decoder: DecoderOptions | undefined
  private readonly free: Array<StreamClient> = []

  /** Callers between acquire and release. */
  callers = 0
  /** Stream clients checked out by calls. */
  inUse = 0
  /** Clock millis of the last acquire or release. */
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
  }) {
    this.address = options.address
    this.session = options.session
    this.scope = options.scope
    this.maxStreams = options.maxStreams
    this.streamByte = options.streamByte
    this.decoder = options.decoder
    this.lastUsed = options.now
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

  /** Consul `getClient`: the most recently returned stream client, or a new stream. */
  readonly takeClient: Effect.Effect<StreamClient, MuxError> = Effect.suspend(() => {
    let stale: Array<StreamClient> | undefined
    for (let client = this.free.pop(); client !== undefined; client = this.free.pop()) {
      if (!client.stream.isClosed) {
        this.inUse++
        return stale === undefined ? Effect.succeed(client) : Effect.as(closeAll(stale), client)
      }
      // The server FIN'd or reset it while it sat idle: a request on it would get EOF or RST.
      stale ??= []
      stale.push(client)
    }
    const open = Effect.map(this.session.open, (stream) => {
      this.inUse++
      return new StreamClient(stream, this.streamByte, this.decoder)
    })
    return stale === undefined ? open : Effect.andThen(closeAll(stale), open)
  })

  /**
   * The most recently returned client when it is live, without waiting or
   * opening: the call path's fast lane. `undefined` sends the caller to
   * `takeClient`.
   */
  takeIdle(): StreamClient | undefined {
    const client = this.free[this.free.length - 1]
    if (client === undefined || client.stream.isClosed) return undefined
    this.free.pop()
    this.inUse++
    return client
  }

  /** Consul `returnClient`: keep up to `maxStreams` idle clients, close the rest. */
  returnClient(client: StreamClient): Effect.Effect<void> {
    this.inUse--
    if (this.free.length < this.maxStreams && this.usable && !client.stream.isClosed) {
      this.free.push(client)
      return Effect.void
    }
    return client.close
  }

  /** A client whose call got a remote error is in step but not reused (Consul's `sc.Close()`): FIN it. */
  closeClient(client: StreamClient): Effect.Effect<void> {
    this.inUse--
    return client.close
  }

  /** A client whose call failed is out of step: reset it. */
  discardClient(client: StreamClient): Effect.Effect<void> {
    this.inUse--
    return client.reset
  }

  /** Closes the session and every stream on it. Idempotent. */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    if (this.closed) return Effect.void
    this.closed = true
    this.free.length = 0
    return Scope.close(this.scope, Exit.void)
  })
}
