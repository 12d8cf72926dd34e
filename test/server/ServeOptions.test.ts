/**
 * The server's options are checked once, before it listens: every bad value is a typed
 * `ServerConfigError` naming the option, never a limit switched off or a throw per connection.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as RpcServer from "../../src/server/RpcServer.ts"
import { ServerConfigError } from "../../src/server/ServerConfigError.ts"
import * as ServeOptions from "../../src/server/ServeOptions.ts"
import * as TestService from "../../src/server/TestService.ts"

const MiB = 1024 * 1024
const handlers = TestService.handlers

/** The error `make` returns for these options (it must return one). */
const refused = (options: Partial<ServeOptions.ServeOptions>): ServerConfigError => {
  const config = ServeOptions.make({ handlers, ...options } as ServeOptions.ServeOptions)
  assert.instanceOf(config, ServerConfigError, JSON.stringify(options))
  return config as ServerConfigError
}

const accepted = (options: Partial<ServeOptions.ServeOptions>): ServeOptions.Config => {
  const config = ServeOptions.make({ handlers, ...options })
  assert.notInstanceOf(config, ServerConfigError, config instanceof ServerConfigError ? config.message : "")
  return config as ServeOptions.Config
}

const counts = ["maxConns", "maxConnsPerClient", "maxStreamsPerSession", "maxStreams"] as const
const budgets = ["maxBufferedBytesPerSession", "maxBufferedBytes"] as const
const notCounts: ReadonlyArray<unknown> = [NaN, 0, -1, 1.5, "10", null, -Infinity]

describe("ServeOptions", () => {
  it("refuses a limit that is NaN, zero, negative, fractional or not a number, naming it", () => {
    for (const option of [...counts, ...budgets, "maxMessageSize"] as const) {
      for (const value of notCounts) {
        const error = refused({ [option]: value })
        assert.strictEqual(error.reason, "InvalidOption")
        assert.strictEqual(error.option, option, `${option}: ${String(value)}`)
        assert.isFalse(error.isRetryable)
      }
    }
  })

  it("takes Infinity to switch a count or a budget off, but not for maxMessageSize", () => {
    for (const option of [...counts, ...budgets]) {
      assert.strictEqual(accepted({ [option]: Infinity }).limits[option], Infinity)
    }
    assert.strictEqual(refused({ maxMessageSize: Infinity }).option, "maxMessageSize")
  })

  it("refuses bad durations, ports, hosts, session and decoder limits, and handlers that are not functions", () => {
    const cases: ReadonlyArray<readonly [Partial<ServeOptions.ServeOptions>, string]> = [
      [{ handshakeTimeout: "banana" as never }, "handshakeTimeout"],
      [{ handshakeTimeout: 0 }, "handshakeTimeout"],
      [{ handshakeTimeout: NaN }, "handshakeTimeout"],
      [{ port: 70000 }, "port"],
      [{ port: 1.5 }, "port"],
      [{ host: 7 as never }, "host"],
      [{ session: { keepAliveInterval: "soon" as never } }, "session.keepAliveInterval"],
      [{ session: { keepAliveInterval: 0 } }, "session.keepAliveInterval"],
      [{ session: { streamOpenTimeout: -1 } }, "session.streamOpenTimeout"],
      [{ session: { maxStreams: NaN } }, "session.maxStreams"],
      [{ session: { acceptBacklog: 0 } }, "session.acceptBacklog"],
      [{ session: { enableKeepAlive: "yes" as never } }, "session.enableKeepAlive"],
      [{ decoder: { maxDepth: NaN } }, "decoder.maxDepth"],
      [{ decoder: { maxMessageBytes: -5 } }, "decoder.maxMessageBytes"],
      [{ handlers: { "Test.Nope": 42 as never } }, "handlers.Test.Nope"],
      [{ handlers: undefined as never }, "handlers"]
    ]
    for (const [options, option] of cases) {
      const error = refused(options)
      assert.strictEqual(error.option, option)
      assert.strictEqual(error.reason, "InvalidOption")
    }
  })

  it("refuses a byte budget that cannot hold one request of maxMessageSize", () => {
    const perSession = refused({ maxMessageSize: 8 * MiB, maxBufferedBytesPerSession: 4 * MiB })
    assert.strictEqual(perSession.reason, "Inconsistent")
    assert.strictEqual(perSession.option, "maxBufferedBytesPerSession")
    const total = refused({ maxMessageSize: 8 * MiB, maxBufferedBytes: 4 * MiB })
    assert.strictEqual(total.option, "maxBufferedBytes")
    assert.strictEqual(accepted({ maxMessageSize: 8 * MiB, maxBufferedBytesPerSession: 8 * MiB }).limits.maxMessageSize, 8 * MiB)
  })

  it("applies the named defaults", () => {
    assert.deepStrictEqual(accepted({}).limits, {
      maxConns: ServeOptions.defaultMaxConns,
      maxConnsPerClient: ServeOptions.defaultMaxConnsPerClient,
      maxStreamsPerSession: ServeOptions.defaultMaxStreamsPerSession,
      maxStreams: ServeOptions.defaultMaxStreams,
      maxBufferedBytesPerSession: ServeOptions.defaultMaxBufferedBytesPerSession,
      maxBufferedBytes: ServeOptions.defaultMaxBufferedBytes,
      maxMessageSize: ServeOptions.defaultMaxMessageSize
    })
    assert.deepStrictEqual(
      [ServeOptions.defaultMaxBufferedBytesPerSession, ServeOptions.defaultMaxBufferedBytes],
      [128 * MiB, 256 * MiB]
    )
  })

  it("raises the default budgets with maxMessageSize, so a larger request still fits", () => {
    const { limits } = accepted({ maxMessageSize: 200 * MiB })
    assert.strictEqual(limits.maxBufferedBytesPerSession, 400 * MiB)
    assert.strictEqual(limits.maxBufferedBytes, 400 * MiB)
    assert.strictEqual(accepted({ decoder: { maxMessageBytes: 100 * MiB } }).limits.maxMessageSize, 100 * MiB)
  })

  it("caps the session's yamux stream limit at maxStreamsPerSession, so yamux refuses before the ACK", () => {
    assert.strictEqual(accepted({}).session.maxStreams, 2048)
    assert.strictEqual(accepted({ maxStreamsPerSession: 10 }).session.maxStreams, 10)
    assert.strictEqual(accepted({ session: { maxStreams: 5 }, maxStreamsPerSession: 10 }).session.maxStreams, 5)
  })

  it.effect("serve fails with the typed error and does not listen", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(RpcServer.serve({ handlers, maxConnsPerClient: NaN }))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]
        assert.strictEqual(reason?._tag, "Fail")
        const error = (reason as { readonly error: unknown }).error
        assert.instanceOf(error, ServerConfigError)
        assert.strictEqual((error as ServerConfigError).message, "InvalidOption maxConnsPerClient: expected a whole number at least 1 or Infinity, got NaN")
      }
    }))
})
