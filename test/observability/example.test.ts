/**
 * examples/observability.ts end to end: effect's OTLP exporter sends the
 * pools' and the server's spans and metrics to the example's collector on
 * loopback, with the names, kinds and units docs/observability.md lists.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { run } from "../../examples/observability.ts"

const read = (relative: string) => fs.readFileSync(new URL(relative, import.meta.url), "utf8")

describe("examples/observability.ts", () => {
  it("is what docs/observability.md shows", () => {
    const block = /```ts\n(import \{ Effect, Layer \}[\s\S]*?)```/.exec(read("../../docs/observability.md"))?.[1]
    const example = /\/\/ example:start\n([\s\S]*?)\/\/ example:end/.exec(read("../../examples/observability.ts"))?.[1]
    assert.isDefined(block)
    assert.isDefined(example)
    assert.strictEqual(block, example!.replace(`from "../src/index.ts"`, `from "effect-connpool"`))
  })

  it.live("exports the span tree and every metric through OTLP to a collector on loopback", () =>
    Effect.gen(function*() {
      const received = yield* run
      const span = (name: string, kind: string) => {
        const found = received.spans.filter((s) => s.name === name && s.kind === kind)
        assert.strictEqual(found.length, 1, `one ${kind} span ${name}`)
        return found[0]!
      }
      const checkout = span("checkout", "internal")
      const ping = span("Status.Ping", "client")
      assert.strictEqual(ping.parentSpanId, checkout.spanId)
      const dial = received.spans.find((s) => s.name === "connpool.dial" && s.parentSpanId === ping.spanId)
      assert.strictEqual(dial?.attributes["connpool.dial.joined"], false)
      assert.strictEqual(span("Test.Fail", "client").attributes["error.type"], "RemoteError")
      assert.strictEqual(span("Test.Fail", "server").attributes["error.type"], "HandlerError")
      assert.strictEqual(span("Status.Ping", "server").attributes["rpc.system.name"], "consul")
      const lookup = span("cache lookup", "internal")
      assert.isTrue(received.spans.some((s) => s.name === "connpool.dial" && s.parentSpanId === lookup.spanId))

      const kindOf = new Map(received.metrics.map((m) => [m.name, `${m.kind} ${m.unit}`]))
      const expected: Record<string, string> = {
        "rpc.client.call.duration": "histogram s",
        "rpc.server.call.duration": "histogram s",
        "connpool.rpc.sessions": "updowncounter 1",
        "connpool.rpc.dials": "counter 1",
        "connpool.server.internal_errors": "counter 1",
        "db.client.connection.count": "updowncounter 1",
        "db.client.connection.max": "updowncounter 1",
        "db.client.connection.pending_requests": "updowncounter 1",
        "db.client.connection.timeouts": "counter 1",
        "db.client.connection.wait_time": "histogram s",
        "db.client.connection.use_time": "histogram s",
        "db.client.connection.create_time": "histogram s"
      }
      for (const [name, kind] of Object.entries(expected)) assert.strictEqual(kindOf.get(name), kind, name)
      const calls = received.metrics.filter((m) => m.name === "rpc.client.call.duration").flatMap((m) => m.points)
      const failed = calls.find((p) => (p["attributes"] as Record<string, unknown>)["error.type"] === "RemoteError")
      assert.strictEqual((failed?.["attributes"] as Record<string, unknown>)["rpc.method"], "Test.Fail")
      assert.strictEqual(Number(failed?.["count"]), 1)
    }))
})
