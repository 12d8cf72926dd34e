/**
 * Servers for the cluster's TestClock suites: the embedded test service on
 * loopback, one per "node", each with a switch that makes it answer
 * `No cluster leader` to everything but `Status.Ping` (as a Consul server
 * does during an election), a `Status.Peers` answer the test sets, and a
 * drop mode in which `Test.Echo` closes the caller's session after the
 * request arrived (a server dying mid-call). The servers run in this
 * process, so TestClock drives their `Test.Sleep` too; loopback I/O is let
 * through between clock steps with `settle`/`waitFor` (setImmediate turns,
 * never timers).
 */
import { assert } from "@effect/vitest"
import { Effect, Exit, Layer, Random, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as net from "node:net"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"

/** One event-loop turn, so loopback I/O can flow. Not a timer. */
export const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

export const settle = (turns = 10) => Effect.repeat(flush, { times: turns - 1 })

/** Lets I/O flow until `condition` holds (bounded by turns, not by time). */
export const waitFor = <E, R>(condition: Effect.Effect<boolean, E, R>, what: string, turns = 3000) =>
  Effect.gen(function*() {
    for (let i = 0; i < turns; i++) {
      if (yield* condition) return
      yield* flush
    }
    assert.fail(`gave up waiting for ${what}`)
  })

/** Keepalive pings need real round trips; suites that move the clock far turn them off. */
export const quiet = { enableKeepAlive: false } as const

export type Mode = "ok" | "noLeader" | "drop"

export interface Node {
  readonly address: string
  readonly server: RpcServer.Server
  /** What the node does with calls now. */
  mode: Mode
  /** What `Status.Peers` answers; undefined answers the node's own address. */
  peers: Value | undefined
  /** Stops listening and closes every session, as a killed server would. */
  readonly stop: Effect.Effect<void>
}

const noLeader = { message: "No cluster leader" }

/** A node on a free loopback port, stopped when the test's Scope closes (if not before). */
export const node: Effect.Effect<Node, unknown, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Scope.make()
  yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
  const state: { mode: Mode; peers: Value | undefined } = { mode: "ok", peers: undefined }
  const handlers: Record<string, RpcServer.Handler> = {
    ...TestService.handlers,
    "Status.Peers": (_, { server }) => Effect.succeed(state.peers ?? [server.address]),
    "Test.Echo": (args, context) =>
      state.mode === "drop"
        ? Effect.as(context.session.close, {})
        : TestService.handlers["Test.Echo"]!(args, context)
  }
  for (const [method, handler] of Object.entries(handlers)) {
    if (method === "Status.Ping") continue
    handlers[method] = (args, context) => state.mode === "noLeader" ? Effect.fail(noLeader) : handler(args, context)
  }
  const server = yield* RpcServer.serve({ session: quiet, handlers }).pipe(Scope.provide(scope))
  const n: Node = {
    address: server.address,
    server,
    get mode() {
      return state.mode
    },
    set mode(mode: Mode) {
      state.mode = mode
    },
    get peers() {
      return state.peers
    },
    set peers(peers: Value | undefined) {
      state.peers = peers
    },
    stop: Scope.close(scope, Exit.void)
  }
  return n
})

export const nodes = (n: number) => Effect.all(Array.from({ length: n }, () => node))

/** A loopback port nothing listens on: dials to it are refused at once. */
export const closedPort: Effect.Effect<string> = Effect.promise(() =>
  new Promise<string>((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(`127.0.0.1:${port}`))
    })
  })
)

/**
 * A `Random` that always draws `u`. With u close to 1 a shuffle leaves the
 * order as it is; 0.5 makes every backoff the midpoint of its range.
 */
export const fixedRandom = (u: number): Random.Random => ({
  nextDoubleUnsafe: () => u,
  nextIntUnsafe: () => Math.floor(u * Number.MAX_SAFE_INTEGER)
})

/** Draws that keep every shuffle as it is. */
export const noShuffle = fixedRandom(0.999999)

/** The cluster over its own pool (keepalive off), exposing both. The pool's options are valid: a refusal is a defect. */
export const clusterLayer = (options: RpcCluster.RpcCluster.Options) =>
  RpcCluster.layer({ discovery: false, rebalance: false, ...options }).pipe(
    Layer.provideMerge(Layer.orDie(RpcPool.PoolLayer({ session: quiet })))
  )

/** Total failed attempts the cluster has seen so far. */
export const failures = RpcCluster.stats.pipe(
  Effect.map((s) => s.servers.reduce((n, server) => n + server.failures, 0))
)

/**
 * Advances the TestClock in `step` ms increments, letting I/O flow between
 * steps, until `condition` holds or `maxMillis` have passed.
 */
export const driveUntil = <R>(condition: Effect.Effect<boolean, never, R>, maxMillis: number, step = 50) =>
  Effect.gen(function*() {
    for (let t = 0; t < maxMillis && !(yield* condition); t += step) {
      yield* settle()
      yield* TestClock.adjust(step)
    }
    yield* settle()
  })

/** `driveUntil` with a plain predicate. */
export const drive = (done: () => boolean, maxMillis: number, step = 50) => driveUntil(Effect.sync(done), maxMillis, step)
