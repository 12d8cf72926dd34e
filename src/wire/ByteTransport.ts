/**
 * The seam between the byte pipe and everything above it: what a yamux
 * session needs from the connection it runs on, and how the RPC pool gets
 * one.
 *
 * **Details**
 * `ByteTransport` is the part of `net.Socket` the session uses, and nothing
 * more: ordered bytes in (`data`), ordered bytes out (`write`, batched between
 * `cork` and `uncork`), how many bytes are queued and not yet sent
 * (`writableLength`, for backpressure) with `drain` when that queue empties,
 * the ends (`end`, `error`, `close`) and `destroy`. A `net.Socket` or
 * `tls.TLSSocket` *is* a `ByteTransport`, structurally: no wrapper sits on
 * the hot path. `MemoryTransport.makePair` gives two in-memory ends whose
 * delivery a test (or a simulator) schedules.
 *
 * `Connector` is how the RPC pool opens a transport to a server: by default
 * `Transport.dial` (TCP, preamble, optional TLS). Provide another (an
 * in-memory one, say) to run the pool over it; the pool reads the Connector
 * once, when it is made.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { Effect, Scope } from "effect"
import { dial } from "./Transport.ts"
import type { DialOptions } from "./Transport.ts"
import type { TransportError } from "./TransportError.ts"

/**
 * A connected, ordered, reliable byte pipe, as a yamux session uses it.
 *
 * **Contract** (what `net.Socket` does, and what other implementations must do)
 * - `data` delivers bytes in order. The chunk is lent: it is valid only until
 *   the listener returns (a socket reading into one reused buffer,
 *   `LentReads.ts`), so a listener copies what it keeps.
 * - `write` queues a chunk and never throws; the caller does not modify the
 *   chunk afterwards. Its return value (false past a high-water mark) is not
 *   used: the session reads `writableLength`, and waits for `drain`.
 * - `drain` fires when the queue has emptied after `writableLength` passed the
 *   high-water mark.
 * - `end` fires once when the peer half-closed (no more `data`), `error` on a
 *   failure, `close` once when the transport is gone for good (after either,
 *   or after `destroy`).
 * - `destroy` drops what is queued, closes both directions and is idempotent.
 */
export interface ByteTransport {
  write(chunk: Uint8Array): boolean
  /** Holds writes until `uncork`, so a batch leaves in one system call. */
  cork(): void
  uncork(): void
  /** Bytes written and not yet handed to the network. */
  readonly writableLength: number
  /** True once `destroy` ran or the transport closed. */
  readonly destroyed: boolean
  /** True once the peer's end was read. */
  readonly readableEnded: boolean
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown
  on(event: "drain" | "end" | "close", listener: () => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  destroy(): void
  /** The peer, for errors and stats when the session is given no address. */
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
}

/** Opens a transport to a server, ready for yamux (preamble and TLS done); closing the Scope destroys it. */
export type Connector = (options: DialOptions) => Effect.Effect<ByteTransport, TransportError, Scope.Scope>

/**
 * The Connector the RPC pool dials with. Default: `Transport.dial`.
 *
 * @category references
 */
export const Connector: Context.Reference<Connector> = Context.Reference<Connector>(
  "effect-connpool/wire/Connector",
  { defaultValue: () => dial }
)
