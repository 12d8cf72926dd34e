/**
 * effect-connpool: the two connection pools HashiCorp and Redis users trust in
 * Go, as Effect resources.
 *
 * - `RpcPool`: Consul's `agent/pool`: one yamux session per server, msgpack-rpc
 *   stream clients reused from a free list, one dial per server, idle reaping;
 *   and Nomad's streaming RPC as a scoped duplex or an Effect `Stream`.
 * - `RpcCluster`: a set of Consul or Nomad servers over `RpcPool`: failover,
 *   rebalancing, discovery and Consul's retry rules.
 * - `ConnPool`: go-redis's `internal/pool`: a bounded pool of whole connections
 *   with a pool timeout, idle limits, lifetimes, a dial-error breaker and stats.
 *
 * The wire stack under `RpcPool` is exported too, for servers and tools:
 * `Transport`/`Listener` (TCP, TLS, preamble), `YamuxSession`, the msgpack-rpc
 * `Encoder`/`Decoder`/`StreamClient`, `GoTime` (Go's `time.Time` bytes), and
 * `RpcServer`.
 *
 * @since 0.1.0
 */
export * as RpcPool from "./rpc/RpcPool.ts"
export { RpcError } from "./rpc/RpcError.ts"
export type { RpcErrorReason } from "./rpc/RpcError.ts"
export type { AddressStats, RpcStats as RpcPoolStats } from "./rpc/RpcStats.ts"

export * as RpcCluster from "./cluster/RpcCluster.ts"
export { ClusterError } from "./cluster/ClusterError.ts"
export type { Attempt as ClusterAttempt, ClusterErrorReason } from "./cluster/ClusterError.ts"
export type { ClusterStats, ServerStats as ClusterServerStats } from "./cluster/ClusterStats.ts"

export * as ConnPool from "./pool/index.ts"

export * as RpcServer from "./server/RpcServer.ts"
export * as StreamingHandler from "./server/StreamingHandler.ts"
export * as TestService from "./server/TestService.ts"

export * as Protocol from "./wire/Protocol.ts"
export * as Transport from "./wire/Transport.ts"
export * as ByteTransport from "./wire/ByteTransport.ts"
export * as MemoryTransport from "./wire/MemoryTransport.ts"
export * as Listener from "./wire/Listener.ts"
export type { ClientTls, ServerTls } from "./wire/Tls.ts"
export { TransportError } from "./wire/TransportError.ts"

export type { MuxSession, MuxStream } from "./mux/MuxSession.ts"
export { MuxError } from "./mux/MuxError.ts"
export * as YamuxSession from "./yamux/Session.ts"
export * as YamuxFrame from "./yamux/Frame.ts"
export * as YamuxConfig from "./yamux/Config.ts"

export * as Codec from "./msgpackrpc/Codec.ts"
export * as Encoder from "./msgpackrpc/Encoder.ts"
export * as Decoder from "./msgpackrpc/Decoder.ts"
export * as Streaming from "./msgpackrpc/Streaming.ts"
export { StreamClient } from "./msgpackrpc/StreamClient.ts"
export { CodecError } from "./msgpackrpc/CodecError.ts"
export { RemoteError } from "./msgpackrpc/RemoteError.ts"
export * as GoTime from "./msgpackrpc/GoTime.ts"
