/**
 * Nomad's streaming RPC both ways against HashiCorp's Go stack: `RpcPool.stream` and
 * `RpcPool.streamingRpc` against the Go peer's handlers (test/interop/go/server/streaming.go),
 * and the Go client's `-stream` mode against our `TestService` (src/server/TestStreaming.ts).
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import { randomUUID } from "node:crypto"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as Streaming from "../../src/msgpackrpc/Streaming.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import * as TestService from "../../src/server/TestService.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import { initialStreamWindow } from "../../src/yamux/Config.ts"
import { buildGoPeer, goAvailable, goClient, goClientArgs, goServer } from "./goPeer.ts"

const protocol = Protocols.nomad

/** Keepalive pings need real round trips; the test that moves the clock turns them off. */
const quiet = { enableKeepAlive: false } as const

const pool = (options: RpcPool.RpcPool.Options = {}) =>
  Effect.map(
    Layer.build(RpcPool.PoolLayer({ protocol, ...options })),
    (context) => Context.get(context, RpcPool.RpcPool)
  )

const text = (frame: RpcPool.RpcPool.Frame): string =>
  frame._tag === "Payload" ? new TextDecoder().decode(frame.payload) : "<heartbeat>"

const failure = <A>(exit: Exit.Exit<A, RpcError>): RpcError => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none()
  assert.isTrue(Option.isSome(error) && error.value instanceof RpcError, `not an RpcError: ${exit}`)
  return (error as Option.Some<RpcError>).value
}

/** One JSON line of the Go client's `-stream` mode. */
interface GoStreamResult {
  readonly ok: boolean
  readonly remote: boolean
  readonly error: string | null
  readonly code: number | null
  readonly frames: ReadonlyArray<string>
  readonly heartbeats: number
  readonly bytes: number
}

const lines = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `line ${from + i}`)

/** The payload of a `StreamErrWrapper` value read from `receive`. */
const payloadOf = (value: Value): Uint8Array => {
  const frame = Streaming.parseFrame(value)
  if (frame instanceof CodecError || frame._tag !== "Payload") return assert.fail(`not a payload frame: ${String(frame)}`)
  return frame.payload
}

describe.runIf(goAvailable(import.meta.url))("streaming RPC: our client -> Go server", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  it.live("a finite stream arrives complete and in order, heartbeats dropped unless asked for", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const request = { Count: 100, HeartbeatEvery: 10 }
      const frames = yield* Stream.runCollect(rpc.stream(server.address, "Test.Monitor", request))
      assert.deepStrictEqual(frames.map(text), lines(100))
      const withBeats = yield* Stream.runCollect(rpc.stream(server.address, "Test.Monitor", request, { heartbeats: true }))
      assert.strictEqual(withBeats.length, 110)
      assert.deepStrictEqual(withBeats.slice(0, 11).map(text), [...lines(10), "<heartbeat>"])
      assert.deepStrictEqual(withBeats.filter((f) => f._tag === "Payload").map(text), lines(100))
      const stats = yield* rpc.stats
      assert.strictEqual(stats.dials, 1)
      assert.strictEqual(stats.streamsInUse, 0, "every streaming stream gave its slot back")
      assert.strictEqual(stats.streamsIdle, 0, "no streaming stream went on the free list")
      assert.strictEqual(stats.callers, 0)
    }))

  it.live("an endless stream ended by its consumer is closed at once: the Go handler sees the close within a second", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const id = randomUUID()
      const ticks = yield* Stream.runCollect(
        rpc.stream(server.address, "Test.Follow", { Id: id, IntervalMillis: 5 }).pipe(Stream.take(5))
      )
      assert.deepStrictEqual(ticks.map(text), ["tick 0", "tick 1", "tick 2", "tick 3", "tick 4"])
      const seen = yield* rpc.rpc(server.address, "Test.FollowClosed", { Id: id, WaitMillis: 1000 })
      assert.deepStrictEqual(seen, { Closed: true })
      // Interrupting the consumer closes it the same way.
      const other = randomUUID()
      const fiber = yield* Effect.forkChild(
        Stream.runDrain(rpc.stream(server.address, "Test.Follow", { Id: other, IntervalMillis: 5 }))
      )
      yield* Effect.sleep("50 millis")
      yield* Fiber.interrupt(fiber)
      const seenToo = yield* rpc.rpc(server.address, "Test.FollowClosed", { Id: other, WaitMillis: 1000 })
      assert.deepStrictEqual(seenToo, { Closed: true })
    }))

  it.live("echoes both ways on one stream, as exec does", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const echoed = yield* Effect.scoped(Effect.gen(function*() {
        const exec = yield* rpc.streamingRpc(server.address, "Test.Exec")
        const pull = yield* Stream.toPull(exec.receive)
        const got: Array<string> = []
        for (let i = 0; i < 50; i++) {
          yield* exec.send({ Data: `input ${i}` })
          const [value] = yield* pull
          got.push(new TextDecoder().decode(payloadOf(value)))
        }
        yield* exec.send({ Close: true })
        // The handler returns on Close: EOF ends what is left of `receive`.
        assert.deepStrictEqual(yield* Stream.runCollect(exec.receive), [])
        return got
      }))
      assert.deepStrictEqual(echoed, Array.from({ length: 50 }, (_, i) => `input ${i}`))
    }))

  it.live("an unknown method fails with RemoteError carrying the server's ack, and the session carries on", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const error = failure(yield* Effect.exit(Stream.runCollect(rpc.stream(server.address, "Test.Nope", {}))))
      assert.strictEqual(error.reason, "RemoteError")
      assert.strictEqual(error.detail, "Unknown rpc method: \"Test.Nope\"")
      assert.isFalse(error.isRetryable)
      const coded = failure(
        yield* Effect.exit(Stream.runCollect(
          rpc.stream(server.address, "Test.StreamError", { Message: "no such alloc", Code: 404, Before: 2 })
        ))
      )
      assert.strictEqual(coded.reason, "RemoteError")
      assert.strictEqual(coded.detail, "no such alloc")
      assert.strictEqual(coded.code, 404)
      yield* rpc.rpc(server.address, "Status.Ping", {})
      assert.strictEqual((yield* rpc.stats).dials, 1)
    }))

  it.live("100 concurrent streams share one session", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const all = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) => Stream.runCollect(rpc.stream(server.address, "Test.Monitor", { Count: 20 + i })),
        { concurrency: "unbounded" }
      )
      all.forEach((frames, i) => assert.deepStrictEqual(frames.map(text), lines(20 + i), `stream ${i}`))
      const stats = yield* rpc.stats
      assert.strictEqual(stats.dials, 1)
      assert.strictEqual(stats.sessions, 1)
      const go = (yield* rpc.rpc(server.address, "Test.Stats", {})) as { readonly Conns: number; readonly Streams: number }
      assert.strictEqual(go.Conns, 1)
      assert.strictEqual(go.Streams, 101)
    }))

  it.live("64 MiB through a consumer that sleeps between frames: the client holds at most the window and a frame or two", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      const frameSize = 64 * 1024
      const total = 64 * 1024 * 1024
      const { bytes, frames, maxHeld } = yield* Effect.scoped(Effect.gen(function*() {
        const fill = yield* rpc.streamingRpc(server.address, "Test.Fill", { timeout: "10 seconds" })
        yield* fill.send({ Bytes: total, FrameSize: frameSize })
        let bytes = 0
        let frames = 0
        let maxHeld = 0
        yield* Stream.runForEach(fill.receive, (value: Value) =>
          Effect.suspend(() => {
            maxHeld = Math.max(maxHeld, fill.bufferedBytes)
            bytes += payloadOf(value).length
            frames++
            // A slow consumer: the server is meant to wait for it, not to fill our memory.
            return Effect.sleep("1 millis")
          }))
        return { bytes, frames, maxHeld }
      }))
      assert.strictEqual(bytes, total)
      assert.strictEqual(frames, total / frameSize)
      // yamux's buffer is bounded by the window; the decoder holds at most the frame in hand
      // and the rest of the chunk it came in (Go sends a 64 KiB payload as one Data frame).
      const bound = initialStreamWindow + 2 * (frameSize + 64)
      assert.isAtMost(maxHeld, bound, `held ${maxHeld} bytes`)
      assert.isAbove(maxHeld, frameSize, "the server kept the window full while the consumer slept")
    }), { timeout: 120_000 })

  it.live("a server killed mid-stream fails the stream with ConnectionLost", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool()
      let seen = 0
      const exit = yield* Effect.exit(Stream.runForEach(
        rpc.stream(server.address, "Test.Follow", { Id: randomUUID(), IntervalMillis: 5 }),
        () =>
          Effect.suspend(() => {
            seen++
            return seen === 3 ? Effect.promise(() => server.stop()) : Effect.void
          })
      ))
      const error = failure(exit)
      assert.strictEqual(error.reason, "ConnectionLost")
      assert.isAtLeast(seen, 3)
      for (let i = 0; i < 50 && (yield* rpc.stats).sessions > 0; i++) yield* Effect.sleep("10 millis")
      assert.strictEqual((yield* rpc.stats).sessions, 0, "the dead session left the pool")
    }))

  it.effect("the reaper never closes a session while a streaming RPC is open on it, and reaps it after (TestClock)", () =>
    Effect.gen(function*() {
      const server = yield* goServer({ protocol: "nomad" })
      const rpc = yield* pool({ maxTime: "10 seconds", session: quiet })
      const scope = yield* Scope.make()
      const follow = yield* rpc.streamingRpc(server.address, "Test.Follow").pipe(Scope.provide(scope))
      yield* follow.send({ Id: randomUUID(), IntervalMillis: 5 })
      const pull = yield* Stream.toPull(follow.receive).pipe(Scope.provide(scope))
      yield* pull
      // Sixty reap passes, each seeing the session idle for far longer than maxTime.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* rpc.stats).sessions, 1, "kept while the stream is open")
      assert.strictEqual((yield* rpc.stats).callers, 1)
      yield* pull
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* rpc.stats).callers, 0)
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual((yield* rpc.stats).sessions, 1, "idle for less than maxTime since the stream closed")
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual((yield* rpc.stats).sessions, 0, "reaped once idle for maxTime")
    }))
})

describe.runIf(goAvailable(import.meta.url))("streaming RPC: Go client -> our server", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  const serve = TestService.serve({ protocol }).pipe(Effect.orDie)
  const stream = (address: string, method: string, ...flags: ReadonlyArray<string>) =>
    Effect.map(
      goClient<GoStreamResult>([...goClientArgs({ address, protocol: "nomad" }), "-stream", method, ...flags]),
      (run) => ({ code: run.code, result: run.json, stderr: run.stderr })
    )

  it.live("the Go client reads a finite stream complete and in order, with its heartbeats", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const { code, result } = yield* stream(server.address, "Test.Monitor", "-args", `{"Count":100,"HeartbeatEvery":10}`)
      assert.strictEqual(code, 0)
      assert.deepStrictEqual(result?.frames, lines(100))
      assert.strictEqual(result?.heartbeats, 10)
      assert.strictEqual(server.stats().streamingRpcs, 1)
    }))

  it.live("echoes the Go client's inputs both ways, as exec does", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const inputs = [...Array.from({ length: 20 }, (_, i) => ({ Data: `in ${i}` })), { Close: true }]
      const { code, result } = yield* stream(server.address, "Test.Exec", "-send", JSON.stringify(inputs))
      assert.strictEqual(code, 0)
      assert.deepStrictEqual(result?.frames, Array.from({ length: 20 }, (_, i) => `in ${i}`))
    }))

  it.live("refuses an unknown method in the ack, in Nomad's words", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const { code, result } = yield* stream(server.address, "Test.Nope")
      assert.strictEqual(code, 1)
      assert.isTrue(result?.remote)
      assert.strictEqual(result?.error, "Unknown rpc method: \"Test.Nope\"")
      assert.strictEqual(server.stats().streamingRpcs, 0)
    }))

  it.live("sends a handler's failure as an error frame with its code", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const { code, result } = yield* stream(server.address, "Test.StreamError", "-args", `{"Message":"gone","Code":410,"Before":3}`)
      assert.strictEqual(code, 1)
      assert.deepStrictEqual(result?.frames, ["before 0", "before 1", "before 2"])
      assert.strictEqual(result?.error, "gone")
      assert.strictEqual(result?.code, 410)
    }))

  it.live("the Go client's close interrupts an endless handler within a second", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const id = randomUUID()
      const { code, result } = yield* stream(server.address, "Test.Follow", "-args", JSON.stringify({ Id: id }), "-max-frames", "3")
      assert.strictEqual(code, 0)
      assert.deepStrictEqual(result?.frames, ["tick 0", "tick 1", "tick 2"])
      const closed = yield* Effect.scoped(
        Effect.flatMap(pool(), (rpc) => rpc.rpc(server.address, "Test.FollowClosed", { Id: id, WaitMillis: 1000 }))
      )
      assert.deepStrictEqual(closed, { Closed: true })
      // The handler ended, and the pool that asked is gone: nothing is left serving.
      for (let i = 0; i < 50 && server.limitStats().servingStreams > 0; i++) yield* Effect.sleep("20 millis")
      assert.strictEqual(server.limitStats().servingStreams, 0)
    }))
})
