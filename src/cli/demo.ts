/**
 * `connpool demo` (`npm start`): the embedded server on loopback, a bench
 * against it through the pool, then the results and the pool's stats.
 *
 * @since 0.1.0
 */
import { Console, Duration, Effect } from "effect"
import { Command } from "effect/cli"
import * as RpcPool from "../rpc/RpcPool.ts"
import * as TestService from "../server/TestService.ts"
import { failOnFailures, formatTable, runBench } from "./bench.ts"
import type { BenchOptions } from "./bench.ts"
import { flatten, table } from "./json.ts"

/** Calls the demo makes. */
export const DemoCalls = 5_000

/** Calls in flight during the demo. */
export const DemoConcurrency = 16

/** Payload bytes per demo call. */
export const DemoSize = 1024

/** Warm-up before the demo measures, as `bench`'s default. */
export const DemoWarmup = Duration.seconds(1)

/** Per-call timeout of the demo. */
export const DemoTimeout = Duration.seconds(10)

export const demo = Command.make("demo", {}, () =>
  Effect.gen(function*() {
    const server = yield* TestService.serve({ host: "127.0.0.1", port: 0 })
    yield* Console.log(`server   ${server.address} (consul, plaintext)`)
    yield* Console.log(
      `bench    ${DemoCalls} Test.Echo calls, ${DemoConcurrency} in flight, ${DemoSize} B payloads\n`
    )
    // The pool lives inside the server's scope so it closes first and the
    // server sees clean session ends rather than lost connections.
    yield* Effect.gen(function*() {
      const options: BenchOptions = {
        address: server.address,
        calls: DemoCalls,
        concurrency: DemoConcurrency,
        call: { _tag: "Echo", size: DemoSize },
        warmup: DemoWarmup,
        timeout: DemoTimeout,
        progress: true
      }
      // Printed from runBench, so Ctrl-C still shows what was measured.
      const result = yield* runBench(options, (r) =>
        Effect.gen(function*() {
          yield* Console.log(formatTable(r, options))
          const stats = yield* RpcPool.stats
          yield* Console.log(`\npool stats\n${table(flatten(stats), "  ")}`)
        }))
      yield* failOnFailures(result)
    }).pipe(Effect.provide(RpcPool.PoolLayer({ callTimeout: DemoTimeout })))
  }).pipe(Effect.scoped)).pipe(
    Command.withShortDescription("Serve on loopback, bench it, print the results and pool stats"),
    Command.withDescription(
      [
        "Starts the embedded test server on 127.0.0.1, runs a bench against it through the pool",
        `(1 s warm-up, ${DemoCalls} calls, concurrency ${DemoConcurrency}, ${DemoSize} B) with a progress bar on`,
        "stderr, then prints the summary and the pool's stats. What `npm start` runs."
      ].join("\n  ")
    )
  )
