/**
 * `connpool serve`: the embedded test service on a port until SIGINT/SIGTERM.
 *
 * @since 0.1.0
 */
import { Console, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as TestService from "../server/TestService.ts"
import { exitCleanlyOnSignal, UsageError } from "./exit.ts"
import { protocol, serverTlsFlags, toServerTls } from "./flags.ts"

/** `--host` default: loopback only. */
export const DefaultHost = "127.0.0.1"

/** `--port` default: 0, any free port (printed on the first line). */
export const DefaultPort = 0

export const serve = Command.make(
  "serve",
  {
    host: Flag.String("host").pipe(
      Flag.withDescription(`Address to listen on (default ${DefaultHost})`),
      Flag.withDefault(DefaultHost)
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription(`Port to listen on; 0 picks a free one (default ${DefaultPort})`),
      Flag.withDefault(DefaultPort),
      Flag.filter((n) => n >= 0 && n <= 65535, () => "a port number from 0 to 65535")
    ),
    protocol,
    tls: serverTlsFlags
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toServerTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      yield* exitCleanlyOnSignal
      const server = yield* TestService.serve({
        host: input.host,
        port: input.port,
        protocol: input.protocol,
        ...(tls === undefined ? {} : { tls })
      })
      // The first stdout line is the contract with scripts: `host:port`, nothing else.
      yield* Console.log(server.address)
      yield* Console.error(
        `connpool: serving the test service on ${server.address} (${input.protocol.name}, ${
          tls === undefined ? "plaintext" : "TLS"
        }); SIGINT/SIGTERM stops`
      )
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withShortDescription("Serve the test service until SIGINT/SIGTERM"),
  Command.withDescription(
    [
      "Serves Status.Ping, Status.Leader, Test.Echo, Test.Sleep, Test.Fail and Test.Stats over",
      "yamux + msgpack-rpc, and with --protocol nomad the streaming methods Test.Monitor,",
      "Test.Follow, Test.Exec, Test.Fill and Test.StreamError (see `connpool stream`).",
      "Prints host:port as the first line of stdout, then runs until",
      "SIGINT or SIGTERM, closes every connection and exits 0.",
      "With --tls-cert and --tls-key it serves TLS only (behind the protocol's TLS byte)."
    ].join("\n  ")
  )
)
