/**
 * Go's `time.Time` on the wire. go-msgpack writes a `time.Time` through its
 * `MarshalBinary` as a raw string (Consul's and Nomad's handles, Nomad's
 * `TimeNotBuiltin`), so a reply holds 15 or 16 opaque bytes where a time was:
 *
 * ```
 * version 1: [0x01] [int64 seconds since 0001-01-01 UTC] [int32 nanoseconds] [int16 offset minutes, -1 = UTC]
 * version 2: the same, then [int8 offset seconds]       (zones whose offset is not whole minutes, e.g. LMT)
 * ```
 *
 * This module reads and writes that form: `GoTime` keeps every bit of it
 * (seconds, nanoseconds, UTC or a fixed offset), and the Schemas map it to
 * effect's `DateTime.Utc` or `DateTime.Zoned` (millisecond precision) or to
 * `GoTime` itself, losslessly. Pure: no I/O, failures as values.
 *
 * @since 0.1.0
 */
import { Data, DateTime, Effect, Option, Schema, SchemaIssue, SchemaTransformation } from "effect"
import type { SchemaAST } from "effect"
import { asBytes } from "./Decoder.ts"

/** Seconds from 0001-01-01 (Go's internal epoch) to 1970-01-01. */
const UnixToInternal = 62_135_596_800n
const MaxInt64 = (1n << 63n) - 1n
const MinInt64 = -(1n << 63n)
/** Offset minutes Go writes for `time.UTC`. */
const UtcMinutes = -1

/**
 * A Go `time.Time` as `MarshalBinary` carries it, nothing lost.
 *
 * @category models
 */
export class GoTime extends Data.Class<{
  /** Seconds since 1970-01-01T00:00:00Z, Go's `t.Unix()`. */
  readonly seconds: bigint
  /** Nanoseconds within the second, 0 to 999,999,999. */
  readonly nanos: number
  /**
   * `"UTC"` for Go's `time.UTC`, otherwise the zone's offset in seconds east
   * of UTC (a zone at +00:00 that is not `time.UTC` is `0`).
   */
  readonly zone: "UTC" | number
}> {}

/** `u` is a `GoTime`. */
export const isGoTime = (u: unknown): u is GoTime => u instanceof GoTime

/**
 * Reads Go's `MarshalBinary` bytes, or says why they are not a time. Version
 * 2's seconds byte is read as the signed `int8` Go writes.
 *
 * @category decoding
 */
export const fromBinary = (bytes: Uint8Array): GoTime | string => {
  const version = bytes[0]
  if (version !== 1 && version !== 2) return `not a Go time: version byte ${version ?? "missing"}`
  const want = version === 1 ? 15 : 16
  if (bytes.length !== want) return `not a Go time: version ${version} has ${want} bytes, got ${bytes.length}`
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const seconds = view.getBigInt64(1) - UnixToInternal
  const nanos = view.getInt32(9)
  if (nanos < 0 || nanos > 999_999_999) return `not a Go time: ${nanos} nanoseconds`
  const minutes = view.getInt16(13)
  if (version === 1 && minutes === UtcMinutes) return new GoTime({ seconds, nanos, zone: "UTC" })
  return new GoTime({ seconds, nanos, zone: minutes * 60 + (version === 2 ? view.getInt8(15) : 0) })
}

/**
 * Writes what Go's `UnmarshalBinary` reads: version 1, or version 2 when the
 * offset is not whole minutes. Fails where Go's `MarshalBinary` does (an
 * offset of -1 minute reads as UTC, or out of `int16` minutes) and for
 * instants outside Go's range.
 *
 * @category encoding
 */
export const toBinary = (time: GoTime): Uint8Array | string => {
  if (!Number.isInteger(time.nanos) || time.nanos < 0 || time.nanos > 999_999_999) {
    return `nanoseconds must be 0 to 999999999, got ${time.nanos}`
  }
  const internal = time.seconds + UnixToInternal
  if (internal < MinInt64 || internal > MaxInt64) return `${time.seconds} seconds is outside Go's time range`
  let minutes = UtcMinutes
  let extra = 0
  if (time.zone !== "UTC") {
    if (!Number.isInteger(time.zone)) return `zone offset must be whole seconds, got ${time.zone}`
    // As Go: whole minutes truncated toward zero, the rest in version 2's byte.
    minutes = Math.trunc(time.zone / 60)
    extra = time.zone % 60
    if (minutes === UtcMinutes || minutes < -32768 || minutes > 32767) {
      return `zone offset ${time.zone} s cannot be written (Go's "unexpected zone offset")`
    }
  }
  const bytes = new Uint8Array(extra === 0 ? 15 : 16)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, extra === 0 ? 1 : 2)
  view.setBigInt64(1, internal)
  view.setInt32(9, time.nanos)
  view.setInt16(13, minutes)
  if (extra !== 0) view.setInt8(15, extra)
  return bytes
}

/**
 * The time these bytes would be if they are a Go time of a plausible sort:
 * years 1 to 9999, an offset within 18 hours. For tools that must guess
 * which raw strings are times (the CLI); a decoder given a Schema needs no
 * guess.
 *
 * @category decoding
 */
export const recognize = (bytes: Uint8Array): GoTime | undefined => {
  if (bytes.length !== 15 && bytes.length !== 16) return undefined
  const time = fromBinary(bytes)
  if (typeof time === "string") return undefined
  const offset = time.zone === "UTC" ? 0 : time.zone
  if (Math.abs(offset) > 18 * 3600 || (bytes.length === 16 && offset % 60 === 0)) return undefined
  const internal = time.seconds + UnixToInternal
  return internal >= 0n && internal < MaxYearSeconds ? time : undefined
}
/** Seconds from 0001-01-01 to 10000-01-01. */
const MaxYearSeconds = 315_537_897_600n

// ---------------------------------------------------------------------------
// RFC 3339

const pad = (n: number, width: number): string => String(n).padStart(width, "0")

/** Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm). */
const civil = (days: number): readonly [number, number, number] => {
  const z = days + 719_468
  const era = Math.floor(z / 146_097)
  const doe = z - era * 146_097
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365)
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100))
  const mp = Math.floor((5 * doy + 2) / 153)
  const month = mp < 10 ? mp + 3 : mp - 9
  return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, doy - Math.floor((153 * mp + 2) / 5) + 1]
}

/** (year, month, day) to days since 1970-01-01. */
const daysFrom = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468
}

const formatOffset = (zone: "UTC" | number): string => {
  if (zone === "UTC") return "Z"
  const abs = Math.abs(zone)
  const base = `${zone < 0 ? "-" : "+"}${pad(Math.floor(abs / 3600), 2)}:${pad(Math.floor(abs / 60) % 60, 2)}`
  // Not RFC 3339, which has no seconds in offsets; only version 2's zones (local mean time) need them.
  return abs % 60 === 0 ? base : `${base}:${pad(abs % 60, 2)}`
}

/**
 * RFC 3339 in the time's own zone with all nine fraction digits:
 * `2024-03-01T12:30:45.123456789Z`, `…+05:30`. Years outside 0–9999 take
 * ISO 8601's signed six-digit form; an offset that is not whole minutes
 * shows its seconds (`+00:01:15`).
 *
 * @category formatting
 */
export const format = (time: GoTime): string => {
  const local = time.seconds + BigInt(time.zone === "UTC" ? 0 : time.zone)
  const days = local / 86_400n - (local % 86_400n < 0n ? 1n : 0n)
  const ofDay = Number(local - days * 86_400n)
  const [year, month, day] = civil(Number(days))
  const y = year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? "-" : "+"}${pad(Math.abs(year), 6)}`
  return `${y}-${pad(month, 2)}-${pad(day, 2)}T${pad(Math.floor(ofDay / 3600), 2)}:${pad(Math.floor(ofDay / 60) % 60, 2)}:` +
    `${pad(ofDay % 60, 2)}.${pad(time.nanos, 9)}${formatOffset(time.zone)}`
}

const rfc3339 =
  /^([+-]\d{6}|\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$/

/**
 * Reads what `format` writes (and any RFC 3339 time with up to nine fraction
 * digits). `Z` is Go's `time.UTC`; `+00:00` is a zone at offset 0.
 *
 * @category parsing
 */
export const parse = (text: string): GoTime | string => {
  const m = rfc3339.exec(text)
  if (m === null) return `not an RFC 3339 time: ${JSON.stringify(text)}`
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i]))
  const last = new Date(Date.UTC(2000, month!, 0)).getUTCDate() - (month === 2 && !leap(year!) ? 1 : 0)
  if (month! < 1 || month! > 12 || day! < 1 || day! > last || hour! > 23 || minute! > 59 || second! > 59) {
    return `not a valid date and time: ${JSON.stringify(text)}`
  }
  const nanos = Number((m[7] ?? "").padEnd(9, "0"))
  const zone = m[8] !== undefined
    ? "UTC" as const
    : (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 3600 + Number(m[11]) * 60 + Number(m[12] ?? 0))
  if (m[8] === undefined && (Number(m[10]) > 23 || Number(m[11]) > 59 || Number(m[12] ?? 0) > 59)) {
    return `not a valid offset: ${JSON.stringify(text)}`
  }
  const local = BigInt(daysFrom(year!, month!, day!)) * 86_400n + BigInt(hour! * 3600 + minute! * 60 + second!)
  return new GoTime({ seconds: local - BigInt(zone === "UTC" ? 0 : zone), nanos, zone })
}

const leap = (year: number): boolean => (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0

// ---------------------------------------------------------------------------
// DateTime

/**
 * The instant as `DateTime.Utc`, to the millisecond (finer digits dropped, as
 * `DateTime` holds milliseconds); undefined outside `DateTime`'s range.
 *
 * @category conversions
 */
export const toDateTime = (time: GoTime): DateTime.Utc | undefined =>
  Option.getOrUndefined(DateTime.make(Number(time.seconds * 1000n) + Math.floor(time.nanos / 1e6)))

/**
 * The instant of `dateTime` with its zone: `time.UTC` for a UTC `DateTime` (or
 * one zoned to "UTC"), else the zone's offset at that instant.
 *
 * @category conversions
 */
export const fromDateTime = (dateTime: DateTime.DateTime): GoTime => {
  const millis = DateTime.toEpochMillis(dateTime)
  const seconds = Math.floor(millis / 1000)
  const zone = DateTime.isUtc(dateTime) || (dateTime.zone._tag === "Named" && dateTime.zone.id === "UTC")
    ? "UTC" as const
    : Math.round(DateTime.zonedOffset(dateTime) / 1000)
  return new GoTime({ seconds: BigInt(seconds), nanos: (millis - seconds * 1000) * 1e6, zone })
}

// ---------------------------------------------------------------------------
// Schemas

/** A raw msgpack string as the decoder hands it over: text when its bytes are UTF-8, bytes otherwise. */
const Raw = Schema.Union([Schema.String, Schema.Uint8Array])

const invalid = (message: string, input: unknown, options: SchemaAST.ParseOptions) =>
  Effect.fail(new SchemaIssue.InvalidValue({ message }, input, options))

/**
 * Go's `time.Time` bytes <-> `GoTime`, losslessly: nanoseconds, `time.UTC`
 * and offsets (in seconds) kept; encoding writes the same bytes back.
 *
 * @category schemas
 */
export const Exact = Raw.pipe(
  Schema.decodeTo(
    Schema.declare(isGoTime, { expected: "GoTime" }),
    SchemaTransformation.transformEffect<GoTime, string | Uint8Array>({
      decode: (raw, options) => {
        const time = fromBinary(asBytes(raw))
        return typeof time === "string" ? invalid(time, raw, options) : Effect.succeed(time)
      },
      encode: (time, options) => {
        const bytes = toBinary(time)
        return typeof bytes === "string" ? invalid(bytes, time, options) : Effect.succeed(bytes)
      }
    })
  )
)

/** The instant as `DateTime.Utc`, or a Schema issue when `DateTime` cannot hold it. */
const instant = (time: GoTime, options: SchemaAST.ParseOptions) => {
  const dateTime = toDateTime(time)
  return dateTime === undefined
    ? invalid(`${format(time)} is outside DateTime's range`, time, options)
    : Effect.succeed(dateTime)
}

/**
 * Go's `time.Time` bytes <-> `DateTime.Utc`: the instant to the millisecond
 * (finer digits and the zone dropped). Encodes as Go's `time.UTC`.
 *
 * @category schemas
 */
export const Utc = Exact.pipe(
  Schema.decodeTo(
    Schema.DateTimeUtc,
    SchemaTransformation.transformEffect<DateTime.Utc, GoTime>({
      decode: instant,
      encode: (dateTime) => Effect.succeed(fromDateTime(dateTime))
    })
  )
)

/**
 * Go's `time.Time` bytes <-> `DateTime.Zoned` in the time's own zone:
 * `time.UTC` as the named zone "UTC", any other as a fixed offset (Go's
 * binary form carries no zone name). Milliseconds, as `DateTime` holds.
 *
 * @category schemas
 */
export const Zoned = Exact.pipe(
  Schema.decodeTo(
    Schema.DateTimeZoned,
    SchemaTransformation.transformEffect<DateTime.Zoned, GoTime>({
      decode: (time, options) =>
        Effect.map(instant(time, options), (utc) =>
          DateTime.makeZonedUnsafe(utc, {
            timeZone: time.zone === "UTC" ? "UTC" : DateTime.zoneMakeOffset(time.zone * 1000)
          })),
      encode: (dateTime) => Effect.succeed(fromDateTime(dateTime))
    })
  )
)
