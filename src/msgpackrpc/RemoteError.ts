/**
 * A call the server answered with a non-empty `Response.Error`: the handler
 * failed, the stream is still in step and stays usable.
 *
 * @since 0.1.0
 */
import { Data } from "effect"

export class RemoteError extends Data.TaggedError("RemoteError")<{
  readonly method: string
  /** The server's error string, verbatim. */
  readonly message: string
}> {}
