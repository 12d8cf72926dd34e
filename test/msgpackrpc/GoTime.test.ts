import { assert, beforeAll, describe, it } from "@effect/vitest"
import { DateTime, Effect, Exit, Schema } from "effect"
import * as fc from "fast-check"
import * as GoTime from "../../src/msgpackrpc/GoTime.ts"
import * as RpcPool from "../../src/rpc/RpcPool.ts"
import { buildGoPeer, goAvailable, goServer } from "../interop/goPeer.ts"

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const time = (seconds: bigint, nanos: number, zone: "UTC" | number) => new GoTime.GoTime({ seconds, nanos, zone })

/** Go: time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC).MarshalBinary() */
const utcBytes = hex("01 0000000edd73c175 075bcd15 ffff")
const instant = 1_709_296_245n

describe("GoTime", () => {
  describe("binary form", () => {
    it("reads version 1 in UTC, the bytes a Consul reply carries", () => {
      const t = GoTime.fromBinary(utcBytes)
      assert.deepStrictEqual(t, time(instant, 123_456_789, "UTC"))
      // The value of the issue's Node.List reply, as the CLI printed it in base64.
      const issue = GoTime.fromBinary(Buffer.from("AQAAAA7dJXQlB1vNFf//", "base64"))
      assert.strictEqual(typeof issue === "string" ? issue : GoTime.format(issue), "2024-01-02T03:04:05.123456789Z")
    })

    it("reads an offset in minutes, and version 2's signed seconds", () => {
      assert.deepStrictEqual(GoTime.fromBinary(hex("01 0000000edd73c175 075bcd15 014a")), time(instant, 123_456_789, 330 * 60))
      assert.deepStrictEqual(GoTime.fromBinary(hex("01 0000000edd73c175 00000000 0000")), time(instant, 0, 0))
      assert.deepStrictEqual(GoTime.fromBinary(hex("02 0000000edd73c175 00000000 0001 0f")), time(instant, 0, 75))
      assert.deepStrictEqual(GoTime.fromBinary(hex("02 0000000edd73c175 00000000 fffe fb")), time(instant, 0, -125))
    })

    it("writes back exactly the bytes it read, version 2 only for offsets that are not whole minutes", () => {
      for (
        const bytes of [
          utcBytes,
          hex("01 0000000edd73c175 075bcd15 014a"),
          hex("01 0000000000000000 00000000 ffff"),
          hex("02 0000000edd73c175 00000000 0001 0f"),
          hex("02 0000000edd73c175 00000000 fffe fb")
        ]
      ) {
        const t = GoTime.fromBinary(bytes)
        assert.notStrictEqual(typeof t, "string")
        assert.deepStrictEqual(GoTime.toBinary(t as GoTime.GoTime), bytes)
      }
    })

    it("says why bytes are not a time instead of throwing", () => {
      assert.match(GoTime.fromBinary(new Uint8Array(0)) as string, /version byte missing/)
      assert.match(GoTime.fromBinary(hex("03 0000000edd73c175 075bcd15 ffff")) as string, /version byte 3/)
      assert.match(GoTime.fromBinary(utcBytes.subarray(0, 14)) as string, /15 bytes, got 14/)
      assert.match(GoTime.fromBinary(hex("02 0000000edd73c175 075bcd15 ffff")) as string, /16 bytes, got 15/)
      assert.match(GoTime.fromBinary(hex("01 0000000edd73c175 3b9aca00 ffff")) as string, /1000000000 nanoseconds/)
    })

    it("refuses to write what Go's MarshalBinary refuses", () => {
      // -60..-119 s truncate to -1 minute, which means UTC on the wire.
      assert.match(GoTime.toBinary(time(0n, 0, -90)) as string, /unexpected zone offset/)
      assert.match(GoTime.toBinary(time(0n, 0, 32768 * 60)) as string, /unexpected zone offset/)
      assert.match(GoTime.toBinary(time(0n, 1_000_000_000, "UTC")) as string, /nanoseconds/)
      assert.match(GoTime.toBinary(time(1n << 63n, 0, "UTC")) as string, /outside Go's time range/)
    })

    it("recognizes plausible times only", () => {
      assert.deepStrictEqual(GoTime.recognize(utcBytes), time(instant, 123_456_789, "UTC"))
      assert.isUndefined(GoTime.recognize(new TextEncoder().encode("fifteen bytes!!")))
      // Version 2 with a whole-minute offset is never written by Go.
      assert.isUndefined(GoTime.recognize(hex("02 0000000edd73c175 00000000 0001 00")))
      // An offset of a day and more.
      assert.isUndefined(GoTime.recognize(hex("01 0000000edd73c175 00000000 05a0")))
      // Year 10000, and year 0.
      for (const seconds of [253_402_300_800n, -62_135_596_801n]) {
        const bytes = GoTime.toBinary(time(seconds, 0, "UTC"))
        assert.instanceOf(bytes, Uint8Array)
        assert.isUndefined(GoTime.recognize(bytes as Uint8Array))
      }
    })

    it("round-trips any time Go can hold through its bytes", () => {
      const zone = fc.oneof(
        fc.constant("UTC" as const),
        fc.integer({ min: -32768 * 60 + 1, max: 32767 * 60 + 59 }).filter((s) => Math.trunc(s / 60) !== -1)
      )
      fc.assert(
        fc.property(
          fc.bigInt({ min: -(1n << 63n) - GoUnixToInternalForTest, max: (1n << 63n) - 1n - GoUnixToInternalForTest }),
          fc.integer({ min: 0, max: 999_999_999 }),
          zone,
          (seconds, nanos, z) => {
            const t = time(seconds, nanos, z)
            const bytes = GoTime.toBinary(t)
            assert.instanceOf(bytes, Uint8Array)
            assert.deepStrictEqual(GoTime.fromBinary(bytes as Uint8Array), t)
          }
        ),
        { numRuns: 500 }
      )
    })
  })

  describe("RFC 3339", () => {
    it("formats nine fraction digits in the time's own zone", () => {
      assert.strictEqual(GoTime.format(time(instant, 123_456_789, "UTC")), "2024-03-01T12:30:45.123456789Z")
      assert.strictEqual(GoTime.format(time(instant, 5, 330 * 60)), "2024-03-01T18:00:45.000000005+05:30")
      assert.strictEqual(GoTime.format(time(instant, 0, 0)), "2024-03-01T12:30:45.000000000+00:00")
      assert.strictEqual(GoTime.format(time(instant, 0, -125)), "2024-03-01T12:28:40.000000000-00:02:05")
      assert.strictEqual(GoTime.format(time(-62_135_596_800n, 0, "UTC")), "0001-01-01T00:00:00.000000000Z")
      assert.strictEqual(GoTime.format(time(-1n, 999_999_999, "UTC")), "1969-12-31T23:59:59.999999999Z")
      assert.strictEqual(GoTime.format(time(253_402_300_800n, 0, "UTC")), "+010000-01-01T00:00:00.000000000Z")
    })

    it("parses what it formats, and Z apart from +00:00", () => {
      assert.deepStrictEqual(GoTime.parse("2024-03-01T12:30:45.123456789Z"), time(instant, 123_456_789, "UTC"))
      assert.deepStrictEqual(GoTime.parse("2024-03-01T18:00:45.5+05:30"), time(instant, 500_000_000, 330 * 60))
      assert.deepStrictEqual(GoTime.parse("2024-03-01T12:30:45+00:00"), time(instant, 0, 0))
      fc.assert(
        fc.property(
          fc.bigInt({ min: -62_135_596_800n, max: 253_402_300_799n - 86_400n }),
          fc.integer({ min: 0, max: 999_999_999 }),
          fc.oneof(fc.constant("UTC" as const), fc.integer({ min: -86_399, max: 86_399 })),
          (seconds, nanos, zone) => {
            const t = time(seconds, nanos, zone)
            assert.deepStrictEqual(GoTime.parse(GoTime.format(t)), t)
          }
        ),
        { numRuns: 500 }
      )
    })

    it("refuses text that is not a valid RFC 3339 time", () => {
      for (
        const text of ["", "2024-03-01", "2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2024-03-01T24:00:00Z",
          "2024-03-01T12:30:60Z", "2024-03-01T12:30:45.1234567891Z", "2024-03-01T12:30:45+25:00", "2024-13-01T00:00:00Z"]
      ) {
        assert.isString(GoTime.parse(text), text)
      }
      assert.notStrictEqual(typeof GoTime.parse("2024-02-29T00:00:00Z"), "string")
    })
  })

  describe("Schemas", () => {
    it("decodes to DateTime.Utc to the millisecond and encodes as Go's time.UTC", () => {
      const dt = Schema.decodeUnknownSync(GoTime.Utc)(utcBytes)
      assert.strictEqual(DateTime.formatIso(dt), "2024-03-01T12:30:45.123Z")
      assert.deepStrictEqual(
        Schema.encodeSync(GoTime.Utc)(dt),
        hex("01 0000000edd73c175 0754d4c0 ffff") // 123000000 ns
      )
    })

    it("decodes to DateTime.Zoned in the time's own offset, and back", () => {
      const bytes = hex("01 0000000edd73c175 075bcd15 014a")
      const dt = Schema.decodeUnknownSync(GoTime.Zoned)(bytes)
      assert.strictEqual(DateTime.formatIsoOffset(dt), "2024-03-01T18:00:45.123+05:30")
      assert.deepStrictEqual(Schema.encodeSync(GoTime.Zoned)(dt), hex("01 0000000edd73c175 0754d4c0 014a"))
      const utc = Schema.decodeUnknownSync(GoTime.Zoned)(utcBytes)
      assert.deepStrictEqual(Schema.encodeSync(GoTime.Zoned)(utc), hex("01 0000000edd73c175 0754d4c0 ffff"))
    })

    it("keeps every bit with Exact, from bytes or from the text a valid UTF-8 raw decodes to", () => {
      const bytes = hex("01 0000000000000000 00000000 0001")
      const text = new TextDecoder().decode(bytes)
      assert.deepStrictEqual(Schema.decodeUnknownSync(GoTime.Exact)(text), GoTime.fromBinary(bytes))
      assert.deepStrictEqual(Schema.encodeSync(GoTime.Exact)(GoTime.fromBinary(utcBytes) as GoTime.GoTime), utcBytes)
    })

    it("fails bytes that are not a time with a Schema error", () => {
      const exit = Schema.decodeUnknownExit(GoTime.Utc)(new Uint8Array(3))
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(exit), /version byte 0/)
      assert.isTrue(Exit.isFailure(Schema.decodeUnknownExit(GoTime.Utc)(42)))
    })
  })

  describe.runIf(goAvailable(import.meta.url))("with the Go peer's time.Time", () => {
    beforeAll(() => buildGoPeer().then(() => undefined), 180_000)

    const Case = Schema.Struct({
      Name: Schema.String,
      Time: GoTime.Exact,
      Unix: Schema.Union([Schema.Number, Schema.BigInt]),
      Nanos: Schema.Number,
      Offset: Schema.Number,
      UTC: Schema.Boolean,
      Text: Schema.String
    })
    const TimeEcho = RpcPool.method("Time.Echo", {
      args: Schema.Struct({ Times: Schema.Array(GoTime.Exact) }),
      reply: Schema.Struct({ Echo: Schema.Array(Case), Made: Schema.Array(Case) })
    })

    const agrees = (c: typeof Case.Type) => {
      assert.strictEqual(c.Time.seconds, BigInt(c.Unix), `${c.Name} seconds`)
      assert.strictEqual(c.Time.nanos, c.Nanos, `${c.Name} nanos`)
      assert.strictEqual(c.Time.zone, c.UTC ? "UTC" : c.Offset, `${c.Name} zone`)
      // Go's layout has no seconds in offsets; compare the text where there are none.
      if (c.Offset % 60 === 0) assert.strictEqual(GoTime.format(c.Time), c.Text.replace(/Z$/, c.UTC ? "Z" : "+00:00"), c.Name)
    }

    it.live("decodes every kind of time Go makes as Go reads it", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const reply = yield* TimeEcho(server.address, { Times: [time(0n, 0, "UTC")] })
        assert.strictEqual(reply.Made.length, 9)
        for (const c of reply.Made) agrees(c)
      }).pipe(Effect.provide(RpcPool.PoolLayer())))

    it.live("writes times Go's UnmarshalBinary reads back unchanged", () =>
      Effect.gen(function*() {
        const server = yield* goServer()
        const sent = [
          time(instant, 123_456_789, "UTC"),
          time(instant, 1, 330 * 60),
          time(instant, 0, 0),
          time(instant, 999_999_999, -7 * 3600),
          time(-62_135_596_800n, 0, "UTC"),
          time(-14_182_940n, 1, "UTC"),
          time(253_402_300_799n, 999_999_999, "UTC"),
          // Go 1.19's UnmarshalBinary reads version 2's seconds byte unsigned, so only east of UTC here.
          time(instant, 0, 75)
        ]
        const reply = yield* TimeEcho(server.address, { Times: sent })
        assert.deepStrictEqual(reply.Echo.map((c) => c.Time), sent)
        for (const c of reply.Echo) agrees(c)
      }).pipe(Effect.provide(RpcPool.PoolLayer())))
  })
})

const GoUnixToInternalForTest = 62_135_596_800n
