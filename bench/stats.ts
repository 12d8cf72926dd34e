/**
 * The few statistics the bench reports, computed the same way on every side (the Go client's
 * percentile is the same nearest-rank one).
 */

/** Nearest-rank percentile of ascending `sorted` (as the Go client computes it), 0 when empty. */
export const percentile = (sorted: ArrayLike<number>, q: number): number => {
  if (sorted.length === 0) return 0
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)))
  return sorted[rank - 1]!
}

export const round = (n: number, digits: number): number => {
  const f = 10 ** digits
  return Math.round(n * f) / f
}

/** Median of `values` (mean of the middle two for an even count); undefined when empty. */
export const median = (values: ReadonlyArray<number>): number | undefined => {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
