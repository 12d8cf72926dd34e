/**
 * What msgpack decodes to: the `Value` model shared by the decoder, the encoder and the message layer.
 *
 * nil → `null`; bool; ints → `number` when they are safe integers, otherwise `bigint` (uint64 / int64);
 * float32/64 → `number`; str family → `string` when the bytes are valid UTF-8 and `Uint8Array` otherwise,
 * because Go writes `[]byte` as the str family; bin family → `Uint8Array`; ext → `Ext`; array → array;
 * map → plain object.
 *
 * @since 0.1.0
 */

/**
 * A msgpack extension value (types `fixext*` / `ext8..32`). Go's handles never write these (`WriteExt=false`),
 * but decoding them keeps the stream in sync, and `Encoder` writes them back unchanged.
 *
 * @category models
 * @since 0.1.0
 */
export class Ext {
  /** The signed extension type, -128..127. */
  readonly type: number
  readonly data: Uint8Array
  constructor(type: number, data: Uint8Array) {
    this.type = type
    this.data = data
  }
}

/**
 * A decoded msgpack value. Never `undefined` and never a `CodecError`, which is what lets `Decoder.next`
 * return `Value | undefined | CodecError` without ambiguity.
 *
 * @category models
 * @since 0.1.0
 */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Ext
  | Array<Value>
  | { [key: string]: Value }

const utf8Encoder = new TextEncoder()

/**
 * The bytes of a raw value: a `Uint8Array` as is, a string UTF-8 encoded. For callers that expect Go `[]byte`,
 * which arrives as a `string` whenever its bytes happen to be valid UTF-8.
 *
 * @category getters
 * @since 0.1.0
 */
export const asBytes = (v: string | Uint8Array): Uint8Array => typeof v === "string" ? utf8Encoder.encode(v) : v
