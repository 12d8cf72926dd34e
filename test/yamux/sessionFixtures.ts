/**
 * Helpers of the Session suites (`Session*.test.ts`): an echo server, a round trip, a fiber's
 * failure, sizes. The peers and pairs themselves are in `harness.ts`.
 */
import { Effect, Fiber } from "effect"
import type { MuxError } from "../../src/mux/MuxError.ts"
import * as Session from "../../src/yamux/Session.ts"
import type { Stream } from "../../src/yamux/Stream.ts"
import { RawPeer, readAll } from "./harness.ts"

export const KiB = 1024
export const MiB = 1024 * 1024
export const frame = RawPeer.frame

/** Reads a stream to EOF and writes everything back, then half-closes. */
export const echo = (stream: Stream): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      const chunk = yield* stream.read
      if (chunk === undefined) return yield* stream.close
      yield* stream.write(chunk)
    }
  }).pipe(Effect.ignore)

/** Accepts streams and echoes each one until the session closes. */
export const echoServer = (session: Session.Session): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (;;) {
      const stream = yield* session.accept
      yield* Effect.forkChild(echo(stream))
    }
  }).pipe(Effect.ignore)

/** Sends `payload`, half-closes, and returns everything read back until EOF. */
export const roundTrip = (session: Session.Session, payload: Uint8Array) =>
  Effect.gen(function*() {
    const stream = yield* session.open
    const writer = yield* Effect.forkChild(Effect.andThen(stream.write(payload), stream.close))
    const back = yield* readAll(stream)
    yield* Fiber.join(writer)
    return back
  })

export const failureOf = <A>(fiber: Fiber.Fiber<A, MuxError>): Effect.Effect<MuxError, A> => Effect.flip(Fiber.join(fiber))

export const noKeepAlive = { enableKeepAlive: false } as const
