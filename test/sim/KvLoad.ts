/**
 * The ConnPool workload: a pool of whole connections over in-memory links to
 * a line-echo server, borrowed with `ConnPool.use` by callers that each send
 * a token and must read back their own; links reset and the server goes down
 * under them. Checks: one holder per connection, turns within `poolSize`,
 * every turn and waiter back at the end.
 */
import { Cause, Effect, Exit } from "effect"
import * as ConnPool from "../../src/pool/index.ts"
import type { Core } from "../../src/pool/Core.ts"
import type { Runtime } from "./Runtime.ts"
import type { Scenario } from "./Scenario.ts"
import type { Link, Network } from "./World.ts"

class KvError {
  readonly _tag = "KvError"
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

/** One pooled connection: the client end of a link, and who holds it now. */
export class KvConn {
  readonly link: Link
  holder: string | undefined = undefined
  private buffered = ""
  private waiter: (() => void) | undefined = undefined
  private ended = false

  constructor(link: Link) {
    this.link = link
    const wake = () => {
      const waiter = this.waiter
      this.waiter = undefined
      waiter?.()
    }
    link.client.on("data", (chunk) => {
      this.buffered += Buffer.from(chunk).toString("latin1")
      wake()
    })
    const end = () => {
      this.ended = true
      wake()
    }
    link.client.on("end", end)
    link.client.on("close", end)
    link.client.on("error", end)
    // The server echoes every byte back.
    link.server.on("data", (chunk) => {
      link.server.write(chunk)
    })
  }

  /** Sends `token` and a newline, reads one line back. */
  roundTrip(token: string): Effect.Effect<string, KvError> {
    return Effect.suspend(() => {
      if (this.ended || this.link.client.destroyed) return Effect.fail(new KvError("connection closed"))
      this.link.client.write(Buffer.from(`${token}\n`, "latin1"))
      const line = (): Effect.Effect<string, KvError> => {
        const nl = this.buffered.indexOf("\n")
        if (nl >= 0) {
          const text = this.buffered.slice(0, nl)
          this.buffered = this.buffered.slice(nl + 1)
          return Effect.succeed(text)
        }
        if (this.ended) return Effect.fail(new KvError("connection closed"))
        return Effect.flatMap(
          Effect.callback<void>((resume) => {
            this.waiter = () => resume(Effect.void)
            return Effect.sync(() => {
              this.waiter = undefined
            })
          }),
          line
        )
      }
      return line()
    })
  }
}

export class KvLoad {
  private readonly runtime: Runtime
  private readonly scenario: Scenario
  private readonly network: Network
  up = true
  ok = 0
  failed = 0
  pool: ConnPool.ConnPool<KvConn> | undefined = undefined

  constructor(runtime: Runtime, scenario: Scenario, network: Network) {
    this.runtime = runtime
    this.scenario = scenario
    this.network = network
  }

  private get core(): Core<KvConn> {
    return (this.pool as unknown as { readonly core: Core<KvConn> }).core
  }

  /** The dial: latency, refused while the server is down, a link per connection closed with its Scope. */
  readonly dial: Effect.Effect<KvConn, KvError, import("effect").Scope.Scope> = Effect.gen({ self: this }, function*() {
    const latency = this.runtime.prng.pick([0, 1, 20])
    if (latency > 0) yield* Effect.sleep(latency)
    if (!this.up) return yield* Effect.fail(new KvError("connection refused"))
    return yield* Effect.acquireRelease(
      Effect.sync(() => new KvConn(this.network.link("kv"))),
      (conn) => Effect.sync(() => conn.link.client.destroy())
    )
  })

  /** Makes the pool in the current Scope. */
  get make(): Effect.Effect<void, never, import("effect").Scope.Scope> {
    const { kv } = this.scenario
    return Effect.map(
      Effect.orDie(ConnPool.make({
        name: "kv",
        dial: this.dial,
        poolSize: kv.poolSize,
        poolTimeout: kv.poolTimeout,
        dialTimeout: 200,
        connMaxIdleTime: 300,
        idleCheckFrequency: 100,
        closeSignal: (conn: KvConn) =>
          Effect.callback<void>((resume) => {
            if (conn.link.client.destroyed) return resume(Effect.void)
            conn.link.client.on("close", () => resume(Effect.void))
          })
      })),
      (pool) => {
        this.pool = pool
      }
    )
  }

  get run(): Effect.Effect<void> {
    const { kv } = this.scenario
    return Effect.forEach(
      Array.from({ length: kv.callers }, (_, i) => i),
      (i) => Effect.forEach([0, 1, 2], (j) => this.use(`k${i}.${j}`), { discard: true }),
      { concurrency: "unbounded", discard: true }
    )
  }

  private use(token: string): Effect.Effect<void> {
    const pool = this.pool!
    const { runtime } = this
    return Effect.gen({ self: this }, function*() {
      const think = runtime.prng.int(50)
      if (think > 0) yield* Effect.sleep(think)
      const exit = yield* Effect.exit(ConnPool.use(pool, (conn) =>
        Effect.suspend(() => {
          if (conn.holder !== undefined) runtime.violate(`kv: ${token} got a connection ${conn.holder} holds`)
          conn.holder = token
          return conn.roundTrip(token).pipe(
            Effect.timeoutOrElse({
              duration: this.scenario.kv.opTimeout,
              orElse: () => Effect.fail(new KvError("timed out"))
            }),
            Effect.ensuring(Effect.sync(() => {
              conn.holder = undefined
            }))
          )
        })))
      if (Exit.isSuccess(exit)) {
        this.ok++
        runtime.event(`kv ok ${token}`)
        if (exit.value !== token) runtime.violate(`kv: ${token} read back "${exit.value}"`)
      } else {
        this.failed++
        const error = Cause.findErrorOption(exit.cause)
        const tag = error._tag === "Some" ? (error.value as { readonly _tag: string })._tag : "defect"
        const reason = error._tag === "Some" && error.value instanceof ConnPool.PoolError ? error.value.reason._tag : ""
        runtime.event(`kv failed ${token} ${tag} ${reason}`)
        if (tag !== "KvError" && tag !== "PoolError") runtime.violate(`kv: ${token} ended with ${Cause.pretty(exit.cause).split("\n")[0]}`)
      }
    })
  }

  check(): void {
    if (this.pool === undefined) return
    const { turns } = this.core
    if (turns.free < 0 || turns.size - turns.free > this.scenario.kv.poolSize) {
      this.runtime.violate(`kv: ${turns.size - turns.free} turns taken of ${this.scenario.kv.poolSize}`)
    }
  }

  /** Every caller is done: every turn is back, nobody waits, no dial is running. */
  settled(): void {
    if (this.pool === undefined) return
    const core = this.core
    const stats = core.stats()
    if (core.turns.free !== core.turns.size || core.turns.waiters !== 0 || stats.pendingRequests !== 0) {
      this.runtime.violate(`kv: ${core.turns.size - core.turns.free} turns out, ${core.turns.waiters} waiting, ${stats.pendingRequests} pending with no caller`)
    }
    for (const entry of core.conns) {
      if ((entry.conn as KvConn).holder !== undefined) this.runtime.violate(`kv: a connection still held by ${(entry.conn as KvConn).holder}`)
    }
  }

  /** After shutdown: no connection left. */
  closed(): void {
    if (this.pool === undefined) return
    const core = this.core
    if (core.conns.size !== 0 || core.dialing !== 0) {
      this.runtime.violate(`kv: ${core.conns.size} connections, ${core.dialing} dials left after close`)
    }
  }
}
