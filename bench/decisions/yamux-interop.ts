/**
 * Multiplexer decision probe (docs/decisions.md): yamux-js@0.2.0 versus our native session
 * (src/yamux/Session.ts) against HashiCorp's Go yamux, using the Go reference server
 * (test/interop/go/server, Debian's hashicorp/yamux + net-rpc-msgpackrpc).
 *
 *   GO111MODULE=off GOPATH=/usr/share/gocode go build -o /tmp/goserver ./test/interop/go/server
 *   npx node bench/decisions/yamux-interop.ts                   # 5 trials per case
 *   npx node bench/decisions/yamux-interop.ts --trials 3 --server test/interop/go/bin/server
 *   npx node bench/decisions/yamux-interop.ts --only double-close   # one case group
 *
 * Cases, for each implementation:
 *   echo-<size>   Test.Echo with a 1 KB / 70 KB / 300 KB payload on a fresh session, then a
 *                 1 KB Test.Echo on a new stream of the same session ("session usable after").
 *                 Each call has a 5 s guard; a call that does not finish in time is "hang".
 *   anatomy       the frame headers of one yamux-js call per size, through the proxy.
 *   fin           through a frame-logging TCP proxy: after one call, `end()` (yamux-js) /
 *                 `close` (native) -- is a FIN on the wire, does Go answer with its FIN,
 *                 does the local stream see EOF?
 *   remote-fin    Test.CloseStream: Go closes its side after replying; does the local stream
 *                 see EOF?
 *   double-close  `close()` twice after one call: FINs on the wire, what Go does, and whether
 *                 the session still carries a call.
 *   exit          a child process with a Client/session on default keepalive: does it exit by
 *                 itself (8 s limit)?
 *
 * The 5 s guard timers are bench code only; src/ never uses setTimeout.
 */
import { spawn, spawnSync } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { Client } from "yamux-js"
import { asBytes, Decoder } from "../../src/msgpackrpc/Decoder.ts"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import { sharedEncoder } from "../../src/msgpackrpc/Encoder.ts"
import { StreamClient } from "../../src/msgpackrpc/StreamClient.ts"
import * as Session from "../../src/yamux/Session.ts"
import { dial } from "../../src/wire/Transport.ts"

const here = path.dirname(fileURLToPath(import.meta.url))
const self = fileURLToPath(import.meta.url)
const root = path.resolve(here, "..", "..")

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const TRIALS = Number(arg("--trials") ?? 5)
const SERVER = arg("--server") ?? "/tmp/goserver"
const GUARD_MS = 5000
const SIZES: ReadonlyArray<readonly [string, number]> = [["1KB", 1000], ["70KB", 70_000], ["300KB", 300_000]]

// -------------------------------------------------------------------------------------------
// Go server and a frame-logging proxy

interface Peer {
  readonly host: string
  readonly port: number
  readonly stop: () => void
  /** The Go server's stderr (its yamux and RPC log lines). */
  readonly log: Array<string>
}

const startGo = () =>
  new Promise<Peer>((resolve, reject) => {
    const child = spawn(path.resolve(root, SERVER), ["-addr", "127.0.0.1:0", "-protocol", "consul"], {
      stdio: ["pipe", "pipe", "pipe"]
    })
    const log: Array<string> = []
    child.stderr.on("data", (d: Buffer) => log.push(...d.toString().split("\n").filter((l) => l !== "")))
    child.once("error", reject)
    child.stdout.once("data", (d: Buffer) => {
      const [host, port] = d.toString().trim().split(":") as [string, string]
      resolve({ host, port: Number(port), stop: () => child.stdin.end(), log })
    })
  })

const typeNames = ["Data", "WinUpd", "Ping", "GoAway"]
const flagNames = (f: number) =>
  [[1, "SYN"], [2, "ACK"], [4, "FIN"], [8, "RST"]].filter(([bit]) => (f & (bit as number)) !== 0).map(([, n]) => n)
    .join("|") || "0"

interface Frame {
  readonly dir: "c>s" | "s>c"
  readonly type: number
  readonly flags: number
  readonly stream: number
  readonly length: number
}

const showFrame = (f: Frame) =>
  `${f.dir} ${typeNames[f.type] ?? `type${f.type}`}/${flagNames(f.flags)} s${f.stream} len=${f.length}`

/** Splits one direction of a yamux byte stream into frame headers. */
class FrameLog {
  private buf = Buffer.alloc(0)
  private skip: number
  private body = 0
  readonly dir: Frame["dir"]
  readonly frames: Array<Frame>
  constructor(dir: Frame["dir"], frames: Array<Frame>, preamble: number) {
    this.dir = dir
    this.frames = frames
    this.skip = preamble
  }
  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk])
    for (;;) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, this.buf.length)
        this.skip -= n
        this.buf = this.buf.subarray(n)
        if (this.skip > 0) return
      }
      if (this.body > 0) {
        const n = Math.min(this.body, this.buf.length)
        this.body -= n
        this.buf = this.buf.subarray(n)
        if (this.body > 0) return
      }
      if (this.buf.length < 12) return
      const f: Frame = {
        dir: this.dir,
        type: this.buf[1]!,
        flags: this.buf.readUInt16BE(2),
        stream: this.buf.readUInt32BE(4),
        length: this.buf.readUInt32BE(8)
      }
      this.frames.push(f)
      this.buf = this.buf.subarray(12)
      if (f.type === 0) this.body = f.length
    }
  }
}

/** One-connection TCP proxy in front of `peer` that logs yamux frame headers both ways. */
const startProxy = (peer: Peer) =>
  new Promise<{ port: number; frames: Array<Frame>; close: () => void }>((resolve) => {
    const frames: Array<Frame> = []
    const server = net.createServer({ noDelay: true }, (down) => {
      const up = net.createConnection({ host: peer.host, port: peer.port, noDelay: true })
      const c2s = new FrameLog("c>s", frames, 1)
      const s2c = new FrameLog("s>c", frames, 0)
      down.on("data", (d: Buffer) => {
        c2s.push(d)
        up.write(d)
      })
      up.on("data", (d: Buffer) => {
        s2c.push(d)
        down.write(d)
      })
      down.on("close", () => up.destroy())
      up.on("close", () => down.destroy())
      down.on("error", () => {})
      up.on("error", () => {})
    })
    server.listen(0, "127.0.0.1", () => {
      resolve({ port: (server.address() as net.AddressInfo).port, frames, close: () => server.close() })
    })
  })

// -------------------------------------------------------------------------------------------
// Requests and outcomes

interface Outcome {
  readonly status: "ok" | "hang" | "error" | "mismatch"
  readonly ms: number
  readonly received: number
  readonly detail?: string
}

const payloadOf = (size: number) => {
  const p = new Uint8Array(size)
  // Not valid UTF-8, so the reply decodes to bytes rather than a string.
  for (let i = 0; i < size; i++) p[i] = (i * 31 + 0x80) & 0xff
  return p
}

let seq = 0
const request = (size: number) => {
  seq++
  const encoded = sharedEncoder.encodeRequest("Test.Echo", seq, { Payload: payloadOf(size), Seq: seq, Note: "decisions" })
  if (!(encoded instanceof Uint8Array)) throw encoded
  return { bytes: Buffer.from(encoded), seq }
}

const checkReply = (body: Value, size: number): string | undefined => {
  if (body === null || typeof body !== "object" || body instanceof Uint8Array || Array.isArray(body)) {
    return "reply is not a map"
  }
  const payload = (body as Record<string, Value>)["Payload"]
  if (typeof payload !== "string" && !(payload instanceof Uint8Array)) return "no Payload"
  const got = asBytes(payload)
  if (got.length !== size) return `Payload ${got.length} bytes, sent ${size}`
  return Buffer.compare(Buffer.from(got), Buffer.from(payloadOf(size))) === 0 ? undefined : "Payload differs"
}

const fmt = (o: Outcome) =>
  o.status === "ok"
    ? `ok ${o.ms.toFixed(1)} ms`
    : `${o.status}${o.status === "hang" ? ` (${o.received} reply bytes in ${GUARD_MS} ms)` : ""}${
      o.detail ? `: ${o.detail}` : ""
    }`

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// -------------------------------------------------------------------------------------------
// yamux-js

interface JsConn {
  readonly socket: net.Socket
  readonly client: Client
  readonly events: Array<string>
}

const jsConnect = (port: number, keepAlive = false) =>
  new Promise<JsConn>((resolve, reject) => {
    const events: Array<string> = []
    const socket = net.createConnection({ host: "127.0.0.1", port, noDelay: true })
    socket.once("error", reject)
    socket.once("connect", () => {
      socket.write(Uint8Array.of(0x04))
      const client = new Client({
        enableKeepAlive: keepAlive,
        logger: (...args: Array<unknown>) => events.push(`log: ${args.map(String).join(" ")}`)
      })
      client.on("error", (e: Error) => events.push(`client error: ${e.message}`))
      socket.on("close", () => events.push("tcp closed"))
      socket.on("error", (e) => events.push(`tcp error: ${e.message}`))
      socket.pipe(client).pipe(socket)
      resolve({ socket, client, events })
    })
  })

type JsStream = ReturnType<Client["open"]>

/** One Test.Echo on `stream` (opened by the caller), guarded by a 5 s timer. */
const jsCallOn = (stream: JsStream, size: number) =>
  new Promise<Outcome>((resolve) => {
    const { bytes, seq: s } = request(size)
    const decoder = new Decoder()
    const t0 = performance.now()
    let received = 0
    let header: Value | undefined
    let settled = false
    const done = (o: Omit<Outcome, "ms" | "received">) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      stream.off("data", onData)
      resolve({ ...o, ms: performance.now() - t0, received })
    }
    const timer = setTimeout(() => done({ status: "hang" }), GUARD_MS)
    const onData = (chunk: Buffer) => {
      received += chunk.length
      decoder.push(chunk)
      for (;;) {
        const v = decoder.next()
        if (v === undefined) return
        if (v instanceof Error) return done({ status: "error", detail: v.message })
        if (header === undefined) {
          header = v
          const h = v as Record<string, Value>
          if (Number(h["Seq"]) !== s) return done({ status: "mismatch", detail: `reply Seq ${String(h["Seq"])}` })
          continue
        }
        const bad = checkReply(v, size)
        return done(bad === undefined ? { status: "ok" } : { status: "mismatch", detail: bad })
      }
    }
    stream.on("data", onData)
    stream.on("error", (e: Error) => done({ status: "error", detail: e.message }))
    stream.write(bytes)
  })

const jsCall = (conn: JsConn, size: number) => jsCallOn(conn.client.open(), size)

const jsEnd = (stream: JsStream, ms: number) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    stream.once("end", () => {
      clearTimeout(timer)
      resolve(true)
    })
    stream.resume()
  })

// -------------------------------------------------------------------------------------------
// native session

const nativeCall = (session: Session.Session, size: number): Effect.Effect<Outcome> =>
  Effect.gen(function*() {
    const t0 = performance.now()
    const stream = yield* session.open
    const client = new StreamClient(stream, undefined)
    const { seq: s } = { seq: ++seq }
    const body = yield* client.call("Test.Echo", { Payload: payloadOf(size), Seq: s, Note: "decisions" })
    const bad = checkReply(body, size)
    yield* client.close
    return bad === undefined ?
      { status: "ok", ms: performance.now() - t0, received: 0 } as const :
      { status: "mismatch", ms: performance.now() - t0, received: 0, detail: bad } as const
  }).pipe(
    Effect.timeoutOrElse({
      duration: GUARD_MS,
      orElse: () => Effect.succeed<Outcome>({ status: "hang", ms: GUARD_MS, received: 0 })
    }),
    Effect.catch((e) => Effect.succeed<Outcome>({ status: "error", ms: 0, received: 0, detail: String(e) }))
  )

const nativeSession = (port: number, enableKeepAlive = false) =>
  Effect.gen(function*() {
    const socket = yield* dial({ host: "127.0.0.1", port })
    return yield* Session.make(socket, { role: "client", enableKeepAlive })
  })

// -------------------------------------------------------------------------------------------
// Cases

const tally = (outcomes: ReadonlyArray<Outcome>) => {
  const counts = new Map<string, number>()
  for (const o of outcomes) counts.set(o.status, (counts.get(o.status) ?? 0) + 1)
  return [...counts].map(([k, v]) => `${k} ${v}/${outcomes.length}`).join(", ")
}

const echoCases = async (peer: Peer) => {
  console.log(`\n== echo: ${TRIALS} fresh sessions per size; then 1 KB on a new stream of the same session`)
  for (const [label, size] of SIZES) {
    const js: Array<Outcome> = []
    const jsAfter: Array<Outcome> = []
    const jsNotes = new Set<string>()
    for (let t = 0; t < TRIALS; t++) {
      const conn = await jsConnect(peer.port)
      const first = await jsCall(conn, size)
      js.push(first)
      jsAfter.push(await jsCall(conn, 1000))
      await sleep(50)
      for (const e of conn.events) jsNotes.add(e.slice(0, 120))
      conn.client.close()
      conn.socket.destroy()
    }
    const nat: Array<Outcome> = []
    const natAfter: Array<Outcome> = []
    for (let t = 0; t < TRIALS; t++) {
      const [a, b] = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const session = yield* nativeSession(peer.port)
        const a = yield* nativeCall(session, size)
        const b = yield* nativeCall(session, 1000)
        return [a, b] as const
      })))
      nat.push(a)
      natAfter.push(b)
    }
    console.log(`echo-${label} yamux-js: ${tally(js)} | after: ${tally(jsAfter)}`)
    for (const o of js.filter((o) => o.status !== "ok")) console.log(`    yamux-js first call: ${fmt(o)}`)
    for (const o of jsAfter.filter((o) => o.status !== "ok")) console.log(`    yamux-js call after: ${fmt(o)}`)
    for (const n of jsNotes) console.log(`    yamux-js event: ${n}`)
    const okMs = js.filter((o) => o.status === "ok").map((o) => o.ms)
    if (okMs.length > 0) console.log(`    yamux-js ok latency ms: ${okMs.map((m) => m.toFixed(1)).join(" ")}`)
    console.log(`echo-${label} native:   ${tally(nat)} | after: ${tally(natAfter)}`)
    for (const o of [...nat, ...natAfter].filter((o) => o.status !== "ok")) console.log(`    native: ${fmt(o)}`)
    console.log(`    native ok latency ms: ${nat.filter((o) => o.status === "ok").map((o) => o.ms.toFixed(1)).join(" ")}`)
  }
}

/** Frame headers of one yamux-js call per large size, through the proxy, to show where bytes go. */
const anatomyCases = async (peer: Peer) => {
  console.log("\n== anatomy: frame headers of one yamux-js Test.Echo per size (via the proxy)")
  for (const [label, size] of SIZES) {
    const proxy = await startProxy(peer)
    const conn = await jsConnect(proxy.port)
    const o = await jsCall(conn, size)
    const sum = (dir: Frame["dir"]) =>
      proxy.frames.filter((f) => f.dir === dir).map((f) => `${typeNames[f.type]}/${flagNames(f.flags)}:${f.length}`)
        .join(" ")
    console.log(`yamux-js ${label}: ${fmt(o)}`)
    console.log(`    c>s ${sum("c>s")}`)
    console.log(`    s>c ${sum("s>c")}`)
    conn.client.close()
    conn.socket.destroy()
    proxy.close()
  }
}

const finCases = async (peer: Peer) => {
  console.log("\n== fin: stream.end() (yamux-js) / stream close (native) after one 1 KB call, via a frame-logging proxy")
  {
    const proxy = await startProxy(peer)
    const conn = await jsConnect(proxy.port)
    const stream = conn.client.open()
    const call = await jsCallOn(stream, 1000)
    stream.end()
    const sawEnd = await jsEnd(stream, 1000)
    console.log(`yamux-js end(): call ${fmt(call)}; local 'end' within 1 s: ${sawEnd}`)
    for (const f of proxy.frames) console.log(`    ${showFrame(f)}`)
    proxy.frames.length = 0
    stream.close()
    const sawEnd2 = await jsEnd(stream, 1000)
    console.log(`yamux-js then close(): local 'end' within 1 s: ${sawEnd2}`)
    for (const f of proxy.frames) console.log(`    ${showFrame(f)}`)
    conn.client.close()
    conn.socket.destroy()
    proxy.close()
  }
  {
    const proxy = await startProxy(peer)
    const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const session = yield* nativeSession(proxy.port)
      const stream = yield* session.open
      const client = new StreamClient(stream, undefined)
      yield* client.call("Test.Echo", { Payload: payloadOf(1000), Seq: 1, Note: "fin" })
      yield* stream.close
      const eof = yield* stream.read.pipe(
        Effect.map((c) => c === undefined ? "EOF" : `${c.length} bytes`),
        Effect.timeoutOrElse({ duration: 1000, orElse: () => Effect.succeed("nothing within 1 s") }),
        Effect.catch((e) => Effect.succeed(`error ${String(e)}`))
      )
      const streams = session.numStreams
      yield* Effect.sleep(200)
      return { eof, state: (stream as unknown as { state: string }).state, streams, later: session.numStreams }
    })))
    console.log(
      `native close: local read after close -> ${result.eof}; stream state ${result.state}; live streams ${result.streams} (200 ms later ${result.later})`
    )
    for (const f of proxy.frames) console.log(`    ${showFrame(f)}`)
    proxy.close()
  }
}

const remoteFinCases = async (peer: Peer) => {
  console.log("\n== remote-fin: Test.CloseStream (Go replies, then stream.Close() sends FIN)")
  const closeStreamRequest = () => {
    const r = sharedEncoder.encodeRequest("Test.CloseStream", ++seq, {})
    if (!(r instanceof Uint8Array)) throw r
    return Buffer.from(r)
  }
  {
    const proxy = await startProxy(peer)
    const conn = await jsConnect(proxy.port)
    const stream = conn.client.open()
    stream.write(closeStreamRequest())
    const sawEnd = await jsEnd(stream, 2000)
    const sid = stream.ID()
    const internal = conn.client as unknown as { streams: Map<number, unknown> }
    console.log(
      `yamux-js: 'end' within 2 s: ${sawEnd}; stream still in session.streams: ${internal.streams.has(sid)}`
    )
    for (const f of proxy.frames.filter((f) => (f.flags & 4) !== 0)) console.log(`    ${showFrame(f)}`)
    conn.client.close()
    conn.socket.destroy()
    proxy.close()
  }
  {
    const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const session = yield* nativeSession(peer.port)
      const stream = yield* session.open
      const client = new StreamClient(stream, undefined)
      yield* client.call("Test.CloseStream", {})
      const eof = yield* stream.read.pipe(
        Effect.map((c) => c === undefined ? "EOF" : `${c.length} bytes`),
        Effect.timeoutOrElse({ duration: 2000, orElse: () => Effect.succeed("nothing within 2 s") }),
        Effect.catch((e) => Effect.succeed(`error ${String(e)}`))
      )
      yield* stream.close
      return { eof, streams: session.numStreams }
    })))
    console.log(`native: read after reply -> ${result.eof}; live streams after local close ${result.streams}`)
  }
}

const doubleCloseCases = async (peer: Peer) => {
  console.log(`\n== double-close: close() twice after one 1 KB call (${TRIALS} trials), then 1 KB on a new stream`)
  const js: Array<string> = []
  let jsFrames: Array<Frame> = []
  for (let t = 0; t < TRIALS; t++) {
    const proxy = await startProxy(peer)
    const conn = await jsConnect(proxy.port)
    const stream = conn.client.open()
    await jsCallOn(stream, 1000)
    const logFrom = peer.log.length
    stream.close()
    stream.close()
    await sleep(300)
    const goLog = peer.log.slice(logFrom).map((l) => l.replace(/^\S+ \S+ /, "")).join(" / ")
    const goAway = proxy.frames.find((f) => f.dir === "s>c" && f.type === 3)
    const tcpClosed = conn.events.includes("tcp closed")
    const after = await jsCall(conn, 1000)
    js.push(
      `${goAway ? `Go sent GoAway code ${goAway.length}` : "no GoAway seen"}, TCP ${
        tcpClosed ? "closed" : "open"
      }, next call ${fmt(after)}; Go log: ${goLog || "(nothing)"}`
    )
    if (t === 0) jsFrames = [...proxy.frames]
    conn.client.close()
    conn.socket.destroy()
    proxy.close()
  }
  for (const [i, s] of js.entries()) console.log(`yamux-js trial ${i + 1}: ${s}`)
  console.log("    frames of trial 1:")
  for (const f of jsFrames) console.log(`    ${showFrame(f)}`)
  const proxy = await startProxy(peer)
  const nat = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const session = yield* nativeSession(proxy.port)
    const stream = yield* session.open
    const client = new StreamClient(stream, undefined)
    yield* client.call("Test.Echo", { Payload: payloadOf(1000), Seq: 1, Note: "x" })
    yield* stream.close
    yield* stream.close
    yield* Effect.sleep(300)
    const after = yield* nativeCall(session, 1000)
    return { after, closed: session.isClosed }
  })))
  const fins = proxy.frames.filter((f) => f.dir === "c>s" && (f.flags & 4) !== 0 && f.stream === 1).length
  const goAway = proxy.frames.find((f) => f.dir === "s>c" && f.type === 3)
  console.log(
    `native: FINs sent on stream 1: ${fins}; ${goAway ? `GoAway ${goAway.length}` : "no GoAway"}; session closed ${nat.closed}; next call ${
      fmt(nat.after)
    }`
  )
  proxy.close()
}

// -------------------------------------------------------------------------------------------
// Process-exit children (run as `node yamux-interop.ts --child <name> <port>`)

const child = async (name: string, port: number) => {
  switch (name) {
    case "js-default-idle": {
      // A Client with default config, never connected.
      new Client({ logger: () => {} })
      return
    }
    case "js-default-used":
    case "js-nokeepalive-used": {
      // Connected, one call, then the TCP connection is destroyed without client.close().
      const conn = await jsConnect(port, name === "js-default-used")
      await jsCall(conn, 1000)
      conn.socket.destroy()
      return
    }
    case "js-default-closed": {
      const conn = await jsConnect(port, true)
      await jsCall(conn, 1000)
      conn.client.close()
      conn.socket.destroy()
      return
    }
    case "native-default": {
      // Default keepalive (30 s ping fiber); the Scope closes after one call.
      await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const session = yield* nativeSession(port, true)
        yield* nativeCall(session, 1000)
      })))
      return
    }
  }
}

const exitCases = async (peer: Peer) => {
  console.log("\n== exit: does a child process end by itself? (8 s limit)")
  for (
    const name of ["js-default-idle", "js-default-used", "js-nokeepalive-used", "js-default-closed", "native-default"]
  ) {
    const t0 = performance.now()
    const r = spawnSync(process.execPath, [self, "--child", name, String(peer.port)], { timeout: 8000, encoding: "utf8" })
    const ms = Math.round(performance.now() - t0)
    const how = r.signal === "SIGTERM" ? "still running at 8 s (killed)" : `exited ${r.status} after ${ms} ms`
    console.log(`${name.padEnd(22)} ${how}${r.stderr.trim() ? ` stderr: ${r.stderr.trim().slice(0, 200)}` : ""}`)
  }
}

const main = async () => {
  const childName = arg("--child")
  if (childName !== undefined) return child(childName, Number(process.argv[process.argv.indexOf("--child") + 2]))
  const peer = await startGo()
  console.log(`node ${process.version}, Go server ${SERVER} at ${peer.host}:${peer.port}, yamux-js 0.2.0`)
  const only = arg("--only")
  const cases: ReadonlyArray<readonly [string, (peer: Peer) => Promise<void>]> = [
    ["echo", echoCases],
    ["anatomy", anatomyCases],
    ["fin", finCases],
    ["remote-fin", remoteFinCases],
    ["double-close", doubleCloseCases],
    ["exit", exitCases]
  ]
  for (const [name, run] of cases) if (only === undefined || only === name) await run(peer)
  peer.stop()
  // yamux-js sessions leave timers behind (their 100 ms send-window polls); leave nothing to chance.
  setTimeout(() => process.exit(0), 100)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
