/**
 * The server side of a typed method: the `Method` a client calls, served by
 * `RpcServer`, with the arguments decoded and the reply encoded by the same
 * Schemas. One definition then serves TypeScript and Go clients alike.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { issueText } from "../rpc/Method.ts"
import type { Method } from "../rpc/Method.ts"
import type { CallContext, Handler } from "./RpcServer.ts"

/**
 * Serves `method` with `implementation`, as one entry of `handlers` (spread
 * several into `RpcServer.serve({ handlers })`).
 *
 * - Arguments that do not match `method.args` are a bad request: the client
 *   gets a remote error `<method>: bad request: …` (as a Go server answers
 *   undecodable arguments) and `implementation` does not run.
 * - `implementation`'s failure becomes the reply's error string, its `message`.
 * - A result that does not match `method.reply` is the server's bug: the
 *   client gets a remote error saying so instead of a reply it cannot decode.
 *
 * The Schemas must need no services (`DecodingServices`/`EncodingServices`
 * of `never`); provide them inside `implementation` otherwise.
 *
 * **Example**
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { RpcPool, RpcServer } from "effect-connpool"
 *
 * const Add = RpcPool.method("Calc.Add", {
 *   args: Schema.Struct({ A: Schema.Number, B: Schema.Number }),
 *   reply: Schema.Struct({ Sum: Schema.Number })
 * })
 * const server = RpcServer.serve({
 *   handlers: { ...RpcServer.handle(Add, ({ A, B }) => Effect.succeed({ Sum: A + B })) }
 * })
 * ```
 *
 * @category constructors
 */
export const handle = <
  Args extends Schema.Top & { readonly DecodingServices: never },
  Reply extends Schema.Top & { readonly EncodingServices: never },
  E extends { readonly message: string }
>(
  method: Method<Args, Reply>,
  implementation: (args: Args["Type"], context: CallContext) => Effect.Effect<Reply["Type"], E>
): Readonly<Record<string, Handler>> => {
  const decode = Schema.decodeUnknownEffect(method.args)
  const encode = Schema.encodeUnknownEffect(method.reply)
  const handler: Handler = (args: Value, context: CallContext) =>
    decode(args).pipe(
      Effect.mapError((error) => ({ message: `${method.name}: bad request: ${issueText(error)}` })),
      Effect.flatMap((decoded) => implementation(decoded, context)),
      Effect.flatMap((reply) =>
        encode(reply).pipe(
          Effect.mapError((error) => ({ message: `${method.name}: the server's reply does not match: ${issueText(error)}` }))
        )
      )
    )
  return { [method.name]: handler }
}
