/**
 * HashiCorp's Go client stack (test/interop/go/client: yamux + net-rpc-msgpackrpc, used the way
 * Consul's agent/pool does) against our server (TestService.serve), consul and nomad numbering,
 * plaintext and TLS, under load, at every size, and with the Go side's FIN, RST and GoAway.
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import type { Server } from "../../src/server/RpcServer.ts"
import * as TestService from "../../src/server/TestService.ts"
import * as Protocols from "../../src/wire/Protocol.ts"
import type { ServerTls } from "../../src/wire/Tls.ts"
import {
  buildGoPeer,
  type GoClientCallResult,
  goAvailable,
  goClient,
  goClientArgs,
  type GoProtocol,
  tlsFixtures
} from "./goPeer.ts"

const variants: ReadonlyArray<{ readonly name: string; readonly protocol: GoProtocol; readonly tls: boolean }> = [
  { name: "plaintext consul", protocol: "consul", tls: false },
  { name: "plaintext nomad", protocol: "nomad", tls: false },
  { name: "TLS consul", protocol: "consul", tls: true },
  { name: "TLS nomad", protocol: "nomad", tls: true }
]

const MiB = 1024 * 1024

// Small, one str16-sized payload, one byte past a yamux window, then several windows; the
// big ones with few calls so the suite stays fast.
const loads: ReadonlyArray<{ readonly size: number; readonly calls: number; readonly concurrency: number }> = [
  { size: 32, calls: 4000, concurrency: 200 },
  { size: 64 * 1024, calls: 400, concurrency: 200 },
  { size: 256 * 1024 + 1, calls: 60, concurrency: 60 },
  { size: MiB, calls: 12, concurrency: 12 },
  { size: 8 * MiB, calls: 3, concurrency: 3 }
]

const faults = ["goaway", "fin", "rst", "abandon-fin", "abandon-rst"] as const
const faultCalls = 100

const serverTls: ServerTls = {
  cert: fs.readFileSync(tlsFixtures.serverCert),
  key: fs.readFileSync(tlsFixtures.serverKey),
  ca: fs.readFileSync(tlsFixtures.ca),
  verifyClient: true
}

const serve = (protocol: GoProtocol, tls: boolean | ServerTls) =>
  TestService.serve({
    protocol: Protocols.byName[protocol],
    port: 0,
    ...(tls === false ? {} : { tls: tls === true ? serverTls : tls })
  }).pipe(Effect.orDie)

const call = (connection: ReadonlyArray<string>, method: string, args: unknown = {}) =>
  goClient<GoClientCallResult>([...connection, "-method", method, "-args", JSON.stringify(args)])

/** Our server notices a Go client's exit through its socket, after the process is gone. */
const settled = (server: Server) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100 && server.stats().live !== 0; i++) yield* Effect.sleep("20 millis")
    return server.stats()
  })

describe.runIf(goAvailable(import.meta.url))("Go client -> our server", () => {
  beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

  for (const v of variants) {
    const connection = (server: Server) => goClientArgs({ address: server.address, protocol: v.protocol, tls: v.tls })

    describe(v.name, () => {
      it.live("serves up to 200 concurrent Go callers on one session at every size", () =>
        Effect.gen(function*() {
          const server = yield* serve(v.protocol, v.tls)
          for (const load of loads) {
            const what = `size ${load.size}`
            const run = yield* goClient([
              ...connection(server),
              "-calls",
              String(load.calls),
              "-concurrency",
              String(load.concurrency),
              "-size",
              String(load.size)
            ])
            assert.strictEqual(run.code, 0, `${what}: ${run.stdout}\n${run.stderr}`)
            assert.strictEqual(run.json?.ok, load.calls, what)
            assert.strictEqual(run.json?.failed, 0, what)
            assert.deepStrictEqual(run.json?.errors, {}, what)
            assert.strictEqual(run.json?.sessions, 1, what)
            assert.strictEqual(run.json?.tls, v.tls, what)
            assert.isAtMost(run.json?.streams ?? Infinity, load.concurrency, what)
          }
          const stats = yield* settled(server)
          const calls = loads.reduce((n, l) => n + l.calls, 0)
          assert.strictEqual(stats.served, calls)
          assert.strictEqual(stats.conns, loads.length)
          assert.strictEqual(stats.live, 0)
          assert.isAtMost(stats.streams, loads.reduce((n, l) => n + l.concurrency, 0))
        }))

      it.live("answers Go's single calls, remote errors included", () =>
        Effect.gen(function*() {
          const server = yield* serve(v.protocol, v.tls)
          const stats = yield* call(connection(server), "Test.Stats")
          assert.strictEqual(stats.code, 0, stats.stdout + stats.stderr)
          // Unlike the Go peer (which counts a call once it reads it), our server counts calls answered.
          assert.deepStrictEqual(stats.json?.reply, { Conns: 1, Streams: 1, Served: 0, Live: 1 })

          const ping = yield* call(connection(server), "Status.Ping")
          assert.strictEqual(ping.json?.ok, true, ping.stdout + ping.stderr)
          assert.deepStrictEqual(ping.json?.reply, {})

          const leader = yield* call(connection(server), "Status.Leader")
          assert.strictEqual(leader.json?.reply, server.address)

          const echo = yield* call(connection(server), "Test.Echo", {
            Payload: Buffer.from("héllo").toString("base64"),
            Seq: 2 ** 40,
            Note: "from Go"
          })
          assert.deepStrictEqual(echo.json?.reply, { Payload: "héllo", Seq: 2 ** 40, Note: "from Go", Served: 4 })

          const failed = yield* call(connection(server), "Test.Fail", { Message: "boom: no such thing" })
          assert.strictEqual(failed.code, 1)
          assert.strictEqual(failed.json?.ok, false)
          assert.strictEqual(failed.json?.remote, true)
          assert.strictEqual(failed.json?.error, "boom: no such thing")

          const unknown = yield* call(connection(server), "Test.Nope")
          assert.strictEqual(unknown.json?.remote, true)
          assert.strictEqual(unknown.json?.error, "rpc: can't find method Test.Nope")

          const after = yield* settled(server)
          assert.deepStrictEqual(after, { conns: 6, streams: 6, served: 6, streamingRpcs: 0, live: 0 })
        }))

      it.live("survives the Go client's GoAway, FIN, RST and abandoned streams, and keeps serving", () =>
        Effect.gen(function*() {
          const server = yield* serve(v.protocol, v.tls)
          for (const fault of faults) {
            const run = yield* goClient([
              ...connection(server),
              "-calls",
              String(faultCalls),
              "-concurrency",
              "4",
              "-size",
              "100",
              "-fault",
              fault
            ])
            assert.strictEqual(run.code, 0, `${fault}: ${run.stdout}\n${run.stderr}`)
            assert.strictEqual(run.json?.ok, faultCalls, fault)
            assert.strictEqual(run.json?.sessions, 1, fault)
          }
          const stats = yield* settled(server)
          assert.strictEqual(stats.live, 0)
          assert.strictEqual(stats.conns, faults.length)
          // fin and rst open a stream per call; abandon-* open an extra one before each call (an
          // abandoned stream whose RST lands before we accept it is dropped uncounted, as it should).
          assert.isAtLeast(stats.streams, 3 * faultCalls)
          assert.isAtMost(stats.streams, 4 * faultCalls + 4 * 3)
          // Every real call was answered; the abandoned Test.Sleep requests may be too.
          assert.isAtLeast(stats.served, faults.length * faultCalls)
          assert.isAtMost(stats.served, (faults.length + 2) * faultCalls)

          const load = yield* goClient([...connection(server), "-calls", "200", "-concurrency", "20", "-size", "1000"])
          assert.strictEqual(load.code, 0, load.stdout + load.stderr)
          assert.strictEqual(load.json?.ok, 200)
          const ping = yield* call(connection(server), "Status.Ping")
          assert.strictEqual(ping.json?.ok, true)
          assert.strictEqual((yield* settled(server)).live, 0)
        }))
    })
  }

  describe("TLS refusals", () => {
    it.live("our TLS server refuses a plaintext Go client and one without a trusted certificate", () =>
      Effect.gen(function*() {
        const server = yield* serve("consul", true)
        const plain = yield* goClient([...goClientArgs({ address: server.address }), "-calls", "1"])
        assert.strictEqual(plain.json?.ok, 0, plain.stdout)
        const noCert = yield* goClient([...goClientArgs({ address: server.address, tls: { cert: null } }), "-calls", "1"])
        assert.strictEqual(noCert.json?.ok, 0, noCert.stdout)
        const otherCert = yield* goClient([
          ...goClientArgs({
            address: server.address,
            tls: { cert: tlsFixtures.otherClientCert, key: tlsFixtures.otherClientKey }
          }),
          "-calls",
          "1"
        ])
        assert.strictEqual(otherCert.json?.ok, 0, otherCert.stdout)
        assert.strictEqual(server.stats().conns, 0)

        const good = yield* goClient([
          ...goClientArgs({ address: `localhost:${server.port}`, tls: { serverName: "server.dc1.consul" } }),
          "-calls",
          "1"
        ])
        assert.strictEqual(good.json?.ok, 1, good.stdout + good.stderr)
        assert.strictEqual(server.stats().conns, 1)
      }))

    it.live("a Go client refuses our server when its certificate chains to another CA", () =>
      Effect.gen(function*() {
        const server = yield* serve("nomad", {
          cert: fs.readFileSync(tlsFixtures.otherServerCert),
          key: fs.readFileSync(tlsFixtures.otherServerKey)
        })
        const run = yield* goClient([...goClientArgs({ address: server.address, protocol: "nomad", tls: true }), "-calls", "1"])
        assert.notStrictEqual(run.code, 0)
        assert.match(run.json?.fatal ?? "", /unknown authority/)
        assert.strictEqual(server.stats().conns, 0)
      }))

    it.live("our plaintext server refuses a Go TLS client", () =>
      Effect.gen(function*() {
        const server = yield* serve("consul", false)
        const run = yield* goClient([...goClientArgs({ address: server.address, tls: true }), "-calls", "1"])
        assert.notStrictEqual(run.code, 0)
        assert.strictEqual(run.json?.ok, 0)
        assert.strictEqual(server.stats().conns, 0)
      }))
  })
})
