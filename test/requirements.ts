/**
 * The one place a suite decides whether it can run here. Suites that need something outside
 * npm (Go and HashiCorp's libraries, redis-server, a package in npm's cache) ask {@link runs};
 * when something is missing the suite is skipped and one line on stderr says what is missing
 * and how to install it. With `CI` set to any non-empty value nothing may be skipped: the suite
 * fails instead, so a CI machine without the tools cannot pass by skipping.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Something a suite needs, and how to get it. */
export interface Requirement {
  /** What is needed, e.g. "redis-server". */
  readonly name: string
  /** Why it is not usable here, or undefined when it is. Called once per process. */
  readonly check: () => string | undefined
  /** How to install it, one sentence. */
  readonly install: string
}

/** `CI` set to any non-empty value (GitHub sets `true`, others `1` or a name). */
export const inCI = (): boolean => (process.env["CI"] ?? "") !== ""

const reasons = new Map<Requirement, string | undefined>()

/** Why `requirement` is not met here, or undefined; checked once per process. */
export const missing = (requirement: Requirement): string | undefined => {
  if (!reasons.has(requirement)) reasons.set(requirement, requirement.check())
  return reasons.get(requirement)
}

/** The line printed for a skipped suite. */
export const skipLine = (suite: string, requirement: Requirement, reason: string): string =>
  `skip ${suite}: ${requirement.name} unavailable (${reason}). Install: ${requirement.install}`

/** A test file's `import.meta.url` as a path relative to the working directory; other names as they are. */
const suiteName = (suite: string): string =>
  suite.startsWith("file:") ? path.relative(process.cwd(), fileURLToPath(suite)) : suite

/**
 * True when every requirement is met. Otherwise prints one line per unmet requirement (outside
 * CI) and returns false, or throws under CI. For `describe.runIf(runs(import.meta.url, ...))`;
 * `suite` names the suite in the line (a file URL is shown as a relative path).
 *
 * Not vitest-specific, so scripts (the soak) can use the same checks.
 */
export const runs = (suite: string, ...requirements: ReadonlyArray<Requirement>): boolean => {
  const name = suiteName(suite)
  const unmet = requirements.flatMap((r) => {
    const reason = missing(r)
    return reason === undefined ? [] : [skipLine(name, r, reason)]
  })
  if (unmet.length === 0) return true
  if (inCI()) throw new Error(`CI=${process.env["CI"]} forbids skipping: ${unmet.join("; ")}`)
  for (const line of unmet) process.stderr.write(`${line}\n`)
  return false
}

// ---------------------------------------------------------------------------------------------
// Go

/** Where Debian's golang-github-hashicorp-*-dev packages put their sources. */
export const DebianGopath = "/usr/share/gocode"

/**
 * GOPATH entries searched, first match wins: `MSGPACK_GOPATH`, then `GOPATH`, then Debian's
 * directory. Each must hold the libraries under `src/<import path>` (GOPATH mode).
 */
export const goPathEntries = (): ReadonlyArray<string> => {
  const entries = [process.env["MSGPACK_GOPATH"], process.env["GOPATH"], DebianGopath]
    .flatMap((value) => (value ?? "").split(path.delimiter))
    .filter((entry) => entry !== "")
  return [...new Set(entries)]
}

/** The environment for `go build`: GOPATH mode over {@link goPathEntries}, no cgo, a cache even without HOME. */
export const goEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GO111MODULE: "off",
    GOPATH: goPathEntries().join(path.delimiter),
    GOFLAGS: ""
  }
  // Pure-Go static binaries: no dependency on a C toolchain next to golang-go.
  env["CGO_ENABLED"] ??= "0"
  if (env["GOCACHE"] === undefined && env["HOME"] === undefined && env["XDG_CACHE_HOME"] === undefined) {
    env["GOCACHE"] = path.join(os.tmpdir(), "effect-connpool-gocache")
  }
  return env
}

/**
 * A working `go` (its `go version` exits 0) and the given import paths under some GOPATH
 * entry. Every suite that builds Go code gates on this check, with the packages it imports:
 * import path -> the Debian package that ships it.
 */
export const go = (packages: Readonly<Record<string, string>>): Requirement => ({
  name: `Go with ${Object.keys(packages).map((p) => p.replace(/^github\.com\//, "")).join(", ")}`,
  install: `apt-get install golang-go ${[...new Set(Object.values(packages))].join(" ")} (Debian), ` +
    `or set GOPATH (or MSGPACK_GOPATH) to a GOPATH holding those import paths under src/`,
  check: () => {
    const version = spawnSync("go", ["version"], { encoding: "utf8", env: goEnv(), timeout: 30_000 })
    if (version.error !== undefined || version.status !== 0) {
      const detail = (version.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT"
        ? "no `go` on PATH"
        : `\`go version\` failed: ${(version.error?.message ?? version.stderr).trim().split("\n")[0]}`
      return detail
    }
    const entries = goPathEntries()
    const absent = Object.keys(packages).filter((p) => !entries.some((entry) => fs.existsSync(path.join(entry, "src", p))))
    return absent.length === 0 ? undefined : `not under ${entries.join(path.delimiter)}/src: ${absent.join(", ")}`
  }
})

/** go-msgpack alone: the msgpack vectors of test/msgpackrpc/go. */
export const goMsgpack: Requirement = go({
  "github.com/hashicorp/go-msgpack/codec": "golang-github-hashicorp-go-msgpack-dev"
})

/** Everything the interop peers in test/interop/go import (go-multierror is net-rpc-msgpackrpc's dependency). */
export const goPeer: Requirement = go({
  "github.com/hashicorp/yamux": "golang-github-hashicorp-yamux-dev",
  "github.com/hashicorp/net-rpc-msgpackrpc": "golang-github-hashicorp-net-rpc-msgpackrpc-dev",
  "github.com/hashicorp/go-msgpack/codec": "golang-github-hashicorp-go-msgpack-dev",
  "github.com/hashicorp/go-multierror": "golang-github-hashicorp-go-multierror-dev"
})

// ---------------------------------------------------------------------------------------------
// redis-server

export const redisServer: Requirement = {
  name: "redis-server",
  install: "apt-get install redis-server (Debian), or put any redis-server 6+ on PATH",
  check: () => {
    const version = spawnSync("redis-server", ["--version"], { encoding: "utf8", timeout: 30_000 })
    if ((version.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return "no `redis-server` on PATH"
    if (version.error !== undefined || version.status !== 0) {
      return `\`redis-server --version\` failed: ${(version.error?.message ?? version.stderr).trim()}`
    }
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// npm's cache

/**
 * Packages (`name@version`) in npm's local cache, so an `npm install --offline` of them needs
 * no network. `npm install` of this repository caches its own dependencies; others need one
 * `npm cache add`.
 */
export const npmCached = (specs: ReadonlyArray<string>): Requirement => ({
  name: `npm's cache with ${specs.join(", ")}`,
  install: `npm cache add ${specs.join(" ")} (one download from the registry)`,
  check: () => {
    const absent = specs.filter((spec) => {
      const ls = spawnSync("npm", ["cache", "ls", spec], { encoding: "utf8", timeout: 60_000 })
      if (ls.error !== undefined || ls.status !== 0) return true
      const [name, version] = [spec.slice(0, spec.lastIndexOf("@")), spec.slice(spec.lastIndexOf("@") + 1)]
      // Scoped names are escaped in the cache key (@types%2fnode), the tarball's file name is not.
      return !ls.stdout.includes(`/-/${name.split("/").pop()}-${version}.tgz`)
    })
    return absent.length === 0 ? undefined : `not cached: ${absent.join(", ")}`
  }
})
