/**
 * The RPC pool's spans, recorded by a test tracer around real calls to the
 * test service on loopback: names, kinds, attributes, parents and events.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Tracer } from "effect"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as TestService from "../../src/server/TestService.ts"
import { attributesOf, named, parentId, recordingTracer } from "../observability/helpers.ts"
import { serve as serveCounting } from "../faults/helpers.ts"
import { closedPort } from "../wire/fixtures.ts"

const quiet = { enableKeepAlive: false } as const
const tracing = { tracing: true } as const


const flush = Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))

describe("RpcTracing", () => {
  it.effect("a CLIENT span per call named by its method, under the caller's span, with a connpool.dial child only when it waited for a dial", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* TestService.serve({ session: quiet })
      const pool = yield* RpcPool.make({ session: quiet, observability: tracing })
      yield* Effect.withSpan(
        Effect.andThen(pool.rpc(server.address, "Status.Ping", {}), pool.rpc(server.address, "Test.Echo", { Seq: 1 })),
        "caller"
      ).pipe(Effect.withTracer(tracer))

      const [caller] = named(spans, "caller")
      const [ping] = named(spans, "Status.Ping")
      const [echo] = named(spans, "Test.Echo")
      const dials = named(spans, "connpool.dial")
      assert.strictEqual(ping?.kind, "client")
      assert.strictEqual(echo?.kind, "client")
      assert.strictEqual(parentId(ping!), caller!.spanId)
      assert.strictEqual(parentId(echo!), caller!.spanId)
      assert.deepStrictEqual(attributesOf(ping!), {
        "rpc.system.name": "consul",
        "rpc.method": "Status.Ping",
        "server.address": "127.0.0.1",
        "server.port": server.port
      })
      assert.strictEqual(dials.length, 1, "the second call found the session: no dial span")
      assert.strictEqual(dials[0]!.kind, "internal")
      assert.strictEqual(parentId(dials[0]!), ping!.spanId)
      assert.deepStrictEqual(attributesOf(dials[0]!), {
        "connpool.pool.name": "RpcPool",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "connpool.dial.joined": false
      })
      for (const span of [ping!, echo!, dials[0]!]) {
        assert.strictEqual(span.status._tag, "Ended")
        if (span.status._tag === "Ended") assert.isTrue(Exit.isSuccess(span.status.exit))
      }
    }))

  it.effect("a failed call's span ends failed with error.type = the RpcError's reason, its dial span too", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* TestService.serve({ session: quiet })
      const dead = yield* closedPort
      const pool = yield* RpcPool.make({ session: quiet, observability: tracing })
      yield* Effect.exit(pool.rpc(server.address, "Test.Fail", { Message: "no" })).pipe(Effect.withTracer(tracer))
      yield* Effect.exit(pool.rpc(`127.0.0.1:${dead}`, "Status.Ping", {})).pipe(Effect.withTracer(tracer))

      const [fail] = named(spans, "Test.Fail")
      assert.strictEqual(attributesOf(fail!)["error.type"], "RemoteError")
      assert.isTrue(fail!.status._tag === "Ended" && Exit.isFailure(fail!.status.exit))
      const [ping] = named(spans, "Status.Ping")
      assert.strictEqual(attributesOf(ping!)["error.type"], "DialFailed")
      assert.strictEqual(attributesOf(ping!)["server.port"], dead)
      const dial = named(spans, "connpool.dial").find((s) => parentId(s) === ping!.spanId)
      assert.strictEqual(attributesOf(dial!)["error.type"], "DialFailed")
      assert.isUndefined(attributesOf(named(spans, "connpool.dial")[0]!)["error.type"], "the live server's dial succeeded")
    }))

  it.effect("callers that arrive during a dial each get a dial span, joined = true for all but the one that started it", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* TestService.serve({ session: quiet })
      const pool = yield* RpcPool.make({ session: quiet, observability: tracing })
      yield* Effect.forEach(
        [1, 2, 3],
        () => pool.rpc(server.address, "Status.Ping", {}),
        { concurrency: "unbounded", discard: true }
      ).pipe(Effect.withTracer(tracer))
      const dials = named(spans, "connpool.dial")
      assert.strictEqual(dials.length, 3)
      assert.deepStrictEqual(dials.map((s) => attributesOf(s)["connpool.dial.joined"]).sort(), [false, true, true])
      const calls = new Set(named(spans, "Status.Ping").map((s) => s.spanId))
      for (const dial of dials) assert.isTrue(calls.has(parentId(dial)!), "each dial span is a child of its own call's span")
      assert.strictEqual(server.stats().conns, 1, "one dial all the same")
    }))

  it.effect("the one retry of a refused stream is an event on the call's span, and its fresh dial a second dial span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* serveCounting()
      // One live stream per session: while the holder's call runs, a second open is refused.
      const pool = yield* RpcPool.make({ session: { ...quiet, maxStreams: 1 }, observability: tracing })
      const holder = yield* Effect.forkChild(pool.rpc(server.address, "Test.Sleep", { Millis: 1 }))
      for (let i = 0; i < 2000 && server.sleeping() === 0; i++) yield* flush
      yield* pool.rpc(server.address, "Test.Echo", { Seq: 3 }).pipe(Effect.withTracer(tracer))
      yield* Effect.ignore(Fiber.interrupt(holder))

      const [echo] = named(spans, "Test.Echo")
      assert.isUndefined(attributesOf(echo!)["error.type"], "the retry succeeded")
      const events = (echo as Tracer.NativeSpan).events
      assert.deepStrictEqual(events.map(([name, , attributes]) => [name, attributes]), [[
        "connpool.rpc.retry",
        { "server.address": "127.0.0.1", "server.port": server.port, "error.type": "StreamOpenFailed" }
      ]])
      const dials = named(spans, "connpool.dial")
      assert.strictEqual(dials.length, 1, "the first attempt took the live session; the retry dialled afresh")
      assert.strictEqual(parentId(dials[0]!), echo!.spanId)
    }))

  it.effect("with tracing off (the default) a call makes no span", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* TestService.serve({ session: quiet })
      const pool = yield* RpcPool.make({ session: quiet })
      yield* pool.rpc(server.address, "Status.Ping", {}).pipe(Effect.withTracer(tracer))
      assert.deepStrictEqual(spans.map((s) => s.name), [])
    }))
})
