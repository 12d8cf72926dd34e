/**
 * TLS settings for both ends. Verification is on unless explicitly turned off.
 *
 * @since 0.1.0
 */

type Pem = string | Buffer | ReadonlyArray<string | Buffer>

export interface ClientTls {
  /** Trusted CAs; default: Node's bundled roots. */
  readonly ca?: Pem | undefined
  /** Client certificate and key, for servers that verify clients. */
  readonly cert?: Pem | undefined
  readonly key?: Pem | undefined
  /** Name to verify the server certificate against; default: the dialled host. */
  readonly serverName?: string | undefined
  /** Default `true`. Turning it off accepts any certificate: for tests only. */
  readonly verify?: boolean | undefined
}

export interface ServerTls {
  readonly cert: Pem
  readonly key: Pem
  /** CAs for client certificates. */
  readonly ca?: Pem | undefined
  /** Require and verify a client certificate. Default `false`. */
  readonly verifyClient?: boolean | undefined
}

/** Node's option types want mutable arrays; our options are readonly. */
export const pem = (value: Pem | undefined): string | Buffer | Array<string | Buffer> | undefined =>
  value === undefined ? undefined : typeof value === "string" || Buffer.isBuffer(value) ? value : [...value]
