/**
 * The deterministic simulation inside `npm test`: a few hundred seeds of the
 * whole stack (RpcPool, RpcCluster, yamux, RpcServer, ConnPool over in-memory links, faults,
 * TestClock), proof that a seed replays exactly, and proof that the checks
 * catch a broken invariant. `npm run sim` runs thousands (docs/architecture.md).
 */
import { assert, describe, it } from "@effect/vitest"
import { runSeed, scenarioOf } from "./Simulation.ts"

/** Seeds per `npm test`: a few seconds on a loaded two-core machine. */
const seeds = 300

describe("simulation", () => {
  it(`passes ${seeds} seeds: every call ends by its deadline with its own reply or a typed error, stats match, nothing leaks`, async () => {
    const failures: Array<string> = []
    let calls = 0
    let clusterCalls = 0
    for (let seed = 1; seed <= seeds; seed++) {
      const result = await runSeed(seed)
      calls += result.calls
      clusterCalls += result.clusterCalls
      if (result.failure !== undefined) failures.push(`seed ${seed}: ${result.failure} (replay: npm run sim -- --seed ${seed})`)
      // A seed runs within one macrotask; between seeds, let the worker's event loop turn.
      await new Promise((resolve) => setImmediate(resolve))
    }
    assert.deepStrictEqual(failures, [])
    assert.isAbove(calls, seeds, "the seeds made calls")
    assert.isAbove(clusterCalls, seeds, "the seeds made cluster calls")
  })

  it("passes the seeds that once found a bug", async () => {
    const found = [
      // The server restarted while a request was in flight: the request reached a stream whose serving
      // fiber had already ended, and its 61 bytes stayed charged to the server's budget after close.
      2743,
      // A cluster's ping deadline a float rounding error past the frozen clock: its sleep rounded to zero,
      // the deadline timer recursed until the stack overflowed and died, and later calls ran past their deadlines.
      1157,
      // The same rounding in ConnPool's turn timer: a pool timeout under half a nanosecond ahead slept zero
      // and the timer spun on the frozen clock until the step limit.
      2441
    ]
    for (const seed of found) assert.strictEqual((await runSeed(seed)).failure, undefined, `seed ${seed}`)
  })

  it("replays a seed exactly: the same trace, step for step, twice", async () => {
    // 2 runs the cluster workload (one seed server, rebalance and discovery on their timers, No cluster leader half the time).
    for (const seed of [2, 7, 42, 1910]) {
      const first = await runSeed(seed, { trace: true })
      const second = await runSeed(seed, { trace: true })
      assert.strictEqual(second.hash, first.hash, `seed ${seed}`)
      assert.deepStrictEqual(second.trace, first.trace, `seed ${seed}`)
      assert.strictEqual(second.steps, first.steps)
      assert.isAbove(first.trace!.length, 0)
      // Tracing records the trace; it must not change the run.
      assert.strictEqual((await runSeed(seed)).hash, first.hash, `seed ${seed} without a trace`)
    }
    // Different seeds explore different interleavings.
    assert.notStrictEqual((await runSeed(8)).hash, (await runSeed(9)).hash)
  })

  it("catches a handler that answers another call's token, and the failing seed replays to the same failure", async () => {
    const sabotage = { wrongToken: true }
    let caught: Awaited<ReturnType<typeof runSeed>> | undefined
    for (let seed = 1; seed <= 50 && caught === undefined; seed++) {
      const result = await runSeed(seed, { sabotage })
      if (result.failure !== undefined) caught = result
    }
    assert.isDefined(caught, "no seed of 50 caught the broken handler")
    assert.match(caught!.failure!, /got the reply of another call/)
    const replay = await runSeed(caught!.seed, { sabotage, trace: true })
    assert.strictEqual(replay.failure, caught!.failure)
    assert.strictEqual(replay.hash, caught!.hash)
    assert.isTrue(replay.trace!.some((line) => line.includes("VIOLATION")))
  })
  it("catches a cluster that retries a write after sending it, and the failing seed replays to the same failure", async () => {
    // The workload tells the cluster its writes are idempotent: a write lost after sending runs again elsewhere.
    const sabotage = { retryWrites: true }
    let caught: Awaited<ReturnType<typeof runSeed>> | undefined
    for (let seed = 1; seed <= 400 && caught === undefined; seed++) {
      if (!scenarioOf(seed).cluster.enabled) continue
      const result = await runSeed(seed, { sabotage })
      if (result.failure !== undefined) caught = result
    }
    assert.isDefined(caught, "no cluster seed of 400 caught the retried writes")
    assert.match(caught!.failure!, /not idempotent/)
    const replay = await runSeed(caught!.seed, { sabotage })
    assert.strictEqual(replay.failure, caught!.failure)
    assert.strictEqual(replay.hash, caught!.hash)
  })
})
