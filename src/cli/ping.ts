/**
 * `connpool ping ADDR`: the round-trip time of a `Status.Ping` call through the pool (or, for
 * several servers, through a cluster).
 *
 * @since 0.1.0
 */
import { Clock, Console, Duration, Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { byName as profiles } from "../cluster/Profile.ts"
import type { ProfileName } from "../cluster/Profile.ts"
import * as RpcPool from "../rpc/RpcPool.ts"
import { addresses, hold, route, target } from "./cluster.ts"
import type { Route } from "./cluster.ts"
import { CliExit, ExitFailure, UsageError } from "./exit.ts"
import { clientTlsFlags, protocol, timeout, toClientTls } from "./flags.ts"

const holdOf = (profile: ProfileName): Duration.Duration => profiles[profile].holdTimeout

/** `1.23 ms`: milliseconds with two decimals. */
export const formatRtt = (rtt: Duration.Duration): string => `${Duration.toMillis(rtt).toFixed(2)} ms`

export const ping = Command.make(
  "ping",
  {
    addresses,
    protocol,
    timeout,
    hold,
    tls: clientTlsFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print {\"address\":ADDR,\"rttMs\":N} instead (ADDR: the server that answered)"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      // One server without --hold is pinged directly, as the help says (a refused dial fails at
      // once, not after the hold); Status.Ping may always run twice, so a cluster retries it after
      // a lost connection too.
      const r: Route = {
        ...route({ servers: input.addresses, profile: input.protocol.name, hold: input.hold, idempotent: false }),
        idempotent: true
      }
      // Within --timeout per attempt, plus the hold through a cluster.
      const limit = Duration.sum(input.timeout, r.cluster ? r.holdTimeout ?? holdOf(r.profile) : Duration.zero)
      const { rtt, server } = yield* Effect.gen(function*() {
        const t = yield* target(r)
        // The first ping pays for the dial and a cold JIT; the second measures the round trip.
        const once = Effect.andThen(Clock.currentTimeNanos, (start) =>
          Effect.andThen(t.rpc("Status.Ping", {}, input.timeout), Effect.map(Clock.currentTimeNanos, (end) => end - start)))
        const nanos = yield* Effect.andThen(once, once)
        return { rtt: Duration.nanos(nanos), server: yield* t.current }
      }).pipe(
        Effect.scoped,
        Effect.timeoutOrElse({
          duration: limit,
          orElse: () =>
            Effect.fail(
              new CliExit({
                code: ExitFailure,
                message: `no ping reply from ${input.addresses.join(",")} within ${Duration.format(limit)}`
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
          ? JSON.stringify({ address: server, rttMs: Math.round(Duration.toMillis(rtt) * 1000) / 1000 })
          : formatRtt(rtt)
      )
    })
).pipe(
  Command.withShortDescription("Print the round-trip time to a server"),
  Command.withDescription(
    [
      "Connects, makes one warm-up Status.Ping call, then times a second one; prints e.g. `1.23 ms`.",
      "With several servers (a:8300,b:8300) the pings go through a cluster and fail over within",
      "--hold; --json's address is the server that answered.",
      "Exit status: 0 on a reply; 2 on a connection, TLS or protocol error or no reply within --timeout",
      "(plus --hold through a cluster)."
    ].join("\n  ")
  )
)
