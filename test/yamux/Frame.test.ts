import { assert, describe, it } from "@effect/vitest"
import {
  encodeHeader,
  encodeHeaderInto,
  flagACK,
  flagFIN,
  flagRST,
  flagSYN,
  FrameDecoder,
  goAwayInternalErr,
  goAwayNormal,
  goAwayProtoErr,
  headerSize,
  maxStreamId,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"
import type { FrameHandler, FrameViolation } from "../../src/yamux/Frame.ts"

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex")

type Event =
  | { readonly kind: "header"; readonly type: number; readonly flags: number; readonly id: number; readonly length: number }
  | { readonly kind: "data"; readonly id: number; readonly piece: Uint8Array; readonly last: boolean }

class Recorder implements FrameHandler {
  readonly events: Array<Event> = []
  onHeaderHook: ((type: number) => void) | undefined
  onHeader(type: number, flags: number, id: number, length: number): void {
    this.events.push({ kind: "header", type, flags, id, length })
    this.onHeaderHook?.(type)
  }
  onData(id: number, piece: Uint8Array, last: boolean): void {
    this.events.push({ kind: "data", id, piece, last })
  }
}

/** Headers as they came, each Data body joined from its pieces; pieces must end with exactly one `last`. */
const normalise = (events: ReadonlyArray<Event>): Array<string> => {
  const out: Array<string> = []
  let body: Array<Uint8Array> | undefined
  for (const e of events) {
    if (e.kind === "header") {
      assert.isUndefined(body, "a header arrived in the middle of a data body")
      out.push(`h ${e.type} ${e.flags} ${e.id} ${e.length}`)
      if (e.type === typeData && e.length > 0) body = []
    } else {
      assert.isDefined(body, "data without a data header")
      body!.push(e.piece)
      if (e.last) {
        out.push(`d ${e.id} ${hex(Buffer.concat(body!))}`)
        body = undefined
      }
    }
  }
  assert.isUndefined(body, "a data body never saw its last piece")
  return out
}

const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const frame = (type: number, flags: number, id: number, body: Uint8Array | number): Uint8Array =>
  typeof body === "number"
    ? encodeHeader(type, flags, id, body)
    : Buffer.concat([encodeHeader(type, flags, id, body.length), body])

/** A realistic mix: open, data of several sizes (incl. empty), window update, ping, FIN, RST, GoAway. */
const script: ReadonlyArray<Uint8Array> = [
  frame(typeWindowUpdate, flagSYN, 1, 0),
  frame(typeData, 0, 1, Buffer.from("hello")),
  frame(typeData, 0, 1, new Uint8Array(0)),
  frame(typeWindowUpdate, flagACK, 2, 262144),
  frame(typePing, flagSYN, 0, 0xdeadbeef),
  frame(typeData, flagFIN, 3, Buffer.alloc(1000, 7)),
  frame(typeData, 0, 0xfffffffd, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)),
  frame(typePing, flagACK, 0, 1),
  frame(typeWindowUpdate, flagRST, 5, 0),
  frame(typeData, flagSYN | flagACK | flagFIN | flagRST, 7, Buffer.alloc(headerSize, 0xab)),
  frame(typeGoAway, 0, 0, goAwayNormal)
]
const wire = Buffer.concat(script)

const feed = (chunks: ReadonlyArray<Uint8Array>, limit = 1 << 20) => {
  const recorder = new Recorder()
  const decoder = new FrameDecoder(recorder, limit)
  const violations: Array<FrameViolation> = []
  for (const chunk of chunks) {
    const v = decoder.push(chunk)
    if (v !== undefined) violations.push(v)
  }
  return { recorder, decoder, violations }
}

describe("Frame", () => {
  describe("headers", () => {
    it("encodes version, type, flags, stream id and length big-endian in 12 bytes", () => {
      assert.strictEqual(headerSize, 12)
      assert.strictEqual(hex(encodeHeader(typeData, 0, 1, 33)), "000000000000000100000021")
      assert.strictEqual(hex(encodeHeader(typeWindowUpdate, flagSYN, 1, 0)), "000100010000000100000000")
      assert.strictEqual(hex(encodeHeader(typeWindowUpdate, flagACK, 1, 0)), "000100020000000100000000")
      assert.strictEqual(hex(encodeHeader(typeWindowUpdate, flagFIN, 1, 0)), "000100040000000100000000")
      assert.strictEqual(hex(encodeHeader(typeWindowUpdate, flagRST, 2, 0)), "000100080000000200000000")
      assert.strictEqual(hex(encodeHeader(typePing, flagSYN, 0, 7)), "000200010000000000000007")
      assert.strictEqual(hex(encodeHeader(typePing, flagACK, 0, 7)), "000200020000000000000007")
      assert.strictEqual(hex(encodeHeader(typeGoAway, 0, 0, goAwayNormal)), "000300000000000000000000")
      assert.strictEqual(hex(encodeHeader(typeGoAway, 0, 0, goAwayProtoErr)), "000300000000000000000001")
      assert.strictEqual(hex(encodeHeader(typeGoAway, 0, 0, goAwayInternalErr)), "000300000000000000000002")
      assert.strictEqual(
        hex(encodeHeader(typeData, flagSYN | flagACK | flagFIN | flagRST, 0xfffffffe, 0xffffffff)),
        "0000000ffffffffeffffffff"
      )
      assert.strictEqual(maxStreamId, 0xfffffffe)
    })

    it("writes a header at an offset without touching the bytes around it", () => {
      const buf = new Uint8Array(20).fill(0xee)
      encodeHeaderInto(buf, 4, typeWindowUpdate, flagACK | flagFIN, 0x01020304, 0x0a0b0c0d)
      assert.strictEqual(hex(buf), "eeeeeeee" + "00010006" + "01020304" + "0a0b0c0d" + "eeeeeeee")
    })

    it("decodes every type and flag back to the numbers it was encoded from", () => {
      const cases: Array<[number, number, number, number]> = []
      for (const type of [typeData, typeWindowUpdate, typePing, typeGoAway]) {
        for (const flags of [0, flagSYN, flagACK, flagFIN, flagRST, flagSYN | flagACK | flagFIN | flagRST, 0xffff]) {
          cases.push([type, flags, type === typeGoAway || type === typePing ? 0 : 0x80000001, type === typeData ? 0 : 0xffffffff])
        }
      }
      const { recorder, violations } = feed([Buffer.concat(cases.map(([t, f, i, l]) => encodeHeader(t, f, i, l)))])
      assert.deepStrictEqual(violations, [])
      assert.deepStrictEqual(
        recorder.events,
        cases.map(([type, flags, id, length]) => ({ kind: "header" as const, type, flags, id, length }))
      )
    })
  })

  describe("decoder", () => {
    const expected = normalise(feed([wire]).recorder.events)

    it("reports each frame of a whole buffer in order, each body as one piece", () => {
      const { recorder, violations, decoder } = feed([wire])
      assert.deepStrictEqual(violations, [])
      assert.deepStrictEqual(expected, [
        "h 1 1 1 0",
        "h 0 0 1 5",
        `d 1 ${hex(Buffer.from("hello"))}`,
        "h 0 0 1 0",
        "h 1 2 2 262144",
        "h 2 1 0 3735928559",
        "h 0 4 3 1000",
        `d 3 ${"07".repeat(1000)}`,
        "h 0 0 4294967293 13",
        "d 4294967293 0102030405060708090a0b0c0d",
        "h 2 2 0 1",
        "h 1 8 5 0",
        "h 0 15 7 12",
        `d 7 ${"ab".repeat(12)}`,
        "h 3 0 0 0"
      ])
      // Whole-buffer feeding yields exactly one piece per non-empty body.
      assert.strictEqual(recorder.events.filter((e) => e.kind === "data").length, 4)
      assert.isTrue(decoder.idle)
    })

    it("gives identical callbacks when fed one byte at a time", () => {
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < wire.length; i++) chunks.push(wire.subarray(i, i + 1))
      const { recorder, violations, decoder } = feed(chunks)
      assert.deepStrictEqual(violations, [])
      assert.deepStrictEqual(normalise(recorder.events), expected)
      // 5 + 1000 + 13 + 12 body bytes, one piece each.
      assert.strictEqual(recorder.events.filter((e) => e.kind === "data").length, 1030)
      assert.isTrue(decoder.idle)
    })

    it("gives identical callbacks at random split points for many seeds", () => {
      for (let seed = 1; seed <= 200; seed++) {
        const random = mulberry32(seed)
        const chunks: Array<Uint8Array> = []
        let at = 0
        while (at < wire.length) {
          const n = 1 + Math.floor(random() * 40)
          chunks.push(wire.subarray(at, at + n))
          at += n
        }
        const { recorder, violations, decoder } = feed(chunks)
        assert.deepStrictEqual(violations, [], `seed ${seed}`)
        assert.deepStrictEqual(normalise(recorder.events), expected, `seed ${seed}`)
        assert.isTrue(decoder.idle, `seed ${seed}`)
      }
    })

    it("is not idle while a header or a body is half-received", () => {
      const recorder = new Recorder()
      const decoder = new FrameDecoder(recorder, 1024)
      assert.isTrue(decoder.idle)
      decoder.push(encodeHeader(typeData, 0, 1, 4).subarray(0, 5))
      assert.isFalse(decoder.idle)
      decoder.push(encodeHeader(typeData, 0, 1, 4).subarray(5))
      assert.isFalse(decoder.idle)
      decoder.push(Uint8Array.of(1, 2))
      assert.isFalse(decoder.idle)
      decoder.push(Uint8Array.of(3, 4))
      assert.isTrue(decoder.idle)
    })

    it("hands the body on as views of the chunks it arrived in, without copying", () => {
      const body = Buffer.alloc(300, 9)
      const whole = Buffer.concat([encodeHeader(typeData, 0, 9, body.length), body])
      const first = whole.subarray(0, 100)
      const second = whole.subarray(100, 250)
      const third = whole.subarray(250)
      const { recorder } = feed([first, second, third])
      const pieces = recorder.events.filter((e): e is Extract<Event, { kind: "data" }> => e.kind === "data")
      assert.deepStrictEqual(pieces.map((p) => [p.piece.length, p.last]), [[88, false], [150, false], [62, true]])
      // Same memory as the input chunks: a write through the input shows through the piece.
      assert.strictEqual(pieces[0]!.piece.buffer, whole.buffer)
      assert.strictEqual(pieces[0]!.piece.byteOffset, whole.byteOffset + headerSize)
      assert.strictEqual(pieces[1]!.piece.byteOffset, whole.byteOffset + 100)
      assert.strictEqual(pieces[2]!.piece.byteOffset, whole.byteOffset + 250)
      whole[headerSize] = 0x55
      assert.strictEqual(pieces[0]!.piece[0], 0x55)
    })

    it("accepts a data frame of exactly the limit and reports a zero-length one with no data call", () => {
      const { recorder, violations } = feed([
        frame(typeData, 0, 1, Buffer.alloc(64, 1)),
        frame(typeData, flagFIN, 1, new Uint8Array(0))
      ], 64)
      assert.deepStrictEqual(violations, [])
      assert.deepStrictEqual(normalise(recorder.events), ["h 0 0 1 64", `d 1 ${"01".repeat(64)}`, "h 0 4 1 0"])
    })
  })

  describe("violations", () => {
    it("refuses a version other than 0 with InvalidVersion, even when the header is split", () => {
      const bad = encodeHeader(typeData, 0, 1, 0)
      bad[0] = 1
      const whole = feed([bad])
      assert.deepStrictEqual(whole.violations, [{ _tag: "InvalidVersion", version: 1 }])
      assert.deepStrictEqual(whole.recorder.events, [])
      const split = feed([bad.subarray(0, 3), bad.subarray(3)])
      assert.deepStrictEqual(split.violations, [{ _tag: "InvalidVersion", version: 1 }])
      const garbage = feed([Buffer.from("GET / HTTP/1.1\r\n\r\n")])
      assert.deepStrictEqual(garbage.violations, [{ _tag: "InvalidVersion", version: 0x47 }])
    })

    it("refuses a type above 3 with InvalidMsgType after the good frames before it", () => {
      const bad = encodeHeader(4, 0, 0, 0)
      const { recorder, violations } = feed([Buffer.concat([frame(typePing, flagSYN, 0, 1), bad])])
      assert.deepStrictEqual(violations, [{ _tag: "InvalidMsgType", type: 4 }])
      assert.deepStrictEqual(normalise(recorder.events), ["h 2 1 0 1"])
      assert.deepStrictEqual(feed([encodeHeader(0xff, 0, 0, 0)]).violations, [{ _tag: "InvalidMsgType", type: 255 }])
    })

    it("refuses a data frame claiming 4 GiB at its header, before any body arrives", () => {
      const recorder = new Recorder()
      const decoder = new FrameDecoder(recorder, 256 * 1024)
      const violation = decoder.push(encodeHeader(typeData, 0, 1, 0xffffffff))
      assert.deepStrictEqual(violation, { _tag: "FrameTooLarge", length: 4294967295, limit: 262144 })
      assert.deepStrictEqual(recorder.events, [])
      // Nothing is held for the claimed body.
      assert.isTrue(decoder.idle)
      const justOver = feed([encodeHeader(typeData, 0, 1, 256 * 1024 + 1)], 256 * 1024)
      assert.deepStrictEqual(justOver.violations, [{ _tag: "FrameTooLarge", length: 262145, limit: 262144 }])
    })

    it("does not apply the data limit to lengths that are not byte counts", () => {
      const { recorder, violations } = feed([
        frame(typeWindowUpdate, 0, 1, 0xffffffff),
        frame(typePing, flagSYN, 0, 0xffffffff),
        frame(typeGoAway, 0, 0, 0xffffffff)
      ], 16)
      assert.deepStrictEqual(violations, [])
      assert.strictEqual(recorder.events.length, 3)
    })
  })

  describe("stop", () => {
    it("halts mid-chunk when the handler stops it, and ignores every later push", () => {
      const recorder = new Recorder()
      const decoder = new FrameDecoder(recorder, 1024)
      recorder.onHeaderHook = (type) => {
        if (type === typePing) decoder.stop()
      }
      const violation = decoder.push(Buffer.concat([
        frame(typeWindowUpdate, flagSYN, 1, 0),
        frame(typePing, flagSYN, 0, 1),
        frame(typeData, 0, 1, Buffer.from("after"))
      ]))
      assert.isUndefined(violation)
      assert.deepStrictEqual(normalise(recorder.events), ["h 1 1 1 0", "h 2 1 0 1"])
      // Even garbage is ignored once stopped.
      assert.isUndefined(decoder.push(Buffer.from([9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])))
      assert.strictEqual(recorder.events.length, 2)
    })

    it("halts between the pieces of a body when stopped from a data callback", () => {
      const events: Array<string> = []
      let decoder: FrameDecoder | undefined = undefined
      const handler: FrameHandler = {
        onHeader: (type) => events.push(`h${type}`),
        onData: (_id, piece) => {
          events.push(`d${piece.length}`)
          decoder!.stop()
        }
      }
      decoder = new FrameDecoder(handler, 1024)
      const bytes = Buffer.concat([frame(typeData, 0, 1, Buffer.alloc(10)), frame(typePing, flagSYN, 0, 1)])
      decoder.push(bytes.subarray(0, 15))
      decoder.push(bytes.subarray(15))
      assert.deepStrictEqual(events, ["h0", "d3"])
    })
  })
})
