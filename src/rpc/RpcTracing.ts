/**
 * The RPC pool's spans, when `observability.tracing` is on: a CLIENT span per
 * call named by its method, with OpenTelemetry's RPC attributes, and under it
 * a `connpool.dial` span when the call waited for a session to be dialled
 * (whether it started the dial or joined one in flight). The one retry of a
 * call (a refused stream) is an event on its span; the retry's own dial, if
 * any, is another `connpool.dial` child. docs/observability.md lists them.
 *
 * The call's span is a `Spans.leaf`: not made current inside the call (that
 * would cost more than the span itself), so its dial span is given it as
 * parent explicitly.
 *
 * @since 0.1.0
 */
import type { Effect, Tracer } from "effect"
import * as S from "../observability/Semconv.ts"
import * as Spans from "../observability/Spans.ts"
import type { Value } from "../msgpackrpc/Decoder.ts"
import type { Conn } from "./Conn.ts"
import type { RpcError } from "./RpcError.ts"
import type { Config } from "./RpcOptions.ts"
import type { Target } from "./Target.ts"

/** The CLIENT span of one call, covering its retry; `call` gets it, for the dial span's parent and the retry event. */
export const client = (
  config: Config,
  target: Target,
  method: string,
  call: (span: Tracer.Span) => Effect.Effect<Value, RpcError>
): Effect.Effect<Value, RpcError> =>
  Spans.leaf(method, {
    kind: "client",
    attributes: {
      [S.RPC_SYSTEM_NAME]: config.protocol.name,
      [S.RPC_METHOD]: method,
      [S.SERVER_ADDRESS]: target.host,
      [S.SERVER_PORT]: target.port
    }
  }, S.errorTypeOf, call)

/** A caller's wait for the session to `target`: `joined` when another caller's dial was already in flight. */
export const dial = (
  config: Config,
  target: Target,
  joined: boolean,
  parent: Tracer.Span | undefined,
  wait: Effect.Effect<Conn, RpcError>
): Effect.Effect<Conn, RpcError> =>
  Spans.leaf("connpool.dial", {
    kind: "internal",
    parent,
    attributes: {
      [S.CONNPOOL_POOL_NAME]: config.name,
      [S.SERVER_ADDRESS]: target.host,
      [S.SERVER_PORT]: target.port,
      "connpool.dial.joined": joined
    }
  }, S.errorTypeOf, () => wait)

/** The call's stream was refused (or could not be opened): it runs once more, on a fresh session. */
export const retried = (span: Tracer.Span, target: Target): Effect.Effect<void> =>
  Spans.eventOn(span, "connpool.rpc.retry", {
    [S.SERVER_ADDRESS]: target.host,
    [S.SERVER_PORT]: target.port,
    [S.ERROR_TYPE]: "StreamOpenFailed"
  })
