/**
 * The yamux wire vocabulary (hashicorp/yamux `spec.md`, `const.go`) and a pure,
 * incremental frame decoder.
 *
 * Nothing here touches a socket: bytes go in, headers and payload slices come out.
 * The decoder never copies a payload: a Data frame's body is handed on as
 * subarrays of the chunks it arrived in, piece by piece, so a 256 KiB frame split
 * across many TCP reads costs no reassembly. Only a header split across reads is
 * copied, into a 12-byte scratch.
 *
 * @since 0.1.0
 */

/** Protocol version; anything else is `ErrInvalidVersion`. */
export const protoVersion = 0

/** Data: the length field counts the payload bytes that follow the header. */
export const typeData = 0
/** WindowUpdate: the length field is a delta added to the sender's window. */
export const typeWindowUpdate = 1
/** Ping: the length field is an opaque id echoed back with ACK. */
export const typePing = 2
/** GoAway: the length field is an error code (`goAway*`). */
export const typeGoAway = 3

/** SYN opens a stream (or marks a ping request). */
export const flagSYN = 1
/** ACK acknowledges a stream open (or marks a ping reply). */
export const flagACK = 2
/** FIN half-closes the stream: the sender will send no more data. */
export const flagFIN = 4
/** RST resets the stream immediately. */
export const flagRST = 8

/** GoAway codes. */
export const goAwayNormal = 0
export const goAwayProtoErr = 1
export const goAwayInternalErr = 2

/** 12 bytes: version, type, flags (u16), stream id (u32), length (u32), big-endian. */
export const headerSize = 12

/** The largest stream id a session may allocate (`ErrStreamsExhausted` beyond). */
export const maxStreamId = 0xffffffff - 1

/**
 * Writes a header into `buf` at `offset`. Callers reuse one buffer for many
 * headers when batching a flush.
 */
export const encodeHeaderInto = (
  buf: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  streamId: number,
  length: number
): void => {
  buf[offset] = protoVersion
  buf[offset + 1] = type
  buf[offset + 2] = (flags >>> 8) & 0xff
  buf[offset + 3] = flags & 0xff
  buf[offset + 4] = (streamId >>> 24) & 0xff
  buf[offset + 5] = (streamId >>> 16) & 0xff
  buf[offset + 6] = (streamId >>> 8) & 0xff
  buf[offset + 7] = streamId & 0xff
  buf[offset + 8] = (length >>> 24) & 0xff
  buf[offset + 9] = (length >>> 16) & 0xff
  buf[offset + 10] = (length >>> 8) & 0xff
  buf[offset + 11] = length & 0xff
}

/** A fresh 12-byte header. */
export const encodeHeader = (type: number, flags: number, streamId: number, length: number): Uint8Array => {
  const buf = new Uint8Array(headerSize)
  encodeHeaderInto(buf, 0, type, flags, streamId, length)
  return buf
}

const readU32 = (b: Uint8Array, o: number): number =>
  ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!)

/** Why a byte stream is not yamux. */
export type FrameViolation =
  | { readonly _tag: "InvalidVersion"; readonly version: number }
  | { readonly _tag: "InvalidMsgType"; readonly type: number }
  | { readonly _tag: "FrameTooLarge"; readonly length: number; readonly limit: number }

/**
 * What the decoder tells its owner. Implemented by the session; every method is
 * called synchronously from `push`.
 */
export interface FrameHandler {
  /**
   * A header, as plain numbers so no object is allocated per frame. For Data
   * frames the body follows through `onData` calls.
   */
  onHeader(type: number, flags: number, streamId: number, length: number): void
  /** A piece of the current Data frame's body; `last` marks its final piece. */
  onData(streamId: number, piece: Uint8Array, last: boolean): void
}

/**
 * Incremental yamux frame decoder.
 *
 * **Details**
 * Data frame lengths above `maxDataLength` are refused before a byte of the body
 * is buffered, so a peer claiming a 4 GiB frame costs nothing. A Data frame of
 * length 0 produces a header and no `onData` call.
 */
export class FrameDecoder {
  private readonly scratch = new Uint8Array(headerSize)
  private have = 0
  /** Body bytes still expected for the current Data frame. */
  private remaining = 0
  private streamId = 0
  private readonly maxDataLength: number
  private readonly handler: FrameHandler
  private stopped = false

  constructor(handler: FrameHandler, maxDataLength: number) {
    this.handler = handler
    this.maxDataLength = maxDataLength
  }

  /** True when no partial frame is buffered. */
  get idle(): boolean {
    return this.have === 0 && this.remaining === 0
  }

  /** Makes every later `push` a no-op: the session calls it when it closes. */
  stop(): void {
    this.stopped = true
  }

  /**
   * Feeds one chunk. Returns a violation if the stream stops being yamux; the
   * decoder must then be discarded.
   */
  push(chunk: Uint8Array): FrameViolation | undefined {
    let offset = 0
    const end = chunk.length
    while (offset < end && !this.stopped) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, end - offset)
        this.remaining -= take
        this.handler.onData(this.streamId, chunk.subarray(offset, offset + take), this.remaining === 0)
        if (this.stopped) return undefined
        offset += take
        continue
      }
      let header: Uint8Array
      let at: number
      if (this.have === 0 && end - offset >= headerSize) {
        header = chunk
        at = offset
        offset += headerSize
      } else {
        const take = Math.min(headerSize - this.have, end - offset)
        this.scratch.set(chunk.subarray(offset, offset + take), this.have)
        this.have += take
        offset += take
        if (this.have < headerSize) return undefined
        this.have = 0
        header = this.scratch
        at = 0
      }
      const version = header[at]!
      if (version !== protoVersion) return { _tag: "InvalidVersion", version }
      const type = header[at + 1]!
      if (type > typeGoAway) return { _tag: "InvalidMsgType", type }
      const flags = (header[at + 2]! << 8) | header[at + 3]!
      const streamId = readU32(header, at + 4)
      const length = readU32(header, at + 8)
      if (type === typeData && length > this.maxDataLength) {
        return { _tag: "FrameTooLarge", length, limit: this.maxDataLength }
      }
      this.handler.onHeader(type, flags, streamId, length)
      if (this.stopped) return undefined
      if (type === typeData && length > 0) {
        this.remaining = length
        this.streamId = streamId
      }
    }
    return undefined
  }
}

/** What a violation means, for errors. */
export const violationDetail = (v: FrameViolation): string => {
  switch (v._tag) {
    case "InvalidVersion":
      return `invalid protocol version ${v.version}`
    case "InvalidMsgType":
      return `invalid message type ${v.type}`
    case "FrameTooLarge":
      return `data frame of ${v.length} bytes exceeds the ${v.limit}-byte window`
  }
}
