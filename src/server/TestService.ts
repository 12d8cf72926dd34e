/**
 * The test service the CLI, the demo and the interop suite talk to; the Go
 * peer under `test/interop/go/server` implements the same methods.
 *
 * - `Status.Ping {}` -> `{}`; `Status.Leader {}` -> `"host:port"`
 * - `Test.Echo {Payload, Seq, Note}` -> `{Payload, Seq, Note, Served}`
 * - `Test.Sleep {Millis}` -> `{}` after that long (on the Clock)
 * - `Test.Fail {Message}` -> remote error `Message`
 * - `Test.Stats {}` -> `{Conns, Streams, Served, Live}`
 * - with `protocol: Protocol.nomad`, the streaming methods of `TestStreaming.ts`
 *   (`Test.Monitor`, `Test.Follow`, `Test.Exec`, `Test.Fill`, `Test.StreamError`) and
 *   `Test.FollowClosed`
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { TransportError } from "../wire/TransportError.ts"
import * as RpcServer from "./RpcServer.ts"
import type { ServerConfigError } from "./ServerConfigError.ts"
import * as TestStreaming from "./TestStreaming.ts"

const field = (args: Value, name: string): Value | undefined =>
  args !== null && typeof args === "object" && !(args instanceof Uint8Array) && !Array.isArray(args)
    ? (args as Record<string, Value>)[name]
    : undefined

const text = (v: Value | undefined): string => (typeof v === "string" ? v : "")

const uint = (v: Value | undefined): number | bigint =>
  (typeof v === "number" && v >= 0) || (typeof v === "bigint" && v >= 0n) ? v : 0

export const handlers: Readonly<Record<string, RpcServer.Handler>> = {
  "Status.Ping": () => Effect.succeed({}),
  "Status.Leader": (_, { server }) => Effect.succeed(server.address),
  "Test.Echo": (args, { server }) =>
    Effect.succeed({
      Payload: field(args, "Payload") ?? new Uint8Array(0),
      Seq: uint(field(args, "Seq")),
      Note: text(field(args, "Note")),
      // Counts this call too, as the Go peer does.
      Served: server.stats().served + 1
    }),
  "Test.Sleep": (args) => {
    const millis = Number(uint(field(args, "Millis")))
    return Effect.as(Effect.sleep(millis), {})
  },
  "Test.Fail": (args) => Effect.fail({ message: text(field(args, "Message")) || "failed" }),
  "Test.Stats": (_, { server }) => {
    const s = server.stats()
    return Effect.succeed({ Conns: s.conns, Streams: s.streams, Served: s.served, Live: s.live })
  }
}

export type ServeOptions = Omit<RpcServer.ServeOptions, "handlers" | "streaming">

/** Serves the test service until the Scope closes. */
export const serve = (
  options: ServeOptions = {}
): Effect.Effect<RpcServer.Server, TransportError | ServerConfigError, Scope.Scope> => {
  const streaming = TestStreaming.make()
  return RpcServer.serve({ ...options, handlers: { ...handlers, ...streaming.handlers }, streaming: streaming.streaming })
}
