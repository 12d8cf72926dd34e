import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { parseArgs } from "../../src/cli/call.ts"
import { buildGoPeer, goAvailable, goServer } from "../interop/goPeer.ts"
import { lines, runCli, serve, tlsDir } from "./helpers.ts"

describe("connpool call", () => {
  it.live("prints Status.Ping's empty reply as {} and exits 0", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("call", server.address, "Status.Ping")
      assert.strictEqual(result.code, 0)
      assert.strictEqual(result.stdout, "{}\n")
      assert.strictEqual(result.stderr, "")
    }))

  it.live("prints a Test.Echo reply as one JSON line with the request's fields", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("call", server.address, "Test.Echo", "{\"Payload\":\"hi\",\"Seq\":7,\"Note\":\"n\"}")
      assert.strictEqual(result.code, 0)
      assert.lengthOf(lines(result.stdout), 1)
      const reply = JSON.parse(result.stdout)
      assert.strictEqual(reply.Payload, "hi")
      assert.strictEqual(reply.Seq, 7)
      assert.strictEqual(reply.Note, "n")
      assert.isNumber(reply.Served)
    }))

  it.live("exits 1 with the server's message on one stderr line for a remote error", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const result = yield* runCli("call", server.address, "Test.Fail", "{\"Message\":\"no such thing\"}")
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
      assert.include(result.stderr, "no such thing")
      assert.notInclude(result.stderr, "    at ")
    }))

  it.live("exits 2 with one stderr line when nothing listens on the port", () =>
    Effect.gen(function*() {
      // A port that was just free: serve, note it, stop the server.
      const address = yield* Effect.scoped(Effect.map(serve(), (s) => s.address))
      const result = yield* runCli("call", address, "Status.Ping", "--timeout", "5s")
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.lengthOf(lines(result.stderr), 1)
      assert.include(result.stderr, "DialFailed")
      assert.notInclude(result.stderr, "    at ")
    }))

  it.live("exits 2 on a usage error: bad ARGS_JSON, a malformed address, a missing argument", () =>
    Effect.gen(function*() {
      for (const args of [["call", "127.0.0.1:1", "Status.Ping", "{nope"], ["call", "nohost", "Status.Ping"], ["call"]]) {
        const result = yield* runCli(...args)
        assert.strictEqual(result.code, 2, args.join(" "))
        assert.strictEqual(result.stdout, "", args.join(" "))
        assert.lengthOf(lines(result.stderr), 1, args.join(" "))
      }
    }))

  it.live("calls a TLS server that verifies clients, with the nomad profile", () =>
    Effect.gen(function*() {
      const server = yield* serve(
        "--protocol", "nomad",
        "--tls-cert", `${tlsDir}server.pem`, "--tls-key", `${tlsDir}server-key.pem`,
        "--tls-ca", `${tlsDir}ca.pem`, "--tls-verify-client"
      )
      const ok = yield* runCli(
        "call", server.address, "Status.Ping", "--protocol", "nomad",
        "--tls-ca", `${tlsDir}ca.pem`, "--tls-cert", `${tlsDir}client.pem`, "--tls-key", `${tlsDir}client-key.pem`
      )
      assert.strictEqual(ok.code, 0, ok.stderr)
      assert.strictEqual(ok.stdout, "{}\n")
      const untrusted = yield* runCli(
        "call", server.address, "Status.Ping", "--protocol", "nomad",
        "--tls-ca", `${tlsDir}other-ca.pem`, "--tls-cert", `${tlsDir}client.pem`, "--tls-key", `${tlsDir}client-key.pem`
      )
      assert.strictEqual(untrusted.code, 2)
      assert.lengthOf(lines(untrusted.stderr), 1)
    }))

  it.effect("parseArgs keeps integers beyond 2^53 exact and fails with a UsageError on invalid JSON", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* parseArgs("{\"A\":1}"), { A: 1 })
      assert.deepStrictEqual(yield* parseArgs("{\"Seq\":18446744073709551615,\"F\":1.5}"), {
        Seq: 18446744073709551615n,
        F: 1.5
      })
      const error = yield* Effect.flip(parseArgs("{"))
      assert.strictEqual(error._tag, "UsageError")
    }))

  it.live("sends {\"$bytes\"} and {\"$time\"} as bytes and prints them back in the same forms", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const echo = (payload: string, ...flags: Array<string>) =>
        runCli("call", server.address, "Test.Echo", `{"Payload":${payload},"Seq":1,"Note":"n"}`, ...flags)
      const bytes = yield* echo("{\"$bytes\":\"AP8BAg==\"}")
      assert.strictEqual(bytes.code, 0, bytes.stderr)
      assert.deepStrictEqual(JSON.parse(bytes.stdout).Payload, { $bytes: "AP8BAg==" })
      const text = yield* echo("\"AP8BAg==\"")
      assert.strictEqual(JSON.parse(text.stdout).Payload, "AP8BAg==")
      const time = yield* echo("{\"$time\":\"2024-03-01T12:30:45.123456789+05:30\"}")
      assert.deepStrictEqual(JSON.parse(time.stdout).Payload, { $time: "2024-03-01T12:30:45.123456789+05:30" })
      const raw = yield* echo("\"hi\"", "--bytes", "base64")
      assert.deepStrictEqual(JSON.parse(raw.stdout), {
        Payload: { $bytes: "aGk=" },
        Seq: 1,
        Note: { $bytes: "bg==" },
        Served: JSON.parse(raw.stdout).Served
      })
    }))

  describe.runIf(goAvailable(import.meta.url))("against the Go peer", () => {
    beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

    it.live("prints Go's time.Time fields as RFC 3339 with nanoseconds", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const result = yield* runCli(
          "call", server.address, "Time.Echo", "{\"Times\":[{\"$time\":\"1969-07-20T20:17:40.000000001Z\"}]}"
        )
        assert.strictEqual(result.code, 0, result.stderr)
        const reply = JSON.parse(result.stdout)
        assert.deepStrictEqual(reply.Echo[0].Time, { $time: "1969-07-20T20:17:40.000000001Z" })
        assert.strictEqual(reply.Echo[0].Text, "1969-07-20T20:17:40.000000001Z")
        const made = Object.fromEntries(reply.Made.map((c: { Name: string; Time: unknown }) => [c.Name, c.Time]))
        assert.deepStrictEqual(made["utc"], { $time: "2024-03-01T12:30:45.123456789Z" })
        assert.deepStrictEqual(made["zoned"], { $time: "2024-03-01T18:00:45.123456789+05:30" })
        assert.deepStrictEqual(made["zero"], { $time: "0001-01-01T00:00:00.000000000Z" })
      }))
  })
})
