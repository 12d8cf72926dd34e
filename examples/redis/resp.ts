/**
 * A small RESP2 codec: enough of the Redis protocol for PING, SET and GET.
 *
 * Every function is pure: bytes in, values out. Nothing here opens a socket.
 * `RespDecoder` keeps the bytes of a reply split across TCP reads until the
 * rest arrives.
 */

/** A decoded reply. */
export type RespValue =
  | { readonly _tag: "Simple"; readonly value: string }
  | { readonly _tag: "Error"; readonly message: string }
  | { readonly _tag: "Integer"; readonly value: number }
  | { readonly _tag: "Bulk"; readonly value: string | null }
  | { readonly _tag: "Array"; readonly value: ReadonlyArray<RespValue> | null }

const CRLF = "\r\n"

/** Encodes a command as a RESP array of bulk strings. */
export const encodeCommand = (args: ReadonlyArray<string>): Buffer => {
  let out = `*${args.length}${CRLF}`
  for (const arg of args) out += `$${Buffer.byteLength(arg)}${CRLF}${arg}${CRLF}`
  return Buffer.from(out)
}

/** Thrown inside the decoder when the buffer ends mid-reply; never escapes it. */
const incomplete: unique symbol = Symbol("incomplete")

export class RespProtocolError extends Error {
  override readonly name = "RespProtocolError"
}

/** Decodes a stream of replies fed in arbitrary chunks. */
export class RespDecoder {
  private buffer: Buffer = Buffer.alloc(0)
  private offset = 0

  /** Appends a chunk and returns every reply now complete, in order. */
  push(chunk: Uint8Array): Array<RespValue> {
    this.buffer = this.offset < this.buffer.length
      ? Buffer.concat([this.buffer.subarray(this.offset), chunk])
      : Buffer.from(chunk)
    this.offset = 0
    const out: Array<RespValue> = []
    while (this.offset < this.buffer.length) {
      const start = this.offset
      const value = this.read()
      if (value === incomplete) {
        this.offset = start
        break
      }
      out.push(value)
    }
    return out
  }

  private line(): string | typeof incomplete {
    const end = this.buffer.indexOf(CRLF, this.offset, "latin1")
    if (end === -1) return incomplete
    const text = this.buffer.toString("utf8", this.offset, end)
    this.offset = end + 2
    return text
  }

  private read(): RespValue | typeof incomplete {
    if (this.offset >= this.buffer.length) return incomplete
    const type = String.fromCharCode(this.buffer[this.offset]!)
    this.offset++
    const line = this.line()
    if (line === incomplete) return incomplete
    switch (type) {
      case "+":
        return { _tag: "Simple", value: line }
      case "-":
        return { _tag: "Error", message: line }
      case ":":
        return { _tag: "Integer", value: Number(line) }
      case "$": {
        const length = Number(line)
        if (length === -1) return { _tag: "Bulk", value: null }
        if (this.buffer.length < this.offset + length + 2) return incomplete
        const value = this.buffer.toString("utf8", this.offset, this.offset + length)
        this.offset += length + 2
        return { _tag: "Bulk", value }
      }
      case "*": {
        const length = Number(line)
        if (length === -1) return { _tag: "Array", value: null }
        const items: Array<RespValue> = []
        for (let i = 0; i < length; i++) {
          const item = this.read()
          if (item === incomplete) return incomplete
          items.push(item)
        }
        return { _tag: "Array", value: items }
      }
      default:
        throw new RespProtocolError(`unexpected RESP type byte ${JSON.stringify(type)}`)
    }
  }
}
