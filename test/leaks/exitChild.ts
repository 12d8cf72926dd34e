/**
 * Child process for `exit.test.ts`: makes calls through the pool layer with
 * every default timer on (keepalive 30 s, reaper, 60 s call timeout, 10 s dial
 * timeout), leaves a call in flight to a server that never answers and a dial
 * in flight to a listener that never finishes the TLS handshake, closes the
 * layers, and then does nothing: the process must exit by itself.
 *
 * It never calls `process.exit`. It prints `closed` once the layers are
 * closed, and `drained` from `beforeExit`, which Node emits only when the event
 * loop has emptied on its own (not after `process.exit` or an uncaught error).
 *
 * argv: <server host:port> <mute host:port>
 */
import { Effect, Exit, Fiber, Layer, Scope } from "effect"
import * as RpcPool from "../../src/rpc/RpcPool.ts"

const [server, mute] = process.argv.slice(2) as [string, string]

let drained = false
process.on("beforeExit", () => {
  if (drained) return
  drained = true
  process.stdout.write("drained\n")
})

const program = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const plain = yield* Layer.buildWithScope(RpcPool.PoolLayer(), scope)
  const tls = yield* Layer.buildWithScope(RpcPool.PoolLayer({ tls: { verify: false } }), scope)

  const replies = yield* Effect.forEach(
    Array.from({ length: 1000 }, (_, i) => i),
    (i) =>
      (i % 100 === 50
        ? Effect.andThen(RpcPool.rpc(server, "Test.GoAway", {}), RpcPool.rpc(server, "Status.Ping", {}))
        : RpcPool.rpc(server, "Status.Ping", {})).pipe(Effect.provide(plain)),
    { concurrency: 16 }
  )
  process.stdout.write(`calls ${replies.length}\n`)

  // Still in flight when the pool closes: a call the server never answers, and a dial that never finishes.
  const hung = yield* Effect.forkDetach(Effect.exit(RpcPool.rpc(mute, "Status.Ping", {}).pipe(Effect.provide(plain))))
  const dialling = yield* Effect.forkDetach(Effect.exit(RpcPool.rpc(mute, "Status.Ping", {}).pipe(Effect.provide(tls))))
  // Let both get under way before closing: the call holds a session, the dial is awaited.
  const underWay = Effect.all([RpcPool.stats.pipe(Effect.provide(plain)), RpcPool.stats.pipe(Effect.provide(tls))])
  for (;;) {
    const [p, t] = yield* underWay
    if (p.callers === 1 && p.sessions === 2 && t.pending === 1) break
    yield* Effect.yieldNow
  }

  yield* Scope.close(scope, Exit.void)
  const ends = yield* Effect.forEach([hung, dialling], Fiber.join)
  const reasons = ends.map((exit) => Exit.isFailure(exit) ? String(exit.cause) : "success")
  process.stdout.write(`ends ${JSON.stringify(reasons)}\n`)
  process.stdout.write(`closed ${performance.now().toFixed(0)}\n`)
})

Effect.runPromise(program).catch((error: unknown) => {
  process.stdout.write(`failed ${String(error)}\n`)
  process.exitCode = 1
})
