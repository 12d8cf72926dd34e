/**
 * Micro benchmark of the msgpack-rpc codec against @msgpack/msgpack on the same inputs.
 *
 *   npx node bench/codec.ts            # all cases
 *   npx node bench/codec.ts stream     # cases whose name contains "stream"
 *   npx node bench/codec.ts turn       # how long decoding a 62 MiB listing holds the event loop
 *   npx node bench/codec.ts held       # what an encoded 1 MiB string reply keeps alive
 *   npx node --expose-gc bench/codec.ts heap   # heap per decoded value, by kind
 *
 * Numbers are process CPU time (steadier than wall-clock on a shared machine); compare rows, not absolute values.
 */
import {
  decode as mpDecode,
  decodeMultiStream,
  Decoder as MpDecoder,
  encode as mpEncode,
  Encoder as MpEncoder
} from "@msgpack/msgpack"
import { encodeRequest, encodeResponse, ResponseReader } from "../src/msgpackrpc/Codec.ts"
import { CodecError } from "../src/msgpackrpc/CodecError.ts"
import { Decoder, Yield } from "../src/msgpackrpc/Decoder.ts"
import { encode, Encoder } from "../src/msgpackrpc/Encoder.ts"
import { catalogListing } from "../test/msgpackrpc/fixtures.ts"

const filter = process.argv[2] ?? ""
const report = (name: string, value: string): void => {
  console.log(`${name.padEnd(58)} ${value}`)
}

/** Process CPU time in ms: steadier than wall-clock time on a shared machine. */
const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

/** Runs `fn` repeatedly for about `ms` of CPU time after a warm-up and reports operations per CPU second. */
const rate = (name: string, fn: () => unknown, ms = 400): void => {
  if (!name.includes(filter)) return
  let sink: unknown
  const warm = cpuMs()
  while (cpuMs() - warm < ms / 4) sink = fn()
  let n = 0
  const start = cpuMs()
  let elapsed = 0
  do {
    for (let i = 0; i < 256; i++) sink = fn()
    n += 256
    elapsed = cpuMs() - start
  } while (elapsed < ms)
  if (sink === Symbol.for("never")) console.log(sink)
  report(name, `${Math.round((n / elapsed) * 1000).toLocaleString("en-US").padStart(11)} ops/s`)
}

/** Best CPU time of `runs` runs. */
const timed = async (name: string, fn: () => unknown, runs = 3): Promise<void> => {
  if (!name.includes(filter)) return
  let best = Infinity
  for (let i = 0; i < runs; i++) {
    const start = cpuMs()
    await fn()
    best = Math.min(best, cpuMs() - start)
  }
  report(name, `${best.toFixed(1).padStart(11)} ms`)
}

const must = <A>(a: A | CodecError): A => {
  if (a instanceof CodecError) throw a
  return a
}

// A Consul `Catalog.ListNodes`-shaped reply: five nodes with addresses, tags and indexes.
const node = (i: number) => ({
  ID: `a1b2c3d4-0000-4000-8000-00000000000${i}`,
  Node: `node-${i}`,
  Address: `10.0.0.${i}`,
  Datacenter: "dc1",
  TaggedAddresses: { lan: `10.0.0.${i}`, wan: `198.51.100.${i}` },
  Meta: { "consul-network-segment": "" },
  CreateIndex: 100 + i,
  ModifyIndex: 200 + i
})
const reply = { Index: 123456, KnownLeader: true, LastContact: 0, Nodes: [0, 1, 2, 3, 4].map(node) }
const replyBytes = must(encode(reply))
const responseBytes = must(encodeResponse("Catalog.ListNodes", 42, "", reply))

console.log(`node ${process.version}; reply ${replyBytes.length} B, response ${responseBytes.length} B`)

// --- encode ------------------------------------------------------------------------------------------------
const ours = new Encoder()
const theirs = new MpEncoder()
let seq = 0
rate("encodeRequest Status.Ping (ours)", () => encodeRequest("Status.Ping", ++seq, {}))
rate("encode {ServiceMethod,Seq} + {} (@msgpack encode x2)", () => {
  mpEncode({ ServiceMethod: "Status.Ping", Seq: ++seq })
  return mpEncode({})
})
rate("encode reply (ours, Encoder)", () => ours.encode(reply))
rate("encode reply (@msgpack encode)", () => mpEncode(reply))
rate("encode reply (@msgpack reused Encoder)", () => theirs.encode(reply))
rate("encodeResponse reply (ours)", () => encodeResponse("Catalog.ListNodes", ++seq, "", reply))

// --- decode one complete value -----------------------------------------------------------------------------
const decoder = new Decoder()
const mpDecoder = new MpDecoder()
rate("decode reply (ours, reused Decoder push/next)", () => {
  decoder.push(replyBytes)
  return decoder.next()
})
rate("decode reply (@msgpack decode)", () => mpDecode(replyBytes))
rate("decode reply (@msgpack reused Decoder)", () => mpDecoder.decode(replyBytes))
const reader = new ResponseReader()
rate("read response header+body (ours, ResponseReader)", () => {
  reader.push(responseBytes)
  return reader.next()
})

// --- streams -----------------------------------------------------------------------------------------------
const chunked = (bytes: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size))
  return out
}
async function* iterate(chunks: ReadonlyArray<Uint8Array>) {
  for (const c of chunks) yield c
}

const drainOurs = (chunks: ReadonlyArray<Uint8Array>): number => {
  const d = new Decoder()
  let n = 0
  for (const c of chunks) {
    d.push(c)
    for (let v = d.next(); v !== undefined; v = d.next()) {
      if (v instanceof CodecError) throw v
      n++
    }
  }
  if (d.end() !== undefined) throw new Error("truncated")
  return n
}
const drainTheirs = async (chunks: ReadonlyArray<Uint8Array>): Promise<number> => {
  let n = 0
  for await (const _ of decodeMultiStream(iterate(chunks))) n++
  return n
}

const messages = 200_000
const stream = new Uint8Array(responseBytes.length * messages)
for (let i = 0; i < messages; i++) stream.set(responseBytes, i * responseBytes.length)
const streamChunks = chunked(stream, 64 * 1024)
await timed(`stream ${messages / 1000}k responses (${stream.length >> 20} MiB) in 64 KiB chunks (ours)`, () => {
  if (drainOurs(streamChunks) !== messages * 2) throw new Error("count")
})
await timed(`stream ${messages / 1000}k responses in 64 KiB chunks (@msgpack decodeMultiStream)`, async () => {
  if ((await drainTheirs(streamChunks)) !== messages * 2) throw new Error("count")
})
const smallChunks = chunked(stream.subarray(0, responseBytes.length * 20_000), 1460)
await timed("stream 20k responses in 1460 B chunks (ours)", () => drainOurs(smallChunks))
await timed("stream 20k responses in 1460 B chunks (@msgpack decodeMultiStream)", () => drainTheirs(smallChunks))

const bin32 = (size: number): Uint8Array => {
  const out = new Uint8Array(5 + size).fill(0xab)
  out[0] = 0xc6
  new DataView(out.buffer).setUint32(1, size)
  return out
}
for (const mib of [4, 8, 16, 32]) {
  const chunks = chunked(bin32(mib << 20), 64 * 1024)
  await timed(`stream one ${mib} MiB bin in 64 KiB chunks (ours)`, () => drainOurs(chunks))
  await timed(`stream one ${mib} MiB bin in 64 KiB chunks (@msgpack decodeMultiStream)`, () => drainTheirs(chunks), 1)
}

// --- large values: how long one turn of the event loop is held -----------------------------------------------
// What `next` holds the loop for (one turn decodes the whole value) against `step` (a slice per turn, as the
// pool's StreamClient reads replies), on a 62 MiB Consul catalog listing and a 62 MiB KV key listing, in
// 64 KiB chunks. Wall time per turn; V8's collections (gc) happen inside turns and are shown apart.
const gcPauses: Array<number> = []
const gcObserver = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push(entry.duration)
})
/** Lets pending callbacks (gc entries among them) be delivered. */
const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 20))

const turnsOf = async (name: string, wire: Uint8Array, sliced: boolean): Promise<void> => {
  if (!name.includes(filter)) return
  const decoder = new Decoder()
  const turns: Array<number> = []
  await settle()
  gcObserver.observe({ entryTypes: ["gc"] })
  gcPauses.length = 0
  for (const chunk of chunked(wire, 64 * 1024)) {
    decoder.push(chunk)
    for (;;) {
      const start = performance.now()
      const v = sliced ? decoder.step() : decoder.next()
      turns.push(performance.now() - start)
      if (v instanceof CodecError) throw v
      if (v !== Yield) break
    }
  }
  await settle()
  gcObserver.disconnect()
  const sorted = [...turns].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(1)
  const total = turns.reduce((a, b) => a + b, 0)
  report(
    name,
    `${turns.length} turns, total ${total.toFixed(0)} ms, median ${at(0.5)} / p99 ${at(0.99)} / longest ${at(1)} ms; ` +
      `gc ${gcPauses.length}x, longest ${Math.max(0, ...gcPauses).toFixed(0)} ms`
  )
}
if ("turn".includes(filter) || filter === "") {
  const listing = must(encode(catalogListing(70_000))).slice()
  const keys = must(encode({ Index: 1, Keys: Array.from({ length: 1_400_000 }, (_, i) => `service/web/config/instance-${i}/settings`) })).slice()
  for (const sliced of [false, true]) {
    const how = sliced ? "step" : "next"
    await turnsOf(`turns: ${listing.length >> 20} MiB catalog listing, ${how}`, listing, sliced)
    await turnsOf(`turns: ${keys.length >> 20} MiB KV key listing, ${how}`, keys, sliced)
  }
}

// --- what an encoded message holds ---------------------------------------------------------------------------
if ("held".includes(filter) || filter === "") {
  const held = (parts: ReadonlyArray<Uint8Array>) => [...new Set(parts.map((p) => p.buffer))].reduce((n, b) => n + b.byteLength, 0)
  for (const [what, s] of [["ASCII", "x".repeat(1 << 20)], ["3-byte", "✓".repeat((1 << 20) / 3)]] as const) {
    const parts = must(ours.encodeResponseParts("Test.Echo", 1, "", { Note: s }))
    const size = parts.reduce((n, p) => n + p.length, 0)
    report(`held: 1 MiB ${what} string reply (encodeResponseParts)`, `${(held(parts) / size).toFixed(2)} bytes per byte`)
    const whole = must(ours.encodeResponse("Test.Echo", 1, "", { Note: s }))
    report(`held: 1 MiB ${what} string reply (encodeResponse)`, `${(held([whole]) / whole.length).toFixed(2)} bytes per byte`)
  }
}

// --- what decoded values cost in heap (the decoding budget's DecodedCost) -----------------------------------
// Run with `node --expose-gc bench/codec.ts heap` for figures after a full collection.
if ("heap".includes(filter) || filter === "") {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})
  const n = 1_000_000
  const elements: ReadonlyArray<readonly [string, ReadonlyArray<number>]> = [
    ["nil", [0xc0]],
    ["empty array", [0x90]],
    ["empty map", [0x80]],
    ["map of one entry", [0x81, 0xa1, 0x61, 0xc0]],
    ["empty bin", [0xc4, 0x00]],
    ["1-byte str, not UTF-8", [0xa1, 0xff]],
    ["fixext1", [0xd4, 0x01, 0x00]]
  ]
  for (const [what, item] of elements) {
    const wire = new Uint8Array(5 + n * item.length)
    wire[0] = 0xdd
    new DataView(wire.buffer).setUint32(1, n)
    for (let i = 0; i < n; i++) wire.set(item, 5 + i * item.length)
    gc()
    const before = process.memoryUsage().heapUsed
    const decoder = new Decoder({ maxDecodedBytes: 2 ** 40 })
    decoder.push(wire)
    const value = decoder.next()
    gc()
    const after = process.memoryUsage().heapUsed
    if (!Array.isArray(value)) throw new Error("not decoded")
    report(`heap: 1M x ${what} (${item.length} B each)`, `${((after - before) / n).toFixed(0).padStart(11)} B each`)
  }
}
