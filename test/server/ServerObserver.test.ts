/**
 * RpcServer's metrics, spans and defect logs, read after real calls from a
 * client session of our own on loopback.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Metric, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import {
  attributesOf,
  capturingLogs,
  count,
  freshRegistry,
  histogramCount,
  named,
  recordingTracer,
  series,
  seriesOf
} from "../observability/helpers.ts"
import { client, connect, quiet } from "./helpers.ts"

const handlers: Readonly<Record<string, RpcServer.Handler>> = {
  ...TestService.handlers,
  "Bad.Die": () => Effect.die(new Error("bug in the handler")),
  "Bad.Tagged": () => Effect.fail({ _tag: "NotFound", message: "no such thing" })
}

describe("ServerObserver", () => {
  it.effect("rpc.server.call.duration by method and error.type, every handler's series from the start, connpool.server.* counts", () =>
    freshRegistry(Effect.gen(function*() {
      const scope = yield* Scope.make()
      const server = yield* Scope.provide(RpcServer.serve({ session: quiet, handlers }), scope)
      const own = { "server.address": "127.0.0.1", "server.port": String(server.port) }
      const call = (method: string, extra: Record<string, string> = {}) => ({
        "rpc.system.name": "consul",
        "rpc.method": method,
        ...own,
        unit: "s",
        ...extra
      })
      const before = yield* Metric.snapshot
      assert.strictEqual(seriesOf(before, "rpc.server.call.duration").length, Object.keys(handlers).length)
      assert.strictEqual(histogramCount(series(before, "rpc.server.call.duration", call("Test.Echo"))), 0)
      assert.strictEqual(count(series(before, "connpool.server.internal_errors", own)), 0)

      const c = yield* client(yield* connect(server))
      yield* c.call("Status.Ping", {})
      yield* c.call("Status.Ping", {})
      for (const method of ["Test.Fail", "Bad.Tagged", "Bad.Die", "No.Such"]) yield* Effect.exit(c.call(method, {}))

      const after = yield* Metric.snapshot
      assert.strictEqual(histogramCount(series(after, "rpc.server.call.duration", call("Status.Ping"))), 2)
      assert.strictEqual(histogramCount(series(after, "rpc.server.call.duration", call("Test.Fail", { "error.type": "HandlerError" }))), 1)
      assert.strictEqual(histogramCount(series(after, "rpc.server.call.duration", call("Bad.Tagged", { "error.type": "NotFound" }))), 1)
      assert.strictEqual(histogramCount(series(after, "rpc.server.call.duration", call("Bad.Die", { "error.type": "InternalError" }))), 1)
      assert.strictEqual(histogramCount(series(after, "rpc.server.call.duration", call("_OTHER", { "error.type": "MethodNotFound" }))), 1)
      assert.isFalse(
        seriesOf(after, "rpc.server.call.duration").some((s) => s.attributes?.["rpc.method"] === "No.Such"),
        "a method no handler serves never names a series"
      )
      assert.strictEqual(count(series(after, "connpool.server.connections", own)), 1)
      assert.strictEqual(count(series(after, "connpool.server.sessions", own)), 1)
      assert.strictEqual(count(series(after, "connpool.server.streams", own)), 1, "the client's one stream is being served")
      assert.strictEqual(count(series(after, "connpool.server.internal_errors", own)), 1)
      assert.strictEqual(count(series(after, "connpool.server.connections.refused", own)), 0)
      assert.strictEqual(count(series(after, "connpool.server.streams.refused", own)), 0)
      assert.strictEqual(count(series(after, "connpool.server.streams.over_budget", own)), 0)

      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual((yield* Metric.snapshot).filter((s) => s.id.startsWith("connpool.")).map((s) => s.id), [])
    })))

  it.effect("a call is timed from its request to its response in seconds on the Clock", () =>
    freshRegistry(Effect.gen(function*() {
      const server = yield* RpcServer.serve({ session: quiet, handlers })
      const c = yield* client(yield* connect(server))
      const fiber = yield* Effect.forkChild(c.call("Test.Sleep", { Millis: 2500 }))
      for (let i = 0; i < 2000 && server.limitStats().bufferedBytes === 0; i++) {
        yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      }
      yield* Effect.yieldNow
      yield* TestClock.adjust("2500 millis")
      yield* Fiber.join(fiber)
      const sleep = series(yield* Metric.snapshot, "rpc.server.call.duration", {
        "rpc.system.name": "consul",
        "rpc.method": "Test.Sleep",
        "server.address": "127.0.0.1",
        "server.port": String(server.port),
        unit: "s"
      }).state as Metric.HistogramState
      assert.strictEqual(sleep.count, 1)
      assert.strictEqual(sleep.sum, 2.5)
    })))

  it.effect("a handler's defect is logged at error with its cause and the method and client, the client sees only \"internal error\"", () =>
    Effect.gen(function*() {
      const logs = capturingLogs()
      const server = yield* logs.provide(RpcServer.serve({ session: quiet, handlers }))
      const c = yield* client(yield* connect(server))
      const exit = yield* Effect.exit(c.call("Bad.Die", {}))
      assert.isTrue(Exit.isFailure(exit))
      assert.notInclude(Cause.pretty((exit as Exit.Failure<unknown, unknown>).cause), "bug in the handler")
      const errors = logs.lines.filter((l) => l.level === "Error")
      assert.strictEqual(errors.length, 1)
      assert.include(errors[0]!.message, "Bad.Die")
      assert.include(Cause.pretty(errors[0]!.cause), "bug in the handler")
      assert.strictEqual(errors[0]!.annotations["rpc.method"], "Bad.Die")
      assert.strictEqual(errors[0]!.annotations["client.address"], "127.0.0.1")
      assert.isNumber(errors[0]!.annotations["client.port"])
    }))

  it.effect("a SERVER span per call, named by its method; an unknown method's span is named by the RPC system, with rpc.method_original", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recordingTracer()
      const server = yield* RpcServer.serve({ session: quiet, handlers, observability: { tracing: true } }).pipe(
        Effect.withTracer(tracer)
      )
      const c = yield* client(yield* connect(server))
      yield* c.call("Status.Ping", {})
      yield* Effect.exit(c.call("Test.Fail", { Message: "no" }))
      yield* Effect.exit(c.call("No.Such", {}))

      const [ping] = named(spans, "Status.Ping")
      assert.strictEqual(ping?.kind, "server")
      const attributes = attributesOf(ping!)
      assert.strictEqual(attributes["client.address"], "127.0.0.1")
      assert.isNumber(attributes["client.port"])
      delete attributes["client.port"]
      assert.deepStrictEqual(attributes, {
        "rpc.system.name": "consul",
        "rpc.method": "Status.Ping",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "client.address": "127.0.0.1"
      })
      assert.isTrue(ping!.status._tag === "Ended" && Exit.isSuccess(ping!.status.exit))

      const [fail] = named(spans, "Test.Fail")
      assert.strictEqual(attributesOf(fail!)["error.type"], "HandlerError")
      assert.isTrue(fail!.status._tag === "Ended" && Exit.isFailure(fail!.status.exit), "a failed call's span ends failed")

      const [other] = named(spans, "consul")
      assert.strictEqual(attributesOf(other!)["rpc.method"], "_OTHER")
      assert.strictEqual(attributesOf(other!)["rpc.method_original"], "No.Such")
      assert.strictEqual(attributesOf(other!)["error.type"], "MethodNotFound")
      assert.strictEqual(spans.length, 3)
    }))

  it.effect("an observability option that is not a boolean is a ServerConfigError before listening", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        RpcServer.serve({ handlers, observability: { metrics: 1 as unknown as boolean } })
      )
      assert.strictEqual(error._tag, "ServerConfigError")
      assert.strictEqual((error as RpcServer.ServerConfigError).option, "observability.metrics")
    }))
})
