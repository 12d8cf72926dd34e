/**
 * `RpcPool.streamingRpc` and `RpcPool.stream` against servers in this process (our
 * `RpcServer`, or a yamux server that never answers), so TestClock drives the open timeout
 * and the pool's stream slots can be watched exactly. The Go peer's side is in
 * test/interop/streaming.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { RpcError } from "../../src/rpc/RpcError.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import * as StreamingHandler from "../../src/server/StreamingHandler.ts"
import * as TestService from "../../src/server/TestService.ts"
import * as TestStreaming from "../../src/server/TestStreaming.ts"
import { Connector } from "../../src/wire/ByteTransport.ts"
import * as Listener from "../../src/wire/Listener.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import { initialStreamWindow } from "../../src/yamux/Config.ts"
import * as Session from "../../src/yamux/Session.ts"
import { failure, flush, quiet, until } from "../server/helpers.ts"

const protocol = Protocols.nomad

const serve = TestService.serve({ protocol, session: quiet }).pipe(Effect.orDie)

const pool = (options: RpcPool.RpcPool.Options = {}) =>
  RpcPool.make({ protocol, session: quiet, ...options }).pipe(Effect.orDie)

const text = (frame: RpcPool.RpcPool.Frame): string =>
  frame._tag === "Payload" ? new TextDecoder().decode(frame.payload) : "<heartbeat>"

/** A duplex value's `Payload`, as `Test.Fill` sends it: bytes that are not UTF-8. */
const payloadOf = (v: Value): Uint8Array => {
  const payload = (v as { readonly Payload?: Value } | null)?.Payload
  if (!(payload instanceof Uint8Array)) return assert.fail("a frame without byte payload")
  return payload
}

const rpcFailure = <A>(effect: Effect.Effect<A, RpcError>) =>
  Effect.map(failure(effect), (error) => {
    assert.instanceOf(error, RpcError)
    return error
  })

/** Lets I/O flow until `probe` satisfies `done` (bounded by event-loop turns, not by time). */
const eventually = <A>(probe: Effect.Effect<A>, done: (a: A) => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (done(yield* probe)) return
      yield* flush(2)
    }
    assert.fail(`gave up waiting for ${what}`)
  })

/** A nomad yamux server that accepts every stream and never reads or writes on it. */
const silentServer = Listener.listen({ protocol }, ({ socket }) =>
  Effect.gen(function*() {
    const session = yield* Session.make(socket, { ...quiet, role: "server" })
    yield* Effect.forever(session.accept)
  }).pipe(Effect.ignore)).pipe(Effect.orDie)

describe("RpcPool streaming RPC", () => {

  it.effect("an open interrupted at any step leaves no stream slot or caller behind", () =>
    Effect.gen(function*() {
      const streaming = TestStreaming.make()
      const server = yield* RpcServer.make({
        protocol,
        session: quiet,
        handlers: { ...TestService.handlers, ...streaming.handlers },
        streaming: streaming.streaming
      })
      const connector: Connector = () =>
        Effect.gen(function*() {
          const pair = MemoryTransport.makePair()
          yield* Effect.forkScoped(server.serveTransport(pair.server, "client:1"))
          return pair.client
        })
      const rpc = yield* pool().pipe(Effect.provideService(Connector, connector))
      yield* rpc.rpc("server-a:4647", "Status.Ping", {})
      // Yield every few operations and interrupt after a growing number of the test's own yields:
      // somewhere between any two steps of the open (the slot taken, the stream handed over, the ack).
      for (let ops = 2; ops <= 10; ops++) {
        for (let step = 0; step < 40; step++) {
          const open = Effect.scoped(rpc.streamingRpc("server-a:4647", "Test.Monitor")).pipe(
            Effect.provideService(Scheduler.MaxOpsBeforeYield, ops)
          )
          const fiber = yield* Effect.forkChild(open)
          for (let i = 0; i < step; i++) yield* Effect.yieldNow
          yield* Fiber.interrupt(fiber)
          const stats = yield* rpc.stats
          assert.strictEqual(stats.streamsInUse, 0, `yielding every ${ops} operations, interrupted after ${step} yields`)
          assert.strictEqual(stats.callers, 0, `yielding every ${ops} operations, interrupted after ${step} yields`)
        }
      }
    }))
  it.effect("needs a protocol with a streaming byte: on consul it fails with InvalidOption and dials nothing", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* RpcPool.make({ session: quiet })
      const error = yield* rpcFailure(Effect.scoped(rpc.streamingRpc(server.address, "Test.Monitor")))
      assert.strictEqual(error.reason, "InvalidOption")
      assert.match(error.detail ?? "", /consul has no streaming RPC/)
      assert.strictEqual((yield* rpc.stats).dials, 0)
    }))

  it.effect("a timeout that is not a duration, or an address that is not host:port, fails before anything is sent", () =>
    Effect.gen(function*() {
      const rpc = yield* pool()
      const bad = yield* rpcFailure(Stream.runDrain(rpc.stream("127.0.0.1:1", "Test.Monitor", {}, { timeout: -1 })))
      assert.strictEqual(bad.reason, "InvalidOption")
      const nowhere = yield* rpcFailure(Stream.runDrain(rpc.stream("no-port", "Test.Monitor", {})))
      assert.strictEqual(nowhere.reason, "DialFailed")
      assert.strictEqual((yield* rpc.stats).dials, 0)
    }))

  it.effect("a server that never acks fails the open with CallTimeout at its timeout, and gives back its slot and caller", () =>
    Effect.gen(function*() {
      const server = yield* silentServer
      const rpc = yield* pool()
      const open = yield* Effect.forkChild(
        Effect.scoped(rpc.streamingRpc(server.address, "Test.Monitor", { timeout: "5 seconds" }))
      )
      yield* eventually(rpc.stats, (stats) => stats.streamsInUse === 1, "the stream to open")
      yield* TestClock.adjust("4 seconds")
      assert.isUndefined(open.pollUnsafe(), "still waiting for the ack")
      yield* TestClock.adjust("1 second")
      const error = yield* rpcFailure(Fiber.join(open))
      assert.strictEqual(error.reason, "CallTimeout")
      assert.isTrue(error.isRetryable, "nothing the server acted on was sent")
      const stats = yield* rpc.stats
      assert.strictEqual(stats.streamsInUse, 0)
      assert.strictEqual(stats.callers, 0)
      assert.strictEqual(stats.sessions, 1, "the session stays: only the stream timed out")
    }))

  it.effect("a streaming stream takes a slot while open, gives it back after, and never goes on the free list", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool()
      yield* rpc.rpc(server.address, "Status.Ping", {})
      const scope = yield* Scope.make()
      const monitor = yield* rpc.streamingRpc(server.address, "Test.Monitor").pipe(Scope.provide(scope))
      let stats = yield* rpc.stats
      assert.strictEqual(stats.streamsInUse, 1)
      assert.strictEqual(stats.callers, 1)
      assert.strictEqual(stats.streamsIdle, 1, "the ping's stream, not reused for the streaming RPC")
      yield* monitor.send({ Count: 3 })
      assert.strictEqual((yield* Stream.runCollect(monitor.receive)).length, 3)
      yield* Scope.close(scope, Exit.void)
      stats = yield* rpc.stats
      assert.strictEqual(stats.streamsInUse, 0)
      assert.strictEqual(stats.callers, 0)
      assert.strictEqual(stats.streamsIdle, 1)
      assert.strictEqual(server.stats().streams, 2)
    }))

  it.effect("at maxStreamsPerSession an idle call stream is closed to make room, and with none idle the open waits for a slot", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool({ maxStreamsPerSession: 2 })
      yield* Effect.all([rpc.rpc(server.address, "Status.Ping", {}), rpc.rpc(server.address, "Status.Ping", {})], {
        concurrency: 2
      })
      assert.strictEqual((yield* rpc.stats).streamsIdle, 2)
      const first = yield* Scope.make()
      yield* rpc.streamingRpc(server.address, "Test.Follow").pipe(Scope.provide(first))
      let stats = yield* rpc.stats
      assert.strictEqual(stats.streamsIdle, 1, "one idle stream closed for the new one")
      assert.strictEqual(stats.streamsInUse, 1)
      const second = yield* Scope.make()
      yield* rpc.streamingRpc(server.address, "Test.Follow").pipe(Scope.provide(second))
      stats = yield* rpc.stats
      assert.strictEqual(stats.streamsIdle, 0)
      assert.strictEqual(stats.streamsInUse, 2)
      const third = yield* Effect.forkChild(Effect.scoped(rpc.streamingRpc(server.address, "Test.Monitor")))
      yield* flush()
      assert.strictEqual((yield* rpc.stats).pending, 1, "waiting for a slot")
      yield* Scope.close(first, Exit.void)
      yield* Fiber.join(third)
      yield* Scope.close(second, Exit.void)
      stats = yield* rpc.stats
      assert.strictEqual(stats.streamsInUse, 0)
      assert.strictEqual(stats.pending, 0)
    }))

  it.effect("the server's heartbeats come on its Schedule, and reach the consumer only when it asks for them", () =>
    Effect.gen(function*() {
      const server = yield* RpcServer.serve({
        protocol,
        session: quiet,
        handlers: {},
        streaming: { "Test.Quiet": StreamingHandler.frames(() => Stream.never) }
      }).pipe(Effect.orDie)
      const rpc = yield* pool()
      const beats: Array<string> = []
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(
          rpc.stream(server.address, "Test.Quiet", {}, { heartbeats: true }),
          (frame) => Effect.sync(() => beats.push(text(frame)))
        )
      )
      yield* until("the ack", () => server.stats().streamingRpcs === 1)
      for (let i = 1; i <= 3; i++) {
        yield* TestClock.adjust("999 millis")
        yield* flush()
        assert.strictEqual(beats.length, i - 1, `no heartbeat ${i} before its second`)
        yield* TestClock.adjust("1 millis")
        yield* until(`heartbeat ${i}`, () => beats.length === i)
      }
      assert.deepStrictEqual(beats, ["<heartbeat>", "<heartbeat>", "<heartbeat>"])
      yield* Fiber.interrupt(fiber)
      // Without `heartbeats`, the same stream emits nothing.
      const silent: Array<string> = []
      const dropping = yield* Effect.forkChild(
        Stream.runForEach(rpc.stream(server.address, "Test.Quiet", {}), (frame) => Effect.sync(() => silent.push(text(frame))))
      )
      yield* until("the ack", () => server.stats().streamingRpcs === 2)
      yield* TestClock.adjust("3 seconds")
      yield* flush()
      assert.deepStrictEqual(silent, [])
      yield* Fiber.interrupt(dropping)
    }))

  it.effect("a pool shut down under an open stream fails it with PoolClosed", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const poolScope = yield* Scope.make()
      const rpc = yield* pool().pipe(Scope.provide(poolScope))
      const ticks: Array<string> = []
      const fiber = yield* Effect.forkChild(
        Stream.runForEach(
          rpc.stream(server.address, "Test.Follow", { Id: "x", IntervalMillis: 10 }),
          (frame) => Effect.sync(() => ticks.push(text(frame)))
        )
      )
      yield* until("a tick", () => ticks.length === 1)
      yield* Scope.close(poolScope, Exit.void)
      const error = yield* rpcFailure(Fiber.join(fiber))
      assert.strictEqual(error.reason, "PoolClosed")
    }))

  it.effect("a duplex used after its Scope closed fails typed, never with a defect", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool()
      const exec = yield* Effect.scoped(rpc.streamingRpc(server.address, "Test.Exec"))
      const sent = yield* rpcFailure(exec.send({ Data: "late" }))
      assert.strictEqual(sent.reason, "StreamReset")
      const received = yield* rpcFailure(Stream.runDrain(exec.receive))
      assert.strictEqual(received.reason, "StreamReset")
      assert.strictEqual((yield* rpc.stats).callers, 0)
    }))

  it.effect("send after our half-close fails with a typed error, and receive still drains the server's frames", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool()
      yield* Effect.scoped(Effect.gen(function*() {
        const exec = yield* rpc.streamingRpc(server.address, "Test.Exec")
        yield* exec.send({ Data: "a" })
        const [first] = yield* Stream.runCollect(exec.receive.pipe(Stream.take(1)))
        assert.isDefined(first)
        yield* exec.close
        const error = yield* rpcFailure(exec.send({ Data: "b" }))
        assert.strictEqual(error.reason, "StreamReset")
        // Our FIN interrupts the handler, which ends the stream: receive ends.
        assert.deepStrictEqual(yield* Stream.runCollect(exec.receive), [])
      }))
    }))

  it.effect("RpcPool.stream hands out text and binary payloads as their bytes, each intact after the reads that follow it", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool()
      // Frames larger than a socket read, so each is assembled across reads of the one reused read buffer.
      const frameSize = 100 * 1024 + 7
      for (const Text of [true, false]) {
        const total = 5 * frameSize + 123
        const frames = yield* Stream.runCollect(rpc.stream(server.address, "Test.Fill", { Bytes: total, FrameSize: frameSize, Text }))
        assert.deepStrictEqual(frames.map((f) => f._tag === "Payload" ? f.payload.length : -1), [
          ...Array.from({ length: 5 }, () => frameSize),
          123
        ])
        // Checked only once the stream has ended: a payload that viewed a reused buffer would have changed.
        frames.forEach((frame, n) => {
          assert(frame._tag === "Payload")
          assert.instanceOf(frame.payload, Uint8Array)
          for (let i = 0; i < frame.payload.length; i++) {
            const want = Text ? 0x61 + (i % 26) : 0x80 | (i % 64)
            if (frame.payload[i] !== want) assert.fail(`text ${Text}, frame ${n}, byte ${i}: ${frame.payload[i]} != ${want}`)
          }
        })
      }
    }))

  it.effect("a consumer that stops pulling holds the server to the stream's window, and gets every byte once it goes on", () =>
    Effect.gen(function*() {
      const server = yield* serve
      const rpc = yield* pool()
      // Frames of several reads, decoded whole once in: most of each is assembled in place, where bytes that go
      // into the value the consumer waits for count as read at once.
      const frameSize = 200 * 1024
      const total = 40 * frameSize
      yield* Effect.scoped(Effect.gen(function*() {
        const fill = yield* rpc.streamingRpc(server.address, "Test.Fill")
        yield* fill.send({ Bytes: total, FrameSize: frameSize })
        const payloads = (values: ReadonlyArray<Value>) => values.reduce((n: number, v) => n + payloadOf(v).length, 0)
        let bytes = payloads(yield* Stream.runCollect(fill.receive.pipe(Stream.take(1))))
        // The consumer stops: the server fills the window, then waits.
        let held = -1
        for (let i = 0, still = 0; i < 200 && still < 5; i++) {
          still = held === fill.bufferedBytes ? still + 1 : 0
          held = fill.bufferedBytes
          yield* flush(16)
        }
        assert.isAbove(held, frameSize, "the server filled the window while the consumer waited")
        assert.isAtMost(held, initialStreamWindow + frameSize + 1024, `held ${held} bytes`)
        // The same stream again, where the first run stopped.
        bytes += payloads(yield* Stream.runCollect(fill.receive))
        assert.strictEqual(bytes, total)
      }))
    }))
})
