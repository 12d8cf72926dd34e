/**
 * Acquire/release throughput of ConnPool against effect's `Pool`, generic-pool and tarn.
 *
 *   node bench/acquire.ts --contender connpool|connpool-get|effect-pool|effect-pool-get|generic-pool|tarn
 *                                     |effect-floor|promise-floor
 *                         [--ops N] [--start held|free] [--hold none|yield] [--clock cpu|wall]
 *                         [--starvation MS] [--max-ops N]
 *
 * Prints one JSON line on stdout: {"contender", "start", "hold", "ops", "seconds", "opsPerSec",
 * "waitP50Us", "waitP99Us", "waitMaxUs"}, and for the Effect contenders "turns" and
 * "turnMaxUs". `seconds` is the process CPU time of the timed part (`--clock wall` for
 * wall-clock time; see `nowSeconds`). The wait figures are the distribution of how long an
 * acquire took until the connection was in hand (the borrower's wait, in µs, wall clock), from
 * every `waitSampleEvery`-th timed acquire, so that timing them costs the throughput figure
 * little. For the ConnPool contenders, stderr also says how many of the timed operations waited
 * for a turn, and how long those waits took in the pool (its `waitDuration` over `waitCount`).
 *
 * **What the maximum wait of an Effect contender is.** Effect's scheduler runs a fiber for
 * `MaxOpsBeforeYield` operations (2048), then queues it behind every other runnable fiber, and
 * runs that whole queue in one turn of the event loop (one `setImmediate`). With 64 busy
 * borrowers such a turn takes 10 to 40 ms here. A sampled acquire in which its fiber's budget
 * runs out (between the sample's start and `f`) waits for the rest of that turn, pool or no pool;
 * so does every waiter the pool wakes, since its wake-up is a scheduler task. `turns` and
 * `turnMaxUs` (the event-loop turns of the timed part, and the longest, measured by a
 * `setImmediate` that re-arms itself) show the scale; `--max-ops N` sets the budget, and the
 * maximum wait follows it. Without `--hold yield` the Promise contenders never give the event
 * loop a turn in the timed part (everything is a microtask), so the figure is printed for the
 * Effect contenders only.
 *
 * **Scenario.** Pool overhead alone, under contention: 64 borrowers share a pool of 10
 * connections that are created instantly, and each loops acquire → release until N operations
 * have been done in all (default 2,000,000). The pool is warmed up (same scenario, N/5 capped at
 * 200,000 operations) before the timed part.
 *
 * - `--start held` (default): the timed part starts with all 10 connections lent out and the 64
 *   borrowers queued behind them. A pool that hands a released connection to the first waiter
 *   (all four do) then stays contended: every acquire waits. Promise pools are in that state
 *   anyway, since every acquire awaits; an Effect pool whose free path is synchronous is not
 *   while one fiber runs at a time, so without `held` whether the run is contended depends on
 *   whether Effect's scheduler happens to suspend fibers while they hold a connection (it does
 *   every 2048 operations, at a point fixed by the exact number of operations per loop).
 * - `--start free`: the timed part starts with every connection idle; see above.
 * - `--hold yield`: each borrower yields to the event loop while it holds its connection
 *   (`Effect.yieldNow`; `setImmediate` for the Promise pools). `none` (default) holds nothing.
 * - `--starvation MS`: ConnPool's `starvationThreshold` (default: the pool's default); `0` is
 *   strict FIFO hand-off, the policy of the other pools.
 * - `--max-ops N`: Effect's `Scheduler.MaxOpsBeforeYield` for the Effect contenders (default:
 *   effect's, 2048).
 *
 * `connpool` and `effect-pool` are each library's `use`; `connpool-get` (get, then put) and
 * `effect-pool-get` (`Pool.get` in `Effect.scoped`) are the by-hand paths. For the Effect
 * contenders the borrowers are 64 fibers in one `Effect.runPromise`; for the Promise ones, 64
 * async functions. `effect-floor` and `promise-floor` are the same loops with no pool at all (the
 * "acquire" is `f` run at once, or one already-resolved promise awaited): what every pool of
 * that kind adds its cost to, with `--hold yield` the cost of the yield itself.
 *
 * `--observability off|metrics|tracing|all` sets the ConnPool contenders' `observability` option
 * (default: the library's defaults), for the cost of metrics and spans (bench (f)).
 *
 * Compare runs on the same machine, alternating contenders, and take medians: one run is noisy.
 */
import { Duration, Effect, Exit, Fiber, Pool, Scheduler, Scope } from "effect"
import * as GenericPool from "generic-pool"
import * as Tarn from "tarn"
import * as ConnPool from "../src/pool/index.ts"
import { type ObservabilityVariant, observabilityVariants } from "./cli.ts"

const contenders = [
  "connpool",
  "connpool-get",
  "effect-pool",
  "effect-pool-get",
  "generic-pool",
  "tarn",
  "effect-floor",
  "promise-floor"
] as const
type Contender = typeof contenders[number]

const borrowerCount = 64
const poolSize = 10
const defaultOps = 2_000_000
/** One acquire in this many is timed for the wait distribution. */
const waitSampleEvery = 8

/**
 * Wait samples of the timed part, in ms. Off during warm-up. `begin` says
 * whether this acquire is one of the sampled ones and returns its start time
 * (or -1), `end` records it.
 */
const waits = {
  on: false,
  count: 0,
  samples: [] as Array<number>,
  begin(): number {
    if (!this.on || ++this.count % waitSampleEvery !== 0) return -1
    return performance.now()
  },
  end(start: number): void {
    if (start >= 0) this.samples.push(performance.now() - start)
  }
}

/**
 * The event-loop turns of the timed part and the longest, in ms: a
 * `setImmediate` that re-arms itself runs once per turn, so the time
 * between two of its runs is one turn. For the Effect contenders a turn is
 * one run of the scheduler's queue (see the header).
 */
const loopTurns = {
  on: false,
  count: 0,
  maxMs: 0,
  last: 0,
  start(): void {
    this.on = true
    this.count = 0
    this.maxMs = 0
    this.last = performance.now()
    setImmediate(tick)
  },
  stop(): void {
    this.on = false
  }
}
const tick = (): void => {
  if (!loopTurns.on) return
  const now = performance.now()
  loopTurns.count++
  loopTurns.maxMs = Math.max(loopTurns.maxMs, now - loopTurns.last)
  loopTurns.last = now
  setImmediate(tick)
}

const percentile = (sorted: ReadonlyArray<number>, p: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

interface Args {
  readonly contender: Contender
  readonly ops: number
  readonly start: "held" | "free"
  readonly hold: "none" | "yield"
  readonly clock: "cpu" | "wall"
  readonly starvation: number | undefined
  /** Effect's `MaxOpsBeforeYield`; undefined: effect's default. */
  readonly maxOps: number | undefined
  /** ConnPool's `observability` option; undefined: the library's defaults. */
  readonly observability: (typeof observabilityVariants)[ObservabilityVariant] | undefined
}

const usage = (message: string): never => {
  process.stderr.write(
    `${message}\nusage: node bench/acquire.ts --contender ${contenders.join("|")} [--ops N] ` +
      `[--start held|free] [--hold none|yield] [--clock cpu|wall] [--starvation MS] [--max-ops N] ` +
      `[--observability off|metrics|tracing|all]\n`
  )
  process.exit(2)
}

const oneOf = <const T extends string>(flag: string, value: string, allowed: ReadonlyArray<T>): T =>
  (allowed as ReadonlyArray<string>).includes(value)
    ? value as T
    : usage(`${flag} must be one of ${allowed.join(", ")}, got ${value}`)

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let contender: Contender | undefined
  let ops = defaultOps
  let start: Args["start"] = "held"
  let hold: Args["hold"] = "none"
  let clock: Args["clock"] = "cpu"
  let starvation: number | undefined
  let maxOps: number | undefined
  let observability: Args["observability"] = undefined
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!
    const value = argv[i + 1]
    if (value === undefined) return usage(`missing value for ${flag}`)
    switch (flag) {
      case "--contender":
        contender = oneOf(flag, value, contenders)
        break
      case "--ops":
        ops = Number(value.replaceAll("_", ""))
        if (!Number.isSafeInteger(ops) || ops <= 0) return usage(`--ops must be a positive integer, got ${value}`)
        break
      case "--start":
        start = oneOf(flag, value, ["held", "free"])
        break
      case "--hold":
        hold = oneOf(flag, value, ["none", "yield"])
        break
      case "--clock":
        clock = oneOf(flag, value, ["cpu", "wall"])
        break
      case "--starvation":
        starvation = Number(value)
        if (!(starvation >= 0)) return usage(`--starvation must be a number of ms >= 0, got ${value}`)
        break
      case "--max-ops":
        maxOps = Number(value)
        if (!Number.isSafeInteger(maxOps) || maxOps <= 0) return usage(`--max-ops must be a positive integer, got ${value}`)
        break
      case "--observability":
        observability = observabilityVariants[oneOf(flag, value, ["off", "metrics", "tracing", "all"])]
        break
      default:
        return usage(`unknown flag ${flag}`)
    }
  }
  if (contender === undefined) return usage("--contender is required")
  return { contender, ops, start, hold, clock, starvation, maxOps, observability }
}

/** Enough to reach the optimising JIT tiers, small next to the timed part. */
const warmupOps = (ops: number): number => Math.max(10_000, Math.min(200_000, Math.floor(ops / 5)))

let timeSource: Args["clock"] = "cpu"

/**
 * Process CPU time by default: on a shared machine wall-clock time mostly
 * measures the neighbours. The workload is one JS thread that never waits
 * on I/O, so on an idle machine the two agree (CPU time also counts GC
 * helper threads, which is a cost of the contender too).
 */
const nowSeconds = (): number => {
  if (timeSource === "wall") return Number(process.hrtime.bigint()) / 1e9
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1e6
}

/** The connection: a trivial object, made at once. */
interface Conn {
  readonly id: number
}
let connIds = 0
const makeConn = (): Conn => ({ id: ++connIds })

// ---------------------------------------------------------------------------
// Effect contenders: 64 fibers
// ---------------------------------------------------------------------------

interface EffectContender {
  /** One acquire → release, built afresh each time as user code does. */
  readonly op: () => Effect.Effect<unknown, unknown>
  /** Borrows every connection; succeeds with the effect that gives them back. */
  readonly takeAll: Effect.Effect<Effect.Effect<void>, unknown>
  /** For ConnPool: how many acquires have waited so far, and for how long in all (ms). */
  readonly waits?: Effect.Effect<{ readonly count: number; readonly millis: number }>
}

/**
 * Runs `op` `ops` times in all, spread over the borrower fibers. The loop is
 * a hand-written `flatMap` chain, not a generator, so the loop's own cost
 * stays small next to the pools' and is the same for every Effect contender.
 */
const effectBorrowers = (ops: number, op: () => Effect.Effect<unknown, unknown>): Effect.Effect<void, unknown> =>
  Effect.suspend(() => {
    let left = ops
    const next = (): Effect.Effect<void, unknown> => loop
    const loop: Effect.Effect<void, unknown> = Effect.suspend(() =>
      left-- > 0 ? Effect.flatMap(op(), next) : Effect.void
    )
    return Effect.forEach(Array.from({ length: borrowerCount }), () => loop, {
      concurrency: borrowerCount,
      discard: true
    })
  })

/** `ops` operations; with `held`, the borrowers start queued behind every connection. */
const effectRound = (contender: EffectContender, ops: number, held: boolean): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    if (!held) return yield* effectBorrowers(ops, contender.op)
    const giveBack = yield* contender.takeAll
    const borrowers = yield* Effect.forkChild(effectBorrowers(ops, contender.op))
    // Lets every borrower start and queue.
    for (let i = 0; i < 4; i++) yield* Effect.yieldNow
    yield* giveBack
    yield* Fiber.join(borrowers)
  })

const timeEffect = (contender: EffectContender, args: Args): Effect.Effect<number, unknown> =>
  Effect.gen(function*() {
    const held = args.start === "held"
    yield* effectRound(contender, warmupOps(args.ops), held)
    const waitsBefore = contender.waits === undefined ? undefined : yield* contender.waits
    waits.on = true
    loopTurns.start()
    const start = nowSeconds()
    yield* effectRound(contender, args.ops, held)
    const seconds = nowSeconds() - start
    loopTurns.stop()
    waits.on = false
    if (contender.waits !== undefined && waitsBefore !== undefined) {
      const after = yield* contender.waits
      const count = after.count - waitsBefore.count
      const mean = count === 0 ? 0 : (after.millis - waitsBefore.millis) / count
      process.stderr.write(
        `${args.contender}: ${Math.round(count / args.ops * 100)}% of the timed acquires waited ` +
          `(${count}, ${mean.toFixed(1)} ms each on average in the pool)\n`
      )
    }
    return seconds
  })

const tenTimes = Array.from({ length: poolSize })

/**
 * One `use`-style borrow holding `hold`: `borrow(f)` runs `f` with a
 * connection. A sampled one times its wait until `f` starts.
 */
const timedUse = (
  borrow: (f: () => Effect.Effect<void>) => Effect.Effect<unknown, unknown>,
  hold: Effect.Effect<void>
) => {
  const holdFor = (): Effect.Effect<void> => hold
  return () => {
    const start = waits.begin()
    if (start < 0) return borrow(holdFor)
    return borrow(() => {
      waits.end(start)
      return hold
    })
  }
}

const makeConnPool = (args: Args, hold: Effect.Effect<void>): Effect.Effect<EffectContender, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* ConnPool.make({
      dial: Effect.sync(makeConn),
      poolSize,
      observability: args.observability,
      ...(args.starvation === undefined ? {} : { starvationThreshold: Duration.millis(args.starvation) })
    })
    return {
      op: args.contender === "connpool"
        ? timedUse((f) => ConnPool.use(pool, f), hold)
        : () => {
          const start = waits.begin()
          return Effect.flatMap(pool.get, (conn) => {
            waits.end(start)
            return Effect.andThen(hold, pool.put(conn))
          })
        },
      takeAll: Effect.map(
        Effect.forEach(tenTimes, () => pool.get),
        (conns) => Effect.forEach(conns, pool.put, { discard: true })
      ),
      waits: Effect.map(pool.stats, (stats) => ({ count: stats.waitCount, millis: Duration.toMillis(stats.waitDuration) }))
    }
  })

const makeEffectPool = (args: Args, hold: Effect.Effect<void>): Effect.Effect<EffectContender, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const pool = yield* Pool.make({ acquire: Effect.sync(makeConn), size: poolSize })
    return {
      op: args.contender === "effect-pool"
        ? timedUse((f) => Pool.use(pool, f), hold)
        : () => {
          const start = waits.begin()
          return Effect.scoped(Effect.flatMap(Pool.get(pool), () => {
            waits.end(start)
            return hold
          }))
        },
      takeAll: Effect.gen(function*() {
        const scope = yield* Scope.make()
        yield* Effect.forEach(tenTimes, () => Scope.provide(Pool.get(pool), scope))
        return Scope.close(scope, Exit.void)
      })
    }
  })

/** No pool: `f` runs at once, so the wait is only the timing itself. */
const makeEffectFloor = (hold: Effect.Effect<void>): EffectContender => ({
  op: timedUse((f) => f(), hold),
  takeAll: Effect.succeed(Effect.void)
})

const runEffect = (args: Args): Promise<number> => {
  const hold: Effect.Effect<void> = args.hold === "yield" ? Effect.yieldNow : Effect.void
  const program = Effect.flatMap(
    args.contender === "connpool" || args.contender === "connpool-get"
      ? makeConnPool(args, hold)
      : args.contender === "effect-floor"
      ? Effect.succeed(makeEffectFloor(hold))
      : makeEffectPool(args, hold),
    (contender) => timeEffect(contender, args)
  )
  const scoped = Effect.scoped(program)
  return Effect.runPromise(
    args.maxOps === undefined ? scoped : Effect.provideService(scoped, Scheduler.MaxOpsBeforeYield, args.maxOps)
  )
}

// ---------------------------------------------------------------------------
// Promise contenders: 64 async functions
// ---------------------------------------------------------------------------

interface PromisePool {
  readonly acquire: () => Promise<Conn>
  readonly release: (conn: Conn) => void
  readonly close: () => Promise<void>
}

const makeGenericPool = (): PromisePool => {
  const pool = GenericPool.createPool<Conn>(
    { create: async () => makeConn(), destroy: async () => {} },
    { max: poolSize, min: 0 }
  )
  return {
    acquire: () => pool.acquire(),
    // Its promise only says the release was processed, which it already was.
    release: (conn) => void pool.release(conn),
    close: async () => {
      await pool.drain()
      await pool.clear()
    }
  }
}

const makeTarn = (): PromisePool => {
  const pool = new Tarn.Pool<Conn>({ create: async () => makeConn(), destroy: () => {}, min: 0, max: poolSize })
  return {
    acquire: () => pool.acquire().promise,
    release: (conn) => void pool.release(conn),
    close: () => pool.destroy().then(() => undefined)
  }
}

/** No pool: every acquire is one already-resolved promise, the least a Promise pool costs. */
const makePromiseFloor = (): PromisePool => {
  const conn = makeConn()
  const ready = Promise.resolve(conn)
  return { acquire: () => ready, release: () => {}, close: async () => {} }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

const promiseRound = async (pool: PromisePool, ops: number, args: Args): Promise<void> => {
  const yieldWhileHeld = args.hold === "yield"
  const held = args.start === "held" ? await Promise.all(tenTimes.map(() => pool.acquire())) : []
  let left = ops
  const borrower = async (): Promise<void> => {
    while (left-- > 0) {
      const start = waits.begin()
      const conn = await pool.acquire()
      waits.end(start)
      if (yieldWhileHeld) await yieldToEventLoop()
      pool.release(conn)
    }
  }
  // Each borrower has queued its first acquire by the time this returns.
  const borrowers = Promise.all(Array.from({ length: borrowerCount }, borrower))
  for (const conn of held) pool.release(conn)
  await borrowers
}

const runPromise = async (args: Args): Promise<number> => {
  const pool = args.contender === "tarn"
    ? makeTarn()
    : args.contender === "promise-floor"
    ? makePromiseFloor()
    : makeGenericPool()
  await promiseRound(pool, warmupOps(args.ops), args)
  waits.on = true
  const start = nowSeconds()
  await promiseRound(pool, args.ops, args)
  const seconds = nowSeconds() - start
  waits.on = false
  await pool.close()
  return seconds
}

// ---------------------------------------------------------------------------

const args = parseArgs(process.argv.slice(2))
timeSource = args.clock
const isPromiseContender = args.contender === "generic-pool" || args.contender === "tarn" ||
  args.contender === "promise-floor"
const seconds = await (isPromiseContender
  ? runPromise(args)
  : runEffect(args))
const sorted = waits.samples.sort((a, b) => a - b)
const micros = (ms: number) => Math.round(ms * 10_000) / 10
process.stdout.write(
  JSON.stringify({
    contender: args.contender,
    start: args.start,
    hold: args.hold,
    ops: args.ops,
    seconds: Math.round(seconds * 1000) / 1000,
    opsPerSec: Math.round(args.ops / seconds),
    waitP50Us: micros(percentile(sorted, 0.5)),
    waitP99Us: micros(percentile(sorted, 0.99)),
    waitMaxUs: micros(sorted.length === 0 ? 0 : sorted[sorted.length - 1]!),
    ...(isPromiseContender ? {} : { turns: loopTurns.count, turnMaxUs: micros(loopTurns.maxMs) })
  }) + "\n"
)
