/**
 * What a handler's failure says on the wire, read defensively: handlers are
 * user code, and a failure may be any value, even one whose getters throw.
 *
 * @since 0.1.0
 */

/** A failure's `message`, as Go sends an `error`'s text; `"error"` when it has none. */
export const failureMessage = (error: unknown): string => {
  try {
    const message = (error as { readonly message?: unknown } | null | undefined)?.message
    return typeof message === "string" && message !== "" ? message : "error"
  } catch {
    return "error"
  }
}

/** A failure's `code` (a streaming RPC's error frame carries one), when it is a safe integer. */
export const failureCode = (error: unknown): number | undefined => {
  try {
    const code = (error as { readonly code?: unknown } | null | undefined)?.code
    return typeof code === "number" && Number.isSafeInteger(code) ? code : undefined
  } catch {
    return undefined
  }
}

/** A failure's `error.type`: its `_tag` when it has one (an error class of the handler's), else `HandlerError`. */
export const failureTag = (error: unknown): string => {
  try {
    const tag = (error as { readonly _tag?: unknown } | null | undefined)?._tag
    return typeof tag === "string" && tag !== "" ? tag : "HandlerError"
  } catch {
    return "HandlerError"
  }
}
