/**
 * Protocol profiles: which preamble bytes a server expects on a fresh
 * connection, and whether each RPC stream opens with a type byte.
 *
 * Consul (`agent/pool/conn.go`): TLS byte 3 (`RPCTLS`), yamux byte 4 (`RPCMultiplexV2`).
 * Nomad (`helper/pool/conn.go`): TLS byte 4 (`RpcTLS`), yamux byte 6 (`RpcMultiplexV2`),
 * and every RPC stream starts with byte 1 (`RpcNomad`), every streaming-RPC stream with
 * byte 5 (`RpcStreaming`). Consul has no streaming RPC.
 *
 * @since 0.1.0
 */

export interface Protocol {
  readonly name: string
  /** Written first on a TLS connection, before the handshake. */
  readonly tlsByte: number
  /** Written after the TLS handshake (or first on plaintext) to select yamux. */
  readonly muxByte: number
  /** Written once at the start of every RPC stream, if the server demultiplexes streams. */
  readonly streamByte: number | undefined
  /**
   * Written once at the start of every streaming-RPC stream (Nomad's 5), and accepted by a
   * server as a connection's first byte for one streaming RPC on the bare connection.
   * `undefined`: the protocol has no streaming RPC.
   */
  readonly streamingByte?: number | undefined
}

export const consul: Protocol = { name: "consul", tlsByte: 0x03, muxByte: 0x04, streamByte: undefined }

export const nomad: Protocol = { name: "nomad", tlsByte: 0x04, muxByte: 0x06, streamByte: 0x01, streamingByte: 0x05 }

/** A profile with custom bytes, for servers that number their RPC types differently. */
export const custom = (options: {
  readonly name?: string | undefined
  readonly tlsByte: number
  readonly muxByte: number
  readonly streamByte?: number | undefined
  readonly streamingByte?: number | undefined
}): Protocol => {
  for (const byte of [options.tlsByte, options.muxByte, options.streamByte, options.streamingByte]) {
    if (byte !== undefined && (!Number.isInteger(byte) || byte < 0 || byte > 255)) {
      throw new RangeError(`protocol bytes must be 0..255, got ${byte}`)
    }
  }
  return {
    name: options.name ?? "custom",
    tlsByte: options.tlsByte,
    muxByte: options.muxByte,
    streamByte: options.streamByte,
    streamingByte: options.streamingByte
  }
}

export type ProtocolName = "consul" | "nomad"

export const byName: Readonly<Record<ProtocolName, Protocol>> = { consul, nomad }
