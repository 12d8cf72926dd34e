/**
 * The package as an app gets it: `npm pack` (which builds `dist` through `prepack`), then an
 * install of the tarball into a throwaway app that has its own, different `effect` (4.1.5, the
 * newest of the peer range; this repository develops on 4.1.0, its low end). The app must end up with one
 * `effect`, typecheck against our `.d.ts`, and run on every Node found here. Offline: npm reads
 * only its cache (test/requirements.ts says what to cache).
 *
 * The app typechecks with `skipLibCheck`, as most apps do: checking every declaration of effect
 * as well costs three times the CPU, and a second copy of effect shows up in the app's own code
 * ("two different types with this name exist") either way.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { npmCached, runs } from "../requirements.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  readonly name: string
  readonly version: string
  readonly engines: { readonly node: string }
}
const typesNode = JSON.parse(fs.readFileSync(path.join(root, "node_modules/@types/node/package.json"), "utf8")) as {
  readonly version: string
}

/** The app's own effect: a different 4.x from the one this repository builds with. */
const AppEffect = "4.1.5"

/** Limit for each npm, tsc or node run. */
const StepTimeoutMs = 120_000

const run = (command: string, args: ReadonlyArray<string>, cwd: string) => {
  const result = spawnSync(command, args, {
    cwd,
    encoding: "utf8",
    timeout: StepTimeoutMs,
    env: { ...process.env, npm_config_update_notifier: "false", NO_COLOR: "1" }
  })
  return { code: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "", error: result.error }
}

/**
 * The Node running the tests (the `node` devDependency's), and every other `node` on PATH but
 * npm's script shims in node_modules/.bin: the system's, and any put first on PATH to test it.
 */
const nodes = (): ReadonlyMap<string, string> => {
  const found = new Map<string, string>([[process.version, process.execPath]])
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, "node")
    if (dir.endsWith(path.join("node_modules", ".bin")) || !fs.existsSync(candidate)) continue
    const version = run(candidate, ["--version"], root).stdout.trim()
    if (/^v\d+\./.test(version) && !found.has(version)) found.set(version, fs.realpathSync(candidate))
  }
  return found
}

/** npm's own script, so it can be run by a chosen node. */
const npmCli = (): string => {
  for (const dir of (process.env["PATH"] ?? "").split(path.delimiter)) {
    const npm = path.join(dir, "npm")
    if (dir.endsWith(path.join("node_modules", ".bin")) || !fs.existsSync(npm)) continue
    const cli = path.join(path.dirname(fs.realpathSync(npm)), "npm-cli.js")
    if (fs.existsSync(cli)) return cli
  }
  throw new Error("npm-cli.js not found next to npm on PATH")
}

const appSource = `import { DateTime, Effect, Schema } from "effect"
import { ConnPool, GoTime, RpcPool, RpcServer, TestService } from "effect-connpool"

const Echo = RpcPool.method("Test.Echo", {
  args: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String }),
  reply: Schema.Struct({ Payload: RpcPool.Bytes, Seq: Schema.Number, Note: Schema.String, Served: Schema.Number })
})
// A reply Schema the server does not meet: must fail with ReplyMismatch, not a defect.
const Wrong = RpcPool.method("Test.Echo", { args: Echo.args, reply: Schema.Struct({ Served: Schema.String }) })

const program = Effect.gen(function*() {
  const server = yield* TestService.serve()
  const reply = yield* Echo(server.address, { Payload: new Uint8Array([1, 2, 255]), Seq: 7, Note: "app" })
  const wrong = yield* Effect.flip(Wrong(server.address, { Payload: new Uint8Array(1), Seq: 1, Note: "" }))
  const pool = yield* ConnPool.make({ name: "numbers", dial: Effect.succeed(42), poolSize: 2 })
  const conn = yield* ConnPool.use(pool, (n) => Effect.succeed(n + 1))
  const when = Schema.decodeUnknownSync(GoTime.Exact)(Schema.encodeSync(GoTime.Utc)(DateTime.makeUnsafe(0)))
  const served = yield* Effect.gen(function*() {
    const typed = yield* RpcServer.serve({ handlers: RpcServer.handle(Echo, (args) => Effect.succeed({ ...args, Served: 1 })) })
    return yield* Echo(typed.address, { Payload: new Uint8Array(0), Seq: 1, Note: "typed" })
  })
  return { seq: reply.Seq, payload: [...reply.Payload], wrong: wrong.reason, conn, time: GoTime.format(when), served: served.Note }
}).pipe(Effect.scoped, Effect.provide(RpcPool.PoolLayer()))

console.log(JSON.stringify({ node: process.version, ...(await Effect.runPromise(program)) }))
`

const expected = {
  seq: 7,
  payload: [1, 2, 255],
  wrong: "ReplyMismatch",
  conn: 43,
  time: "1970-01-01T00:00:00.000000000Z",
  served: "typed"
}

describe.runIf(runs(import.meta.url, npmCached([`effect@${AppEffect}`, `@types/node@${typesNode.version}`])))(
  "the packed package in an app with its own effect",
  () => {
    // Made in beforeAll, so a run that filters these tests out leaves nothing behind.
    let work = ""
    let app = ""
    const found = nodes()
    // Installed by the oldest Node here: the engines check that matters is the lowest one supported.
    const [oldestVersion, oldest] = [...found].sort(([a], [b]) => Number(a.slice(1).split(".")[0]) - Number(b.slice(1).split(".")[0]))[0]!
    let tarball = ""
    let install = { code: null as number | null, stdout: "", stderr: "" }

    beforeAll(() => {
      work = fs.mkdtempSync(path.join(os.tmpdir(), "connpool-package-"))
      app = path.join(work, "app")
      const pack = run("npm", ["pack", "--pack-destination", work, "--json"], root)
      assert.strictEqual(pack.code, 0, pack.stderr)
      const [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("["))) as Array<{
        readonly filename: string
        readonly files: ReadonlyArray<{ readonly path: string }>
      }>
      tarball = path.join(work, packed!.filename)
      const files = new Set(packed!.files.map((f) => f.path))
      for (const file of ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/index.d.ts", "dist/cli/main.js"]) {
        assert.isTrue(files.has(file), `the tarball lacks ${file}`)
      }
      assert.isFalse([...files].some((f) => f.startsWith("test/")), "the tarball carries tests")

      fs.mkdirSync(app)
      fs.writeFileSync(
        path.join(app, "package.json"),
        JSON.stringify({
          name: "app",
          private: true,
          type: "module",
          dependencies: { effect: AppEffect, [pkg.name]: `file:${tarball}` },
          devDependencies: { "@types/node": typesNode.version }
        })
      )
      fs.writeFileSync(path.join(app, "main.ts"), appSource)
      fs.writeFileSync(
        path.join(app, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2022",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            exactOptionalPropertyTypes: true,
            skipLibCheck: true,
            types: ["node"],
            outDir: "out"
          },
          files: ["main.ts"]
        })
      )
      install = run(oldest, [npmCli(), "install", "--offline", "--no-audit", "--no-fund"], app)
      assert.strictEqual(install.code, 0, `npm install (${oldestVersion}): ${install.stderr}`)
    }, 4 * StepTimeoutMs)

    afterAll(() => {
      if (work !== "") fs.rmSync(work, { recursive: true, force: true })
    })

    it(`installs on Node ${oldestVersion} without an engine warning (engines ${pkg.engines.node})`, () => {
      assert.notMatch(install.stderr, /EBADENGINE/, install.stderr)
    })

    it(`resolves one effect, the app's ${AppEffect}, and no second copy under the package`, () => {
      const copies: Array<string> = []
      const walk = (dir: string, depth: number) => {
        if (depth > 6 || !fs.existsSync(dir)) return
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
          if (!entry.isDirectory() && !entry.isSymbolicLink()) continue
          const full = path.join(dir, entry.name)
          if (entry.name === "effect" && fs.existsSync(path.join(full, "package.json"))) copies.push(full)
          if (entry.name === "node_modules" || entry.name.startsWith("@") || dir.endsWith("node_modules")) {
            walk(entry.name === "node_modules" ? full : path.join(full, "node_modules"), depth + 1)
            if (entry.name.startsWith("@")) walk(full, depth + 1)
          }
        }
      }
      walk(path.join(app, "node_modules"), 0)
      assert.deepStrictEqual(copies, [path.join(app, "node_modules", "effect")])
      const version = JSON.parse(fs.readFileSync(path.join(copies[0]!, "package.json"), "utf8")).version
      assert.strictEqual(version, AppEffect)
      // An optional peer: not installed for an app that only uses the pools.
      assert.isFalse(fs.existsSync(path.join(app, "node_modules", "@effect", "platform-node")))
    })

    it("typechecks the app against the package's declarations and the app's effect", () => {
      const tsc = run(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], app)
      assert.strictEqual(tsc.code, 0, tsc.stdout + tsc.stderr)
    })

    it(`runs the built package on every Node here (${[...found.keys()].join(", ")})`, () => {
      assert.isTrue(fs.existsSync(path.join(app, "out", "main.js")), "compiled by the typecheck step")
      for (const [version, node] of found) {
        const result = run(node, ["out/main.js"], app)
        assert.strictEqual(result.code, 0, `${version}: ${result.stderr}`)
        assert.deepStrictEqual(JSON.parse(result.stdout), { node: version, ...expected })
      }
    })

    it("has the connpool command say in one line that it needs @effect/platform-node", () => {
      const result = run(process.execPath, [path.join(app, "node_modules", pkg.name, "dist/cli/main.js"), "--help"], app)
      assert.strictEqual(result.code, 2)
      assert.strictEqual(result.stdout, "")
      assert.match(result.stderr, /^connpool: the connpool command needs @effect\/platform-node .*\n$/)
    })
  }
)

/**
 * What a contributor's `npm install` warns about, as README.md says: dev tools that want Node
 * 22.19 (@effect/platform-node and what it brings) or 22.12 (vitest); nothing from 22.19 on.
 */
const expectedWarnings = (version: string): ReadonlyArray<string> => {
  const [major = 0, minor = 0] = version.slice(1).split(".").map(Number)
  const atLeast = (m: number, n: number) => major > m || (major === m && minor >= n)
  return [
    ...(atLeast(22, 19) ? [] : ["@effect/platform-node", "@effect/platform-node-shared", "undici"]),
    ...(atLeast(22, 12) ? [] : ["vitest"])
  ].sort()
}

describe("the repository's own install", () => {
  const found = nodes()
  for (const [version, node] of found) {
    const expected = expectedWarnings(version)
    it(`warns on Node ${version} about ${expected.length === 0 ? "no engine" : expected.join(", ")}`, () => {
      // A dry run reads the lockfile and the engines of every package, and writes nothing.
      const dry = run(node, [npmCli(), "install", "--dry-run", "--offline", "--ignore-scripts", "--no-audit", "--no-fund"], root)
      assert.strictEqual(dry.code, 0, dry.stderr)
      const warned = [...dry.stderr.matchAll(/EBADENGINE\s+package: '(@?[^@']+)@/g)].map((m) => m[1]!).sort()
      assert.deepStrictEqual(warned, expected)
      if (warned.length > 0) {
        const readme = fs.readFileSync(path.join(root, "README.md"), "utf8")
        for (const name of warned) assert.include(readme, `\`${name}\``, `README.md names ${name}`)
      }
    })
  }
})
