/**
 * `connpool ping ADDR`: the round-trip time of a `Status.Ping` call through the pool.
 *
 * @since 0.1.0
 */
import { Console, Duration, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import * as RpcPool from "../rpc/RpcPool.ts"
import { CliExit, ExitFailure, UsageError } from "./exit.ts"
import { address, clientTlsFlags, protocol, timeout, toClientTls } from "./flags.ts"

/** `1.23 ms`: milliseconds with two decimals. */
export const formatRtt = (rtt: Duration.Duration): string => `${Duration.toMillis(rtt).toFixed(2)} ms`

export const ping = Command.make(
  "ping",
  {
    address,
    protocol,
    timeout,
    tls: clientTlsFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print {\"address\":ADDR,\"rttMs\":N} instead"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      // The first ping pays for the dial and a cold JIT; the second measures the round trip.
      const once = RpcPool.ping(input.address, { timeout: input.timeout })
      const rtt = yield* Effect.andThen(once, once).pipe(
        Effect.timeoutOrElse({
          duration: input.timeout,
          orElse: () =>
            Effect.fail(
              new CliExit({
                code: ExitFailure,
                message: `no ping reply from ${input.address} within ${Duration.format(input.timeout)}`
              })
            )
        }),
        Effect.provide(RpcPool.PoolLayer({
          protocol: input.protocol,
          dialTimeout: input.timeout,
          callTimeout: input.timeout,
          ...(tls === undefined ? {} : { tls })
        }))
      )
      yield* Console.log(
        input.json
          ? JSON.stringify({ address: input.address, rttMs: Math.round(Duration.toMillis(rtt) * 1000) / 1000 })
          : formatRtt(rtt)
      )
    })
).pipe(
  Command.withShortDescription("Print the round-trip time to a server"),
  Command.withDescription(
    [
      "Connects, makes one warm-up Status.Ping call, then times a second one; prints e.g. `1.23 ms`.",
      "Exit status: 0 on a reply; 2 on a connection, TLS or protocol error or no reply within --timeout."
    ].join("\n  ")
  )
)
