/**
 * The test service's streaming methods (Nomad protocol), the same as the Go
 * peer's in `test/interop/go/server/streaming.go`:
 *
 * - `Test.Monitor {Count, Size, HeartbeatEvery}`: `Count` lines (`line 0`, ... padded to
 *   `Size` bytes), a heartbeat after every `HeartbeatEvery`, then EOF.
 * - `Test.Follow {Id, IntervalMillis}`: `tick 0`, `tick 1`, ... every `IntervalMillis`
 *   (default 10) until the client closes; the close is recorded under `Id`.
 * - `Test.FollowClosed {Id, WaitMillis}` (a plain RPC) -> `{Closed}`: whether follow `Id`
 *   saw its client close, waiting up to `WaitMillis` for it.
 * - `Test.Exec`: each value `{Data, Close}` from the client is echoed as a payload `Data`
 *   until one says `Close`.
 * - `Test.Fill {Bytes, FrameSize, Text}`: `Bytes` bytes in payloads of `FrameSize`
 *   (default 64 KiB), ASCII when `Text`, otherwise bytes that are not UTF-8.
 * - `Test.StreamError {Message, Code, Before}`: `Before` payloads, then an error frame.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Option, Stream } from "effect"
import type { Value } from "../msgpackrpc/Decoder.ts"
import { asBytes } from "../msgpackrpc/Decoder.ts"
import type { Handler } from "./RpcServer.ts"
import { duplex, frames, Heartbeat } from "./StreamingHandler.ts"
import type { Outbound, StreamingHandler } from "./StreamingHandler.ts"

/** Follow ids whose close is remembered; the oldest is forgotten past this. */
const maxFollows = 1024

const field = (v: Value, name: string): Value | undefined =>
  v !== null && typeof v === "object" && !(v instanceof Uint8Array) && !Array.isArray(v)
    ? (v as Record<string, Value>)[name]
    : undefined

const count = (v: Value | undefined, fallback = 0): number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : fallback

const text = (v: Value | undefined): string => typeof v === "string" ? v : ""

const bytes = (v: Value | undefined): Uint8Array => typeof v === "string" || v instanceof Uint8Array ? asBytes(v) : new Uint8Array(0)

const line = (i: number, size: number): string => {
  const s = `line ${i}`
  return s.length < size ? s.padEnd(size, ".") : s
}

/** One payload of `Test.Fill`: ASCII letters, or bytes with the high bit set (never UTF-8). */
const fillFrame = (size: number, ascii: boolean): Uint8Array => {
  const frame = new Uint8Array(size)
  for (let i = 0; i < size; i++) frame[i] = ascii ? 0x61 + (i % 26) : 0x80 | (i % 64)
  return frame
}

/** The streaming methods and their companion RPC, with the follow closes of one server. */
export const make = (): {
  readonly streaming: Readonly<Record<string, StreamingHandler>>
  readonly handlers: Readonly<Record<string, Handler>>
} => {
  const closes = new Map<string, Deferred.Deferred<void>>()
  const closeOf = (id: string): Deferred.Deferred<void> => {
    let closed = closes.get(id)
    if (closed === undefined) {
      closed = Deferred.makeUnsafe<void>()
      closes.set(id, closed)
      if (closes.size > maxFollows) closes.delete(closes.keys().next().value!)
    }
    return closed
  }

  const streaming: Record<string, StreamingHandler> = {
    "Test.Monitor": frames((request) => {
      const every = count(field(request, "HeartbeatEvery"))
      const size = count(field(request, "Size"))
      return Stream.range(0, count(field(request, "Count")) - 1).pipe(
        Stream.flatMap((i): Stream.Stream<Outbound> =>
          every > 0 && (i + 1) % every === 0
            ? Stream.make(line(i, size), Heartbeat)
            : Stream.succeed(line(i, size))
        )
      )
    }),
    "Test.Follow": duplex((requests, send) =>
      Effect.gen(function*() {
        const request = yield* Stream.runHead(requests)
        if (Option.isNone(request)) return
        const id = text(field(request.value, "Id"))
        const interval = Duration.millis(count(field(request.value, "IntervalMillis"), 10))
        yield* Effect.onInterrupt(
          Effect.gen(function*() {
            for (let n = 0;; n++) {
              yield* send(`tick ${n}`)
              yield* Effect.sleep(interval)
            }
          }),
          () => Deferred.succeed(closeOf(id), undefined)
        )
      })
    ),
    "Test.Exec": duplex((requests, send) =>
      requests.pipe(
        Stream.takeWhile((input) => field(input, "Close") !== true),
        Stream.runForEach((input) => send(bytes(field(input, "Data"))))
      )
    ),
    "Test.Fill": frames((request) => {
      const total = count(field(request, "Bytes"))
      const size = Math.max(1, count(field(request, "FrameSize"), 64 * 1024))
      const frame = fillFrame(size, field(request, "Text") === true)
      return Stream.range(0, Math.ceil(total / size) - 1).pipe(
        Stream.map((i) => i * size + size <= total ? frame : frame.subarray(0, total - i * size))
      )
    }),
    "Test.StreamError": frames((request) =>
      Stream.range(0, count(field(request, "Before")) - 1).pipe(
        Stream.map((i) => `before ${i}`),
        Stream.concat(Stream.fail({
          message: text(field(request, "Message")) || "failed",
          code: count(field(request, "Code"))
        }))
      )
    )
  }

  const handlers: Record<string, Handler> = {
    "Test.FollowClosed": (args) =>
      Deferred.await(closeOf(text(field(args, "Id")))).pipe(
        Effect.as({ Closed: true }),
        Effect.timeoutOrElse({
          duration: Duration.millis(count(field(args, "WaitMillis"))),
          orElse: () => Effect.succeed({ Closed: false })
        })
      )
  }

  return { streaming, handlers }
}
