/**
 * Harness for the Go reference peer (test/interop/go): a Consul/Nomad-style RPC server and a
 * Consul-pattern client, both built from the HashiCorp libraries Debian ships
 * (golang-github-hashicorp-{yamux,net-rpc-msgpackrpc,go-msgpack}-dev) in GOPATH mode.
 *
 * Suites gate on {@link goAvailable}, which is test/requirements.ts's `goPeer` check: without
 * Go and the libraries a suite is skipped with one line saying what is missing; with `CI` set
 * it fails instead.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import type { Scope } from "effect"
import { goEnv, goPeer, missing, runs } from "../requirements.ts"

const here = path.dirname(fileURLToPath(import.meta.url))

/** Go sources of the peer. */
export const GO_PEER_DIR = path.join(here, "go")

/** Build output (gitignored). */
export const GO_PEER_BIN_DIR = path.join(GO_PEER_DIR, "bin")

const fixtures = path.resolve(here, "..", "fixtures", "tls")

/** Committed TLS fixtures (see test/fixtures/tls/generate.sh). */
export const tlsFixtures = {
  ca: path.join(fixtures, "ca.pem"),
  caKey: path.join(fixtures, "ca-key.pem"),
  serverCert: path.join(fixtures, "server.pem"),
  serverKey: path.join(fixtures, "server-key.pem"),
  clientCert: path.join(fixtures, "client.pem"),
  clientKey: path.join(fixtures, "client-key.pem"),
  otherCa: path.join(fixtures, "other-ca.pem"),
  otherCaKey: path.join(fixtures, "other-ca-key.pem"),
  otherServerCert: path.join(fixtures, "other-server.pem"),
  otherServerKey: path.join(fixtures, "other-server-key.pem"),
  otherClientCert: path.join(fixtures, "other-client.pem"),
  otherClientKey: path.join(fixtures, "other-client-key.pem")
} as const

/** How long startGoServer waits for the address line. */
export const SERVER_START_TIMEOUT_MS = 15_000

/** How long stop() waits after SIGTERM before SIGKILL. */
export const SERVER_STOP_TIMEOUT_MS = 5_000

/** Default limit for one runGoClient invocation. */
export const CLIENT_TIMEOUT_MS = 120_000

/** How long a build lock may be held before another process treats it as abandoned. */
export const BUILD_LOCK_STALE_MS = 180_000

/** Bytes of child stderr kept for diagnostics. */
export const STDERR_KEEP_BYTES = 64 * 1024

// ---------------------------------------------------------------------------------------------
// Availability

/** Why the Go peer cannot be built here, or undefined when it can. */
export const goUnavailableReason = (): string | undefined => missing(goPeer)

/**
 * True when `go` works and the HashiCorp libraries are found (test/requirements.ts). Otherwise
 * prints one line naming `suite` (pass `import.meta.url`) and returns false, or throws when `CI`
 * is set, so CI cannot skip the interop suites by accident.
 */
export const goAvailable = (suite = "a Go peer suite"): boolean => runs(suite, goPeer)

// ---------------------------------------------------------------------------------------------
// Build

export interface GoPeerBinaries {
  readonly server: string
  readonly client: string
}

const binaries: GoPeerBinaries = {
  server: path.join(GO_PEER_BIN_DIR, "server"),
  client: path.join(GO_PEER_BIN_DIR, "client")
}

const newestSourceMtime = (): number => {
  let newest = 0
  for (const dir of ["server", "client"]) {
    for (const name of fs.readdirSync(path.join(GO_PEER_DIR, dir))) {
      if (name.endsWith(".go")) {
        newest = Math.max(newest, fs.statSync(path.join(GO_PEER_DIR, dir, name)).mtimeMs)
      }
    }
  }
  return newest
}

const isFresh = (): boolean => {
  const newest = newestSourceMtime()
  return [binaries.server, binaries.client].every((bin) => {
    try {
      return fs.statSync(bin).mtimeMs >= newest
    } catch {
      return false
    }
  })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// vitest runs test files in parallel forks; a directory lock keeps them to one `go build`.
const withBuildLock = async <A>(f: () => Promise<A>): Promise<A> => {
  const lock = path.join(GO_PEER_BIN_DIR, ".build.lock")
  fs.mkdirSync(GO_PEER_BIN_DIR, { recursive: true })
  for (;;) {
    try {
      fs.mkdirSync(lock)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > BUILD_LOCK_STALE_MS) fs.rmSync(lock, { recursive: true, force: true })
      } catch {
        // lock vanished between the two calls: retry
      }
      await sleep(100)
    }
  }
  try {
    return await f()
  } finally {
    fs.rmSync(lock, { recursive: true, force: true })
  }
}

const goBuild = (pkg: "server" | "client"): Promise<void> =>
  new Promise((resolve, reject) => {
    const tmp = path.join(GO_PEER_BIN_DIR, `.${pkg}.${process.pid}.tmp`)
    execFile(
      "go",
      ["build", "-o", tmp, `./${pkg}`],
      { cwd: GO_PEER_DIR, env: goEnv(), maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error !== null) {
          fs.rmSync(tmp, { force: true })
          reject(new Error(`go build ./${pkg} failed: ${stderr || error.message}`))
          return
        }
        // rename is atomic, so a concurrent reader never sees a half-written binary
        fs.renameSync(tmp, binaries[pkg])
        resolve()
      }
    )
  })

let building: Promise<GoPeerBinaries> | undefined

/**
 * Builds test/interop/go/{server,client} into test/interop/go/bin once; later calls (in this
 * process or another) reuse the binaries while they are newer than every .go source.
 */
export const buildGoPeer = (): Promise<GoPeerBinaries> => {
  building ??= (async () => {
    const reason = goUnavailableReason()
    if (reason !== undefined) throw new Error(`Go peer unavailable: ${reason}`)
    if (isFresh()) return binaries
    await withBuildLock(async () => {
      if (isFresh()) return
      await Promise.all([goBuild("server"), goBuild("client")])
    })
    return binaries
  })()
  building.catch(() => {
    building = undefined
  })
  return building
}

// ---------------------------------------------------------------------------------------------
// Server

export type GoProtocol = "consul" | "nomad"

export interface GoServerTls {
  /** Default: {@link tlsFixtures}.serverCert */
  readonly cert?: string | undefined
  /** Default: {@link tlsFixtures}.serverKey */
  readonly key?: string | undefined
  /** CA for client certificates. Default: {@link tlsFixtures}.ca */
  readonly ca?: string | undefined
  /** Require a client certificate signed by `ca`. Default: true (Consul's verify_incoming). */
  readonly verifyClient?: boolean | undefined
}

export interface GoServerOptions {
  /** Default: "consul" */
  readonly protocol?: GoProtocol | undefined
  /** `true` = fixture cert/key/CA with client verification. TLS servers refuse plaintext. */
  readonly tls?: boolean | GoServerTls | undefined
  /** Extra raw flags. */
  readonly args?: ReadonlyArray<string> | undefined
  /** `-peers-file`: Status.Peers answers this file's host:port entries (comma or newline separated), read per call. */
  readonly peersFile?: string | undefined
  /** `-no-leader-file`: while this file exists, every method but Status.Ping answers `No cluster leader`. */
  readonly noLeaderFile?: string | undefined
}

export interface GoServer {
  readonly host: string
  readonly port: number
  /** "host:port", also what Status.Leader returns */
  readonly address: string
  readonly protocol: GoProtocol
  readonly tls: boolean
  readonly pid: number
  /** The last {@link STDERR_KEEP_BYTES} of the server's log. */
  readonly stderr: () => string
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
  /** SIGTERM, then SIGKILL after {@link SERVER_STOP_TIMEOUT_MS}. Idempotent. */
  readonly stop: () => Promise<void>
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false
const installExitHook = () => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.once("exit", () => {
    for (const child of live) child.kill("SIGKILL")
  })
}

const serverTlsArgs = (tls: boolean | GoServerTls | undefined): ReadonlyArray<string> => {
  if (tls === undefined || tls === false) return []
  const o: GoServerTls = tls === true ? {} : tls
  const args = [
    "-tls-cert",
    o.cert ?? tlsFixtures.serverCert,
    "-tls-key",
    o.key ?? tlsFixtures.serverKey,
    "-tls-ca",
    o.ca ?? tlsFixtures.ca
  ]
  if (o.verifyClient ?? true) args.push("-tls-verify-client")
  return args
}

const tail = () => {
  let buf = ""
  return {
    push: (chunk: string) => {
      buf += chunk
      if (buf.length > STDERR_KEEP_BYTES) buf = buf.slice(buf.length - STDERR_KEEP_BYTES)
    },
    get: () => buf
  }
}

/**
 * Starts the Go server on 127.0.0.1:0 and resolves once it has printed its address. Its
 * stdin is a pipe held by this process: if the test process dies, the server sees EOF and
 * exits, so crashed runs do not leak servers.
 */
export const startGoServer = async (options: GoServerOptions = {}): Promise<GoServer> => {
  const bins = await buildGoPeer()
  const protocol = options.protocol ?? "consul"
  const args = [
    "-addr",
    "127.0.0.1:0",
    "-protocol",
    protocol,
    ...serverTlsArgs(options.tls),
    ...(options.peersFile === undefined ? [] : ["-peers-file", options.peersFile]),
    ...(options.noLeaderFile === undefined ? [] : ["-no-leader-file", options.noLeaderFile]),
    ...(options.args ?? [])
  ]
  const child = spawn(bins.server, args, { stdio: ["pipe", "pipe", "pipe"] })
  live.add(child)
  installExitHook()
  const log = tail()
  child.stderr.setEncoding("utf8")
  child.stderr.on("data", log.push)
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      live.delete(child)
      resolve(code)
    })
  })
  // EPIPE on stdin when the child exits first is expected; spawn errors surface below.
  child.stdin.on("error", () => {})
  child.on("error", () => {})

  const address = await new Promise<string>((resolve, reject) => {
    let out = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`Go server did not report its address within ${SERVER_START_TIMEOUT_MS} ms\n${log.get()}`))
    }, SERVER_START_TIMEOUT_MS)
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      out += chunk
      const nl = out.indexOf("\n")
      if (nl >= 0) {
        clearTimeout(timer)
        resolve(out.slice(0, nl).trim())
      }
    })
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("exit", (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`Go server exited before reporting its address (code ${code}, signal ${signal})\n${log.get()}`))
    })
  })

  // A forgotten server must not keep the test worker alive; the stdin pipe still ends it.
  child.unref()
  for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void }).unref?.()

  const colon = address.lastIndexOf(":")
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), SERVER_STOP_TIMEOUT_MS)
    await exited
    clearTimeout(timer)
  }
  return {
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    address,
    protocol,
    tls: options.tls !== undefined && options.tls !== false,
    pid: child.pid ?? -1,
    stderr: log.get,
    exited,
    stop
  }
}

/** {@link startGoServer} as a scoped resource: stopped when the scope closes. */
export const goServer = (options: GoServerOptions = {}): Effect.Effect<GoServer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(() => startGoServer(options)),
    (server) => Effect.promise(() => server.stop())
  )

// ---------------------------------------------------------------------------------------------
// Client

/** One JSON line printed by the client in load mode. */
export interface GoClientLoadResult {
  readonly method: string
  readonly protocol: GoProtocol
  readonly tls: boolean
  readonly fault?: string
  readonly concurrency: number
  readonly size: number
  readonly calls: number
  readonly ok: number
  readonly failed: number
  /** error message (first 200 chars) -> count */
  readonly errors: Readonly<Record<string, number>>
  readonly seconds: number
  readonly callsPerSec: number
  /** Test.Echo payload bytes sent + received by successful calls, in 10^6 bytes per second */
  readonly mbPerSec: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** yamux sessions dialled (more than 1 means the client re-dialled after losing one) */
  readonly sessions: number
  /** yamux streams opened */
  readonly streams: number
  /** present when the client could not start (bad flags, dial or TLS failure) */
  readonly fatal?: string
}

/** The JSON line printed in single-call mode (`-args`). */
export interface GoClientCallResult {
  readonly method: string
  readonly ok: boolean
  /** true when the error came back from the server (rpc.ServerError) */
  readonly remote: boolean
  readonly error: string | null
  /** decoded into interface{} with RawToString, so []byte fields arrive as strings */
  readonly reply: unknown
  readonly ms: number
  readonly fatal?: string
}

export interface GoClientRun<A> {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  /** The last stdout line parsed as JSON, undefined if there was none or it did not parse. */
  readonly json: A | undefined
  readonly stdout: string
  readonly stderr: string
}

export interface GoClientTls {
  /** Default: {@link tlsFixtures}.ca */
  readonly ca?: string | undefined
  /** Default: {@link tlsFixtures}.clientCert; `null` sends no client certificate */
  readonly cert?: string | null | undefined
  /** Default: {@link tlsFixtures}.clientKey */
  readonly key?: string | undefined
  readonly serverName?: string | undefined
}

/** Connection flags for the client: -addr, -protocol and (for `tls`) the fixture CA and client cert. */
export const goClientArgs = (target: {
  readonly address: string
  readonly protocol?: GoProtocol | undefined
  readonly tls?: boolean | GoClientTls | undefined
}): Array<string> => {
  const args = ["-addr", target.address, "-protocol", target.protocol ?? "consul"]
  const tls = target.tls
  if (tls !== undefined && tls !== false) {
    const o: GoClientTls = tls === true ? {} : tls
    args.push("-tls", "-tls-ca", o.ca ?? tlsFixtures.ca)
    if (o.cert !== null) args.push("-tls-cert", o.cert ?? tlsFixtures.clientCert, "-tls-key", o.key ?? tlsFixtures.clientKey)
    if (o.serverName !== undefined) args.push("-tls-server-name", o.serverName)
  }
  return args
}

/**
 * Runs the Go client with raw flags and resolves when it exits (never rejects on a non-zero
 * exit: the exit code is part of the result).
 */
export const runGoClient = async <A = GoClientLoadResult>(
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs?: number | undefined } = {}
): Promise<GoClientRun<A>> => {
  const bins = await buildGoPeer()
  return new Promise((resolve, reject) => {
    const child = spawn(bins.client, [...args], { stdio: ["ignore", "pipe", "pipe"] })
    live.add(child)
    installExitHook()
    let stdout = ""
    const log = tail()
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (c: string) => (stdout += c))
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", log.push)
    const timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (e) => {
      clearTimeout(timer)
      live.delete(child)
      reject(e)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      live.delete(child)
      const lines = stdout.trim().split("\n")
      let json: A | undefined
      try {
        json = JSON.parse(lines[lines.length - 1] ?? "") as A
      } catch {
        json = undefined
      }
      resolve({ code, signal, json, stdout, stderr: log.get() })
    })
  })
}

/** One call in single-call mode: `-method` with `-args` JSON, reply decoded by the client. */
export const callGoClient = (
  connection: ReadonlyArray<string>,
  method: string,
  args: unknown = {}
): Promise<GoClientRun<GoClientCallResult>> =>
  runGoClient<GoClientCallResult>([...connection, "-method", method, "-args", JSON.stringify(args)])

/** {@link runGoClient} as an Effect (a spawn failure is a defect). */
export const goClient = <A = GoClientLoadResult>(
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs?: number | undefined } = {}
): Effect.Effect<GoClientRun<A>> => Effect.promise(() => runGoClient<A>(args, options))
