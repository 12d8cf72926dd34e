import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { lines, runCli } from "./helpers.ts"

describe("connpool", () => {
  it.live("--help lists every command on stdout", () =>
    Effect.gen(function*() {
      const result = yield* runCli("--help")
      assert.strictEqual(result.code, 0)
      for (const command of ["serve", "call", "ping", "bench", "stream", "demo"]) {
        assert.match(result.stdout, new RegExp(`^\\s+${command}\\s`, "m"), command)
      }
    }))

  it.live("an unknown command is one stderr line and exit 2", () =>
    Effect.gen(function*() {
      const result = yield* runCli("frobnicate")
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
    }))

  it.live("an invalid flag value is one stderr line and exit 2", () =>
    Effect.gen(function*() {
      const result = yield* runCli("call", "127.0.0.1:1", "Status.Ping", "--timeout", "soon")
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
      assert.include(result.stderr, "--timeout")
    }))
})
