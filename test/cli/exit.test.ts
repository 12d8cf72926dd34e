import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { CliExit, exitCodeOf, lineOf, report, teardown, UsageError } from "../../src/cli/exit.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"

const rpcError = (reason: RpcError["reason"], detail: string) =>
  new RpcError({ reason, address: "127.0.0.1:1", method: "Test.Fail", sent: true, detail })

describe("exit", () => {
  it.effect("remote errors exit 1, connection, protocol and usage errors exit 2", () =>
    Effect.sync(() => {
      assert.strictEqual(exitCodeOf(rpcError("RemoteError", "boom")), 1)
      assert.strictEqual(exitCodeOf(rpcError("DialFailed", "refused")), 2)
      assert.strictEqual(exitCodeOf(rpcError("ProtocolError", "garbage")), 2)
      assert.strictEqual(exitCodeOf(rpcError("CallTimeout", "slow")), 2)
      assert.strictEqual(exitCodeOf(new UsageError({ message: "bad" })), 2)
      assert.strictEqual(exitCodeOf(new CliExit({ code: 1 })), 1)
    }))

  it.effect("the error line is one line even when the server's message is not", () =>
    Effect.sync(() => {
      const line = lineOf(rpcError("RemoteError", "first\nsecond"))
      assert.notInclude(line, "\n")
      assert.include(line, "first second")
      assert.match(line, /^connpool: remote error: /)
    }))

  it.effect("report turns a failure into a CliExit carrying its code", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(report(Effect.fail(rpcError("RemoteError", "boom"))))
      assert.deepStrictEqual(exit, Exit.fail(new CliExit({ code: 1 })))
      const died = yield* Effect.exit(report(Effect.die(new Error("bug"))))
      assert.deepStrictEqual(died, Exit.fail(new CliExit({ code: 2 })))
    }))

  it.effect("teardown maps success to 0, CliExit to its code and interruption to 130", () =>
    Effect.sync(() => {
      const codes: Array<number> = []
      teardown(Exit.succeed(undefined), (c) => codes.push(c))
      teardown(Exit.fail(new CliExit({ code: 1 })), (c) => codes.push(c))
      teardown(Exit.interrupt(1), (c) => codes.push(c))
      assert.deepStrictEqual(codes, [0, 1, 130])
    }))
})
