/**
 * The idle connections, as an intrusive doubly linked list threaded through
 * the entries: push, pop at either end and removal from the middle (a
 * connection whose peer closed it) are all O(1) and allocate nothing.
 *
 * `put` pushes at the back. `get` pops the back (LIFO, the default: the
 * warmest connection, so a pool that grew for a burst lets the rest age out)
 * or the front (FIFO with `poolFIFO`: spreads use over every connection).
 * The front is always the longest idle.
 *
 * @since 0.1.0
 */
import type { Entry } from "./PooledConn.ts"

/**
 * @category models
 * @since 0.1.0
 */
export class IdleList<A> {
  private head: Entry<A> | undefined = undefined
  private tail: Entry<A> | undefined = undefined
  size = 0

  pushBack(entry: Entry<A>): void {
    entry.idleNext = undefined
    entry.idlePrev = this.tail
    if (this.tail === undefined) this.head = entry
    else this.tail.idleNext = entry
    this.tail = entry
    this.size++
  }

  /** The entry `pop(fifo)` would return, left in place. */
  peek(fifo: boolean): Entry<A> | undefined {
    return fifo ? this.head : this.tail
  }

  pop(fifo: boolean): Entry<A> | undefined {
    const entry = fifo ? this.head : this.tail
    if (entry !== undefined) this.remove(entry)
    return entry
  }

  /** Unlinks an entry that is in this list. */
  remove(entry: Entry<A>): void {
    const prev = entry.idlePrev
    const next = entry.idleNext
    if (prev === undefined) this.head = next
    else prev.idleNext = next
    if (next === undefined) this.tail = prev
    else next.idlePrev = prev
    entry.idlePrev = undefined
    entry.idleNext = undefined
    this.size--
  }

  /** The entries, longest idle first, copied so the caller may remove while walking. */
  toArray(): Array<Entry<A>> {
    const out: Array<Entry<A>> = []
    for (let entry = this.head; entry !== undefined; entry = entry.idleNext) out.push(entry)
    return out
  }
}
