/**
 * The error `RpcServer.serve` fails with when its options make no sense,
 * before it listens: a `NaN` limit would switch the limit off and a bad
 * duration would throw on every connection, so neither is left for later.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * - `InvalidOption`: a value of the wrong type or out of range (`option` names it).
 * - `Inconsistent`: values that are each valid but cannot work together (a byte
 *   budget smaller than the largest request it must hold).
 */
export type ServerConfigErrorReason = "InvalidOption" | "Inconsistent"

export class ServerConfigError extends Data.TaggedError("ServerConfigError")<{
  readonly reason: ServerConfigErrorReason
  /** The option at fault, as spelled in `ServeOptions` (`session.keepAliveInterval` for nested ones). */
  readonly option: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason} ${this.option}: ${this.detail}`
  }

  /** The same options fail the same way every time. */
  get isRetryable(): boolean {
    return false
  }
}
