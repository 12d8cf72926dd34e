/**
 * Args that cannot be encoded, against the embedded test server on loopback: throwing getters, Proxies
 * whose traps throw, cycles, bigints out of range, symbols, functions.
 *
 * Promise: each fails its call with a typed RpcError (never a defect, never a throw out of `rpc`), not sent,
 * not retryable, naming why; nothing reaches the server, and the pool serves the next call as usual.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"

const quiet = { enableKeepAlive: false } as const
const boom = new Error("boom")

const cyclic: Record<string, unknown> = { a: 1 }
cyclic["self"] = cyclic
const revocable = Proxy.revocable({}, {})
revocable.revoke()

const cases: ReadonlyArray<readonly [name: string, args: () => unknown, codecReason: string]> = [
  ["a throwing getter", () => ({ get Payload() { throw boom } }), "Unreadable"],
  ["a Proxy whose get trap throws", () => new Proxy({ a: 1 }, { get: () => { throw boom } }), "Unreadable"],
  ["a Proxy whose ownKeys trap throws", () => new Proxy({ a: 1 }, { ownKeys: () => { throw boom } }), "Unreadable"],
  ["a Proxy whose getPrototypeOf trap throws", () => new Proxy({}, { getPrototypeOf: () => { throw boom } }), "Unreadable"],
  ["a revoked Proxy", () => revocable.proxy, "Unreadable"],
  ["a cyclic object", () => cyclic, "TooDeep"],
  ["a bigint beyond 64 bits", () => ({ N: 2n ** 64n }), "TooLarge"],
  ["a symbol", () => ({ S: Symbol("s") }), "Unsupported"],
  ["a function", () => ({ F: () => 1 }), "Unsupported"]
]

describe("args that cannot be encoded", () => {
  for (const [name, args, codecReason] of cases) {
    it.effect(`${name}: a typed RpcError, not sent, not retryable, and the next call goes through`, () =>
      Effect.gen(function*() {
        const server = yield* RpcServer.serve({ session: quiet, handlers: TestService.handlers })
        const pool = yield* RpcPool.make({ session: quiet })
        yield* pool.rpc(server.address, "Status.Ping", {})

        const exit = yield* Effect.exit(pool.rpc(server.address, "Test.Echo", args()))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isSuccess(exit)) return
        assert.isFalse(Cause.hasDies(exit.cause), `a defect: ${Cause.pretty(exit.cause)}`)
        const error = Cause.findErrorOption(exit.cause)
        assert.strictEqual(error._tag, "Some")
        if (error._tag !== "Some") return
        assert.instanceOf(error.value, RpcError)
        assert.strictEqual(error.value.reason, "ProtocolError")
        assert.isFalse(error.value.sent)
        assert.isFalse(error.value.isRetryable)
        assert.strictEqual(error.value.method, "Test.Echo")
        assert.instanceOf(error.value.cause, CodecError)
        assert.strictEqual((error.value.cause as CodecError).reason, codecReason)

        assert.strictEqual(server.stats().served, 1, "nothing reached the server")
        assert.deepStrictEqual(yield* pool.rpc(server.address, "Status.Ping", {}), {})
        assert.strictEqual(server.stats().served, 2)
        assert.strictEqual((yield* pool.stats).dials, 1)
      }))
  }
})
