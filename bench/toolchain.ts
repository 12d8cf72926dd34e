/**
 * The Go side of `npm run bench`: finds `go`, and builds the lean bench client (bench/go/client)
 * and the reference server (test/interop/go/server, the interop suite's peer) into
 * bench/go/bin, in GOPATH mode against the HashiCorp libraries Debian ships, as
 * test/interop/goPeer.ts does. Without Go, or when a build fails, the caller gets the reason
 * and skips the Go scenarios.
 */
import { execFile, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, "..")

/** Where `go build` finds the Debian-packaged libraries. */
export const DebianGopath = "/usr/share/gocode"

export const binDir = path.join(here, "go", "bin")
export const clientSource = path.join(here, "go", "client")
export const serverSource = path.join(root, "test", "interop", "go", "server")

export interface GoBinaries {
  /** `go version`, e.g. "go1.19.8 linux/amd64". */
  readonly version: string
  readonly client: string
  readonly server: string
}

/** The environment of test/interop/goPeer.ts: GOPATH mode, no cgo, a cache dir even without HOME. */
const goEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env, GO111MODULE: "off", GOPATH: DebianGopath, GOFLAGS: "" }
  env["CGO_ENABLED"] ??= "0"
  if (env["GOCACHE"] === undefined && env["HOME"] === undefined && env["XDG_CACHE_HOME"] === undefined) {
    env["GOCACHE"] = path.join(os.tmpdir(), "effect-connpool-gocache")
  }
  return env
}

const build = (source: string, output: string): Promise<void> =>
  new Promise((resolve, reject) => {
    // Built under a temporary name and renamed, so an interrupted build never leaves half a binary.
    const tmp = `${output}.${process.pid}.tmp`
    execFile("go", ["build", "-o", tmp, "."], { cwd: source, env: goEnv(), maxBuffer: 16 << 20 }, (error, _out, stderr) => {
      if (error !== null) {
        fs.rmSync(tmp, { force: true })
        const detail = (stderr || error.message).trim().split("\n").slice(0, 3).join(" / ")
        reject(new Error(`go build ${path.relative(root, source)}: ${detail}`))
        return
      }
      fs.renameSync(tmp, output)
      resolve()
    })
  })

/** Builds both binaries (go's build cache makes a rebuild of unchanged sources quick), or says why not. */
export const buildGo = async (): Promise<GoBinaries | { readonly unavailable: string }> => {
  const probe = spawnSync("go", ["version"], { encoding: "utf8", env: goEnv() })
  if (probe.error !== undefined || probe.status !== 0) {
    const missing = (probe.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT"
    return {
      unavailable: missing
        ? "Go is not installed (no `go` on PATH)"
        : `\`go version\` failed: ${probe.error?.message ?? probe.stderr.trim()}`
    }
  }
  const version = probe.stdout.trim().replace(/^go version /, "")
  const client = path.join(binDir, "client")
  const server = path.join(binDir, "server")
  try {
    fs.mkdirSync(binDir, { recursive: true })
    await Promise.all([build(clientSource, client), build(serverSource, server)])
  } catch (error) {
    return { unavailable: error instanceof Error ? error.message : String(error) }
  }
  return { version, client, server }
}
