/**
 * The RPC workload and what it must see: callers making calls with a token of
 * their own through `RpcPool` to simulated servers, some interrupted at
 * random steps, each outcome checked as it lands, and the pool's state and
 * stats checked against what callers saw.
 */
import { Cause, Effect, Exit, Fiber } from "effect"
import { asBytes } from "../../src/msgpackrpc/Decoder.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import type { RpcErrorReason } from "../../src/rpc/RpcError.ts"
import type * as RpcPool from "../../src/rpc/RpcPool.ts"
import type { State } from "../../src/rpc/State.ts"
import type * as RpcServer from "../../src/server/RpcServer.ts"
import type { MuxSession } from "../../src/mux/MuxSession.ts"
import { checkInterrupted, eachCaller, maybeInterrupt, slackMillis } from "./Callers.ts"
import type { Runtime } from "./Runtime.ts"
import type { Scenario } from "./Scenario.ts"
import { field } from "./World.ts"
import type { Sabotage } from "./World.ts"


type Method = "Sim.Echo" | "Sim.Slow" | "Sim.Fail" | "Sim.Die"

interface Call {
  readonly token: string
  readonly method: Method
  readonly address: string
  readonly timeout: number
  readonly payload: number
  /** The byte the payload is filled with. */
  readonly fill: number
  readonly start: number
  fiber: Fiber.Fiber<Value, RpcError> | undefined
  interruptedAt: number | undefined
}

/** Reasons no call here may fail with: the servers speak correctly and every option is valid. */
const impossible: ReadonlySet<RpcErrorReason> = new Set(["ProtocolError", "ReplyMismatch", "InvalidOption", "PoolClosed"])

/** The handlers every simulated server runs. */
export const handlers = (sabotage: Sabotage): Record<string, RpcServer.Handler> => {
  let lastToken = ""
  const echo: RpcServer.Handler = (args) =>
    Effect.suspend(() => {
      const token = field(args, "Token")
      const answer = sabotage.wrongToken === true && lastToken !== "" ? lastToken : token
      lastToken = typeof token === "string" ? token : ""
      return Effect.succeed({ Token: answer, Payload: field(args, "Payload") ?? new Uint8Array(0) })
    })
  return {
    "Sim.Echo": echo,
    "Sim.Slow": (args, context) => Effect.andThen(Effect.sleep(Number(field(args, "Millis") ?? 0)), echo(args, context)),
    "Sim.Fail": (args) => Effect.fail({ message: `fail ${String(field(args, "Token"))}` }),
    "Sim.Die": () => Effect.die(new Error("simulated handler bug"))
  }
}

export class RpcLoad {
  private readonly runtime: Runtime
  private readonly scenario: Scenario
  private readonly pool: RpcPool.RpcPool.Service
  private readonly state: State
  private readonly addresses: ReadonlyArray<string>
  readonly inflight = new Set<Call>()
  /** Every client session seen on the pool, for the end-of-run checks. */
  readonly sessions = new Set<MuxSession>()
  started = 0
  ok = 0
  interrupted = 0
  readonly failures: Partial<Record<RpcErrorReason, number>> = {}

  constructor(runtime: Runtime, scenario: Scenario, pool: RpcPool.RpcPool.Service, state: State, addresses: ReadonlyArray<string>) {
    this.runtime = runtime
    this.scenario = scenario
    this.pool = pool
    this.state = state
    this.addresses = addresses
  }

  /** Calls are timed on the monotonic clock, as the pool times their deadlines. */
  private now(): number {
    return this.runtime.monotonic()
  }

  /** Every caller's calls, one after another per caller, callers side by side. */
  get run(): Effect.Effect<void> {
    return eachCaller(this.scenario.callers, this.scenario.callsPerCaller, (i, j) => this.call(i, j))
  }

  private call(caller: number, n: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      const { prng } = this.runtime
      const think = prng.int(this.scenario.maxThinkMillis + 1)
      if (think > 0) yield* Effect.sleep(think)
      const roll = prng.float()
      const method: Method = roll < 0.6 ? "Sim.Echo" : roll < 0.8 ? "Sim.Slow" : roll < 0.93 ? "Sim.Fail" : "Sim.Die"
      const own = prng.chance(this.scenario.ownTimeoutChance)
      const timeout = own ? prng.range(0, 1500) : this.scenario.pool.callTimeout
      const payload = prng.chance(0.01) ? prng.range(200_000, 300_000) : prng.pick([0, 3, 40, 1500])
      const token = `c${caller}.${n}`
      const call: Call = {
        token,
        method,
        address: prng.pick(this.addresses),
        timeout,
        payload,
        fill: prng.int(256),
        start: this.now(),
        fiber: undefined,
        interruptedAt: undefined
      }
      const args = {
        Token: token,
        Payload: new Uint8Array(payload).fill(call.fill),
        Millis: method === "Sim.Slow" ? prng.range(0, 2 * timeout) : 0
      }
      this.started++
      this.inflight.add(call)
      this.runtime.event(`call ${token} ${method} ${call.address} timeout ${timeout} payload ${payload}`)
      const fiber = yield* Effect.forkChild(
        this.pool.rpc(call.address, method, args, own ? { timeout } : undefined),
        { startImmediately: prng.chance(0.5) }
      )
      call.fiber = fiber
      const exit = yield* Fiber.await(fiber)
      this.inflight.delete(call)
      this.outcome(call, exit)
    })
  }

  /** Called between scheduler steps: sometimes interrupts a call in flight, wherever it is. */
  maybeInterrupt(): void {
    maybeInterrupt(this.runtime, this.scenario.interruptChance, this.inflight)
  }

  private outcome(call: Call, exit: Exit.Exit<Value, RpcError>): void {
    const { runtime } = this
    const now = this.now()
    const elapsed = now - call.start
    // Stalls during the call held its runnable work while the clock ran.
    const late = now - (call.start + call.timeout + runtime.stalledBetween(call.start, now) + slackMillis)
    const what = `${call.token} (${call.method} to ${call.address}, timeout ${call.timeout} ms)`
    if (Exit.isSuccess(exit)) {
      this.ok++
      runtime.event(`ok ${call.token} in ${elapsed}`)
      const token = field(exit.value, "Token")
      const raw = field(exit.value, "Payload")
      // Go's []byte travels in msgpack's str family: valid UTF-8 comes back as a string.
      const payload = typeof raw === "string" || raw instanceof Uint8Array ? asBytes(raw) : raw
      if (token !== call.token) return runtime.violate(`${what} got the reply of another call (token ${String(token)})`)
      if (call.method === "Sim.Fail" || call.method === "Sim.Die") return runtime.violate(`${what} succeeded`)
      if (call.payload > this.scenario.pool.maxMessageSize) {
        return runtime.violate(`${what} decoded a reply over maxMessageSize ${this.scenario.pool.maxMessageSize}`)
      }
      if (!(payload instanceof Uint8Array) || payload.length !== call.payload || payload.some((b) => b !== (call.fill))) {
        return runtime.violate(`${what} got a payload of ${payload instanceof Uint8Array ? payload.length : typeof payload} bytes, sent ${call.payload}`)
      }
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      this.interrupted++
      runtime.event(`interrupted ${call.token} in ${elapsed}`)
      return checkInterrupted(runtime, what, call, now)
    } else {
      const error = Cause.findErrorOption(exit.cause)
      if (error._tag === "None" || !(error.value instanceof RpcError)) {
        return runtime.violate(`${what} ended with a defect: ${Cause.pretty(exit.cause).split("\n")[0]}`)
      }
      const e = error.value
      this.failures[e.reason] = (this.failures[e.reason] ?? 0) + 1
      runtime.event(`failed ${call.token} ${e.reason} in ${elapsed}`)
      if (impossible.has(e.reason)) return runtime.violate(`${what} failed with ${e.reason}: ${e.message}`)
      if (e.reason === "RemoteError") {
        const expected = call.method === "Sim.Fail" ? `fail ${call.token}` : call.method === "Sim.Die" ? "internal error" : undefined
        if (e.detail !== expected) return runtime.violate(`${what} got the remote error "${e.detail}"`)
      }
      if (e.reason === "MessageTooLarge" && call.payload <= this.scenario.pool.maxMessageSize - 64) {
        return runtime.violate(`${what} failed with MessageTooLarge under maxMessageSize`)
      }
      // Within a stall TestClock moves its wall timestamp (which relative sleeps wake on) and its
      // monotonic time (which deadlines are measured on) in different steps, so they may disagree by
      // up to the stall: excused both ways.
      if (e.reason === "CallTimeout" && elapsed < call.timeout - slackMillis - runtime.stalledBetween(call.start, now)) {
        return runtime.violate(`${what} timed out after only ${elapsed} ms`)
      }
      if (e.address !== call.address) return runtime.violate(`${what} failed with an error for ${e.address}`)
    }
    if (late > 0) runtime.violate(`${what} ended ${now - call.start - call.timeout} ms past its deadline`)
  }

  /** While the world runs: the pool's structure and its counters against what callers have seen so far. */
  check(): void {
    const { runtime, state } = this
    const cap = this.scenario.pool.maxStreamsPerSession
    for (const conn of state.conns.values()) {
      this.sessions.add(conn.session)
      if (conn.inUse < 0 || conn.callers < 0) return runtime.violate(`${conn.address}: negative gauges (inUse ${conn.inUse}, callers ${conn.callers})`)
      if (conn.inUse + conn.idleStreams > cap) {
        return runtime.violate(`${conn.address}: ${conn.inUse} streams in use + ${conn.idleStreams} idle over maxStreamsPerSession ${cap}`)
      }
    }
    const stats = state.snapshot()
    for (const a of stats.addresses) {
      if (a.pending < 0 || a.pending > this.scenario.pool.maxPendingCalls) {
        return runtime.violate(`${a.address}: pending ${a.pending} outside [0, ${this.scenario.pool.maxPendingCalls}]`)
      }
    }
    const failed = Object.values(stats.failures).reduce((n, k) => n + (k ?? 0), 0)
    if (stats.ok + failed > stats.calls) return runtime.violate(`stats: ${stats.ok} ok + ${failed} failed > ${stats.calls} calls`)
    if (stats.ok < this.ok) return runtime.violate(`stats: ${stats.ok} ok, callers saw ${this.ok}`)
    if (stats.calls > this.started) return runtime.violate(`stats: ${stats.calls} calls, callers started ${this.started}`)
    if (state.deadlines.size > this.inflight.size) {
      return runtime.violate(`${state.deadlines.size} deadlines registered for ${this.inflight.size} calls in flight`)
    }
  }

  /** Every caller is done: the counters equal what they saw, and nothing is held. */
  settled(): void {
    const { runtime, state } = this
    this.check()
    const stats = state.snapshot()
    if (stats.ok !== this.ok) return runtime.violate(`stats: ${stats.ok} ok, callers saw ${this.ok}`)
    for (const [reason, n] of Object.entries({ ...stats.failures, ...this.failures })) {
      const counted = stats.failures[reason as RpcErrorReason] ?? 0
      const seen = this.failures[reason as RpcErrorReason] ?? 0
      if (counted !== seen) return runtime.violate(`stats: ${counted} ${reason} failures, callers saw ${seen} (${n})`)
    }
    const failed = Object.values(stats.failures).reduce((n, k) => n + (k ?? 0), 0)
    const unaccounted = stats.calls - stats.ok - failed
    if (unaccounted < 0 || unaccounted > this.interrupted) {
      return runtime.violate(`stats: ${stats.calls} calls, ${stats.ok} ok, ${failed} failed, ${this.interrupted} interrupted`)
    }
    if (state.deadlines.size !== 0) return runtime.violate(`${state.deadlines.size} deadlines left with no call in flight`)
    for (const a of stats.addresses) {
      if (a.pending !== 0 || a.callers !== 0 || a.streamsInUse !== 0) {
        return runtime.violate(`${a.address}: pending ${a.pending}, callers ${a.callers}, streams in use ${a.streamsInUse} with no call in flight`)
      }
    }
  }
}
