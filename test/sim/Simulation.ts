/**
 * One seed, start to end: draw the scenario, build the world (servers, the
 * RPC pool, the ConnPool, the chaos fiber) on the simulator's Runtime, run the
 * workload, shut everything down, and check that nothing outlived its scope.
 */
import { Clock, Context, Effect, Fiber, Metric, Random, References, Scheduler, Scope } from "effect"
import { TestClock } from "effect/testing"
import { resetForReplay } from "../../src/msgpackrpc/StreamClient.ts"
import type { MuxSession } from "../../src/mux/MuxSession.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { stateOf } from "../../src/rpc/State.ts"
import { Connector } from "../../src/wire/ByteTransport.ts"
import { steppedClock } from "../yamux/steppedClock.ts"
import { inject } from "./Chaos.ts"
import { ClusterLoad } from "./ClusterLoad.ts"
import { KvLoad } from "./KvLoad.ts"
import { Prng } from "./Prng.ts"
import { handlers, RpcLoad } from "./RpcLoad.ts"
import { Runtime } from "./Runtime.ts"
import type { Tuning } from "./Runtime.ts"
import { draw } from "./Scenario.ts"
import type { Scenario } from "./Scenario.ts"
import { connector, Network, SimServer } from "./World.ts"
import type { Sabotage } from "./World.ts"

export interface Options {
  /** Keep the trace in words (for `--seed`). */
  readonly trace?: boolean | undefined
  readonly sabotage?: Sabotage | undefined
  readonly maxSteps?: number | undefined
  /** Real milliseconds one seed may take. */
  readonly realTimeLimit?: number | undefined
}

export interface Result {
  readonly seed: number
  /** Why the seed failed; undefined when it passed. */
  readonly failure: string | undefined
  /** FNV-1a of every scheduling choice and event: equal for two runs of one seed. */
  readonly hash: string
  readonly steps: number
  readonly simMillis: number
  readonly calls: number
  /** Calls made on the `RpcCluster` (0 when the seed runs none). */
  readonly clusterCalls: number
  readonly trace: ReadonlyArray<string> | undefined
  readonly scenario: Scenario
  readonly runtime: Runtime
}

/** Steps between checks of the structural invariants: every step (measured: no cost above noise, 500 seeds in 7.8-8.9 s of CPU either way). */
export const checkEvery = 1

const drawTuning = (prng: Prng): Tuning => ({
  fifoBias: prng.pick([0, 0.5, 0.9]),
  maxOps: prng.pick([16, 128, 2048]),
  delayChance: prng.pick([0, 0.05, 0.3]),
  maxDelayMillis: prng.pick([1, 20, 200])
})

/** What `seed` builds, without running it (as `runSeed` draws it). */
export const scenarioOf = (seed: number): Scenario => draw(new Prng(seed).fork())

export const runSeed = async (seed: number, options: Options = {}): Promise<Result> => {
  // The Seq counter and the shared encoder's slab shape the bytes on the wire: every seed starts from the same.
  resetForReplay()
  const prng = new Prng(seed)
  const scenario = draw(prng.fork())
  const runtime = new Runtime(prng.fork(), drawTuning(prng.fork()), options.trace === true)
  const network = new Network(runtime, scenario)
  const sabotage = options.sabotage ?? {}
  const servers = new Map<string, SimServer>()
  let load: RpcLoad | undefined
  let kv: KvLoad | undefined
  const addresses = Array.from({ length: scenario.servers }, (_, i) => `127.0.0.1:${9001 + i}`)
  const cluster = scenario.cluster.enabled ? new ClusterLoad(runtime, scenario, addresses, sabotage) : undefined

  const world = Effect.gen(function*() {
    runtime.runFork = Effect.runForkWith(yield* Effect.context<never>())
    const worldScope = yield* Scope.make()
    const simHandlers = { ...handlers(sabotage), ...cluster?.handlers() }
    for (let i = 0; i < scenario.servers; i++) {
      const server = new SimServer(network, 9001 + i, simHandlers, worldScope)
      servers.set(server.address, server)
      yield* server.start
    }
    const poolScope = yield* Scope.fork(worldScope)
    const p = scenario.pool
    const makePool = RpcPool.make({
      callTimeout: p.callTimeout,
      dialTimeout: p.dialTimeout,
      maxTime: p.maxTime,
      reapInterval: p.reapInterval,
      maxStreams: p.maxStreams,
      maxStreamsPerSession: p.maxStreamsPerSession,
      maxPendingCalls: p.maxPendingCalls,
      maxMessageSize: p.maxMessageSize,
      session: {
        enableKeepAlive: p.keepAlive,
        keepAliveInterval: p.keepAliveInterval,
        connectionWriteTimeout: p.writeTimeout,
        streamOpenTimeout: p.streamOpenTimeout,
        streamCloseTimeout: p.streamCloseTimeout
      }
    }).pipe(Effect.provideService(Connector, connector(network, servers)), Effect.orDie)
    const pool = yield* Scope.provide(makePool, poolScope)
    const state = stateOf.get(pool)!
    load = new RpcLoad(runtime, scenario, pool, state, [...servers.keys()])
    const kvScope = yield* Scope.fork(worldScope)
    if (scenario.kv.enabled) {
      kv = new KvLoad(runtime, scenario, network)
      yield* Scope.provide(kv.make, kvScope)
    }
    // The cluster's own pool and the cluster, in a Scope closed before the RPC pool's.
    const clusterScope = yield* Scope.fork(worldScope)
    let clusterState: ReturnType<typeof stateOf.get>
    if (cluster !== undefined) {
      const clusterPool = yield* Scope.provide(makePool, clusterScope)
      clusterState = stateOf.get(clusterPool)!
      yield* Scope.provide(cluster.make(clusterPool, clusterState), clusterScope)
    }
    const chaos = yield* Effect.forkChild(inject(runtime, scenario, network, servers, kv))
    // Seeds without a cluster run exactly the workloads (and fibers) they ran before it existed.
    const runs = [load.run, kv?.run ?? Effect.void]
    if (cluster !== undefined) runs.push(cluster.run)
    yield* Effect.all(runs, { concurrency: runs.length, discard: true })
    yield* Fiber.interrupt(chaos)
    runtime.event("workload done")
    load.settled()
    kv?.settled()
    if (cluster !== undefined) yield* cluster.settled
    yield* Scope.close(clusterScope, { _tag: "Success", value: undefined } as never)
    if (clusterState !== undefined && clusterState.conns.size !== 0) {
      runtime.violate(`${clusterState.conns.size} sessions mapped after the cluster's pool closed`)
    }
    yield* Scope.close(poolScope, { _tag: "Success", value: undefined } as never)
    yield* Scope.close(kvScope, { _tag: "Success", value: undefined } as never)
    runtime.event("pools closed")
    if (state.conns.size !== 0) runtime.violate(`${state.conns.size} sessions mapped after the pool closed`)
    kv?.closed()
    yield* Scope.close(worldScope, { _tag: "Success", value: undefined } as never)
    runtime.event("servers closed")
  })

  const program = Effect.gen(function*() {
    const testClock = (yield* Clock.Clock) as TestClock.TestClock
    runtime.testClock = testClock
    yield* Effect.provideService(world, Clock.Clock, runtime.clock(yield* steppedClock, testClock))
  }).pipe(Effect.provide(TestClock.layer()), Random.withSeed(seed))

  const context = Context.make(Scheduler.Scheduler, runtime.scheduler).pipe(
    Context.add(Metric.FiberRuntimeMetrics, runtime.fiberMetrics),
    // Handlers that die log a warning with their cause: counted by the server, not printed.
    Context.add(References.MinimumLogLevel, "None")
  )
  const root = Effect.runForkWith(context)(program)
  const stopped = await runtime.drive(root, {
    maxSteps: options.maxSteps ?? 2_000_000,
    realDeadline: performance.now() + (options.realTimeLimit ?? 30_000),
    checkEvery,
    onStep: () => {
      load?.check()
      kv?.check()
      cluster?.check()
    },
    afterStep: () => {
      load?.maybeInterrupt()
      cluster?.maybeInterrupt()
    }
  })
  if (stopped !== undefined) runtime.violate(stopped)
  if (runtime.failed === undefined) {
    const exit = root.pollUnsafe()
    if (exit !== undefined && exit._tag === "Failure") runtime.violate(`the world failed: ${String(exit.cause)}`)
    else leftovers(runtime, network, servers, [...(load?.sessions ?? []), ...(cluster?.sessions ?? [])])
  }
  return {
    seed,
    failure: runtime.failed,
    hash: runtime.hash.toString(16).padStart(8, "0"),
    steps: runtime.steps,
    simMillis: runtime.now(),
    calls: load?.started ?? 0,
    clusterCalls: cluster?.began ?? 0,
    trace: runtime.trace,
    runtime,
    scenario
  }
}

/** After the world closed: no timer, fiber, stream, session or byte left anywhere. */
const leftovers = (runtime: Runtime, network: Network, servers: ReadonlyMap<string, SimServer>, clientSessions: ReadonlyArray<MuxSession>) => {
  if (runtime.pendingSleeps !== 0) {
    const sites = [...runtime.sleepSites].map((s) => s.text).join("; ")
    return runtime.violate(`${runtime.pendingSleeps} timers still pending${sites === "" ? " (replay the seed to see where they began)" : `: ${sites}`}`)
  }
  if (runtime.liveFibers !== 0) return runtime.violate(`${runtime.liveFibers} fibers still alive`)
  for (const link of network.links) {
    if (!link.client.destroyed || !link.server.destroyed) {
      return runtime.violate(`link ${link.id} (${link.name}) still open (client ${link.client.destroyed ? "closed" : "open"}, server ${link.server.destroyed ? "closed" : "open"})`)
    }
    if (link.client.writableLength !== 0 || link.server.writableLength !== 0) return runtime.violate(`link ${link.id} still buffers bytes`)
  }
  for (const session of clientSessions) {
    if (!session.isClosed || session.numStreams !== 0) return runtime.violate(`a client session left with ${session.numStreams} streams (closed: ${session.isClosed})`)
  }
  for (const server of servers.values()) {
    for (const session of server.sessions) {
      if (!session.isClosed || session.numStreams !== 0) {
        return runtime.violate(`a session of ${server.address} left with ${session.numStreams} streams (closed: ${session.isClosed})`)
      }
    }
    for (const instance of server.instances) {
      const limits = instance.limitStats()
      if (limits.servingStreams !== 0 || limits.bufferedBytes !== 0 || instance.stats().live !== 0) {
        return runtime.violate(`${server.address}: ${limits.servingStreams} streams serving, ${limits.bufferedBytes} bytes held, ${instance.stats().live} sessions live after close`)
      }
    }
  }
}
