/**
 * `connpool call ADDR METHOD [ARGS_JSON]`: one RPC, the reply as JSON on stdout.
 *
 * @since 0.1.0
 */
import { Console, Effect } from "effect"
import { Argument, Command } from "effect/cli"
import * as RpcPool from "../rpc/RpcPool.ts"
import { addresses, hold, idempotent, route, target } from "./cluster.ts"
import { UsageError } from "./exit.ts"
import { bytesForm, clientTlsFlags, protocol, timeout, toClientTls } from "./flags.ts"
import { JsonInputError, parseJsonInput, stringify } from "./json.ts"

/** `ARGS_JSON` default: an empty struct, what Go's `struct{}` arguments encode to. */
export const DefaultArgs = "{}"

/**
 * JSON text to the msgpack arguments (json.ts): JSON strings go out as
 * msgpack strings, integers too large for a double as 64-bit integers,
 * `{"$bytes":"<base64>"}` as bytes and `{"$time":"<RFC 3339>"}` as a Go time.
 */
export const parseArgs = (text: string, what = "ARGS_JSON"): Effect.Effect<unknown, UsageError> =>
  Effect.try({
    try: () => parseJsonInput(text),
    catch: (e) =>
      new UsageError({
        message: e instanceof JsonInputError
          ? `${what}: ${e.message}`
          : `${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`
      })
  })

export const call = Command.make(
  "call",
  {
    addresses,
    method: Argument.String("METHOD").pipe(
      Argument.withDescription("Service.Method, e.g. Status.Ping")
    ),
    args: Argument.String("ARGS_JSON").pipe(
      Argument.withDescription(`The arguments as JSON (default ${DefaultArgs})`),
      Argument.withDefault(DefaultArgs)
    ),
    protocol,
    timeout,
    idempotent,
    hold,
    tls: clientTlsFlags,
    bytes: bytesForm
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      const args = yield* parseArgs(input.args)
      const r = route({ servers: input.addresses, profile: input.protocol.name, hold: input.hold, idempotent: input.idempotent })
      const reply = yield* Effect.flatMap(target(r), (t) => t.rpc(input.method, args, input.timeout)).pipe(
        Effect.scoped,
        Effect.provide(RpcPool.PoolLayer({
          protocol: input.protocol,
          dialTimeout: input.timeout,
          callTimeout: input.timeout,
          ...(tls === undefined ? {} : { tls })
        }))
      )
      yield* Console.log(stringify(reply, input.bytes))
    })
).pipe(
  Command.withShortDescription("Make one RPC and print the reply as JSON"),
  Command.withDescription(
    [
      "Makes one msgpack-rpc call and prints the reply as one line of JSON on stdout.",
      "",
      "ARGS_JSON: JSON strings are sent as msgpack strings; integers beyond 2^53 keep",
      "every digit (sent as 64-bit integers); {\"$bytes\":\"<base64>\"} is sent as bytes and",
      "{\"$time\":\"<RFC 3339>\"} as a Go time.Time.",
      "",
      "ADDR may list several servers (a:8300,b:8300): the call then goes through a",
      "cluster, to the first server, and is retried on the next within --hold (7s,",
      "nomad 5s) when nothing was sent or the server answered `No cluster leader`, and,",
      "with --idempotent, when the connection was lost after sending. An error then",
      "lists every attempt.",
      "",
      "Reply encoding: byte strings that are valid UTF-8 print as text, other byte",
      "strings as {\"$bytes\":\"<base64>\"}, Go times as {\"$time\":\"<RFC 3339 with",
      "nanoseconds>\"}; with --bytes base64 every byte string (text included) prints as",
      "{\"$bytes\":…}. A map whose only key is $bytes or $time prints with one more $.",
      "Integers beyond 2^53 print as decimal strings; maps with non-string keys as",
      "objects keyed by the key's JSON.",
      "",
      "Exit status: 0 on success; 1 when the server returned an error; 2 on a",
      "connection, TLS, protocol, timeout or usage error. Errors are one line on stderr."
    ].join("\n  ")
  ),
  Command.withExamples([
    { command: "connpool call 127.0.0.1:8300 Status.Ping", description: "Ping the RPC layer" },
    {
      command: "connpool call 127.0.0.1:8300 Test.Echo '{\"Payload\":\"hi\",\"Seq\":1,\"Note\":\"x\"}'",
      description: "Echo a payload"
    },
    {
      command: "connpool call 127.0.0.1:8300 Test.Echo '{\"Payload\":{\"$bytes\":\"AP8BAg==\"},\"Seq\":2}'",
      description: "Echo the bytes 00 ff 01 02"
    },
    {
      command: "connpool call 127.0.0.1:8300,127.0.0.2:8300,127.0.0.3:8300 Status.Leader --idempotent",
      description: "Ask a cluster, failing over to the next server"
    }
  ])
)
