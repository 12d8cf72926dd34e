import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomUUID } from "node:crypto"
import { formatFrame } from "../../src/cli/stream.ts"
import { lines, runCli, serve, startCli } from "./helpers.ts"

describe("connpool stream", () => {
  it("prints a payload as text when it is UTF-8, otherwise in the bytes form, and heartbeats as JSON", () => {
    const utf8 = new TextEncoder().encode("héllo\n")
    assert.strictEqual(formatFrame({ _tag: "Payload", payload: utf8 }, false, "auto"), "héllo")
    assert.strictEqual(formatFrame({ _tag: "Payload", payload: utf8 }, true, "auto"), "{\"payload\":\"héllo\\n\"}")
    const binary = Uint8Array.of(0xff, 0x00)
    assert.strictEqual(formatFrame({ _tag: "Payload", payload: binary }, false, "auto"), "{\"$bytes\":\"/wA=\"}")
    assert.strictEqual(formatFrame({ _tag: "Payload", payload: utf8 }, true, "base64"), "{\"payload\":{\"$bytes\":\"aMOpbGxvCg==\"}}")
    assert.strictEqual(formatFrame({ _tag: "Heartbeat" }, false, "auto"), "{\"heartbeat\":true}")
  })

  it.live("prints a finite stream a line per frame and exits 0 at its end; heartbeats only with --heartbeats", () =>
    Effect.gen(function*() {
      const server = yield* serve("--protocol", "nomad")
      const plain = yield* runCli("stream", server.address, "Test.Monitor", "{\"Count\":4,\"HeartbeatEvery\":2}")
      assert.strictEqual(plain.code, 0, plain.stderr)
      assert.deepStrictEqual(lines(plain.stdout), ["line 0", "line 1", "line 2", "line 3"])
      assert.strictEqual(plain.stderr, "")
      const beats = yield* runCli("stream", server.address, "Test.Monitor", "{\"Count\":4,\"HeartbeatEvery\":2}", "--heartbeats", "--json")
      assert.strictEqual(beats.code, 0, beats.stderr)
      assert.deepStrictEqual(lines(beats.stdout).map((l) => JSON.parse(l)), [
        { payload: "line 0" },
        { payload: "line 1" },
        { heartbeat: true },
        { payload: "line 2" },
        { payload: "line 3" },
        { heartbeat: true }
      ])
    }))

  it.live("exits 0 at --max-frames or --duration, having closed the stream: the server sees the close", () =>
    Effect.gen(function*() {
      const server = yield* serve("--protocol", "nomad")
      const id = randomUUID()
      const limited = yield* runCli("stream", server.address, "Test.Follow", JSON.stringify({ Id: id }), "--max-frames", "3")
      assert.strictEqual(limited.code, 0, limited.stderr)
      assert.deepStrictEqual(lines(limited.stdout), ["tick 0", "tick 1", "tick 2"])
      const closed = yield* runCli("call", server.address, "Test.FollowClosed", JSON.stringify({ Id: id, WaitMillis: 1000 }), "--protocol", "nomad")
      assert.strictEqual(closed.stdout, "{\"Closed\":true}\n")
      const timed = yield* runCli("stream", server.address, "Test.Follow", "{\"IntervalMillis\":20}", "--duration", "300ms")
      assert.strictEqual(timed.code, 0, timed.stderr)
      assert.isAbove(lines(timed.stdout).length, 0)
    }))

  it.live("exits 1 with one stderr line when the server refuses the method or ends the stream with an error", () =>
    Effect.gen(function*() {
      const server = yield* serve("--protocol", "nomad")
      const unknown = yield* runCli("stream", server.address, "Test.Nope")
      assert.strictEqual(unknown.code, 1)
      assert.strictEqual(unknown.stdout, "")
      assert.lengthOf(lines(unknown.stderr), 1)
      assert.include(unknown.stderr, "Unknown rpc method: \"Test.Nope\"")
      const failed = yield* runCli("stream", server.address, "Test.StreamError", "{\"Message\":\"gone\",\"Code\":410,\"Before\":1}")
      assert.strictEqual(failed.code, 1)
      assert.deepStrictEqual(lines(failed.stdout), ["before 0"])
      assert.lengthOf(lines(failed.stderr), 1)
      assert.include(failed.stderr, "gone (code 410)")
    }))

  it.live("exits 2 on a connection or usage error, with one stderr line", () =>
    Effect.gen(function*() {
      const address = yield* Effect.scoped(Effect.map(serve("--protocol", "nomad"), (s) => s.address))
      const refused = yield* runCli("stream", address, "Test.Follow", "--timeout", "5s")
      assert.strictEqual(refused.code, 2)
      assert.include(refused.stderr, "DialFailed")
      for (const args of [["stream", address, "Test.Follow", "{nope"], ["stream", address, "Test.Follow", "--max-frames", "0"]]) {
        const result = yield* runCli(...args)
        assert.strictEqual(result.code, 2, args.join(" "))
        assert.strictEqual(result.stdout, "", args.join(" "))
        assert.lengthOf(lines(result.stderr), 1, args.join(" "))
      }
    }))

  it.live("Ctrl-C closes the stream cleanly and exits 130", () =>
    Effect.gen(function*() {
      const server = yield* serve("--protocol", "nomad")
      const id = randomUUID()
      const cli = yield* startCli("stream", server.address, "Test.Follow", JSON.stringify({ Id: id, IntervalMillis: 20 }))
      yield* cli.stdoutLine(/^tick 0$/)
      cli.child.kill("SIGINT")
      const finished = yield* cli.finished
      assert.strictEqual(finished.code, 130)
      assert.notInclude(finished.stderr, "    at ")
      const closed = yield* runCli("call", server.address, "Test.FollowClosed", JSON.stringify({ Id: id, WaitMillis: 1000 }), "--protocol", "nomad")
      assert.strictEqual(closed.stdout, "{\"Closed\":true}\n")
    }))
})
