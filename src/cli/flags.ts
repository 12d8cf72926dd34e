/**
 * Flags shared by several commands: protocol profile, timeouts and TLS.
 *
 * @since 0.1.0
 */
import { Duration, Option } from "effect"
import { Argument, Flag } from "effect/cli"
import type { Protocol } from "../wire/Protocol.ts"
import { byName } from "../wire/Protocol.ts"
import type { ClientTls, ServerTls } from "../wire/Tls.ts"
import { UsageError } from "./exit.ts"
import { DefaultBytesForm } from "./json.ts"
import type { BytesForm } from "./json.ts"

/** `--protocol` default. */
export const DefaultProtocol = "consul"

/** `--timeout` default for `call`, `ping` and `bench`. */
export const DefaultTimeout = "10s"

export const protocol: Flag.Flag<Protocol> = Flag.Literals("protocol", ["consul", "nomad"]).pipe(
  Flag.withDefault(DefaultProtocol),
  Flag.withMetavar("consul|nomad"),
  Flag.withDescription(
    "Preamble numbering of the server: consul (TLS byte 3, yamux byte 4) or nomad (TLS 4, yamux 6, stream byte 1)"
  ),
  Flag.map((name) => byName[name])
)

const units: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000
}

/**
 * Go-style durations (`250ms`, `10s`, `1m30s`, `1.5h`) or Effect's
 * `"10 seconds"` form. Returns undefined for anything else, including
 * negative values.
 */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const trimmed = text.trim()
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(trimmed)) {
    let millis = 0
    for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
      millis += Number(amount) * (units[unit!] ?? Number.NaN)
    }
    return Number.isFinite(millis) ? Duration.millis(millis) : undefined
  }
  if (/^\d+(\.\d+)?\s+[a-z]+$/.test(trimmed)) {
    return Option.getOrUndefined(Duration.fromInput(trimmed as Duration.Input))
  }
  return undefined
}

/** A duration flag with a default, e.g. `--timeout 10s`. */
export const duration = (name: string, defaultValue: string, description: string): Flag.Flag<Duration.Duration> =>
  Flag.String(name).pipe(
    Flag.withDefault(defaultValue),
    Flag.withMetavar("DURATION"),
    Flag.withDescription(`${description} (e.g. 500ms, 10s, 1m; default ${defaultValue})`),
    Flag.filterMap(
      (text) => Option.fromUndefinedOr(parseDuration(text)),
      () => "a duration such as 500ms, 10s or 1m"
    )
  )

/** A duration flag without a default. */
export const optionalDuration = (name: string, description: string): Flag.Flag<Option.Option<Duration.Duration>> =>
  Flag.String(name).pipe(
    Flag.withMetavar("DURATION"),
    Flag.withDescription(`${description} (e.g. 500ms, 10s, 1m)`),
    Flag.filterMap(
      (text) => Option.fromUndefinedOr(parseDuration(text)),
      () => "a duration such as 500ms, 10s or 1m"
    ),
    Flag.optional
  )

export const timeout: Flag.Flag<Duration.Duration> = duration(
  "timeout",
  DefaultTimeout,
  "Give up on a call (and on dialling) after this long"
)

const optionalText = (name: string, description: string) =>
  Flag.FileText(name).pipe(Flag.withMetavar("FILE"), Flag.withDescription(description), Flag.optional)

/** TLS flags for commands that dial (`call`, `ping`, `bench`). Any of them turns TLS on. */
export const clientTlsFlags = {
  ca: optionalText("tls-ca", "PEM file of CAs to trust for the server certificate (enables TLS)"),
  cert: optionalText("tls-cert", "PEM client certificate, for servers that verify clients (enables TLS)"),
  key: optionalText("tls-key", "PEM key of --tls-cert"),
  serverName: Flag.String("tls-server-name").pipe(
    Flag.withMetavar("NAME"),
    Flag.withDescription("Name to check the server certificate against (default: the host of ADDR; enables TLS)"),
    Flag.optional
  ),
  skipVerify: Flag.Boolean("tls-skip-verify").pipe(
    Flag.withDescription("Use TLS but accept any server certificate (testing only)"),
    Flag.withDefault(false)
  )
} as const

export interface ClientTlsInput {
  readonly ca: Option.Option<string>
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
  readonly serverName: Option.Option<string>
  readonly skipVerify: boolean
}

/** Plaintext (undefined) unless some TLS flag was given. */
export const toClientTls = (input: ClientTlsInput): ClientTls | undefined | UsageError => {
  const ca = Option.getOrUndefined(input.ca)
  const cert = Option.getOrUndefined(input.cert)
  const key = Option.getOrUndefined(input.key)
  const serverName = Option.getOrUndefined(input.serverName)
  if ((cert === undefined) !== (key === undefined)) {
    return new UsageError({ message: "--tls-cert and --tls-key go together" })
  }
  if (ca === undefined && cert === undefined && serverName === undefined && !input.skipVerify) return undefined
  return { ca, cert, key, serverName, verify: !input.skipVerify }
}

/** TLS flags for `serve`. `--tls-cert` and `--tls-key` turn TLS on. */
export const serverTlsFlags = {
  cert: optionalText("tls-cert", "PEM server certificate (with --tls-key: serve TLS only)"),
  key: optionalText("tls-key", "PEM key of --tls-cert"),
  ca: optionalText("tls-ca", "PEM file of CAs for client certificates"),
  verifyClient: Flag.Boolean("tls-verify-client").pipe(
    Flag.withDescription("Require a client certificate signed by --tls-ca"),
    Flag.withDefault(false)
  )
} as const

export interface ServerTlsInput {
  readonly cert: Option.Option<string>
  readonly key: Option.Option<string>
  readonly ca: Option.Option<string>
  readonly verifyClient: boolean
}

export const toServerTls = (input: ServerTlsInput): ServerTls | undefined | UsageError => {
  const cert = Option.getOrUndefined(input.cert)
  const key = Option.getOrUndefined(input.key)
  const ca = Option.getOrUndefined(input.ca)
  if (cert === undefined && key === undefined) {
    return ca === undefined && !input.verifyClient
      ? undefined
      : new UsageError({ message: "--tls-ca and --tls-verify-client need --tls-cert and --tls-key" })
  }
  if (cert === undefined || key === undefined) {
    return new UsageError({ message: "--tls-cert and --tls-key go together" })
  }
  if (input.verifyClient && ca === undefined) {
    return new UsageError({ message: "--tls-verify-client needs --tls-ca" })
  }
  return { cert, key, ca, verifyClient: input.verifyClient }
}

/** `--bytes`: how byte strings print (json.ts). */
export const bytesForm: Flag.Flag<BytesForm> = Flag.Literals("bytes", ["auto", "base64"]).pipe(
  Flag.withDefault(DefaultBytesForm),
  Flag.withMetavar("auto|base64"),
  Flag.withDescription(
    "auto: UTF-8 as text, other bytes as {\"$bytes\":base64}, Go times as {\"$time\":RFC 3339}; " +
      "base64: every byte string as {\"$bytes\":base64}"
  )
)

/** `host:port` or `[v6]:port`. */
export const isAddress = (text: string): boolean => {
  const match = /^(\[[0-9a-fA-F:.%\w]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(text)
  return match !== null && Number(match[2]) <= 65535
}

/** The `ADDR` argument of the client commands. */
export const address: Argument.Argument<string> = Argument.String("ADDR").pipe(
  Argument.withDescription("Server address, host:port"),
  Argument.filter(isAddress, () => "host:port")
)
