import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Requirement } from "./requirements.ts"
import { go, goEnv, inCI, missing, runs } from "./requirements.ts"

const met: Requirement = { name: "met", install: "nothing", check: () => undefined }
const unmet = (reason: string): Requirement => ({ name: "widget", install: "apt-get install widget", check: () => reason })

/** Runs `f` with the given environment variables set (undefined: unset), restoring them after. */
const withEnv = <A>(vars: Readonly<Record<string, string | undefined>>, f: () => A): A => {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  const apply = (values: Readonly<Record<string, string | undefined>>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  apply(vars)
  try {
    return f()
  } finally {
    apply(saved)
  }
}

/** What `f` writes to stderr, and its result. */
const captureStderr = <A>(f: () => A): { readonly result: A; readonly lines: ReadonlyArray<string> } => {
  const written: Array<string> = []
  const original = process.stderr.write
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  try {
    const result = f()
    return { result, lines: written.join("").split("\n").filter((l) => l !== "") }
  } finally {
    process.stderr.write = original
  }
}

/** A directory holding an executable `go` script that exits with `code`. */
const fakeGo = (code: number): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-go-"))
  fs.writeFileSync(path.join(dir, "go"), `#!/bin/sh\necho "go version go0.0 fake"\nexit ${code}\n`, { mode: 0o755 })
  return dir
}

describe("test requirements", () => {
  it("runs a suite whose requirements are met, silently", () => {
    const { lines, result } = withEnv({ CI: undefined }, () => captureStderr(() => runs("suite.test.ts", met)))
    assert.isTrue(result)
    assert.deepStrictEqual(lines, [])
  })

  it("skips a suite outside CI with one line naming the suite, what is missing and how to install it", () => {
    const { lines, result } = withEnv(
      { CI: undefined },
      () => captureStderr(() => runs("suite.test.ts", met, unmet("no widget on PATH")))
    )
    assert.isFalse(result)
    assert.deepStrictEqual(lines, [
      "skip suite.test.ts: widget unavailable (no widget on PATH). Install: apt-get install widget"
    ])
  })

  it("treats CI set to any non-empty value as CI, and then refuses to skip", () => {
    for (const value of ["true", "1", "false", "woodpecker"]) {
      withEnv({ CI: value }, () => {
        assert.isTrue(inCI(), value)
        assert.throws(() => runs("suite.test.ts", unmet("gone")), /forbids skipping.*widget unavailable \(gone\)/)
      })
    }
    withEnv({ CI: "" }, () => assert.isFalse(inCI()))
  })

  it("names a test file by its path relative to the working directory", () => {
    const { lines } = withEnv(
      { CI: undefined },
      () => captureStderr(() => runs(new URL("./pool/x.test.ts", import.meta.url).href, unmet("r")))
    )
    assert.match(lines[0]!, /^skip test\/pool\/x\.test\.ts: /)
  })

  it("checks the answer once per requirement", () => {
    let calls = 0
    const counted: Requirement = { name: "counted", install: "-", check: () => (calls++, undefined) }
    missing(counted)
    missing(counted)
    assert.strictEqual(calls, 1)
  })

  describe("Go", () => {
    it("reports a go that does not run as unavailable, with its error", () => {
      const dir = fakeGo(3)
      const reason = withEnv({ PATH: `${dir}${path.delimiter}${process.env["PATH"]}` }, () => go({ fmt: "golang-go" }).check())
      assert.match(reason ?? "", /^`go version` failed/)
    })

    it("reports no go on PATH as unavailable", () => {
      const empty = fs.mkdtempSync(path.join(os.tmpdir(), "no-go-"))
      const reason = withEnv({ PATH: empty }, () => go({ fmt: "golang-go" }).check())
      assert.strictEqual(reason, "no `go` on PATH")
    })

    it("wants every import path under some GOPATH entry, MSGPACK_GOPATH and GOPATH included", () => {
      const dir = fakeGo(0)
      const gopath = fs.mkdtempSync(path.join(os.tmpdir(), "gopath-"))
      fs.mkdirSync(path.join(gopath, "src", "example.com", "present"), { recursive: true })
      const pathVar = `${dir}${path.delimiter}${process.env["PATH"]}`
      for (const variable of ["GOPATH", "MSGPACK_GOPATH"]) {
        withEnv({ PATH: pathVar, GOPATH: undefined, MSGPACK_GOPATH: undefined, [variable]: gopath }, () => {
          assert.isUndefined(go({ "example.com/present": "p" }).check(), variable)
          assert.match(go({ "example.com/present": "p", "example.com/absent": "a" }).check() ?? "", /example\.com\/absent$/)
          assert.strictEqual(goEnv()["GOPATH"]!.split(path.delimiter)[0], gopath)
          assert.strictEqual(goEnv()["GO111MODULE"], "off")
        })
      }
    })
  })
})
