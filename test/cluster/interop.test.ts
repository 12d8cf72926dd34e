/**
 * RpcCluster against three (or four) Go peers built from HashiCorp's
 * libraries (test/interop/go/server): servers killed under load, an
 * election (`No cluster leader`, switched by a file), every server down, and
 * a server that joins through `Status.Peers`. The peers are real processes
 * on loopback; the cluster's hold timeout, backoff, rebalance and discovery
 * run on TestClock, advanced in small steps while real I/O flows between them.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Fiber, Layer, Random } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ClusterError } from "../../src/cluster/ClusterError.ts"
import * as RpcCluster from "../../src/cluster/RpcCluster.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { buildGoPeer, goAvailable, goServer, type GoServer, type GoServerOptions } from "../interop/goPeer.ts"
import { drive, driveUntil, quiet, settle, waitFor } from "./helpers.ts"

/** A scratch directory for the peers' switch files, removed with the Scope. */
const scratch: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "connpool-cluster-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const peers = (n: number, options: GoServerOptions = {}) =>
  Effect.all(Array.from({ length: n }, () => goServer(options)), { concurrency: "unbounded" })

/** Writes a file whole (rename), so a peer reading it per call never sees half of it. */
const writeAtomically = (file: string, text: string) =>
  Effect.sync(() => {
    fs.writeFileSync(`${file}.tmp`, text)
    fs.renameSync(`${file}.tmp`, file)
  })

const kill = (peer: GoServer) => Effect.promise(() => peer.stop())

/** The cluster over a pool with a 2 s call timeout (keepalive off: the clock moves faster than real time). */
const layer = (servers: ReadonlyArray<GoServer>, options: Partial<RpcCluster.RpcCluster.Options> = {}) =>
  RpcCluster.layer({ servers: servers.map((s) => s.address), discovery: false, rebalance: false, ...options }).pipe(
    Layer.provideMerge(RpcPool.PoolLayer({ session: quiet, callTimeout: "2 seconds" }))
  )

const served = (peer: GoServer) =>
  Effect.map(RpcPool.rpc(peer.address, "Test.Stats", {}), (s) => Number((s as { Served: number }).Served))

const echo = (seq: number) => ({ Payload: new Uint8Array(16).fill(seq & 255), Seq: seq, Note: "cluster" })

const seqOf = (reply: unknown) => Number((reply as { Seq: number | bigint }).Seq)

const errorOf = (exit: Exit.Exit<unknown, ClusterError>): ClusterError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const reason = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  const error = reason?._tag === "Fail" ? reason.error : undefined
  assert.instanceOf(error, ClusterError)
  return error as ClusterError
}

const callsOf = (stats: RpcCluster.RpcCluster.Service extends { stats: Effect.Effect<infer S> } ? S : never, peer: GoServer) =>
  stats.servers.find((s) => s.address === peer.address)?.calls ?? 0

/**
 * `callers` fibers making `each` `Test.Echo` calls in a row through the cluster; `tally` counts
 * the replies that match their request and the calls that did not. `finish` drives the clock
 * until every caller is done.
 */
const load = (callers: number, each: number, idempotent: (seq: number) => boolean) =>
  Effect.gen(function*() {
    const tally = { ok: 0, failed: 0 }
    let seq = 0
    const caller = Effect.gen(function*() {
      for (let i = 0; i < each; i++) {
        const n = ++seq
        const exit = yield* Effect.exit(RpcCluster.rpc("Test.Echo", echo(n), { idempotent: idempotent(n) }))
        if (Exit.isSuccess(exit) && seqOf(exit.value) === n) tally.ok++
        else tally.failed++
      }
    })
    const fibers = yield* Effect.forEach(Array.from({ length: callers }), () => Effect.forkChild(caller))
    const finish = (maxMillis: number) =>
      Effect.andThen(drive(() => fibers.every((f) => f.pollUnsafe() !== undefined), maxMillis, 25), Fiber.joinAll(fibers))
    return { tally, finish }
  })

describe.runIf(goAvailable(import.meta.url))("RpcCluster against Go peers", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  it.effect("the current server killed under 64 concurrent idempotent calls: no call fails, traffic moves on", () =>
    Effect.gen(function*() {
      const all = yield* peers(3)
      yield* Effect.gen(function*() {
        const current = (yield* RpcCluster.stats).current
        const victim = all.find((p) => p.address === current)!
        const { finish, tally } = yield* load(64, 20, () => true)
        yield* waitFor(Effect.sync(() => tally.ok >= 300), "300 calls on the first server", 100_000)
        const before = yield* RpcCluster.stats
        yield* kill(victim)
        const doneAtDeath = tally.ok
        yield* finish(30_000)

        assert.strictEqual(tally.failed, 0)
        assert.strictEqual(tally.ok, 64 * 20)
        const after = yield* RpcCluster.stats
        assert.strictEqual(after.failed, 0)
        assert.isAbove(after.retries, 0)
        assert.notStrictEqual(after.current, victim.address)
        const others = all.filter((p) => p !== victim)
        // Calls that ended after the victim died succeeded elsewhere (give or take the 64 whose
        // replies were already on their way).
        const moved = others.reduce((n, p) => n + callsOf(after, p) - callsOf(before, p), 0)
        assert.isAtLeast(moved, 64 * 20 - doneAtDeath - 64)
        assert.isAbove(moved, 0)
        assert.isAbove(yield* served(others.find((p) => p.address === after.current)!), 0)
      }).pipe(Effect.provide(layer(all)))
    }), 120_000)

  it.effect("No cluster leader for 3 s: no call fails and the retries are counted", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      const election = path.join(dir, "no-leader")
      const all = yield* peers(3, { noLeaderFile: election })
      yield* Effect.gen(function*() {
        yield* RpcCluster.rpc("Test.Echo", echo(0))
        yield* writeAtomically(election, "")
        // Status.Ping still answers during the election; everything else does not.
        yield* RpcPool.rpc(all[0]!.address, "Status.Ping", {})
        const refused = yield* Effect.exit(RpcPool.rpc(all[0]!.address, "Test.Echo", echo(0)))
        assert.isTrue(Exit.isFailure(refused) && String(refused.cause).includes("No cluster leader"))

        const start = yield* Clock.currentTimeMillis
        const { finish, tally } = yield* load(64, 8, (n) => n % 2 === 0)
        yield* drive(() => false, 3000, 25)
        assert.strictEqual(tally.ok, 0, "no call succeeds during the election")
        fs.rmSync(election)
        yield* finish(10_000)

        assert.strictEqual(tally.failed, 0)
        assert.strictEqual(tally.ok, 64 * 8)
        const stats = yield* RpcCluster.stats
        assert.strictEqual(stats.failed, 0)
        assert.isAtLeast(stats.retries, 64)
        assert.isAtMost((yield* Clock.currentTimeMillis) - start, 7000 + 3000)
      }).pipe(Effect.provide(layer(all)))
    }), 120_000)

  it.effect("non-idempotent calls in flight when their server dies fail with ConnectionLost and are not retried", () =>
    Effect.gen(function*() {
      const all = yield* peers(3)
      yield* Effect.gen(function*() {
        const current = (yield* RpcCluster.stats).current
        const victim = all.find((p) => p.address === current)!
        const others = all.filter((p) => p !== victim)
        const servedBefore = yield* Effect.forEach(others, served)
        const base = yield* served(victim)
        // Go sleeps for real: these stay in its handler until it dies.
        const calls = yield* Effect.forEach(
          Array.from({ length: 8 }),
          () => Effect.forkChild(Effect.exit(RpcCluster.rpc("Test.Sleep", { Millis: 60_000 })))
        )
        yield* waitFor(Effect.map(served(victim), (n) => n >= base + 8 + 1), "8 calls in the Go handler", 10_000)
        yield* kill(victim)
        yield* drive(() => calls.every((f) => f.pollUnsafe() !== undefined), 10_000, 25)
        for (const exit of yield* Fiber.joinAll(calls)) {
          const error = errorOf(exit)
          assert.strictEqual(error.reason, "ConnectionLost")
          assert.strictEqual(error.attempts.length, 1)
          assert.isTrue(error.sent)
          assert.isFalse(error.isRetryable)
        }
        // Nothing went to the other servers but the stats calls of this test.
        const servedAfter = yield* Effect.forEach(others, served)
        servedAfter.forEach((n, i) => assert.strictEqual(n, servedBefore[i]! + 1))
        assert.strictEqual((yield* RpcCluster.stats).retries, 0)
      }).pipe(Effect.provide(layer(all)))
    }), 120_000)

  it.effect("every server down: each call fails within hold + call timeout with its attempts listed", () =>
    Effect.gen(function*() {
      const all = yield* peers(3)
      yield* Effect.gen(function*() {
        yield* RpcCluster.rpc("Status.Ping", {})
        yield* Effect.forEach(all, kill, { concurrency: "unbounded" })
        yield* settle(50)
        const start = yield* Clock.currentTimeMillis
        const calls = yield* Effect.forEach(
          Array.from({ length: 16 }, (_, i) => i),
          (i) =>
            Effect.forkChild(
              Effect.exit(RpcCluster.rpc("Test.Echo", echo(i), { idempotent: i % 2 === 0 })).pipe(
                Effect.flatMap((exit) => Effect.map(Clock.currentTimeMillis, (end) => ({ exit, elapsed: end - start })))
              )
            )
        )
        yield* drive(() => calls.every((f) => f.pollUnsafe() !== undefined), 20_000, 25)
        for (const { exit, elapsed } of yield* Fiber.joinAll(calls)) {
          const error = errorOf(exit)
          assert.strictEqual(error.reason, "NoServers")
          assert.isAtMost(elapsed, 7000 + 2000)
          assert.deepStrictEqual(new Set(error.attempts.map((a) => a.server)), new Set(all.map((p) => p.address)))
          assert.isTrue(error.attempts.every((a) => !a.sent && a.reason === "DialFailed"))
        }
      }).pipe(Effect.provide(layer(all)))
    }).pipe(Effect.provideService(Random.Random, { nextDoubleUnsafe: () => 0.5, nextIntUnsafe: () => 0 })), 120_000)

  it.effect("a server added to Status.Peers receives traffic after the next rebalance", () =>
    Effect.gen(function*() {
      const dir = yield* scratch
      const membership = path.join(dir, "peers")
      const all = yield* peers(4, { peersFile: membership })
      const [a, b, c, d] = all as [GoServer, GoServer, GoServer, GoServer]
      yield* writeAtomically(membership, [a, b, c].map((p) => p.address).join("\n"))
      yield* Effect.gen(function*() {
        yield* waitFor(Effect.map(RpcCluster.stats, (s) => s.discoveries === 1), "the first discovery")
        const call = (n: number) => RpcCluster.rpc("Test.Echo", echo(n), { idempotent: true })
        yield* call(1)
        yield* writeAtomically(membership, [a, b, c, d].map((p) => p.address).join(","))
        yield* drive(() => false, 30_000, 1000)
        yield* waitFor(Effect.map(RpcCluster.stats, (s) => s.discovered === 1), "discovery to add the fourth server")
        const listed = yield* RpcCluster.RpcCluster.use((x) => x.servers)
        assert.strictEqual(listed.at(-1), d.address, "a new server goes to the back")

        // Before a rebalance, calls stay on the current server.
        for (let i = 2; i <= 10; i++) yield* call(i)
        assert.strictEqual(callsOf(yield* RpcCluster.stats, d), 0)

        // Each rebalance shuffles; the first that puts the new server at the head sends it the calls.
        for (let round = 1; round <= 30 && callsOf(yield* RpcCluster.stats, d) === 0; round++) {
          const rebalances = (yield* RpcCluster.stats).rebalances
          yield* driveUntil(Effect.map(RpcCluster.stats, (s) => s.rebalances > rebalances), 200_000, 1000)
          for (let i = 0; i < 5; i++) yield* call(100 * round + i)
        }
        const stats = yield* RpcCluster.stats
        assert.isAbove(callsOf(stats, d), 0)
        assert.isAbove(yield* served(d), 0)
        assert.strictEqual(stats.failed, 0)
      }).pipe(Effect.provide(layer([a, b, c], { discovery: true, rebalance: "consul" })))
    }).pipe(Random.withSeed("cluster-interop")), 120_000)
})
