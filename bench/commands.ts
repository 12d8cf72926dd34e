/**
 * The command line of every run `npm run bench` makes (each contender is a child process), and the
 * list that reproduces a report by hand: one place, so what runs and what BENCHMARKS.md tells a
 * reader to run cannot drift apart.
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import {
  acquireContenders,
  type AcquireVariant,
  acquireVariants,
  clusterLoads,
  type Load,
  loads,
  type Mode,
  type ScenarioId,
  type StreamPayload,
  streamFrameSize,
  streamPayloads
} from "./plan.ts"
import * as Observability from "./observability.ts"
import type { GoBinaries } from "./toolchain.ts"

/** The bench's folder, where its scripts are. */
export const here = path.dirname(fileURLToPath(import.meta.url))
export const root = path.resolve(here, "..")

/** A path as the repository's root sees it, for commands a reader copies. */
export const rel = (file: string) => path.relative(root, file)

export const rpcFlags = (mode: Mode, address: string, load: Load): Array<string> => [
  "--addr",
  address,
  "--concurrency",
  String(load.callers),
  "--size",
  String(load.size),
  "--duration",
  mode.duration,
  "--warmup",
  mode.warmup
]

export const tsClient = (mode: Mode, address: string, load: Load) => [path.join(here, "rpc-client.ts"), ...rpcFlags(mode, address, load)]

/** (e): the same client through a cluster of `servers`, whose first is the one `tsClient` would call. */
export const clusterClient = (mode: Mode, servers: ReadonlyArray<string>, load: Load) => [
  ...tsClient(mode, servers[0]!, load),
  "--cluster",
  servers.join(",")
]

/** (f): one run of either side, `--flag value` for ours and `-flag value` for Go's, as each spells them. */
export const streamFlags = (mode: Mode, address: string, payload: StreamPayload, dash: "-" | "--"): Array<string> => [
  `${dash}addr`,
  address,
  `${dash}payload`,
  payload,
  `${dash}frame-size`,
  String(streamFrameSize),
  `${dash}duration`,
  mode.duration,
  `${dash}warmup`,
  mode.warmup
]

export const tsStreamClient = (mode: Mode, address: string, payload: StreamPayload) => [
  path.join(here, "stream-client.ts"),
  ...streamFlags(mode, address, payload, "--")
]

export const goStreamArgs = (mode: Mode, address: string, payload: StreamPayload) => [
  "-protocol",
  "nomad",
  "-stream",
  ...streamFlags(mode, address, payload, "-")
]

export const acquireArgs = (mode: Mode, contender: string, variant: AcquireVariant) => [
  path.join(here, "acquire.ts"),
  "--contender",
  contender,
  "--start",
  variant.start,
  "--hold",
  variant.hold,
  ...(mode.acquireOps === undefined ? [] : ["--ops", String(mode.acquireOps)])
]

/** (g): (a)'s client at 64 callers and 32 B, a fixed number of calls, with `variant`. */
export const observedClient = (mode: Mode, address: string, variant: Observability.Variant) => [
  path.join(here, "rpc-client.ts"),
  "--addr",
  address,
  "--concurrency",
  "64",
  "--size",
  "32",
  "--calls",
  String(mode.observabilityCalls),
  "--warmup",
  mode.warmup,
  "--observability",
  variant
]

/** (g): (c)'s ConnPool.use, its first (headline) variant, with `variant`. */
export const observedAcquire = (mode: Mode, variant: Observability.Variant) => [
  ...acquireArgs(mode, "connpool", acquireVariants[0]!),
  "--observability",
  variant
]

export const memoryArgs = (mode: Mode, address: string) => [
  "--expose-gc",
  path.join(here, "memory.ts"),
  "--addr",
  address,
  "--sessions",
  String(mode.memory.sessions),
  "--streams",
  String(mode.memory.streams),
  "--calls",
  String(mode.memory.calls),
  "--warm-calls",
  String(mode.memory.warmCalls),
  "--concurrency",
  String(mode.memory.concurrency)
]

/** The commands that reproduce this report by hand, with ADDR for a server's printed address. */
export const commandsFor = (mode: Mode, wants: (id: ScenarioId) => boolean, go: GoBinaries | undefined): Array<string> => {
  const argv = process.argv.slice(2)
  const lines = [`npm run bench${argv.length === 0 ? "" : ` -- ${argv.join(" ")}`}   # this report`]
  const sample: Load = { callers: 64, size: 32 }
  const show = (args: ReadonlyArray<string>) => args.map((a) => (path.isAbsolute(a) ? rel(a) : a)).join(" ")
  if (go !== undefined && (wants("a") || wants("b") || wants("d"))) {
    lines.push(
      "",
      "# Go binaries (GOPATH mode, Debian's HashiCorp packages)",
      "(cd bench/go/client && GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../bin/client .)",
      "(cd test/interop/go/server && GO111MODULE=off GOPATH=/usr/share/gocode go build -o ../../../../bench/go/bin/server .)",
      "bench/go/bin/server -addr 127.0.0.1:0             # Go server: prints ADDR",
      "node bench/rpc-server.ts                          # our server: prints ADDR"
    )
  }
  if (go !== undefined && (wants("a") || wants("b"))) {
    lines.push(
      "",
      `# (a) and (b), one run; loads: ${loads.map((l) => `--concurrency ${l.callers} --size ${l.size}`).join("; ")}`,
      `node ${show(tsClient(mode, "ADDR", sample))}`,
      `${rel(go.client)} ${rpcFlags(mode, "ADDR", sample).join(" ")}`
    )
  }
  if (wants("c")) {
    lines.push(
      "",
      "# (c), one run per contender and variant",
      ...acquireVariants.flatMap((v) => acquireContenders.map((c) => `node ${show(acquireArgs(mode, c, v))}`))
    )
  }
  if (go !== undefined && wants("e")) {
    lines.push(
      "",
      `# (e), one run each; loads: ${clusterLoads.map((l) => `--concurrency ${l.callers} --size ${l.size}`).join("; ")}`,
      `node ${show(clusterClient(mode, ["ADDR", "ADDR2", "ADDR3"], sample))}`,
      `node ${show(tsClient(mode, "ADDR", sample))}`
    )
  }
  if (go !== undefined && wants("f")) {
    lines.push(
      "",
      `# (f), one run each; payloads: ${streamPayloads.join(", ")}`,
      "bench/go/bin/server -addr 127.0.0.1:0 -protocol nomad   # Go server, Nomad numbering: prints ADDR",
      `node ${show(tsStreamClient(mode, "ADDR", "binary"))}`,
      `${rel(go.client)} ${goStreamArgs(mode, "ADDR", "binary").join(" ")}`
    )
  }
  if (wants("g")) {
    lines.push(
      "",
      `# (g), one run per variant (${Observability.variants.join(", ")}); (a)'s part needs a server at ADDR`,
      ...Observability.variants.map((v) => `node ${show(observedClient(mode, "ADDR", v))}`),
      ...Observability.variants.map((v) => `node ${show(observedAcquire(mode, v))}`)
    )
  }
  if (wants("d")) {
    lines.push("", "# (d)")
    if (go === undefined) lines.push("node bench/rpc-server.ts                          # our server (no Go): prints ADDR")
    lines.push(`node ${show(memoryArgs(mode, "ADDR"))}`)
  }
  return lines
}
