/**
 * Addresses as the pool keys them: `rpc` is called with the same few strings
 * millions of times, so each distinct string is parsed once and remembered.
 *
 * @since 0.1.0
 */
import { formatAddress, parseAddress } from "../wire/Transport.ts"

/** A parsed `host:port` and the canonical key the pool maps it under. */
export interface Target {
  readonly key: string
  readonly host: string
  readonly port: number
}

/** Distinct address strings whose parse is remembered: 1024. */
export const maxCachedTargets = 1024

export class Targets {
  private readonly cache = new Map<string, Target | undefined>()

  /** The target of `address`, or undefined when it is not `host:port`. */
  get(address: string): Target | undefined {
    let target = this.cache.get(address)
    if (target === undefined && !this.cache.has(address)) {
      const parsed = parseAddress(address)
      target = parsed && { key: formatAddress(parsed.host, parsed.port), host: parsed.host, port: parsed.port }
      // Bounded: a caller inventing addresses must not grow the cache without end.
      if (this.cache.size >= maxCachedTargets) this.cache.clear()
      this.cache.set(address, target)
    }
    return target
  }
}
