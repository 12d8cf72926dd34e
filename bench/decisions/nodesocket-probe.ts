/**
 * Qualitative checks behind the transport decision (docs/decisions.md): what
 * @effect/platform-node NodeSocket (4.1) exposes, whether it can do Consul's
 * "plaintext byte, then TLS in place" against the Go reference server, and whether
 * it keeps a process alive after its Scope closes.
 *
 *   GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/goserver ./test/interop/go/server
 *   npx node bench/decisions/nodesocket-probe.ts [/tmp/goserver]
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Effect, Option } from "effect"
import { dial } from "../../src/wire/Transport.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..", "..")
const goServer = process.argv[2] ?? "/tmp/goserver"
const tlsDir = path.join(root, "test", "fixtures", "tls")

const startGo = (args: ReadonlyArray<string>) =>
  new Promise<{ host: string; port: number; stop: () => void }>((resolve, reject) => {
    const child = spawn(goServer, ["-addr", "127.0.0.1:0", "-protocol", "consul", ...args], {
      stdio: ["pipe", "pipe", "ignore"]
    })
    child.once("error", reject)
    child.stdout.once("data", (d: Buffer) => {
      const [host, port] = d.toString().trim().split(":") as [string, string]
      resolve({ host, port: Number(port), stop: () => child.stdin.end() })
    })
  })

/** A yamux Ping SYN (version 0, type 2, flags SYN, stream 0, opaque id 7). */
const pingSyn = Uint8Array.of(0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7)

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex").replace(/(..)/g, "$1 ").trim()

const main = async () => {
  // 1. API surface of a live reader and writer.
  const echo = await startGo([])
  const surface = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const socket = yield* NodeSocket.makeNet({ host: echo.host, port: echo.port, noDelay: true })
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    const netSocket = yield* Effect.serviceOption(NodeSocket.NetSocket)
    return {
      socketKeys: Object.keys(socket),
      readerKeys: Object.keys(reader),
      writerKeys: Object.keys(writer),
      netSocketServiceProvided: Option.isSome(netSocket)
    }
  })))
  echo.stop()
  console.log("1. API surface:", JSON.stringify(surface))

  // 2. Consul TLS: write the plaintext TLS byte (0x03), upgrade in place, then the mux byte and
  //    a yamux ping inside TLS; the Go server answers with a Ping ACK.
  const secure = await startGo([
    "-tls-cert",
    path.join(tlsDir, "server.pem"),
    "-tls-key",
    path.join(tlsDir, "server-key.pem")
  ])
  const ca = fs.readFileSync(path.join(tlsDir, "ca.pem"))
  for (const servername of ["localhost", undefined]) {
    const result = await Effect.runPromise(
      Effect.scoped(Effect.gen(function*() {
        const socket = yield* NodeSocket.makeNet({ host: secure.host, port: secure.port, noDelay: true })
        const reader = yield* socket.reader
        const writer = yield* socket.writer
        yield* writer.write(Uint8Array.of(0x03))
        yield* reader.upgrade(servername === undefined ? { ca } : { ca, servername })
        yield* writer.writeAll([Uint8Array.of(0x04), pingSyn])
        const chunks = yield* reader.pull
        return `ok, reply ${hex(chunks[0] as Uint8Array)}`
      })).pipe(
        Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.succeed("timed out") }),
        Effect.catch((e) => Effect.succeed(`failed: ${String(e)}`))
      )
    )
    console.log(`2. NodeSocket upgrade after plaintext 0x03 (servername ${servername ?? "unset"}): ${result}`)
  }
  // The same upgrade against a server whose certificate comes from a CA we do not trust.
  const untrusted = await startGo([
    "-tls-cert",
    path.join(tlsDir, "other-server.pem"),
    "-tls-key",
    path.join(tlsDir, "other-server-key.pem")
  ])
  const refused = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const socket = yield* NodeSocket.makeNet({ host: untrusted.host, port: untrusted.port, noDelay: true })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      yield* writer.write(Uint8Array.of(0x03))
      yield* reader.upgrade({ ca, servername: "localhost" })
      return "upgrade succeeded (certificate NOT verified)"
    })).pipe(Effect.catch((e) => Effect.succeed(`refused: ${String(e)}`)))
  )
  untrusted.stop()
  console.log(`2. NodeSocket upgrade against an untrusted server certificate: ${refused.slice(0, 160)}`)
  const ours = await Effect.runPromise(
    Effect.scoped(Effect.gen(function*() {
      const socket = yield* dial({ host: secure.host, port: secure.port, tls: { ca: ca.toString() } })
      socket.write(pingSyn)
      const reply = yield* Effect.callback<Buffer>((resume) => {
        socket.once("data", (d: Buffer) => resume(Effect.succeed(d)))
      })
      return `ok, reply ${hex(reply)}`
    })).pipe(Effect.catch((e) => Effect.succeed(`failed: ${String(e)}`)))
  )
  console.log(`2. src/wire/Transport.ts dial with tls (same server): ${ours}`)
  secure.stop()

  // 3. Does a NodeSocket (with openTimeout) keep the process alive once its Scope is closed?
  const server = await startGo([])
  const child = `
    import * as NodeSocket from "@effect/platform-node/NodeSocket"
    import { Effect } from "effect"
    const t0 = performance.now()
    await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const socket = yield* NodeSocket.makeNet({ host: "${server.host}", port: ${server.port}, openTimeout: "10 seconds" })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      yield* writer.write(Uint8Array.of(0x04))
      void reader
    })))
    process.on("exit", () => console.log(Math.round(performance.now() - t0)))
  `
  const t0 = performance.now()
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", child], {
    cwd: root,
    encoding: "utf8",
    timeout: 20_000
  })
  const wall = Math.round(performance.now() - t0)
  server.stop()
  console.log(
    `3. scope closed -> process exit: status ${r.status}${r.signal ? ` signal ${r.signal}` : ""}, ` +
      `in-process ${r.stdout.trim()} ms after start, wall ${wall} ms (openTimeout 10 s)`
  )
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
