/**
 * UTF-8 for the encoder: what `TextEncoder` does, in JS for short strings, where a call into the engine
 * costs more than the loop.
 *
 * @since 0.1.0
 */

/**
 * Writes the UTF-8 of `s` into `buf` at `at` and returns the byte count. The caller has made room for 3 bytes
 * per UTF-16 unit. Lone surrogates become U+FFFD, as with `TextEncoder`.
 */
export const writeUtf8 = (buf: Uint8Array, at: number, s: string): number => {
  const units = s.length
  let p = at
  for (let i = 0; i < units; i++) {
    let c = s.charCodeAt(i)
    if (c < 0x80) {
      buf[p++] = c
    } else if (c < 0x800) {
      buf[p++] = 0xc0 | (c >> 6)
      buf[p++] = 0x80 | (c & 0x3f)
    } else if (c < 0xd800 || c > 0xdfff) {
      buf[p++] = 0xe0 | (c >> 12)
      buf[p++] = 0x80 | ((c >> 6) & 0x3f)
      buf[p++] = 0x80 | (c & 0x3f)
    } else {
      const d = c <= 0xdbff && i + 1 < units ? s.charCodeAt(i + 1) : 0
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
        buf[p++] = 0xf0 | (c >> 18)
        buf[p++] = 0x80 | ((c >> 12) & 0x3f)
        buf[p++] = 0x80 | ((c >> 6) & 0x3f)
        buf[p++] = 0x80 | (c & 0x3f)
      } else {
        buf[p++] = 0xef
        buf[p++] = 0xbf
        buf[p++] = 0xbd
      }
    }
  }
  return p - at
}
