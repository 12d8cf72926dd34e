/**
 * One typed method definition for both sides: the client calls it through the pool, our server
 * serves it with `RpcServer.handle`, and a Go client of the same struct calls that server.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as Method from "../../src/rpc/Method.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import { buildGoPeer, callGoClient, goAvailable, goClientArgs } from "../interop/goPeer.ts"

const Add = RpcPool.method("Calc.Add", {
  args: Schema.Struct({ A: Schema.Int, B: Schema.Int, Label: RpcPool.Bytes }),
  reply: Schema.Struct({ Sum: Schema.Int, Label: RpcPool.Bytes })
})

const Halve = RpcPool.method("Calc.Halve", {
  args: Schema.Struct({ N: Schema.Int }),
  reply: Schema.Struct({ Half: Schema.Int })
})

class Odd extends Error {}

const handlers = {
  ...RpcServer.handle(Add, ({ A, B, Label }) => Effect.succeed({ Sum: A + B, Label })),
  // A buggy implementation: a reply its own Schema refuses for odd numbers.
  ...RpcServer.handle(Halve, ({ N }) => N < 0 ? Effect.fail(new Odd("negative")) : Effect.succeed({ Half: N / 2 }))
}

const serve = RpcServer.serve({ handlers })

const rpcError = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const reason = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
  assert.isTrue(reason?._tag === "Fail" && reason.error instanceof RpcError, `not an RpcError: ${exit}`)
  return (reason as { readonly error: RpcError }).error
}

const label = new TextEncoder().encode("sum")

describe("Method", () => {
  it("is the same function as RpcPool.method and RpcPool.Bytes", () => {
    assert.strictEqual(RpcPool.method, Method.method)
    assert.strictEqual(RpcPool.Bytes, Method.Bytes)
    assert.strictEqual(Add.name, "Calc.Add")
    assert.strictEqual(Add.args.fields.A, Schema.Int)
  })

  it.effect("calls a method our server serves with the same Schemas, bytes included", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const binary = Uint8Array.of(0xff, 0x00)
      assert.deepStrictEqual(yield* Add(server.address, { A: 2, B: 40, Label: label }), { Sum: 42, Label: label })
      assert.deepStrictEqual(yield* Add(server.address, { A: 0, B: 0, Label: binary }), { Sum: 0, Label: binary })
    }).pipe(Effect.provide(RpcPool.PoolLayer())))

  it.effect("fails args that do not match with ArgsMismatch, sends nothing and is not retryable", () =>
    Effect.gen(function*() {
      const server = yield* TestService.serve()
      const error = rpcError(yield* Effect.exit(Add(server.address, { A: 1.5, B: 1, Label: label })))
      assert.strictEqual(error.reason, "ArgsMismatch")
      assert.strictEqual(error.method, "Calc.Add")
      assert.isFalse(error.sent)
      assert.isFalse(error.isRetryable)
      assert.match(error.message, /^ArgsMismatch \(Calc\.Add on .*\): .*A/)
      assert.strictEqual(server.stats().served, 0)
      assert.strictEqual(server.stats().conns, 0)
    }).pipe(Effect.provide(RpcPool.PoolLayer())))

  it.effect("answers a bad request with a typed remote error, not a defect, and keeps serving", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const exit = yield* Effect.exit(RpcPool.rpc(server.address, "Calc.Add", { A: "two", B: 2 }))
      const error = rpcError(exit)
      assert.strictEqual(error.reason, "RemoteError")
      assert.match(error.message, /Calc\.Add: bad request: .*A/)
      assert.deepStrictEqual(yield* Add(server.address, { A: 1, B: 1, Label: label }), { Sum: 2, Label: label })
    }).pipe(Effect.provide(RpcPool.PoolLayer())))

  it.effect("passes the implementation's failure on as the remote error's message", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const error = rpcError(yield* Effect.exit(Halve(server.address, { N: -2 })))
      assert.strictEqual(error.reason, "RemoteError")
      assert.strictEqual(error.detail, "negative")
    }).pipe(Effect.provide(RpcPool.PoolLayer())))

  it.effect("reports a reply its own Schema refuses as the server's error, not a reply the client must decode", () =>
    Effect.gen(function*() {
      const server = yield* serve
      assert.deepStrictEqual(yield* Halve(server.address, { N: 4 }), { Half: 2 })
      const error = rpcError(yield* Effect.exit(Halve(server.address, { N: 3 })))
      assert.strictEqual(error.reason, "RemoteError")
      assert.match(error.detail ?? "", /^Calc\.Halve: the server's reply does not match: /)
    }).pipe(Effect.provide(RpcPool.PoolLayer())))

  describe.runIf(goAvailable(import.meta.url))("with HashiCorp's Go client", () => {
    beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

    it.live("serves a Go client the typed method, and answers its bad request with Go-style error text", () =>
      Effect.gen(function*() {
        const server = yield* serve
        const connection = goClientArgs({ address: server.address })
        const ok = yield* Effect.promise(() => callGoClient(connection, "Calc.Add", { A: 20, B: 22, Label: "go" }))
        assert.isTrue(ok.json?.ok, ok.stderr)
        assert.deepStrictEqual(ok.json?.reply, { Sum: 42, Label: "go" })
        const bad = yield* Effect.promise(() => callGoClient(connection, "Calc.Add", { A: "x" }))
        assert.isFalse(bad.json?.ok)
        assert.isTrue(bad.json?.remote)
        assert.match(bad.json?.error ?? "", /^Calc\.Add: bad request: /)
      }))
  })
})
