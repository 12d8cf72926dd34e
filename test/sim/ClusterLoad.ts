/**
 * The cluster workload and what it must see: callers making `RpcCluster`
 * calls (some idempotent, some not) with a token of their own over the
 * simulated servers, through a pool of the cluster's own, while the chaos
 * runs; servers count how often each token's handler ran, and sometimes
 * answer `No cluster leader` instead. Each outcome is checked as it lands
 * against docs/cluster.md's retry table, and the cluster's stats against
 * what callers saw once they are done.
 */
import { Cause, Effect, Exit, Fiber, Schedule } from "effect"
import type { Scope } from "effect"
import { ClusterError } from "../../src/cluster/ClusterError.ts"
import { noLeaderText } from "../../src/cluster/Classify.ts"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import type { MuxSession } from "../../src/mux/MuxSession.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import { RpcPool } from "../../src/rpc/RpcPool.ts"
import type { State } from "../../src/rpc/State.ts"
import type * as RpcServer from "../../src/server/RpcServer.ts"
import { checkInterrupted, eachCaller, maybeInterrupt, slackMillis } from "./Callers.ts"
import type { Runtime } from "./Runtime.ts"
import type { Scenario } from "./Scenario.ts"
import { field } from "./World.ts"
import type { Sabotage } from "./World.ts"

type Method = "Cluster.Read" | "Cluster.Write"


interface Call {
  readonly token: string
  readonly method: Method
  readonly idempotent: boolean
  readonly start: number
  /** The servers the pool was asked to call, in order (what the error's attempts must list). */
  readonly tried: Array<string>
  fiber: Fiber.Fiber<Value, ClusterError> | undefined
  ok: boolean
  interruptedAt: number | undefined
}

/** Reasons no cluster call here may fail with: the servers speak correctly and every option is valid. */
const impossible: ReadonlySet<string> = new Set(["ProtocolError", "ReplyMismatch", "InvalidOption", "PoolClosed"])

export class ClusterLoad {
  private readonly runtime: Runtime
  private readonly scenario: Scenario
  private readonly addresses: ReadonlyArray<string>
  private readonly sabotage: Sabotage
  /** Handler runs by token, over every server and restart. */
  readonly ran = new Map<string, number>()
  readonly calls = new Map<string, Call>()
  readonly inflight = new Set<Call>()
  /** Every client session seen on the cluster's pool, for the end-of-run checks. */
  readonly sessions = new Set<MuxSession>()
  cluster: RpcCluster.RpcCluster.Service | undefined = undefined
  state: State | undefined = undefined
  began = 0
  ok = 0
  failed = 0
  interrupted = 0
  /** Attempts the pool was asked for, over all calls. */
  attempts = 0

  constructor(runtime: Runtime, scenario: Scenario, addresses: ReadonlyArray<string>, sabotage: Sabotage) {
    this.runtime = runtime
    this.scenario = scenario
    this.addresses = addresses
    this.sabotage = sabotage
  }

  private now(): number {
    return this.runtime.monotonic()
  }

  /** What every server answers beside the RpcLoad's methods. */
  handlers(): Record<string, RpcServer.Handler> {
    const { runtime } = this
    const { maxHandlerMillis, noLeaderChance } = this.scenario.cluster
    const run: RpcServer.Handler = (args) =>
      Effect.suspend(() => {
        const token = String(field(args, "Token"))
        // Consul refuses before running the handler: nothing changed, the client may go elsewhere.
        if (runtime.prng.chance(noLeaderChance)) return Effect.fail({ message: noLeaderText })
        const n = (this.ran.get(token) ?? 0) + 1
        this.ran.set(token, n)
        runtime.event(`ran ${token} (${n})`)
        const call = this.calls.get(token)
        if (n > 1 && call !== undefined && !call.idempotent) runtime.violate(`${token} (not idempotent) ran ${n} times`)
        const millis = runtime.prng.int(maxHandlerMillis + 1)
        return Effect.as(millis > 0 ? Effect.sleep(millis) : Effect.void, { Token: token })
      })
    return {
      "Cluster.Read": run,
      "Cluster.Write": run,
      "Status.Ping": () => Effect.succeed({}),
      "Status.Peers": () => Effect.succeed([...this.addresses])
    }
  }

  /** The pool the cluster calls through: the real one, with each attempt of a call recorded under its token. */
  private recording(pool: RpcPool.Service): RpcPool.Service {
    return {
      ...pool,
      rpc: (address, method, args, options) => {
        const call = this.calls.get(String(field(args as Value, "Token")))
        if (call !== undefined && method === call.method) {
          call.tried.push(address)
          this.attempts++
        }
        return pool.rpc(address, method, args, options)
      }
    }
  }

  /** The cluster over `pool`, in the current Scope: seeds, timers and discovery as the scenario says. */
  make(pool: RpcPool.Service, state: State): Effect.Effect<void, never, Scope.Scope> {
    const c = this.scenario.cluster
    this.state = state
    return RpcCluster.make({
      servers: this.addresses.slice(0, c.seeds),
      holdTimeout: c.holdMillis,
      rebalance: c.rebalanceMillis === undefined ? false : Schedule.spaced(c.rebalanceMillis),
      discovery: c.discoveryMillis === undefined ? false : { schedule: Schedule.spaced(c.discoveryMillis) },
      pingTimeout: c.pingTimeout,
      observability: { metrics: false }
    }).pipe(
      Effect.provideService(RpcPool, this.recording(pool)),
      Effect.orDie,
      Effect.map((cluster) => {
        this.cluster = cluster
      })
    )
  }

  /** Every caller's calls, one after another per caller, callers side by side. */
  get run(): Effect.Effect<void> {
    return eachCaller(this.scenario.cluster.callers, this.scenario.cluster.callsPerCaller, (i, j) => this.call(i, j))
  }

  private call(caller: number, n: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      const { prng } = this.runtime
      const think = prng.int(this.scenario.maxThinkMillis + 1)
      if (think > 0) yield* Effect.sleep(think)
      const idempotent = prng.chance(this.scenario.cluster.idempotentChance)
      const call: Call = {
        token: `k${caller}.${n}`,
        method: idempotent ? "Cluster.Read" : "Cluster.Write",
        idempotent,
        start: this.now(),
        tried: [],
        fiber: undefined,
        ok: false,
        interruptedAt: undefined
      }
      this.calls.set(call.token, call)
      this.began++
      this.inflight.add(call)
      this.runtime.event(`cluster call ${call.token} ${call.method}`)
      const fiber = yield* Effect.forkChild(
        this.cluster!.rpc(call.method, { Token: call.token }, { idempotent: idempotent || this.sabotage.retryWrites === true }),
        { startImmediately: prng.chance(0.5) }
      )
      call.fiber = fiber
      const exit = yield* Fiber.await(fiber)
      this.inflight.delete(call)
      this.outcome(call, exit)
    })
  }

  /** Called between scheduler steps: sometimes interrupts a cluster call in flight, wherever it is. */
  maybeInterrupt(): void {
    maybeInterrupt(this.runtime, this.scenario.interruptChance, this.inflight)
  }

  private outcome(call: Call, exit: Exit.Exit<Value, ClusterError>): void {
    const { runtime } = this
    const now = this.now()
    const elapsed = now - call.start
    const { holdMillis } = this.scenario.cluster
    const what = `cluster call ${call.token} (${call.method}, ${call.tried.length} attempts: ${call.tried.join(" ")})`
    // Each attempt's timer and backoff may round by the slack; stalls held runnable work while time ran.
    const bound = holdMillis + this.scenario.pool.callTimeout + runtime.stalledBetween(call.start, now) +
      slackMillis * (call.tried.length + 1)
    if (Exit.isSuccess(exit)) {
      this.ok++
      call.ok = true
      runtime.event(`cluster ok ${call.token} in ${elapsed}`)
      const token = field(exit.value, "Token")
      if (token !== call.token) return runtime.violate(`${what} got the reply of another call (token ${String(token)})`)
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
      runtime.event(`cluster interrupted ${call.token} in ${elapsed}`)
      return checkInterrupted(runtime, what, call, now)
    } else {
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "None" || !(error.value instanceof ClusterError)) {
        return runtime.violate(`${what} ended with a defect: ${Cause.pretty(exit.cause).split("\n")[0]}`)
      }
      const e = error.value
      this.failed++
      runtime.event(`cluster failed ${call.token} ${e.reason} after ${e.attempts.length} attempts in ${elapsed}`)
      if (impossible.has(e.reason)) return runtime.violate(`${what} failed with ${e.reason}: ${e.message}`)
      if (e.attempts.length === 0 || !(e.cause instanceof RpcError)) return runtime.violate(`${what} failed with no attempt listed: ${e.message}`)
      const listed = e.attempts.map((a) => a.server).join(" ")
      if (listed !== call.tried.join(" ")) return runtime.violate(`${what} lists its attempts as ${listed}`)
      if (e.address !== e.attempts[e.attempts.length - 1]!.server) return runtime.violate(`${what} names ${e.address}, not its last attempt`)
      for (const [i, a] of e.attempts.entries()) {
        if (i === e.attempts.length - 1) break
        // Retried after sending: only a call marked idempotent, or one the server refused to run.
        if (a.sent && !call.idempotent && !(a.reason === "RemoteError" && a.detail.includes(noLeaderText))) {
          return runtime.violate(`${what} was retried after attempt ${i + 1} (${a.reason}, sent) though not idempotent`)
        }
      }
      if (e.reason === "RemoteError" && (e.detail !== noLeaderText || !e.exhausted)) {
        return runtime.violate(`${what} failed with the remote error "${e.detail}" (exhausted: ${e.exhausted})`)
      }
    }
    if (elapsed > bound) runtime.violate(`${what} ended after ${elapsed} ms, past hold ${holdMillis} + call timeout ${this.scenario.pool.callTimeout}`)
  }

  /** While the world runs: the cluster pool's sessions, for the end-of-run checks. */
  check(): void {
    for (const conn of this.state?.conns.values() ?? []) this.sessions.add(conn.session)
  }

  /** Every caller is done: handler runs per token and the cluster's stats against what callers saw. */
  get settled(): Effect.Effect<void> {
    return Effect.suspend(() => this.cluster === undefined ? Effect.void : Effect.map(this.cluster.stats, (stats) => {
      const { runtime } = this
      this.check()
      for (const call of this.calls.values()) {
        const ran = this.ran.get(call.token) ?? 0
        if (!call.idempotent && ran > 1) return runtime.violate(`${call.token} (not idempotent) ran ${ran} times`)
        if (call.ok && ran === 0) return runtime.violate(`${call.token} succeeded, but no server ran it`)
      }
      const n = this.interrupted
      // Interrupted calls may end between a counter and the caller seeing it: they loosen each bound by one.
      if (stats.calls > this.began || stats.calls < this.began - n) {
        return runtime.violate(`cluster stats: ${stats.calls} calls, callers began ${this.began} (${n} interrupted)`)
      }
      if (stats.failed < this.failed || stats.failed > this.failed + n) {
        return runtime.violate(`cluster stats: ${stats.failed} failed, callers saw ${this.failed} (${n} interrupted)`)
      }
      if (stats.calls < this.ok + this.failed) return runtime.violate(`cluster stats: ${stats.calls} calls, callers saw ${this.ok} ok and ${this.failed} failed`)
      let retried = 0
      for (const call of this.calls.values()) retried += Math.max(0, call.tried.length - 1)
      if (stats.retries < retried || stats.retries > retried + n) {
        return runtime.violate(`cluster stats: ${stats.retries} retries, callers' calls were retried ${retried} times (${n} interrupted)`)
      }
      const sent = stats.servers.reduce((k, s) => k + s.calls, 0)
      if (sent !== this.attempts) return runtime.violate(`cluster stats: ${sent} attempts by server, the pool was asked for ${this.attempts}`)
    }))
  }
}
