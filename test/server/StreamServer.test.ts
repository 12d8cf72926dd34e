/**
 * One stream of the server, from the client's side on loopback: the byte budgets that bound what
 * partial and in-service requests hold, and handlers that misbehave. Hostile clients write
 * requests by hand, in pieces, and never finish them.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import type { MuxSession } from "../../src/mux/MuxSession.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import { client, connect, failure, field, quiet, readFailure, remoteMessage, request, send, until, within } from "./helpers.ts"

const KiB = 1024

/**
 * The start of a `Test.Echo` request whose `Payload` announces `announced` bytes but carries only
 * `sent`: a client that stops mid-request, as the one that made the server hold 719 MB.
 */
const partialEcho = (seq: number, announced: number, sent: number): Uint8Array => {
  const head = request("Test.Echo", seq, {})
  // Replace the empty args map (0x80, the last byte) by a map with one bin32 entry.
  const key = new TextEncoder().encode("Payload")
  const out = new Uint8Array(head.length - 1 + 1 + 1 + key.length + 5 + sent)
  out.set(head.subarray(0, head.length - 1), 0)
  let at = head.length - 1
  out[at++] = 0x81
  out[at++] = 0xa0 | key.length
  out.set(key, at)
  at += key.length
  out[at++] = 0xc6
  new DataView(out.buffer).setUint32(at, announced)
  return out
}

/** The bytes of a whole `Test.Echo` request whose `Payload` is `announced` bytes (what `partialEcho` starts). */
const wholeEcho = (seq: number, announced: number): number => partialEcho(seq, announced, 0).length + announced

/**
 * Opens `count` streams, each holding half of a request of `bytes` (its payload announced, half of it sent),
 * and waits for the server to charge each. A request announced this large is read straight into a buffer of
 * its size, so it is charged all of that (plus a little room) as soon as its header is read.
 */
const holdPartials = (server: RpcServer.Server, session: MuxSession, count: number, bytes: number) =>
  Effect.gen(function*() {
    const streams = []
    for (let i = 0; i < count; i++) {
      const before = server.limitStats().bufferedBytes
      streams.push(yield* send(session, partialEcho(i, bytes, bytes / 2)))
      yield* until(`partial request ${i} to be charged`, () => server.limitStats().bufferedBytes >= before + wholeEcho(i, bytes))
    }
    return streams
  })

const budgeted = (options: Partial<RpcServer.ServeOptions>) =>
  TestService.serve({ session: quiet, maxMessageSize: 1024 * KiB, ...options })

describe("StreamServer", () => {
  describe("byte budgets", () => {
    it.effect("resets the stream whose partial request would pass maxBufferedBytesPerSession, holding no more", () =>
      Effect.gen(function*() {
        const server = yield* budgeted({ maxBufferedBytesPerSession: 1024 * KiB })
        const session = yield* connect(server)
        const held = yield* holdPartials(server, session, 5, 200 * KiB)
        // Each is charged its whole announced size, and at most a little room (1 KiB) more.
        assert.isAtLeast(server.limitStats().bufferedBytes, 5 * wholeEcho(0, 200 * KiB))
        assert.isAtMost(server.limitStats().bufferedBytes, 5 * (wholeEcho(0, 200 * KiB) + 1024))

        // The sixth would take the session past 1 MiB: it is reset, the five others are not.
        const sixth = yield* send(session, partialEcho(5, 200 * KiB, 100 * KiB))
        assert.strictEqual(yield* readFailure(sixth), "StreamReset")
        assert.isAtMost(server.limitStats().bufferedBytes, 1024 * KiB)
        assert.strictEqual(server.limitStats().overBudget, 1)
        for (const stream of held) assert.isFalse(stream.isClosed)

        // Small calls still fit, on the same session.
        assert.deepStrictEqual(yield* (yield* client(session)).call("Status.Ping", {}), {})
        // Streams that end mid-request give their bytes back.
        for (const stream of held) yield* stream.reset
        yield* until("the reset streams' bytes to come back", () => server.limitStats().bufferedBytes === 0)
        assert.isFalse(session.isClosed)
      }))

    it.effect("counts every session against maxBufferedBytes", () =>
      Effect.gen(function*() {
        const server = yield* budgeted({ maxBufferedBytesPerSession: 1024 * KiB, maxBufferedBytes: 1536 * KiB })
        const one = yield* connect(server)
        const two = yield* connect(server)
        yield* holdPartials(server, one, 5, 200 * KiB)
        yield* holdPartials(server, two, 2, 200 * KiB)
        // Session two holds 400 KiB of its own 1 MiB, but the server's 1.5 MiB is nearly taken.
        const third = yield* send(two, partialEcho(9, 200 * KiB, 100 * KiB))
        assert.strictEqual(yield* readFailure(third), "StreamReset")
        assert.isAtMost(server.limitStats().bufferedBytes, 1536 * KiB)
        assert.strictEqual(server.limitStats().overBudget, 1)
      }))

    it.effect("holds a request's bytes until its reply is written", () =>
      Effect.gen(function*() {
        const gate = yield* Deferred.make<void>()
        const server = yield* RpcServer.serve({
          session: quiet,
          maxMessageSize: 1024 * KiB,
          maxBufferedBytesPerSession: 1024 * KiB,
          handlers: { ...TestService.handlers, "Test.Gate": () => Effect.as(Deferred.await(gate), {}) }
        })
        const session = yield* connect(server)
        const payload = new Uint8Array(600 * KiB)
        const gated = yield* Effect.forkChild((yield* client(session)).call("Test.Gate", { Payload: payload }))
        yield* until("the gated request to be read", () => server.limitStats().bufferedBytes > 600 * KiB)

        // A second 600 KiB request does not fit beside the one being served.
        const refused = yield* failure((yield* client(session)).call("Test.Echo", { Payload: payload }))
        assert.strictEqual((refused as { readonly reason: string }).reason, "StreamReset")
        assert.strictEqual(server.limitStats().overBudget, 1)

        yield* Deferred.succeed(gate, undefined)
        assert.deepStrictEqual(yield* Fiber.join(gated), {})
        yield* until("the answered request's bytes to come back", () => server.limitStats().bufferedBytes === 0)
        const echoed = yield* (yield* client(session)).call("Test.Echo", { Payload: payload })
        assert.strictEqual((field(echoed, "Payload") as Uint8Array).length, 600 * KiB)
      }))
  })

  describe("handlers that misbehave", () => {
    const throwingGetter = {
      get Boom(): never {
        throw new Error("getter")
      }
    }
    const throwingProxy = new Proxy({}, {
      ownKeys: () => {
        throw new Error("proxy")
      }
    })
    const bad: Readonly<Record<string, RpcServer.Handler>> = {
      "Bad.Throw": () => {
        throw new Error("thrown, not failed")
      },
      "Bad.Die": () => Effect.die(new Error("bug")),
      "Bad.Interrupt": () => Effect.interrupt,
      "Bad.NotAnEffect": () => 42 as unknown as Effect.Effect<unknown>,
      "Bad.Promise": () => Promise.resolve({}) as unknown as Effect.Effect<unknown>,
      "Bad.FailUndefined": () => Effect.fail(undefined as unknown as { readonly message: string }),
      "Bad.FailNumber": () => Effect.fail({ message: 42 } as unknown as { readonly message: string }),
      "Bad.FailGetter": () =>
        Effect.fail({
          get message(): string {
            throw new Error("message getter")
          }
        }),
      "Bad.ReplyGetter": () => Effect.succeed(throwingGetter),
      "Bad.ReplyProxy": () => Effect.succeed(throwingProxy)
    }
    const expected: ReadonlyArray<readonly [string, string]> = [
      ["Bad.Throw", "internal error"],
      ["Bad.Die", "internal error"],
      ["Bad.Interrupt", "internal error"],
      ["Bad.NotAnEffect", "internal error"],
      ["Bad.Promise", "internal error"],
      ["Bad.FailUndefined", "error"],
      ["Bad.FailNumber", "error"],
      ["Bad.FailGetter", "error"],
      ["Bad.ReplyGetter", "internal error"],
      ["Bad.ReplyProxy", "internal error"]
    ]

    it.effect("answers each on the same stream, which carries on, and counts the internal errors", () =>
      Effect.gen(function*() {
        const server = yield* RpcServer.serve({ session: quiet, handlers: { ...TestService.handlers, ...bad } })
        const c = yield* client(yield* connect(server))
        for (const [method, message] of expected) {
          const error = yield* within(method, failure(c.call(method, {})))
          assert.strictEqual(remoteMessage(error), message, method)
          assert.deepStrictEqual(yield* within(`a call after ${method}`, c.call("Status.Ping", {})), {})
        }
        assert.strictEqual(server.limitStats().internalErrors, 7)
        assert.strictEqual(server.stats().served, 2 * expected.length)
        assert.strictEqual(server.stats().live, 1)
      }))
  })
})
