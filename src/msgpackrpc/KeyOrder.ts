/**
 * The order the encoder writes an object's keys in: by their UTF-8 bytes, which is how Go orders struct
 * fields, so that our bytes are Go's bytes.
 *
 * @since 0.1.0
 */

/**
 * Orders strings by their UTF-8 bytes (= code point order), as Go sorts struct field names. UTF-16 unit order
 * agrees except between surrogates (code points above U+FFFF) and U+E000..U+FFFF.
 *
 * @category ordering
 * @since 0.1.0
 */
export const compareUtf8 = (a: string, b: string): number => {
  if (a === b) return 0
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000
      }
      return x - y
    }
  }
  return a.length - b.length
}

/** Structs rarely have more fields than this; up to it an insertion sort beats building an index. */
const InsertionSortMax = 32

/** Sorts the first `n` entries of the parallel arrays `keys` and `values` by key, in place. */
export const sortEntries = (keys: Array<string>, values: Array<unknown>, n: number): void => {
  if (n > InsertionSortMax) return sortLarge(keys, values, n)
  for (let i = 1; i < n; i++) {
    const k = keys[i]!
    if (compareUtf8(keys[i - 1]!, k) <= 0) continue
    const v = values[i]
    let j = i - 1
    while (j >= 0 && compareUtf8(keys[j]!, k) > 0) {
      keys[j + 1] = keys[j]!
      values[j + 1] = values[j]
      j--
    }
    keys[j + 1] = k
    values[j + 1] = v
  }
}

const sortLarge = (keys: Array<string>, values: Array<unknown>, n: number): void => {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => compareUtf8(keys[a]!, keys[b]!))
  const k2 = order.map((i) => keys[i]!)
  const v2 = order.map((i) => values[i])
  for (let i = 0; i < n; i++) {
    keys[i] = k2[i]!
    values[i] = v2[i]
  }
}
