import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  encodeHeader,
  encodeHeaderInto,
  flagACK,
  flagFIN,
  flagRST,
  flagSYN,
  FrameDecoder,
  headerSize,
  protoVersion,
  typeData,
  typeGoAway,
  typePing,
  typeWindowUpdate
} from "../../src/yamux/Frame.ts"
import type { FrameHandler, FrameViolation } from "../../src/yamux/Frame.ts"

// -------------------------------------------------------------------------------------------------
// Model: what a whole-buffer, one-pass reading of the spec says a byte string means.
// -------------------------------------------------------------------------------------------------

/** One observable outcome: a header, a whole (or, at the end of input, partial) Data body, or a violation. */
type Outcome =
  | { readonly kind: "header"; readonly type: number; readonly flags: number; readonly id: number; readonly length: number }
  | { readonly kind: "body"; readonly id: number; readonly hex: string; readonly complete: boolean }
  | { readonly kind: "violation"; readonly violation: FrameViolation }

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex")

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

/** Reads `bytes` straight from the spec (spec.md §Framing), independently of `FrameDecoder`. */
const model = (bytes: Uint8Array, limit: number): Array<Outcome> => {
  const out: Array<Outcome> = []
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 0
  while (at + headerSize <= bytes.length) {
    const version = view.getUint8(at)
    const type = view.getUint8(at + 1)
    const flags = view.getUint16(at + 2)
    const id = view.getUint32(at + 4)
    const length = view.getUint32(at + 8)
    at += headerSize
    if (version !== protoVersion) {
      out.push({ kind: "violation", violation: { _tag: "InvalidVersion", version } })
      return out
    }
    if (type > typeGoAway) {
      out.push({ kind: "violation", violation: { _tag: "InvalidMsgType", type } })
      return out
    }
    if (type === typeData && length > limit) {
      out.push({ kind: "violation", violation: { _tag: "FrameTooLarge", length, limit } })
      return out
    }
    out.push({ kind: "header", type, flags, id, length })
    if (type === typeData && length > 0) {
      const body = bytes.subarray(at, Math.min(at + length, bytes.length))
      if (body.length > 0) out.push({ kind: "body", id, hex: hex(body), complete: body.length === length })
      at += body.length
    }
  }
  return out
}

// -------------------------------------------------------------------------------------------------
// Driver: feeds chunks to a real FrameDecoder and checks the per-push invariants on the way.
// -------------------------------------------------------------------------------------------------

/**
 * Splits `bytes` into consecutive chunks whose sizes cycle through `sizes`; a size of 0 yields an empty
 * chunk (the decoder must tolerate those too) without stalling the split.
 */
const split = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let at = 0
  let i = 0
  let zeros = 0
  while (at < bytes.length) {
    let n = sizes[i++ % sizes.length]!
    if (n === 0 && ++zeros > sizes.length) n = 1
    if (n > 0) zeros = 0
    // Subarrays of one buffer would hide a decoder that reads past its chunk; give each chunk its own memory.
    chunks.push(bytes.slice(at, at + n))
    at += n
  }
  return chunks
}

/** Chunk sizes: mostly small (to split headers everywhere), sometimes larger than many frames. */
const chunkSizes = fc.array(
  fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 13 }) }, { weight: 2, arbitrary: fc.integer({ min: 14, max: 300 }) }, {
    weight: 1,
    arbitrary: fc.constant(0)
  }),
  { minLength: 1, maxLength: 12 }
)

/** A cheap check for per-byte paths: chai builds an assertion object per call, which dominates a run. */
const check = (ok: boolean, message: string): void => {
  if (!ok) assert.fail(message)
}

interface Fed {
  readonly outcomes: Array<Outcome>
  readonly idle: boolean
}

const feed = (chunks: ReadonlyArray<Uint8Array>, limit: number): Fed => {
  const outcomes: Array<Outcome> = []
  let body: { id: number; length: number; got: number; pieces: Array<Uint8Array> } | undefined
  let current: Uint8Array = new Uint8Array(0)
  let calls = 0
  const handler: FrameHandler = {
    onHeader(type, flags, id, length) {
      calls++
      check(body === undefined, "a header arrived in the middle of a Data body")
      outcomes.push({ kind: "header", type, flags, id, length })
      if (type === typeData && length > 0) body = { id, length, got: 0, pieces: [] }
    },
    onData(id, piece, last) {
      calls++
      if (body === undefined) return assert.fail("data without a Data header")
      check(id === body.id, "data for another stream than its header's")
      check(piece.length > 0, "an empty piece")
      // Zero copy: every piece is a view of the chunk being pushed, so the decoder buffers nothing of a body.
      check(
        piece.buffer === current.buffer && piece.byteOffset >= current.byteOffset &&
          piece.byteOffset + piece.length <= current.byteOffset + current.length,
        "a piece that is not a view of the chunk being pushed"
      )
      body.pieces.push(piece)
      const got = (body.got += piece.length)
      check(got <= body.length, "more body than the header declared")
      check(last === (got === body.length), "last must mark exactly the final piece")
      if (last) {
        outcomes.push({ kind: "body", id, hex: hex(concat(body.pieces)), complete: true })
        body = undefined
      }
    }
  }
  const decoder = new FrameDecoder(handler, limit)
  for (const chunk of chunks) {
    current = chunk
    calls = 0
    const violation = decoder.push(chunk)
    // Each callback consumes at least one byte of this chunk, so a push cannot spin.
    check(calls <= chunk.length, "more callbacks than bytes in the chunk")
    if (violation !== undefined) {
      outcomes.push({ kind: "violation", violation })
      // The decoder must be discarded after a violation.
      return { outcomes, idle: decoder.idle }
    }
  }
  if (body !== undefined && body.pieces.length > 0) {
    outcomes.push({ kind: "body", id: body.id, hex: hex(concat(body.pieces)), complete: false })
  }
  return { outcomes, idle: decoder.idle }
}

// -------------------------------------------------------------------------------------------------
// Arbitraries
// -------------------------------------------------------------------------------------------------

interface Frame {
  readonly type: number
  readonly flags: number
  readonly id: number
  readonly length: number
  readonly body: Uint8Array
}

const flagsArb = fc.oneof(
  fc.subarray([flagSYN, flagACK, flagFIN, flagRST]).map((fs) => fs.reduce((a, f) => a | f, 0)),
  fc.integer({ min: 0, max: 0xffff })
)
const u32 = fc.oneof(
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff)
)
const bodyArb = (maxLength: number) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: Math.min(maxLength, 40) }) },
    // Up to 1.5 KiB: enough for a body to span many chunks without making a run slow.
    { weight: 1, arbitrary: fc.integer({ min: 0, max: Math.min(maxLength, 1500) }).map((n) => new Uint8Array(n).fill(0xab)) }
  )

/** A valid frame whose Data body fits `limit`. */
const frameArb = (limit: number): fc.Arbitrary<Frame> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record({ flags: flagsArb, id: u32, body: bodyArb(limit) }).map(({ flags, id, body }) => ({
      type: typeData,
      flags,
      id,
      length: body.length,
      body
    })) },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constantFrom(typeWindowUpdate, typePing, typeGoAway), flags: flagsArb, id: u32, length: u32 })
        .map((f) => ({ ...f, body: new Uint8Array(0) }))
    }
  )

const encodeFrame = (f: Frame): Uint8Array => concat([encodeHeader(f.type, f.flags, f.id, f.length), f.body])

const expectedOf = (frames: ReadonlyArray<Frame>): Array<Outcome> =>
  frames.flatMap((f): Array<Outcome> => [
    { kind: "header", type: f.type, flags: f.flags, id: f.id, length: f.length },
    ...(f.type === typeData && f.length > 0 ? [{ kind: "body" as const, id: f.id, hex: hex(f.body), complete: true }] : [])
  ])

const limitArb = fc.oneof(fc.constant(256 * 1024), fc.integer({ min: 0, max: 64 }))

/** A replacement byte, biased to the values where version and type checks change their answer. */
const byteArb = fc.oneof(fc.constantFrom(0, 1, 3, 4, 5, 0x7f, 0x80, 0xff), fc.nat({ max: 255 }))

/**
 * Hostile input: random bytes, or valid frames with a byte overwritten, a run of bytes dropped, or garbage
 * appended, so that headers are mostly well formed and the interesting checks (type, limit) are reached.
 */
const hostileArb = fc.oneof(
  fc.uint8Array({ maxLength: 120 }),
  fc.tuple(limitArb, fc.array(frameArb(64), { maxLength: 6 }), fc.nat(), byteArb, fc.nat({ max: 4 }), fc.uint8Array({ maxLength: 30 }))
    .map(([limit, frames, where, byte, how, garbage]) => {
      const bytes = concat(frames.map(encodeFrame))
      const at = bytes.length === 0 ? 0 : where % bytes.length
      if (how === 0 && bytes.length > 0) bytes[at] = byte
      if (how === 1 && frames.length > 0) {
        // A header's version or type byte, where the checks are.
        const k = where % frames.length
        const start = frames.slice(0, k).reduce((n, f) => n + headerSize + f.body.length, 0)
        bytes[start + (where % 2)] = [0, 1, 3, 4, 5, 0x80, 0xff, byte][byte % 8]!
      }
      if (how === 2) return { limit, bytes: concat([bytes.subarray(0, at), bytes.subarray(at + 1 + (byte % 13))]) }
      if (how === 3) return { limit, bytes: concat([bytes, garbage]) }
      return { limit, bytes }
    })
).map((x) => (x instanceof Uint8Array ? { limit: 1024, bytes: x } : x))

// -------------------------------------------------------------------------------------------------

describe("Frame properties", () => {
  it("decodes any valid frame sequence split at any chunk boundaries to the frames that were encoded", () => {
    fc.assert(
      fc.property(limitArb.chain((limit) => fc.tuple(fc.constant(limit), fc.array(frameArb(limit), { maxLength: 12 }))), chunkSizes, ([limit, frames], sizes) => {
        const wire = concat(frames.map(encodeFrame))
        const { outcomes, idle } = feed(split(wire, sizes), limit)
        assert.deepStrictEqual(outcomes, expectedOf(frames))
        assert.isTrue(idle, "a whole frame sequence leaves nothing half-received")
      }),
      { numRuns: 400 }
    )
  })

  it("writes the same bytes with encodeHeaderInto at any offset as encodeHeader does", () => {
    fc.assert(
      fc.property(fc.array(frameArb(64), { minLength: 1, maxLength: 8 }), fc.nat({ max: 7 }), (frames, pad) => {
        // One batch buffer, as a flush builds it: padding, then each header at its running offset.
        const buf = new Uint8Array(pad + frames.length * headerSize + 1).fill(0xee)
        frames.forEach((f, i) => encodeHeaderInto(buf, pad + i * headerSize, f.type, f.flags, f.id, f.length))
        assert.strictEqual(hex(buf.subarray(0, pad)), "ee".repeat(pad))
        assert.strictEqual(hex(buf.subarray(pad, buf.length - 1)), hex(concat(frames.map((f) => encodeHeader(f.type, f.flags, f.id, f.length)))))
        assert.strictEqual(buf[buf.length - 1], 0xee)
      }),
      { numRuns: 200 }
    )
  })

  it("gives, for any bytes and any chunking, exactly what a whole-buffer reading of the spec gives, and never throws", () => {
    fc.assert(
      fc.property(hostileArb, chunkSizes, ({ limit, bytes }, sizes) => {
        const want = model(bytes, limit)
        const { outcomes, idle } = feed(split(bytes, sizes), limit)
        assert.deepStrictEqual(outcomes, want)
        const last = want[want.length - 1]
        if (last?.kind !== "violation") {
          // Idle exactly when the input stopped on a frame boundary.
          const consumed = want.reduce((n, o) => n + (o.kind === "header" ? headerSize : o.kind === "body" ? o.hex.length / 2 : 0), 0)
          const partialBody = last?.kind === "body" ? !last.complete : last?.kind === "header" && last.type === typeData && last.length > 0
          assert.strictEqual(idle, consumed === bytes.length && !partialBody)
        }
      }),
      { numRuns: 600 }
    )
  })

  it("refuses an oversized Data frame at its header, before a byte of its body is delivered", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4096 }).chain((limit) =>
          fc.tuple(
            fc.constant(limit),
            fc.array(frameArb(Math.min(limit, 64)), { maxLength: 4 }),
            fc.integer({ min: limit + 1, max: 0xffffffff }),
            u32
          )
        ),
        chunkSizes,
        ([limit, before, length, id], sizes) => {
          const header = encodeHeader(typeData, 0, id, length)
          // The claimed body follows (a little of it): none of it may reach the handler.
          const wire = concat([...before.map(encodeFrame), header, new Uint8Array(Math.min(length, 100)).fill(0x5a)])
          const chunks = split(wire, sizes)
          const { outcomes } = feed(chunks, limit)
          assert.deepStrictEqual(outcomes, [...expectedOf(before), { kind: "violation", violation: { _tag: "FrameTooLarge", length, limit } }])
          // It is the push that completes the header that reports it, not a later one.
          const headerEnd = wire.length - Math.min(length, 100)
          const decoder = new FrameDecoder({ onHeader: () => {}, onData: () => {} }, limit)
          let start = 0
          for (const chunk of chunks) {
            const violation = decoder.push(chunk)
            const end = start + chunk.length
            assert.strictEqual(violation !== undefined, start < headerEnd && headerEnd <= end)
            if (violation !== undefined) break
            start = end
          }
        }
      ),
      { numRuns: 300 }
    )
  })

  it("delivers nothing more once the handler stops the decoder, whatever follows", () => {
    fc.assert(
      fc.property(fc.array(frameArb(64), { minLength: 1, maxLength: 8 }), fc.nat({ max: 40 }), chunkSizes, fc.uint8Array({ maxLength: 40 }), (frames, stopAt, sizes, garbage) => {
        // Garbage after the frames would be a violation if the decoder still read it.
        const wire = concat([...frames.map(encodeFrame), garbage])
        let calls = 0
        let stopped = false
        let decoder: FrameDecoder | undefined = undefined
        const count = () => {
          assert.isFalse(stopped, "a callback after stop")
          if (++calls > stopAt) {
            stopped = true
            decoder!.stop()
          }
        }
        decoder = new FrameDecoder({ onHeader: count, onData: count }, 64)
        for (const chunk of split(wire, sizes)) {
          const violation = decoder.push(chunk)
          if (stopped) assert.isUndefined(violation, "a stopped decoder reports nothing")
          else if (violation !== undefined) return
        }
      }),
      { numRuns: 200 }
    )
  })
})
