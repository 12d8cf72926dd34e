/**
 * msgpack values to JSON for stdout, with one fixed mapping so scripts can
 * rely on it:
 *
 * - byte arrays (`Uint8Array`) -> base64 strings. (The decoder already hands
 *   back byte strings that are valid UTF-8 as text, so those print as text.)
 * - 64-bit integers beyond 2^53 (`bigint`) -> decimal strings; smaller ones -> numbers.
 * - maps with non-string keys -> objects keyed by the JSON of the key.
 * - msgpack extension values -> `{ "type": n, "data": base64 }`.
 * - timestamps (`Date`) -> ISO-8601 strings.
 *
 * @since 0.1.0
 */

export const toJsonValue = (value: unknown): unknown => {
  if (value === null || value === undefined) return null
  switch (typeof value) {
    case "string":
    case "boolean":
      return value
    case "number":
      return Number.isFinite(value) ? value : String(value)
    case "bigint":
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString()
    case "object": {
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("base64")
      if (value instanceof Date) return value.toISOString()
      if (Array.isArray(value)) return value.map(toJsonValue)
      if (value instanceof Map) {
        const out: Record<string, unknown> = {}
        for (const [k, v] of value) out[typeof k === "string" ? k : JSON.stringify(toJsonValue(k))] = toJsonValue(v)
        return out
      }
      const record = value as Record<string, unknown>
      if (typeof record["type"] === "number" && record["data"] instanceof Uint8Array && Object.keys(record).length === 2) {
        return { type: record["type"], data: toJsonValue(record["data"]) }
      }
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(record)) out[k] = toJsonValue(v)
      return out
    }
    default:
      return String(value)
  }
}

/** One line of JSON. */
export const stringify = (value: unknown): string => JSON.stringify(toJsonValue(value))

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
