/**
 * The messages of Nomad's streaming RPC (`nomad/structs/streaming_rpc.go`, `client/structs`
 * `StreamErrWrapper`), as values and bytes. Pure: nothing here reads a stream or keeps time.
 *
 * ```
 * client ─▶ [0x05] StreamingRpcHeader{Method}            (the byte only on a multiplexed session)
 * server ─▶ StreamingRpcAck{Error}                        ("" : the handler owns the stream now)
 * client ─▶ the request, then (exec) more values          (method-specific msgpack values)
 * server ─▶ StreamErrWrapper{Error *RpcError{Message, Code *int64}, Payload []byte} ...
 *           {} is a heartbeat, an Error ends the stream, EOF ends it normally
 * ```
 *
 * Structs go out as Go's codec writes them: maps with the field names sorted, `[]byte` in the
 * str family (fixstr, str16, str32, never str8 or bin), nil pointers and slices as nil.
 *
 * @since 0.1.0
 */
import { CodecError } from "./CodecError.ts"
import { asBytes } from "./Decoder.ts"
import type { Value } from "./Decoder.ts"
import { sharedEncoder } from "./Encoder.ts"

/**
 * One `StreamErrWrapper` as the client sees it: a payload, a heartbeat (no payload, no error),
 * or the error that ends the stream.
 *
 * @category models
 */
export type Frame =
  | { readonly _tag: "Payload"; readonly payload: Uint8Array }
  | { readonly _tag: "Heartbeat" }
  | { readonly _tag: "Error"; readonly message: string; readonly code: number | undefined }

const heartbeat: Frame = { _tag: "Heartbeat" }

const ascii = (s: string): Array<number> => Array.from(s, (c) => c.charCodeAt(0))

/** `{Error: nil, Payload: ` up to the payload's str header. */
const payloadPrefix = [0x82, 0xa5, ...ascii("Error"), 0xc0, 0xa7, ...ascii("Payload")]

/**
 * Go's `StreamErrWrapper{}`: `{Error: nil, Payload: nil}`, the heartbeat Nomad's handlers send
 * about every second so a client can tell a quiet stream from a dead one.
 *
 * @category encoding
 */
export const heartbeatBytes: Uint8Array = Uint8Array.from([...payloadPrefix, 0xc0])

const invalid = (message: string): CodecError => new CodecError({ reason: "InvalidHeader", message })

const isMap = (v: Value | undefined): v is { readonly [key: string]: Value } =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) &&
  Object.getPrototypeOf(v) === Object.prototype

const lossyUtf8 = new TextDecoder("utf-8", { ignoreBOM: true })

/** A Go `string` field: missing or nil is `""`; bytes that are not UTF-8 are read with replacements. */
const text = (v: { readonly [key: string]: Value }, name: string, what: string): string | CodecError => {
  const f = Object.hasOwn(v, name) ? v[name] : undefined
  if (typeof f === "string") return f
  if (f === undefined || f === null) return ""
  if (f instanceof Uint8Array) return lossyUtf8.decode(f)
  return invalid(`${what}: ${name} is not a string`)
}

const prefixed = (prefix: number | undefined, bytes: Uint8Array): Uint8Array => {
  if (prefix === undefined) return bytes
  const out = new Uint8Array(bytes.length + 1)
  out[0] = prefix
  out.set(bytes, 1)
  return out
}

/**
 * `StreamingRpcHeader{Method}`, after `prefix` (the protocol's streaming byte) when given, in
 * one buffer for one write.
 *
 * @category encoding
 */
export const encodeHeader = (method: string, prefix?: number | undefined): Uint8Array | CodecError => {
  const bytes = sharedEncoder.encode({ Method: method })
  return bytes instanceof CodecError ? bytes : prefixed(prefix, bytes)
}

/**
 * The method named by a `StreamingRpcHeader`.
 *
 * @category decoding
 */
export const parseHeader = (v: Value): string | CodecError =>
  isMap(v) ? text(v, "Method", "streaming RPC header") : invalid("streaming RPC header is not a map")

/**
 * `StreamingRpcAck{Error}`: `""` accepts the stream.
 *
 * @category encoding
 */
export const encodeAck = (error: string): Uint8Array | CodecError => sharedEncoder.encode({ Error: error })

/**
 * The `Error` of a `StreamingRpcAck`: `""` when the server's handler now owns the stream.
 *
 * @category decoding
 */
export const parseAck = (v: Value): string | CodecError =>
  isMap(v) ? text(v, "Error", "streaming RPC ack") : invalid("streaming RPC ack is not a map")

/** Go writes `[]byte` with the string headers, never str8. */
const strHeader = (length: number): Array<number> =>
  length < 32
    ? [0xa0 | length]
    : length < 0x10000
    ? [0xda, length >>> 8, length & 0xff]
    : [0xdb, length >>> 24, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff]

/**
 * `StreamErrWrapper{Payload}` as buffers to write in order: the payload is not copied, so leave
 * it unchanged until it has been written. A string payload is sent as its UTF-8 bytes.
 *
 * @category encoding
 */
export const encodePayload = (payload: Uint8Array | string): Array<Uint8Array> => {
  const bytes = typeof payload === "string" ? asBytes(payload) : payload
  const head = Uint8Array.from([...payloadPrefix, ...strHeader(bytes.length)])
  return bytes.length === 0 ? [head] : [head, bytes]
}

/**
 * `StreamErrWrapper{Error: &RpcError{Message, Code}}`: the frame that ends a stream with an error.
 *
 * @category encoding
 */
export const encodeError = (message: string, code?: number | undefined): Uint8Array | CodecError =>
  sharedEncoder.encode({ Error: { Code: code ?? null, Message: message }, Payload: null })

const codeOf = (v: Value | undefined): number | undefined | CodecError => {
  if (v === undefined || v === null) return undefined
  if (typeof v === "number" && Number.isInteger(v)) return v
  // Go's int64; a code beyond 2^53 is not one anybody sends, so it is read approximately.
  if (typeof v === "bigint") return Number(v)
  return invalid("streaming frame: Error.Code is not an integer")
}

/**
 * Reads one `StreamErrWrapper`. A frame with an `Error` is an error whatever its payload; one
 * with neither an error nor payload bytes is a heartbeat.
 *
 * @category decoding
 */
export const parseFrame = (v: Value): Frame | CodecError => {
  if (!isMap(v)) return invalid("streaming frame is not a map")
  const error = Object.hasOwn(v, "Error") ? v["Error"] : undefined
  if (error !== undefined && error !== null) {
    if (!isMap(error)) return invalid("streaming frame: Error is not a map")
    const message = text(error, "Message", "streaming frame error")
    if (message instanceof CodecError) return message
    const code = codeOf(Object.hasOwn(error, "Code") ? error["Code"] : undefined)
    if (code instanceof CodecError) return code
    return { _tag: "Error", message, code }
  }
  const payload = Object.hasOwn(v, "Payload") ? v["Payload"] : undefined
  if (payload === undefined || payload === null) return heartbeat
  if (typeof payload !== "string" && !(payload instanceof Uint8Array)) {
    return invalid("streaming frame: Payload is not bytes")
  }
  // go-msgpack writes []byte as a string: it decodes as one when its bytes happen to be UTF-8.
  return payload.length === 0 ? heartbeat : { _tag: "Payload", payload: asBytes(payload) }
}
