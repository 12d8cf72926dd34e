/**
 * The README and docs/ stay true: every TypeScript block compiles as printed (with
 * `effect-connpool` meaning this repository's src/), the blocks marked `<!-- run -->` run, and
 * every relative link points at a file (and heading) inside the repository.
 */
import { assert, describe, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("../", import.meta.url))

/** README.md and every Markdown file under docs/. */
const markdownFiles = (): ReadonlyArray<string> => {
  const found = ["README.md"]
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(rel)
      else if (entry.name.endsWith(".md")) found.push(rel)
    }
  }
  walk("docs")
  return found
}

interface Block {
  /** `README.md#3`: the file and the block's number in it. */
  readonly name: string
  /** Where the block would sit as a file, next to its Markdown file, so relative imports resolve. */
  readonly path: string
  readonly code: string
  /** Preceded by `<!-- run -->`: a whole program that must also run. */
  readonly run: boolean
}

const fence = /^(?:<!-- run -->\n)?```(ts|typescript)\n([\s\S]*?)^```$/gm

const blocksOf = (file: string): ReadonlyArray<Block> => {
  const text = fs.readFileSync(path.join(root, file), "utf8")
  return [...text.matchAll(fence)].map((m, i) => ({
    name: `${file}#${i + 1}`,
    path: path.join(root, path.dirname(file), `${path.basename(file, ".md")}.block${i + 1}.ts`),
    code: m[2]!,
    run: m[0].startsWith("<!-- run -->")
  }))
}

const allBlocks = markdownFiles().flatMap(blocksOf)

/**
 * The project's compiler options, with `effect-connpool` mapped to src/ as an app would see the
 * package. Unused names are allowed: a snippet declares things for the reader to use.
 */
const compilerOptions = (): ts.CompilerOptions => {
  const config = ts.readConfigFile(path.join(root, "tsconfig.json"), ts.sys.readFile)
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  return {
    ...parsed.options,
    noEmit: true,
    noUnusedLocals: false,
    noUnusedParameters: false,
    paths: { "effect-connpool": [path.join(root, "src/index.ts")] }
  }
}

describe("README and docs", () => {
  it("have TypeScript blocks to check", () => {
    assert.isAtLeast(allBlocks.length, 5)
    assert.isAtLeast(allBlocks.filter((b) => b.run).length, 1)
  })

  it("compile every TypeScript block as printed, with no undefined names", () => {
    const options = compilerOptions()
    const host = ts.createCompilerHost(options)
    const byPath = new Map(allBlocks.map((b) => [b.path, b]))
    const getSourceFile = host.getSourceFile.bind(host)
    host.getSourceFile = (file, language, onError, create) => {
      const block = byPath.get(file)
      return block === undefined
        ? getSourceFile(file, language, onError, create)
        : ts.createSourceFile(file, block.code, language, true, ts.ScriptKind.TS)
    }
    const fileExists = host.fileExists.bind(host)
    host.fileExists = (file) => byPath.has(file) || fileExists(file)
    const readFile = host.readFile.bind(host)
    host.readFile = (file) => byPath.get(file)?.code ?? readFile(file)
    const program = ts.createProgram([...byPath.keys()], options, host)
    const problems = allBlocks.flatMap((block) =>
      ts.getPreEmitDiagnostics(program, program.getSourceFile(block.path)).map((d) => {
        const line = d.file !== undefined && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0
        return `${block.name} line ${line}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`
      })
    )
    assert.deepStrictEqual(problems, [])
  }, 120_000)

  for (const block of allBlocks.filter((b) => b.run)) {
    it(`runs ${block.name}`, () => {
      // As printed, but with the package name pointing at src/ (a temporary file beside the Markdown).
      const file = block.path.replace(/\.ts$/, `.${process.pid}.ts`)
      const source = path.relative(path.dirname(file), path.join(root, "src/index.ts"))
      fs.writeFileSync(file, block.code.replaceAll("\"effect-connpool\"", JSON.stringify(`./${source}`)))
      try {
        const result = spawnSync(process.execPath, [file], { cwd: root, encoding: "utf8", timeout: 60_000 })
        assert.strictEqual(result.status, 0, `${block.name}: ${result.stderr}`)
        assert.notStrictEqual(result.stdout, "", `${block.name} printed nothing`)
      } finally {
        fs.rmSync(file, { force: true })
      }
    })
  }

  describe("links", () => {
    /** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
    const slug = (heading: string): string =>
      heading.trim().toLowerCase().replace(/[`*_]/g, "").replace(/[^\p{L}\p{N}\s-]/gu, "").replace(/\s/g, "-")

    const anchorsOf = (file: string): ReadonlySet<string> => {
      const text = fs.readFileSync(file, "utf8").replace(/^```[\s\S]*?^```$/gm, "")
      return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1]!)))
    }

    for (const file of markdownFiles()) {
      it(`${file}: every relative link points at a file and heading inside the repository`, () => {
        const text = fs.readFileSync(path.join(root, file), "utf8").replace(/^```[\s\S]*?^```$/gm, "")
        const broken: Array<string> = []
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
          if (/^[a-z][a-z0-9+.-]*:/i.test(target!)) continue // http(s), mailto: not fetched (no network in tests)
          const [ref, anchor] = target!.split("#") as [string, string | undefined]
          const resolved = ref === "" ? path.join(root, file) : path.resolve(root, path.dirname(file), ref)
          if (!resolved.startsWith(root)) broken.push(`${target}: outside the repository`)
          else if (!fs.existsSync(resolved)) broken.push(`${target}: no such file`)
          else if (anchor !== undefined && resolved.endsWith(".md") && !anchorsOf(resolved).has(anchor)) {
            broken.push(`${target}: no heading #${anchor}`)
          }
        }
        // Relative paths and Markdown files named in prose (`../x`, `reference/y.md`) are links in all
        // but syntax: they must exist, beside this file or from the repository's root.
        for (const [quoted, name] of text.matchAll(/`((?:\.\.?\/)[^`\s]*|[\w./-]+\.md)`/g)) {
          const candidates = [path.resolve(root, path.dirname(file), name!), path.resolve(root, name!)]
          if (!candidates.some((c) => c.startsWith(root) && fs.existsSync(c))) broken.push(`${quoted}: no such file here`)
        }
        assert.deepStrictEqual(broken, [])
      })
    }
  })
})
