/**
 * A Schema-typed RPC method: one definition of a method's name, arguments and
 * reply that both sides share. The client calls it through the pool
 * (`RpcPool.method`); a TypeScript server implements it with
 * `RpcServer.handle`, decoding the arguments and encoding the reply with the
 * same Schemas; a Go client or server of the same structs is the other end.
 *
 * @since 0.1.0
 */
import { Effect, Schema, SchemaTransformation } from "effect"
import { asBytes } from "../msgpackrpc/Decoder.ts"
import { RpcError } from "./RpcError.ts"
import type { RpcPool } from "./RpcPool.ts"
import { rpc } from "./RpcPool.ts"

/**
 * Go `[]byte` for `method` schemas: go-msgpack writes it in the str family, so
 * it decodes as a `string` when its bytes are valid UTF-8 and as a
 * `Uint8Array` otherwise; this Schema turns either into a `Uint8Array` and
 * encodes a `Uint8Array` as is.
 *
 * @category schemas
 */
export const Bytes = Schema.Union([Schema.String, Schema.Uint8Array]).pipe(
  Schema.decodeTo(
    Schema.Uint8Array,
    SchemaTransformation.transform<Uint8Array, string | Uint8Array>({ decode: asBytes, encode: (bytes) => bytes })
  )
)

/** A Schema issue on one line (`Expected number at ["A"]`), for error details and wire error strings. */
export const issueText = (error: { readonly message: string }): string => error.message.replace(/\s*\n\s*/g, " ")

/** The Schemas of a method: what the client sends and what the server replies. */
export interface Schemas<Args extends Schema.Top, Reply extends Schema.Top> {
  readonly args: Args
  readonly reply: Reply
}

/**
 * A typed method, callable as `Echo(address, args, options?)` with the pool
 * in context; it also carries its name and Schemas for `RpcServer.handle`.
 */
export interface Method<Args extends Schema.Top, Reply extends Schema.Top> extends Schemas<Args, Reply> {
  (
    address: string,
    args: Args["Type"],
    options?: RpcPool.CallOptions
  ): Effect.Effect<Reply["Type"], RpcError, RpcPool | Args["EncodingServices"] | Reply["DecodingServices"]>
  /** `Service.Method`, as on the wire. */
  readonly name: string
}

/**
 * A typed method: args are encoded with `args` (a value that does not match
 * fails with `ArgsMismatch`, and nothing is sent), the reply is decoded with
 * `reply` (a reply that does not match fails with `ReplyMismatch`, never a
 * cast).
 *
 * **Example**
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { RpcPool } from "effect-connpool"
 *
 * const Echo = RpcPool.method("Test.Echo", {
 *   args: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String }),
 *   reply: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String, Served: Schema.Number })
 * })
 * const reply = Echo("127.0.0.1:8300", { Payload: new Uint8Array(8), Seq: 1, Note: "hi" })
 * ```
 *
 * @category constructors
 */
export const method = <Args extends Schema.Top, Reply extends Schema.Top>(
  name: string,
  schemas: Schemas<Args, Reply>
): Method<Args, Reply> => {
  const encode = Schema.encodeUnknownEffect(schemas.args)
  const decode = Schema.decodeUnknownEffect(schemas.reply)
  const call = (address: string, args: Args["Type"], options?: RpcPool.CallOptions) =>
    Effect.gen(function*() {
      const encoded = yield* encode(args).pipe(
        Effect.mapError((error) =>
          new RpcError({ reason: "ArgsMismatch", address, method: name, sent: false, detail: issueText(error) })
        )
      )
      const reply = yield* rpc(address, name, encoded, options)
      return yield* decode(reply).pipe(
        Effect.mapError((error) =>
          new RpcError({ reason: "ReplyMismatch", address, method: name, sent: true, detail: issueText(error) })
        )
      )
    })
  // `name` replaces the function's own (configurable, not writable) `name`.
  return Object.defineProperties(call, {
    name: { value: name },
    args: { value: schemas.args, enumerable: true },
    reply: { value: schemas.reply, enumerable: true }
  }) as Method<Args, Reply>
}
