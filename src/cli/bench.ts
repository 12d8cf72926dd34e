/**
 * `connpool bench ADDR`: calls through the pool (or, for several servers,
 * through a cluster), by default `Test.Echo` with each reply checked, or any
 * `--method` with `--args`; failures counted by
 * reason without stopping; a warm-up excluded from the figures; Ctrl-C or
 * SIGTERM print the partial figures.
 *
 * @since 0.1.0
 */
import { Console, Duration, Effect, Metric, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as RpcPool from "../rpc/RpcPool.ts"
import type { BenchCall, BenchOptions, BenchResult } from "./benchRun.ts"
import { DefaultCalls, DefaultConcurrency, DefaultMethod, DefaultSize, DefaultWarmup, MaxDrain, runBench } from "./benchRun.ts"
import { parseArgs } from "./call.ts"
import { addresses, hold, idempotent, route } from "./cluster.ts"
import { CliExit, ExitRemote, UsageError } from "./exit.ts"
import { clientTlsFlags, duration, optionalDuration, protocol, timeout, toClientTls } from "./flags.ts"
import { table } from "./json.ts"
import { metricsTable, seriesJson } from "./metrics.ts"

export { BenchNote, DefaultCalls, DefaultConcurrency, DefaultSize, echoMatches, percentile, runBench } from "./benchRun.ts"
export type { BenchOptions, BenchResult } from "./benchRun.ts"

/** One JSON line, keys in the documented order; `null` where the table says n/a; `metrics` only with --metrics. */
export const formatJson = (r: BenchResult, metrics?: ReadonlyArray<Metric.Metric.Snapshot>): string =>
  JSON.stringify({
    calls: r.calls,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
    seconds: r.seconds,
    callsPerSec: r.callsPerSec,
    mbPerSec: r.mbPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    retries: r.retries,
    perServer: r.perServer,
    method: r.method,
    interrupted: r.interrupted,
    ...(metrics === undefined ? {} : { metrics: seriesJson(metrics) })
  })

const figure = (n: number | null, digits: number, unit = ""): string => n === null ? "n/a" : `${n.toFixed(digits)}${unit}`

/** The human summary table. */
export const formatTable = (r: BenchResult, options: Pick<BenchOptions, "concurrency" | "call">): string =>
  table([
    ...(r.interrupted ? [["stopped", "by a signal: partial figures"] as const] : []),
    ["method", r.method],
    ["calls", String(r.calls)],
    ["ok", String(r.ok)],
    ["failed", String(r.failed)],
    ...Object.entries(r.errors).map(([k, n]) => [`  ${k}`, String(n)] as const),
    ["concurrency", String(options.concurrency)],
    ...(options.call?._tag === "Custom" ? [] : [["payload", `${options.call?.size ?? DefaultSize} B`] as const]),
    ["seconds", r.seconds.toFixed(3)],
    ["calls/s", figure(r.callsPerSec, 1)],
    ...(options.call?._tag === "Custom" ? [] : [["MB/s", figure(r.mbPerSec, 3)] as const]),
    ["p50", figure(r.p50Ms, 3, " ms")],
    ["p99", figure(r.p99Ms, 3, " ms")],
    ["retries", String(r.retries)],
    ...Object.entries(r.perServer).map(([server, n]) => [`  ${server}`, String(n)] as const)
  ])

/** Fails with exit 1 (message on stderr) when any call failed. */
export const failOnFailures = (r: BenchResult): Effect.Effect<void, CliExit> =>
  r.failed === 0 || r.interrupted
    ? Effect.void
    : Effect.fail(
      new CliExit({
        code: ExitRemote,
        message: `${r.failed} of ${r.calls} calls failed (${
          Object.entries(r.errors).map(([k, n]) => `${k}: ${n}`).join(", ")
        })`
      })
    )

const positive = (n: number): Option.Option<number> => n >= 1 ? Option.some(n) : Option.none()

export const bench = Command.make(
  "bench",
  {
    addresses,
    method: Flag.String("method").pipe(
      Flag.withMetavar("Service.Method"),
      Flag.withDescription(`Method to call (default ${DefaultMethod} with a random --size payload, each reply checked)`),
      Flag.optional
    ),
    args: Flag.String("args").pipe(
      Flag.withMetavar("JSON"),
      Flag.withDescription("Arguments of every call, as for `call` (default {} with --method; replies are not checked)"),
      Flag.optional
    ),
    calls: Flag.Int("calls").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription(`Number of measured calls (default ${DefaultCalls} unless --duration is given)`),
      Flag.filterMap(positive, () => "an integer of at least 1"),
      Flag.optional
    ),
    duration: optionalDuration("duration", "Keep starting measured calls for this long instead of a fixed number"),
    warmup: duration("warmup", DefaultWarmup, "Calls made first and left out of every figure; 0s for none"),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withMetavar("C"),
      Flag.withDescription(`Calls in flight at once (default ${DefaultConcurrency})`),
      Flag.withDefault(DefaultConcurrency),
      Flag.filterMap(positive, () => "an integer of at least 1")
    ),
    size: Flag.Int("size").pipe(
      Flag.withMetavar("BYTES"),
      Flag.withDescription(`Random payload bytes of the default Test.Echo call (default ${DefaultSize})`),
      Flag.filter((n) => n >= 0, () => "an integer of at least 0"),
      Flag.optional
    ),
    protocol,
    timeout,
    idempotent,
    hold,
    tls: clientTlsFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print one JSON line instead of the progress bar and table"),
      Flag.withDefault(false)
    ),
    metrics: Flag.Boolean("metrics").pipe(
      Flag.withDescription("Print the pool's metric snapshot at the end (OpenTelemetry names; warm-up calls included)"),
      Flag.withDefault(false)
    )
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      if (Option.isSome(input.calls) && Option.isSome(input.duration)) {
        return yield* new UsageError({ message: "give either --calls or --duration, not both" })
      }
      const method = Option.getOrElse(input.method, () => DefaultMethod)
      const custom = Option.isSome(input.args) || method !== DefaultMethod
      if (custom && Option.isSome(input.size)) {
        return yield* new UsageError({ message: "--size sets the default Test.Echo payload; with --method or --args give the payload in --args" })
      }
      const call: BenchCall = custom
        ? { _tag: "Custom", method, args: yield* parseArgs(Option.getOrElse(input.args, () => "{}"), "--args") }
        : { _tag: "Echo", size: Option.getOrElse(input.size, () => DefaultSize) }
      // The echo may run twice, so a cluster retries it after a lost connection too; other methods with --idempotent.
      const r = route({ servers: input.addresses, profile: input.protocol.name, hold: input.hold, idempotent: input.idempotent })
      const options: BenchOptions = {
        address: input.addresses[0]!,
        route: r.cluster ? { ...r, idempotent: r.idempotent || !custom } : undefined,
        calls: Option.getOrUndefined(input.calls),
        duration: Option.getOrUndefined(input.duration),
        warmup: input.warmup,
        concurrency: input.concurrency,
        call,
        timeout: input.timeout,
        progress: !input.json
      }
      // Read before the pool closes (its series leave the registry then), from a registry of this run's own.
      const print = (r: BenchResult) =>
        Effect.flatMap(input.metrics ? Effect.map(Metric.snapshot, Option.some) : Effect.succeedNone, (snapshot) =>
          Console.log(
            input.json
              ? formatJson(r, Option.getOrUndefined(snapshot))
              : Option.match(snapshot, {
                onNone: () => formatTable(r, options),
                onSome: (metrics) => `${formatTable(r, options)}\n${metricsTable(metrics)}`
              })
          ))
      const result = yield* runBench(options, print).pipe(
        Effect.provide(RpcPool.PoolLayer({
          protocol: input.protocol,
          dialTimeout: input.timeout,
          callTimeout: input.timeout,
          ...(tls === undefined ? {} : { tls })
        })),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )
      yield* failOnFailures(result)
    })
).pipe(
  Command.withShortDescription("Benchmark calls to any method, Test.Echo by default"),
  Command.withDescription(
    [
      "Makes calls through the pool with --concurrency in flight and prints their figures.",
      "By default it calls Test.Echo {Payload: random --size bytes, Seq: call number, Note} and checks",
      "each reply carries the same Seq and bytes. With --method M (and --args JSON, default {}) it",
      "calls any method of any server (Consul, Nomad, yours) and counts every reply as ok.",
      "ARGS is JSON as for `call`: {\"$bytes\":\"<base64>\"} for bytes, {\"$time\":\"<RFC 3339>\"} for a Go time.",
      "",
      "First one call alone: if the server cannot be reached the bench stops there (exit 2).",
      `Then --warmup (default ${DefaultWarmup}) of calls left out of every figure, then the measured calls.`,
      "Failures are counted by reason (RpcError reason, or ReplyMismatch) and the run carries on.",
      "",
      "With several servers (a:8300,b:8300) the calls go through a cluster and fail over within",
      "--hold; the echo is marked idempotent, other methods when --idempotent is given.",
      "",
      "--json prints one line: {calls, ok, failed, errors: {Reason: count}, seconds, callsPerSec,",
      "mbPerSec, p50Ms, p99Ms, retries, perServer: {ADDR: calls}, method, interrupted}, and with",
      "--metrics a last key, metrics: [{name, attributes, value} or {name, attributes, count, sum,",
      "min, max} for a histogram (seconds)]: the pool's (and cluster's) series, warm-up included. mbPerSec",
      "counts echo payload bytes of successful calls one way (10^6 bytes), null for other",
      "methods; p50Ms/p99Ms are latencies of successful calls; retries counts a cluster's",
      "failovers and perServer its attempts by server, the warm-up's left out. When no call",
      "succeeded the rates and latencies are null (n/a in the table). Without --json: a progress",
      "bar on stderr and a table on stdout.",
      "",
      `Ctrl-C or SIGTERM: no new calls; those in flight get up to ${Duration.format(MaxDrain)} (or --timeout) to end;`,
      "the partial figures are printed; exit 130 (SIGINT) or 143 (SIGTERM). A second signal exits at once.",
      "",
      "Exit status: 0 when every call succeeded; 1 when any call failed; 2 when the server",
      "cannot be reached at all or on a usage error; 130/143 when stopped by a signal."
    ].join("\n  ")
  ),
  Command.withExamples([
    { command: "connpool bench 127.0.0.1:8300 --duration 10s --concurrency 64", description: "Echo for 10 s" },
    {
      command: "connpool bench 127.0.0.1:8300 --method Catalog.ListNodes --args '{\"Datacenter\":\"dc1\"}'",
      description: "Benchmark a Consul server's catalog"
    }
  ])
)
