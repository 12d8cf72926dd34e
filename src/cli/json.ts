/**
 * msgpack values to and from JSON for the command line, with one fixed,
 * unambiguous mapping so scripts can rely on it:
 *
 * - a raw string whose bytes are valid UTF-8 -> a JSON string (go-msgpack writes
 *   Go `string` and `[]byte` alike, so text is the natural reading);
 * - other byte strings -> `{"$bytes":"<base64>"}`;
 * - Go `time.Time` values (their 15- or 16-byte `MarshalBinary` form, when it
 *   reads as a plausible time) -> `{"$time":"<RFC 3339, nine fraction digits>"}`;
 * - with `--bytes base64` every raw string, text and times included ->
 *   `{"$bytes":"<base64>"}`, so the exact bytes are never guessed at;
 * - a map whose only key is `$bytes` or `$time` (or those with more leading
 *   `$`) gets one more `$` in front, so it never reads as bytes or a time;
 * - 64-bit integers beyond 2^53 (`bigint`) -> decimal strings; smaller ones -> numbers;
 * - maps with non-string keys -> objects keyed by the JSON of the key;
 * - msgpack extension values -> `{ "type": n, "data": <bytes form> }`;
 * - timestamps (`Date`) -> ISO-8601 strings.
 *
 * Input (`call`'s ARGS_JSON, `bench --args`) reads the same forms back:
 * `{"$bytes":…}` as bytes, `{"$time":…}` as a Go time's bytes, `$$bytes` as a
 * map key `$bytes`.
 *
 * @since 0.1.0
 */
import * as GoTime from "../msgpackrpc/GoTime.ts"

/** How raw strings print: `auto` (text, bytes or a Go time, as above) or `base64` (always bytes). */
export type BytesForm = "auto" | "base64"

/** `--bytes` default. */
export const DefaultBytesForm: BytesForm = "auto"

const utf8 = new TextEncoder()
const base64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** A sole key that would read as a marker: `$bytes`, `$time`, `$$bytes`, … */
const marker = /^\$+(bytes|time)$/

const raw = (bytes: Uint8Array, text: string | undefined, form: BytesForm): unknown => {
  if (form === "base64") return { $bytes: base64(bytes) }
  // Go times start with their version byte, 1 or 2, which no text starts with.
  const time = (bytes[0] === 1 || bytes[0] === 2) ? GoTime.recognize(bytes) : undefined
  if (time !== undefined) return { $time: GoTime.format(time) }
  return text ?? { $bytes: base64(bytes) }
}

export const toJsonValue = (value: unknown, form: BytesForm = DefaultBytesForm): unknown => {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case "string":
      return form === "base64" || value.charCodeAt(0) <= 2 ? raw(utf8.encode(value), value, form) : value
    case "boolean":
      return value
    case "number":
      return Number.isFinite(value) ? value : String(value)
    case "bigint":
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString()
    case "object": {
      if (value instanceof Uint8Array) return raw(value, undefined, form)
      if (value instanceof Date) return value.toISOString()
      if (Array.isArray(value)) return value.map((v) => toJsonValue(v, form))
      const out: Record<string, unknown> = {}
      if (value instanceof Map) {
        for (const [k, v] of value) out[typeof k === "string" ? k : JSON.stringify(toJsonValue(k, form))] = toJsonValue(v, form)
        return escapeMarker(out)
      }
      const record = value as Record<string, unknown>
      if (typeof record["type"] === "number" && record["data"] instanceof Uint8Array && Object.keys(record).length === 2) {
        return { type: record["type"], data: toJsonValue(record["data"], form) }
      }
      for (const [k, v] of Object.entries(record)) out[k] = toJsonValue(v, form)
      return escapeMarker(out)
    }
    default:
      return String(value)
  }
}

const escapeMarker = (out: Record<string, unknown>): Record<string, unknown> => {
  const keys = Object.keys(out)
  return keys.length === 1 && marker.test(keys[0]!) ? { [`$${keys[0]}`]: out[keys[0]!] } : out
}

/** Why an input value cannot be read, with the JSON path where it was found. */
export class JsonInputError extends Error {}

const base64Text = /^[A-Za-z0-9+/]*={0,2}$/

/**
 * The msgpack value for parsed JSON input: `{"$bytes":"<base64>"}` is bytes,
 * `{"$time":"<RFC 3339>"}` a Go time's bytes, `$$bytes` and `$$time` keys lose
 * one `$`. Throws `JsonInputError` for a malformed marker.
 */
export const fromJsonValue = (value: unknown, path = "$"): unknown => {
  if (Array.isArray(value)) return value.map((v, i) => fromJsonValue(v, `${path}[${i}]`))
  if (value === null || typeof value !== "object") return value
  const entries = Object.entries(value)
  if (entries.length === 1) {
    const [key, inner] = entries[0]!
    if (key === "$bytes") {
      if (typeof inner !== "string" || inner.length % 4 !== 0 || !base64Text.test(inner)) {
        throw new JsonInputError(`${path}: $bytes wants a base64 string`)
      }
      return new Uint8Array(Buffer.from(inner, "base64"))
    }
    if (key === "$time") {
      const time = typeof inner === "string" ? GoTime.parse(inner) : "$time wants an RFC 3339 string"
      const bytes = typeof time === "string" ? time : GoTime.toBinary(time)
      if (typeof bytes === "string") throw new JsonInputError(`${path}: ${bytes}`)
      return bytes
    }
    if (marker.test(key)) return { [key.slice(1)]: fromJsonValue(inner, `${path}.${key}`) }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, fromJsonValue(v, `${path}.${k}`)]))
}

// Integers beyond 2^53 (uint64 Seq, Consul indexes) keep every digit as a
// bigint; Node >= 21 hands revivers the source text of each value (on Node 20
// they are rounded to the nearest double).
const keepBigIntegers = (_key: string, value: unknown, context?: { readonly source?: string }): unknown =>
  typeof value === "number" && !Number.isSafeInteger(value) && context?.source !== undefined &&
    /^-?\d+$/.test(context.source)
    ? BigInt(context.source)
    : value

/**
 * JSON text to msgpack arguments: integers too large for a double as 64-bit
 * integers, the `$bytes`/`$time` forms as bytes. Throws `SyntaxError` or
 * `JsonInputError`.
 */
export const parseJsonInput = (text: string): unknown =>
  fromJsonValue(JSON.parse(text, keepBigIntegers as (key: string, value: unknown) => unknown))

/** One line of JSON. */
export const stringify = (value: unknown, form: BytesForm = DefaultBytesForm): string =>
  JSON.stringify(toJsonValue(value, form))

/**
 * `{a: {b: 1}, c: [1], d: [{e: 2}]}` -> `[["a.b", "1"], ["c", "[1]"], ["d[0].e", "2"]]`,
 * for key/value tables.
 */
export const flatten = (value: unknown, prefix = ""): Array<readonly [string, string]> => {
  const plain = toJsonValue(value)
  if (plain !== null && typeof plain === "object" && !Array.isArray(plain)) {
    const entries = Object.entries(plain)
    if (entries.length === 0 && prefix !== "") return [[prefix, "{}"]]
    return entries.flatMap(([k, v]) => flatten(v, prefix === "" ? k : `${prefix}.${k}`))
  }
  if (Array.isArray(plain) && plain.length > 0 && plain.every((v) => v !== null && typeof v === "object")) {
    return plain.flatMap((v, i) => flatten(v, `${prefix}[${i}]`))
  }
  return [[prefix === "" ? "value" : prefix, typeof plain === "string" ? plain : JSON.stringify(plain)]]
}

/** Two aligned columns. */
export const table = (rows: ReadonlyArray<readonly [string, string]>, indent = ""): string => {
  const width = Math.max(0, ...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join("\n")
}
