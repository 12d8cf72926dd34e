/**
 * The TypeScript contender of the bench's streaming row (f): the Go server's endless `Test.Fill`
 * streaming RPC read through `RpcPool.stream` (the library's public API), doing per frame what
 * bench/go/client -stream does: count the payload's bytes. Frames are read for --warmup, then
 * counted for --duration, then the Stream is ended, which closes the stream.
 *
 *   node bench/stream-client.ts --addr 127.0.0.1:4647 --duration 2s --warmup 1s [--frame-size 65536] [--payload binary|text]
 *
 * Prints one JSON line: {bytes, frames, seconds, mbPerSec, cpuMsPerMB}, the last the process's CPU
 * time (user and system, every thread) over the counted frames per 10^6 payload bytes: on a shared,
 * loaded machine it varies far less than MB/s. When the server cannot be reached, {"fatal": ...}
 * and exit status 1.
 */
import { Cause, Effect, Exit, Stream } from "effect"
import { Protocol, RpcPool } from "../src/index.ts"
import { die, durationMs, flags, integer, messageOf } from "./cli.ts"
import { round } from "./stats.ts"

const f = flags(["addr", "duration", "warmup", "frame-size", "payload"])
const address = f.addr ?? "127.0.0.1:4647"
const duration = durationMs("duration", f.duration, 2000)
const warmup = durationMs("warmup", f.warmup, 0)
const frameSize = integer("frame-size", f["frame-size"], 64 * 1024, 1)
const payload = f.payload ?? "binary"
if (payload !== "binary" && payload !== "text") die(`--payload: binary or text, got ${payload}`)
const text = payload === "text"

const program = Effect.gen(function*() {
  const pool = yield* RpcPool.RpcPool
  // One ping first: an unreachable server is one clear error, and the dial is not measured.
  yield* pool.ping(address)
  let bytes = 0
  let frames = 0
  let start = performance.now()
  let cpuStart = process.cpuUsage()
  const warmEnd = start + warmup
  let end = Infinity
  const fill = { Bytes: Number.MAX_SAFE_INTEGER, FrameSize: frameSize, Text: text }
  yield* pool.stream(address, "Test.Fill", fill).pipe(
    Stream.takeWhile(() => performance.now() < end),
    Stream.runForEach((frame) =>
      Effect.sync(() => {
        if (end === Infinity && performance.now() >= warmEnd) {
          start = performance.now()
          cpuStart = process.cpuUsage()
          end = start + duration
          return
        }
        if (end === Infinity || frame._tag !== "Payload") return
        bytes += frame.payload.byteLength
        frames++
      })
    )
  )
  const seconds = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpuStart)
  const cpuMs = (cpu.user + cpu.system) / 1000
  return {
    bytes,
    frames,
    seconds: round(seconds, 3),
    mbPerSec: round(bytes / 1e6 / seconds, 1),
    cpuMsPerMB: round(cpuMs / (bytes / 1e6), 2)
  }
}).pipe(Effect.provide(RpcPool.PoolLayer({ protocol: Protocol.nomad })))

const exit = await Effect.runPromiseExit(program)
if (Exit.isSuccess(exit)) {
  process.stdout.write(`${JSON.stringify(exit.value)}\n`)
  process.exit(0)
}
const fatal = messageOf(Cause.squash(exit.cause))
process.stdout.write(`${JSON.stringify({ fatal })}\n`)
process.stderr.write(`stream-client: ${fatal}\n`)
process.exit(1)
