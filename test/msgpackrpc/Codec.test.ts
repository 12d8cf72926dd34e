import { assert, describe, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import {
  encodeRequest,
  encodeResponse,
  parseRequestHeader,
  parseResponseHeader,
  RequestReader,
  ResponseReader
} from "../../src/msgpackrpc/Codec.ts"
import { CodecError } from "../../src/msgpackrpc/CodecError.ts"
import { decode } from "../../src/msgpackrpc/Decoder.ts"
import { encode } from "../../src/msgpackrpc/Encoder.ts"
import { goEnv, goMsgpack, runs } from "../requirements.ts"

const h = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const ascii = (s: string): string => Buffer.from(s, "latin1").toString("hex")
const hex = (b: Uint8Array | CodecError): string => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return Buffer.from(b).toString("hex")
}
const bytesOf = (b: Uint8Array | CodecError): Uint8Array => {
  if (b instanceof CodecError) throw new Error(`unexpected ${b.reason}: ${b.message}`)
  return b
}

/** wire-protocol.md §1.4: Consul `Status.Ping`, Seq 1. */
const pingRequest = `82 a3 ${ascii("Seq")} 01 ad ${ascii("ServiceMethod")} ab ${ascii("Status.Ping")} 80`
const pingResponse = `83 a5 ${ascii("Error")} a0 a3 ${ascii("Seq")} 01 ad ${ascii("ServiceMethod")} ab ${
  ascii("Status.Ping")
} 80`

describe("Codec", () => {
  it("encodes the Status.Ping request and response of wire-protocol.md §1.4 byte for byte", () => {
    const request = bytesOf(encodeRequest("Status.Ping", 1, {}))
    assert.strictEqual(hex(request), hex(h(pingRequest)))
    assert.strictEqual(request.length, 33)
    const response = bytesOf(encodeResponse("Status.Ping", 1, "", {}))
    assert.strictEqual(hex(response), hex(h(pingResponse)))
    assert.strictEqual(response.length, 40)
  })

  it("encodes the header exactly as encoding the header object would", () => {
    const args = { Datacenter: "dc1", QueryOptions: { AllowStale: true, MinQueryIndex: 2 ** 40 } }
    for (const seq of [0, 127, 128, 65536, 2 ** 53 - 1, 18446744073709551615n]) {
      for (const method of ["Status.Ping", "m".repeat(31), "m".repeat(32), "Ünïcode.Method"]) {
        const want = hex(bytesOf(encode({ ServiceMethod: method, Seq: seq }))) + hex(bytesOf(encode(args)))
        assert.strictEqual(hex(encodeRequest(method, seq, args)), want)
        // Twice: the second call goes through the method-name cache.
        assert.strictEqual(hex(encodeRequest(method, seq, args)), want)
        const wantResponse = hex(bytesOf(encode({ ServiceMethod: method, Seq: seq, Error: "boom" }))) +
          hex(bytesOf(encode(args)))
        assert.strictEqual(hex(encodeResponse(method, seq, "boom", args)), wantResponse)
      }
    }
  })

  it("rejects a Seq that is not a uint64 and args it cannot encode", () => {
    for (const seq of [-1, 1.5, NaN, -1n]) {
      const e = encodeRequest("Status.Ping", seq, {})
      assert.instanceOf(e, CodecError)
      assert.strictEqual((e as CodecError).reason, "Unsupported")
    }
    assert.strictEqual((encodeRequest("Status.Ping", 2n ** 64n, {}) as CodecError).reason, "TooLarge")
    assert.strictEqual((encodeResponse("X.Y", 1, "", { f: Symbol("no") }) as CodecError).reason, "Unsupported")
    assert.strictEqual(hex(encodeRequest("Status.Ping", 1, {})), hex(h(pingRequest)))
  })

  it("reads a response split into 1-byte chunks once header and body are both complete", () => {
    const input = h(pingResponse)
    const reader = new ResponseReader()
    for (let i = 0; i < input.length - 1; i++) {
      reader.push(input.subarray(i, i + 1))
      assert.isUndefined(reader.next())
    }
    reader.push(input.subarray(input.length - 1))
    assert.deepStrictEqual(reader.next(), { header: { ServiceMethod: "Status.Ping", Seq: 1, Error: "" }, body: {} })
    assert.isUndefined(reader.next())
    assert.isUndefined(reader.end())
  })

  it("reads back-to-back responses including error responses and their bodies", () => {
    const stream = Buffer.concat([
      bytesOf(encodeResponse("KVS.Get", 1, "", { Key: "a", Value: new Uint8Array([0xff]) })),
      bytesOf(encodeResponse("KVS.Get", 2, "permission denied", {})),
      bytesOf(encodeResponse("KVS.Get", 18446744073709551615n, "", [1, 2]))
    ])
    const reader = new ResponseReader()
    reader.push(stream)
    assert.deepStrictEqual(reader.next(), {
      header: { ServiceMethod: "KVS.Get", Seq: 1, Error: "" },
      body: { Key: "a", Value: new Uint8Array([0xff]) }
    })
    assert.deepStrictEqual(reader.next(), {
      header: { ServiceMethod: "KVS.Get", Seq: 2, Error: "permission denied" },
      body: {}
    })
    assert.deepStrictEqual(reader.next(), {
      header: { ServiceMethod: "KVS.Get", Seq: 18446744073709551615n, Error: "" },
      body: [1, 2]
    })
    assert.isUndefined(reader.next())
    assert.strictEqual(reader.bufferedBytes, 0)
  })

  it("reads requests written by encodeRequest", () => {
    const reader = new RequestReader()
    reader.push(bytesOf(encodeRequest("Catalog.ListNodes", 7, { Datacenter: "dc1" })))
    reader.push(h(pingRequest))
    assert.deepStrictEqual(reader.next(), {
      header: { ServiceMethod: "Catalog.ListNodes", Seq: 7 },
      body: { Datacenter: "dc1" }
    })
    assert.deepStrictEqual(reader.next(), { header: { ServiceMethod: "Status.Ping", Seq: 1 }, body: {} })
  })

  it("treats missing and nil header fields as Go's zero values and ignores unknown fields", () => {
    assert.deepStrictEqual(parseResponseHeader({ Seq: 3, Extra: [1] }), { ServiceMethod: "", Seq: 3, Error: "" })
    assert.deepStrictEqual(parseRequestHeader({ ServiceMethod: null }), { ServiceMethod: "", Seq: 0 })
    assert.deepStrictEqual(
      parseResponseHeader({ ServiceMethod: "A.B", Seq: 1, Error: new Uint8Array([0x62, 0xff]) }),
      { ServiceMethod: "A.B", Seq: 1, Error: "b\ufffd" }
    )
  })

  it("fails with InvalidHeader when the header is not a map with the right field types", () => {
    const bad = [
      [1, 2],
      "Status.Ping",
      null,
      { ServiceMethod: 1, Seq: 1 },
      { ServiceMethod: "A.B", Seq: "1" },
      { ServiceMethod: "A.B", Seq: -1 },
      { ServiceMethod: "A.B", Seq: 1.5 },
      { ServiceMethod: "A.B", Seq: 1, Error: false }
    ]
    for (const header of bad) {
      const reader = new ResponseReader()
      reader.push(bytesOf(encode(header)))
      reader.push(bytesOf(encode({})))
      const e = reader.next()
      assert.instanceOf(e, CodecError, JSON.stringify(header))
      assert.strictEqual((e as CodecError).reason, "InvalidHeader")
      assert.strictEqual(reader.next(), e)
    }
  })

  it("reports Truncated when the stream ends after a header or inside a body", () => {
    const afterHeader = new ResponseReader()
    afterHeader.push(bytesOf(encode({ ServiceMethod: "A.B", Seq: 1, Error: "" })))
    assert.isUndefined(afterHeader.next())
    assert.strictEqual(afterHeader.end()?.reason, "Truncated")

    const insideBody = new ResponseReader()
    const full = h(pingResponse)
    insideBody.push(full.subarray(0, full.length - 1))
    insideBody.push(h("92 01"))
    assert.isUndefined(insideBody.next())
    assert.strictEqual(insideBody.end()?.reason, "Truncated")
  })

  it("passes decoder errors through and keeps returning them", () => {
    const reader = new ResponseReader({ maxMessageBytes: 64 })
    reader.push(h("db ffffffff"))
    const e = reader.next()
    assert.strictEqual((e as CodecError).reason, "TooLarge")
    assert.strictEqual(reader.end(), e)
  })

  it.runIf(runs(import.meta.url, goMsgpack))(
    "matches go-msgpack with Consul's handle byte for byte",
    () => {
      const vectors = goVectors()
      const all = new Uint8Array(256).map((_, i) => i)
      const ours: Record<string, Uint8Array | CodecError> = {
        ping_request: encodeRequest("Status.Ping", 1, {}),
        ping_response: encodeResponse("Status.Ping", 1, "", {}),
        error_response: encodeResponse("KVS.Get", 2 ** 40, "permission denied", {}),
        query_request: encodeRequest("Catalog.ListNodes", 18446744073709551615n, {
          Datacenter: "dc1",
          AllowStale: true,
          MinQueryIndex: 123456789,
          MaxQueryTime: 5_000_000_000,
          Token: ""
        }),
        strings: encode({
          S0: "",
          S31: "a".repeat(31),
          S32: "b".repeat(32),
          S255: "c".repeat(255),
          S256: "d".repeat(256),
          S65535: "e".repeat(65535),
          S65536: "f".repeat(65536)
        }),
        bytes: encode({ B: all, Empty: new Uint8Array(0), Nil: null }),
        ints: encode([
          0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53 - 1, 9223372036854775807n,
          -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9223372036854775808n
        ]),
        uints: encode([18446744073709551615n, 2 ** 53, 2n ** 63n]),
        small_ints: encode([-5, 300, 200, 40000, -70000, 3000000000]),
        floats: encode([1.5, -0.25, 1e300, -Infinity]),
        mixed: encode({
          Zeta: false,
          alpha: "lower-case tag sorts after upper-case names",
          Node: { Name: "node-1", Port: 8300 },
          Nil: null,
          List: [{ Name: "a", Port: 1 }, { Name: "b", Port: 65536 }],
          NilList: null,
          Meta: { env: "prod" },
          Empty: {},
          Opt: undefined,
          When: new Date(Date.UTC(2024, 2, 1, 12, 30, 45, 123)),
          Zero: new Date(-62135596800000),
          Dur: 1_500_000_000,
          Iface: ["x", 1, null, true, { k: -1 }],
          Unicode: "héllo ✓ 𝄞"
        }),
        collation: encode({ "😀": "1f600", "\ue000": "e000", "é": "e9", z: "z" }),
        empty_struct: encode({})
      }
      assert.deepStrictEqual(Object.keys(ours).sort(), Object.keys(vectors).sort())
      for (const [name, want] of Object.entries(vectors)) {
        assert.strictEqual(hex(ours[name]!), want, name)
        // And what Go wrote decodes and re-encodes to the same bytes.
        assert.strictEqual(reencode(name, h(want)), want, `${name} re-encoded`)
      }
    }
  )
})

function reencode(name: string, input: Uint8Array): string {
  if (name.endsWith("_request")) {
    const reader = new RequestReader()
    reader.push(input)
    const m = reader.next()
    if (m === undefined || m instanceof CodecError) throw new Error(`${name}: ${String(m)}`)
    return hex(encodeRequest(m.header.ServiceMethod, m.header.Seq, m.body))
  }
  if (name.endsWith("_response")) {
    const reader = new ResponseReader()
    reader.push(input)
    const m = reader.next()
    if (m === undefined || m instanceof CodecError) throw new Error(`${name}: ${String(m)}`)
    return hex(encodeResponse(m.header.ServiceMethod, m.header.Seq, m.header.Error, m.body))
  }
  const v = decode(input)
  if (v instanceof CodecError) throw v
  return hex(encode(v))
}

/** Builds test/msgpackrpc/go against go-msgpack in GOPATH mode (test/requirements.ts) and runs it: name → hex. */
function goVectors(): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "msgpack-vectors-"))
  const bin = join(dir, "vectors")
  const env = goEnv()
  const source = fileURLToPath(new URL("./go", import.meta.url))
  execFileSync("go", ["build", "-o", bin, "."], { cwd: source, env, stdio: ["ignore", "ignore", "inherit"] })
  const out = execFileSync(bin, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
  const vectors: Record<string, string> = {}
  for (const line of out.trim().split("\n")) {
    const [name, value] = line.split(" ")
    vectors[name!] = value!
  }
  return vectors
}
