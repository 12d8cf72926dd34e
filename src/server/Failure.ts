/**
 * What a handler's failure says on the wire, read defensively: handlers are
 * user code, and a failure may be any value, even one whose getters throw.
 *
 * @since 0.1.0
 */

/** A field of a failure; undefined when reading it throws (a getter, a Proxy trap). */
const field = (error: unknown, key: "message" | "code" | "_tag"): unknown => {
  try {
    return (error as Readonly<Record<string, unknown>> | null | undefined)?.[key]
  } catch {
    return undefined
  }
}

const text = (value: unknown, fallback: string): string => typeof value === "string" && value !== "" ? value : fallback

/** A failure's `message`, as Go sends an `error`'s text; `"error"` when it has none. */
export const failureMessage = (error: unknown): string => text(field(error, "message"), "error")

/** A failure's `code` (a streaming RPC's error frame carries one), when it is a safe integer. */
export const failureCode = (error: unknown): number | undefined => {
  const code = field(error, "code")
  return typeof code === "number" && Number.isSafeInteger(code) ? code : undefined
}

/** A failure's `error.type`: its `_tag` when it has one (an error class of the handler's), else `HandlerError`. */
export const failureTag = (error: unknown): string => text(field(error, "_tag"), "HandlerError")
