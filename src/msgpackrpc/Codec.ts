/**
 * The msgpack-rpc message layer of Go's `net/rpc` as Consul and Nomad speak it (wire-protocol.md §1.3): a
 * stream carries back-to-back msgpack values with no length prefix and no envelope. A request is the header
 * `{ServiceMethod: string, Seq: uint64}` followed by the args value; a response is
 * `{ServiceMethod: string, Seq: uint64, Error: string}` followed by the reply value (Go sends `struct{}{}`
 * when `Error` is set, and the body must still be read to keep the stream in sync).
 *
 * Pure: bytes in, messages out. Nothing here opens a stream, matches replies to calls or keeps time.
 *
 * **Header validation** follows Go's decoder: a missing field (or nil) is the zero value (`""`, `0`); unknown
 * fields are ignored; a field of the wrong type, or a header that is not a map, fails with `InvalidHeader`.
 * A string field whose bytes are not UTF-8 is decoded with U+FFFD replacements rather than failing.
 * `Seq` is a `number` while it is a safe integer and a `bigint` above 2^53 - 1, exactly as `Decoder` yields it.
 *
 * @since 0.1.0
 */
import { CodecError } from "./CodecError.ts"
import { Decoder, type DecoderOptions, Ext, type Value, Yield } from "./Decoder.ts"
import { sharedEncoder } from "./Encoder.ts"

/**
 * Go's `rpc.Request` (the unexported `next` field is not encoded).
 *
 * @category models
 * @since 0.1.0
 */
export interface RequestHeader {
  readonly ServiceMethod: string
  readonly Seq: number | bigint
}

/**
 * Go's `rpc.Response`. `Error` is `""` on success.
 *
 * @category models
 * @since 0.1.0
 */
export interface ResponseHeader {
  readonly ServiceMethod: string
  readonly Seq: number | bigint
  readonly Error: string
}

/**
 * A header with the value that follows it on the stream.
 *
 * @category models
 * @since 0.1.0
 */
export interface Message<H> {
  readonly header: H
  readonly body: Value
}

/**
 * @category models
 * @since 0.1.0
 */
export type Request = Message<RequestHeader>

/**
 * @category models
 * @since 0.1.0
 */
export type Response = Message<ResponseHeader>

/**
 * Encodes a request (header then `args`) into one buffer for one write, with the shared encoder.
 *
 * **Details**: byte-identical to Go's `msgpackrpc` codec `WriteRequest`; the header keys and the method's
 * encoded name are cached. The result is not overwritten by later calls (see `Encoder` on output buffers).
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeRequest = (method: string, seq: number | bigint, args: unknown): Uint8Array | CodecError =>
  sharedEncoder.encodeRequest(method, seq, args)

/**
 * Encodes a response (header then `reply`) into one buffer, with the shared encoder. Pass `{}` as `reply` with a
 * non-empty `error`, as Go's server does.
 *
 * @category encoding
 * @since 0.1.0
 */
export const encodeResponse = (
  method: string,
  seq: number | bigint,
  error: string,
  reply: unknown
): Uint8Array | CodecError => sharedEncoder.encodeResponse(method, seq, error, reply)

/**
 * Reads a request header out of a decoded value.
 *
 * @category decoding
 * @since 0.1.0
 */
export const parseRequestHeader = (v: Value): RequestHeader | CodecError => {
  if (!isMap(v)) return notAMap(v)
  const method = stringField(v, "ServiceMethod")
  if (typeof method !== "string") return method
  const seq = seqField(v)
  if (seq instanceof CodecError) return seq
  return { ServiceMethod: method, Seq: seq }
}

/**
 * Reads a response header out of a decoded value.
 *
 * @category decoding
 * @since 0.1.0
 */
export const parseResponseHeader = (v: Value): ResponseHeader | CodecError => {
  if (!isMap(v)) return notAMap(v)
  const method = stringField(v, "ServiceMethod")
  if (typeof method !== "string") return method
  const seq = seqField(v)
  if (seq instanceof CodecError) return seq
  const error = stringField(v, "Error")
  if (typeof error !== "string") return error
  return { ServiceMethod: method, Seq: seq, Error: error }
}

/**
 * Incremental reader of `{header, body}` pairs from one stream. Same contract as `Decoder`: `push` chunks,
 * drain `next` until `undefined`, call `end` when the peer closes.
 *
 * **Gotchas**: errors are sticky, as the stream is desynchronised; `end` reports `Truncated` when the stream
 * stops after a header without its body, or inside a value. `step` is `next` for callers that give the event
 * loop a turn while a large message decodes (see `Decoder.step`).
 *
 * @category constructors
 * @since 0.1.0
 */
export class MessageReader<H> {
  private readonly decoder: Decoder
  private readonly parse: (v: Value) => H | CodecError
  private header: H | undefined = undefined
  private failure: CodecError | undefined = undefined
  private ended = false

  constructor(parse: (v: Value) => H | CodecError, options?: DecoderOptions) {
    this.parse = parse
    this.decoder = new Decoder(options)
  }

  /** Bytes pushed and not yet returned in messages. */
  get bufferedBytes(): number {
    return this.decoder.bufferedBytes
  }

  /** Receive mode: room held for the part of a large value still to arrive (see `Decoder.reservedBytes`). */
  get reservedBytes(): number {
    return this.decoder.reservedBytes
  }

  push(chunk: Uint8Array): void {
    this.decoder.push(chunk)
  }

  /** Receive mode: a lent chunk, copied as `Decoder.receive` says; true when it all went into a large value. */
  receive(lent: Uint8Array): boolean {
    return this.decoder.receive(lent)
  }

  /** The next complete message, `undefined` when more input is needed, or the stream's error. */
  next(): Message<H> | undefined | CodecError {
    return this.read(false) as Message<H> | undefined | CodecError
  }

  /** `next`, or `Yield` while a large header or body is decoded a slice at a time (see `Decoder.step`). */
  step(): Message<H> | undefined | CodecError | typeof Yield {
    return this.read(true)
  }

  private read(sliced: boolean): Message<H> | undefined | CodecError | typeof Yield {
    if (this.failure !== undefined) return this.failure
    if (this.header === undefined) {
      const v = sliced ? this.decoder.step() : this.decoder.next()
      if (v === undefined || v === Yield) return v
      if (v instanceof CodecError) return this.fail(v)
      const header = this.parse(v)
      if (header instanceof CodecError) return this.fail(header)
      this.header = header
    }
    const body = sliced ? this.decoder.step() : this.decoder.next()
    if (body === Yield) return body
    // After `end`, an undecoded header left with no bytes after it is a message cut short, whether or not
    // the header had been read out before `end` was called.
    if (body === undefined) return this.ended ? this.fail(truncatedAfterHeader()) : undefined
    if (body instanceof CodecError) return this.fail(body)
    const header = this.header
    this.header = undefined
    return { header, body }
  }

  /** Marks the end of input; `Truncated` when a message was cut short. */
  end(): CodecError | undefined {
    this.ended = true
    if (this.failure !== undefined) return this.failure
    const e = this.decoder.end()
    if (e !== undefined) return this.fail(e)
    // A body that `step` is still decoding has all its bytes: it is not cut short.
    if (this.header !== undefined && this.decoder.bufferedBytes === 0 && !this.decoder.decoding) {
      return this.fail(truncatedAfterHeader())
    }
    return undefined
  }

  private fail(e: CodecError): CodecError {
    this.failure = e
    return e
  }
}

/**
 * Client side: reads responses.
 *
 * @category constructors
 * @since 0.1.0
 */
export class ResponseReader extends MessageReader<ResponseHeader> {
  constructor(options?: DecoderOptions) {
    super(parseResponseHeader, options)
  }
}

/**
 * Server side: reads requests.
 *
 * @category constructors
 * @since 0.1.0
 */
export class RequestReader extends MessageReader<RequestHeader> {
  constructor(options?: DecoderOptions) {
    super(parseRequestHeader, options)
  }
}

const truncatedAfterHeader = (): CodecError =>
  new CodecError({ reason: "Truncated", message: "input ended after a header, before its body" })

// -----------------------------------------------------------------------------------------------------------
// Header fields
// -----------------------------------------------------------------------------------------------------------

const lossyUtf8 = new TextDecoder("utf-8", { ignoreBOM: true })

const isMap = (v: Value): v is { [key: string]: Value } =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) && !(v instanceof Ext)

const invalid = (message: string): CodecError => new CodecError({ reason: "InvalidHeader", message })

const notAMap = (v: Value): CodecError =>
  invalid(`header is ${v === null ? "nil" : Array.isArray(v) ? "an array" : `a ${typeof v}`}, not a map`)

const stringField = (v: { [key: string]: Value }, name: string): string | CodecError => {
  const f = Object.hasOwn(v, name) ? v[name] : undefined
  if (typeof f === "string") return f
  if (f === undefined || f === null) return ""
  // Go strings may hold any bytes (an error text quoting binary data); a bad header field is not worth
  // killing the stream over, so those bytes are decoded with replacement characters.
  if (f instanceof Uint8Array) return lossyUtf8.decode(f)
  return invalid(`header field ${name} is not a string`)
}

const seqField = (v: { [key: string]: Value }): number | bigint | CodecError => {
  const f = Object.hasOwn(v, "Seq") ? v["Seq"] : undefined
  if (f === undefined || f === null) return 0
  if (typeof f === "number" && Number.isInteger(f) && f >= 0) return f
  if (typeof f === "bigint" && f >= 0n) return f
  return invalid("header field Seq is not a uint64")
}
