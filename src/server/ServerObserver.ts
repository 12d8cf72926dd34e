/**
 * RpcServer's metrics and spans (docs/observability.md): `rpc.server.call.duration`
 * per method and `error.type`, the server's own counts under `connpool.server.*`
 * (read when the metrics are read, from the counters the server keeps), and a
 * SERVER span per call. A method no handler serves is `_OTHER`, so a client
 * sending made-up names cannot grow the registry; its span carries the name
 * it sent in `rpc.method_original`.
 *
 * `error.type` of a call: `MethodNotFound`, the `_tag` of the handler's
 * failure (`HandlerError` when it has none), `InternalError` (the handler
 * died or its reply could not be encoded), `Interrupted` (the client reset
 * the stream), `_OTHER` (the stream broke under the reply).
 *
 * @since 0.1.0
 */
import { Effect, Exit } from "effect"
import type { Cause, Clock, Context } from "effect"
import type * as Observability from "../observability/Observability.ts"
import { CallDurations } from "../observability/CallDurations.ts"
import { Observed } from "../observability/Observed.ts"
import * as S from "../observability/Semconv.ts"
import * as Spans from "../observability/Spans.ts"
import type { Listening } from "../wire/Listener.ts"
import { parseAddress } from "../wire/Transport.ts"
import type { Handler } from "./RpcServer.ts"
import type { Counters } from "./StreamServer.ts"

/** The answer went out, and said the call failed: a span ends failed on it, then it is dropped. */
class Answered {
  readonly errorType: string
  constructor(errorType: string) {
    this.errorType = errorType
  }
}

const spanErrorType = (cause: Cause.Cause<unknown>): string => {
  const failure = cause.reasons[0]
  return failure?._tag === "Fail" && failure.error instanceof Answered ? failure.error.errorType : S.errorTypeOf(cause)
}

/** `client.address` and `client.port` of a `host:port`. */
export const clientAttributes = (remoteAddress: string): Record<string, string | number> => {
  const parsed = parseAddress(remoteAddress)
  return parsed === undefined
    ? { [S.CLIENT_ADDRESS]: remoteAddress }
    : { [S.CLIENT_ADDRESS]: parsed.host, [S.CLIENT_PORT]: parsed.port }
}

export class ServerObserver {
  private readonly observed: Observed | undefined
  private readonly tracing: boolean
  private readonly clock: Clock.Clock
  private readonly handlers: Readonly<Record<string, Handler>>
  private readonly system: string
  private readonly listening: Listening
  /** `rpc.server.call.duration`; undefined with metrics off. */
  private readonly durations: CallDurations | undefined

  constructor(options: {
    readonly context: Context.Context<never>
    readonly config: Observability.Config
    /** `rpc.system.name`: the protocol's name. */
    readonly system: string
    readonly listening: Listening
    readonly counters: Counters
    readonly handlers: Readonly<Record<string, Handler>>
    readonly clock: Clock.Clock
  }) {
    const { counters, listening } = options
    this.tracing = options.config.tracing
    this.clock = options.clock
    this.handlers = options.handlers
    this.system = options.system
    this.listening = listening
    const own = { [S.SERVER_ADDRESS]: listening.host, [S.SERVER_PORT]: String(listening.port) }
    if (!options.config.metrics) {
      this.observed = undefined
      this.durations = undefined
      return
    }
    const observed = new Observed(options.context)
    this.observed = observed
    const durations = new CallDurations(
      observed,
      "rpc.server.call.duration",
      "Duration of inbound RPCs, from the request read to the response written, in seconds.",
      { [S.RPC_SYSTEM_NAME]: options.system, ...own }
    )
    this.durations = durations
    observed.upDown("connpool.server.connections", "Connections open, from accept until closed.", own, () =>
      listening.connections().open)
    observed.upDown("connpool.server.sessions", "yamux sessions alive.", own, () => counters.live)
    observed.upDown("connpool.server.streams", "Streams being served.", own, () => counters.serving)
    observed.counter(
      "connpool.server.connections.refused",
      "Connections closed at accept by maxConns or maxConnsPerClient.",
      own,
      () => listening.connections().refused
    )
    observed.counter(
      "connpool.server.streams.refused",
      "Streams reset at accept by maxStreamsPerSession or maxStreams.",
      own,
      () => counters.refusedStreams
    )
    observed.counter(
      "connpool.server.streams.over_budget",
      "Streams reset because their request bytes would pass a byte budget.",
      own,
      () => counters.overBudget
    )
    observed.counter(
      "connpool.server.internal_errors",
      "Calls answered \"internal error\": the handler died or its reply could not be encoded.",
      own,
      () => counters.internalErrors
    )
    // Every method served has its series from the start, reading a count of 0.
    for (const method of Object.keys(options.handlers)) durations.of(method, undefined)
  }

  /** Runs one call's `answer` (handler, encoding, writing the response) timed and in a SERVER span, as configured. */
  call(method: string, remoteAddress: string, answer: Effect.Effect<string | undefined, unknown>): Effect.Effect<void, unknown> {
    const known = Object.hasOwn(this.handlers, method)
    const name = known ? method : S.OTHER
    const timed = this.durations === undefined ? answer : this.timed(this.durations, name, answer)
    if (!this.tracing) return timed
    const attributes: Record<string, unknown> = {
      [S.RPC_SYSTEM_NAME]: this.system,
      [S.RPC_METHOD]: name,
      [S.SERVER_ADDRESS]: this.listening.host,
      [S.SERVER_PORT]: this.listening.port,
      ...clientAttributes(remoteAddress)
    }
    if (!known) attributes[S.RPC_METHOD_ORIGINAL] = method
    const failed = Effect.flatMap(timed, (errorType) => errorType === undefined ? Effect.void : Effect.fail(new Answered(errorType)))
    // The conventions name a span of an unknown method after the RPC system.
    return Effect.catch(
      Spans.around(failed, known ? method : this.system, { kind: "server", attributes }, spanErrorType),
      (error) => error instanceof Answered ? Effect.void : Effect.fail(error)
    )
  }

  /** The server's Scope closed: its series leave the registry. */
  close(): void {
    this.observed?.remove()
  }

  private timed(
    durations: CallDurations,
    name: string,
    answer: Effect.Effect<string | undefined, unknown>
  ): Effect.Effect<string | undefined, unknown> {
    return Effect.suspend(() => {
      const start = this.clock.monotonicTimeNanosUnsafe()
      return Effect.onExit(answer, (exit) => {
        const seconds = Number(this.clock.monotonicTimeNanosUnsafe() - start) / 1e9
        durations.of(name, Exit.isSuccess(exit) ? exit.value : S.errorTypeOf(exit.cause)).record(seconds)
        return Effect.void
      })
    })
  }
}
