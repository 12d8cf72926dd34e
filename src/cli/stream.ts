/**
 * `connpool stream ADDR METHOD [REQUEST_JSON]`: one Nomad streaming RPC, a line per frame on
 * stdout, until the server ends it, a limit is reached or Ctrl-C closes it.
 *
 * @since 0.1.0
 */
import { Effect, Option, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as RpcPool from "../rpc/RpcPool.ts"
import { byName } from "../wire/Protocol.ts"
import { parseArgs } from "./call.ts"
import { UsageError } from "./exit.ts"
import type { BytesForm } from "./json.ts"
import { address, bytesForm, clientTlsFlags, optionalDuration, timeout, toClientTls } from "./flags.ts"

/** `REQUEST_JSON` default: an empty struct. */
export const DefaultRequest = "{}"

/** `--protocol` default here: streaming RPC is Nomad's. */
export const DefaultStreamProtocol = "nomad"

const utf8 = new TextDecoder("utf-8", { fatal: true })

const text = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

const base64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/**
 * One frame as one stdout line. Plain: the payload as text when it is UTF-8 (its own trailing
 * newline dropped), else `{"$bytes":"<base64>"}`; a heartbeat as `{"heartbeat":true}`. With
 * `--json`: `{"payload":<text or {"$bytes"}>}` or `{"heartbeat":true}`.
 */
export const formatFrame = (frame: RpcPool.RpcPool.Frame, json: boolean, form: BytesForm): string => {
  if (frame._tag === "Heartbeat") return JSON.stringify({ heartbeat: true })
  const decoded = form === "base64" ? undefined : text(frame.payload)
  const payload = decoded ?? { $bytes: base64(frame.payload) }
  if (json) return JSON.stringify({ payload })
  return typeof payload === "string" ? payload.replace(/\r?\n$/, "") : JSON.stringify(payload)
}

/** Writes a line and waits while stdout's buffer is full, so a slow reader slows the server down too. */
const writeLine = (line: string): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (process.stdout.write(`${line}\n`)) return resume(Effect.void)
    const drained = () => resume(Effect.void)
    process.stdout.once("drain", drained)
    return Effect.sync(() => void process.stdout.off("drain", drained))
  })

const positive = (n: number): Option.Option<number> => (Number.isSafeInteger(n) && n >= 1 ? Option.some(n) : Option.none())

export const stream = Command.make(
  "stream",
  {
    address,
    method: Argument.String("METHOD").pipe(
      Argument.withDescription("The streaming method, e.g. FileSystem.Logs or Agent.Monitor")
    ),
    request: Argument.String("REQUEST_JSON").pipe(
      Argument.withDescription(`The request sent after the server's ack, as JSON (default ${DefaultRequest})`),
      Argument.withDefault(DefaultRequest)
    ),
    protocol: Flag.Literals("protocol", ["consul", "nomad"]).pipe(
      Flag.withDefault(DefaultStreamProtocol),
      Flag.withMetavar("consul|nomad"),
      Flag.withDescription("Preamble numbering of the server (default nomad: streaming RPC is Nomad's)"),
      Flag.map((name) => byName[name])
    ),
    heartbeats: Flag.Boolean("heartbeats").pipe(
      Flag.withDescription("Print heartbeat frames too, as {\"heartbeat\":true}"),
      Flag.withDefault(false)
    ),
    maxFrames: Flag.Int("max-frames").pipe(
      Flag.withMetavar("N"),
      Flag.withDescription("Close the stream after N payload frames (heartbeats not counted) and exit 0"),
      Flag.filterMap(positive, () => "an integer of at least 1"),
      Flag.optional
    ),
    duration: optionalDuration("duration", "Close the stream after this long and exit 0"),
    timeout,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("One JSON object per line: {\"payload\":…} or {\"heartbeat\":true}"),
      Flag.withDefault(false)
    ),
    bytes: bytesForm,
    tls: clientTlsFlags
  },
  (input) =>
    Effect.gen(function*() {
      const tls = toClientTls(input.tls)
      if (tls instanceof UsageError) return yield* tls
      const request = yield* parseArgs(input.request, "REQUEST_JSON")
      let payloads = 0
      const max = Option.getOrUndefined(input.maxFrames)
      let frames = RpcPool.stream(input.address, input.method, request, {
        heartbeats: input.heartbeats,
        timeout: input.timeout
      })
      if (max !== undefined) frames = Stream.takeUntil(frames, (f) => f._tag === "Payload" && ++payloads >= max)
      if (Option.isSome(input.duration)) frames = Stream.interruptWhen(frames, Effect.sleep(input.duration.value))
      yield* Stream.runForEach(frames, (frame) => writeLine(formatFrame(frame, input.json, input.bytes))).pipe(
        Effect.provide(RpcPool.PoolLayer({
          protocol: input.protocol,
          dialTimeout: input.timeout,
          callTimeout: input.timeout,
          ...(tls === undefined ? {} : { tls })
        }))
      )
    })
).pipe(
  Command.withShortDescription("Follow a Nomad streaming RPC, a line per frame"),
  Command.withDescription(
    [
      "Opens one streaming RPC (Nomad's logs, monitor and exec endpoints speak it), sends",
      "REQUEST_JSON after the server's ack, and prints each frame's payload as it arrives: as text",
      "when it is UTF-8 (a payload with newlines of its own spans several lines), otherwise as",
      "{\"$bytes\":\"<base64>\"}. Heartbeats are dropped unless --heartbeats. Payloads print at the",
      "pace stdout takes them, and the server is held back to that pace.",
      "",
      "REQUEST_JSON reads as call's ARGS_JSON does ({\"$bytes\":…}, {\"$time\":…}).",
      "",
      "Exit status: 0 when the server ends the stream, or at --max-frames or --duration; 1 when the",
      "server refused the method or ended the stream with an error; 2 on a connection, TLS, protocol,",
      "timeout or usage error; 130 on Ctrl-C, after closing the stream. Errors are one line on stderr."
    ].join("\n  ")
  ),
  Command.withExamples([
    {
      command: "connpool stream 127.0.0.1:4647 Agent.Monitor '{\"LogLevel\":\"debug\",\"PlainText\":true}'",
      description: "Follow a Nomad agent's log"
    },
    {
      command: "connpool stream 127.0.0.1:4647 Test.Follow --max-frames 5 --json",
      description: "Five frames of the test service's endless stream, as JSON"
    }
  ])
)
