/**
 * A byte budget: request bytes a session holds, counted against its own limit
 * and, through its parent, against the server's.
 *
 * A stream takes bytes as it reads them (and, for a large request, the room
 * its declared size reserves, at its header) and gives them back once the
 * request they belong to has been answered, so a budget bounds both requests arriving
 * slowly (a client that sends 60 MiB of a 64 MiB request and stops) and
 * requests being served. Taking never waits: a wait for bytes held by streams
 * that wait themselves could last for ever, so the stream that would pass a
 * limit is refused instead.
 *
 * @since 0.1.0
 */

export class Budget {
  /** Bytes held now. */
  held = 0
  readonly limit: number
  private readonly parent: Budget | undefined

  constructor(limit: number, parent?: Budget) {
    this.limit = limit
    this.parent = parent
  }

  /** Takes `bytes` more, or nothing and `false` when this budget or its parent's would pass its limit. */
  take(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false
    const parent = this.parent
    if (parent !== undefined && !parent.take(bytes)) return false
    this.held += bytes
    return true
  }

  /** Gives back bytes taken earlier. */
  give(bytes: number): void {
    this.held -= bytes
    this.parent?.give(bytes)
  }
}
