/**
 * Lent bytes (`ByteTransport`'s `data` chunks, valid only during the call that lends them) and the one
 * thing a holder does with what it keeps of them: copy it.
 *
 * @since 0.1.0
 */

/**
 * A copy of lent bytes, as a plain `Uint8Array` (never a `Buffer`, whose `slice` is a view). Small copies come
 * from Node's shared buffer pool, so keeping a small piece costs no `ArrayBuffer` of its own.
 */
export const keep = (lent: Uint8Array): Uint8Array => {
  const copy = Buffer.allocUnsafe(lent.length)
  copy.set(lent)
  return new Uint8Array(copy.buffer, copy.byteOffset, copy.length)
}
