/**
 * The simulated network and servers: in-memory links whose deliveries the
 * Runtime schedules, `RpcServer`s that listen on nothing and serve the server
 * end of each link, the `Connector` the RPC pool dials with, and the faults
 * the chaos fiber injects (resets, half-open links, restarts, dark hosts,
 * GoAway, slow readers).
 */
import { Effect, Scope } from "effect"
import type { Exit } from "effect"
import type { Value } from "../../src/msgpackrpc/Decoder.ts"
import * as RpcServer from "../../src/server/RpcServer.ts"
import type { Connector } from "../../src/wire/ByteTransport.ts"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"
import { TransportError } from "../../src/wire/TransportError.ts"
import * as Session from "../../src/yamux/Session.ts"
import type { Runtime } from "./Runtime.ts"
import type { Scenario } from "./Scenario.ts"

/** One connection: both ends, who made it, and the pair's half-open switch. */
export interface Link {
  readonly id: number
  readonly name: string
  readonly client: MemoryTransport.MemoryTransport
  readonly server: MemoryTransport.MemoryTransport
  readonly sever: () => void
  severed: boolean
}

/** Test-only switches that break the system on purpose, to prove the checks catch it. */
export interface Sabotage {
  /** The echo handler answers with the token of the call before. */
  readonly wrongToken?: boolean | undefined
  /** The cluster workload tells `RpcCluster` its writes are idempotent, so lost ones are retried. */
  readonly retryWrites?: boolean | undefined
}

export const field = (value: Value | undefined, name: string): Value | undefined =>
  value !== null && typeof value === "object" && !(value instanceof Uint8Array) && !Array.isArray(value)
    ? (value as Record<string, Value>)[name]
    : undefined

export class Network {
  readonly runtime: Runtime
  readonly scenario: Scenario
  readonly links: Array<Link> = []

  constructor(runtime: Runtime, scenario: Scenario) {
    this.runtime = runtime
    this.scenario = scenario
  }

  /** A new pair; each direction a lane of its own, chunks cut as the seed says. */
  link(name: string): Link {
    const { prng } = this.runtime
    const { everyByteChance, highWaterMark, splitChance } = this.scenario.link
    const split = splitChance === 0 ? undefined : (chunk: Uint8Array): ReadonlyArray<Uint8Array> => {
      if (chunk.length < 2 || !prng.chance(splitChance)) return [chunk]
      if (chunk.length <= 64 && prng.chance(everyByteChance)) {
        return Array.from({ length: chunk.length }, (_, i) => chunk.subarray(i, i + 1))
      }
      const at = prng.range(1, chunk.length - 1)
      return [chunk.subarray(0, at), chunk.subarray(at)]
    }
    // Both directions share one lane: MemoryTransport keeps each direction in order by itself.
    const pair = MemoryTransport.makePair({ schedule: this.runtime.lane(), highWaterMark, split })
    const link: Link = {
      id: this.links.length + 1,
      name,
      client: pair.client,
      server: pair.server,
      sever: () => {
        link.severed = true
        pair.sever()
      },
      severed: false
    }
    this.links.push(link)
    return link
  }

  /** Links whose two ends are both still up. */
  live(prefix: string): Array<Link> {
    return this.links.filter((l) => l.name.startsWith(prefix) && !l.client.destroyed && !l.server.destroyed)
  }
}

/** One simulated server address: up or down, dark or not, and its current instance. */
export class SimServer {
  readonly address: string
  readonly host: string
  readonly port: number
  up = false
  dark = false
  restarts = 0
  instance: { readonly server: RpcServer.Detached; readonly scope: Scope.Closeable } | undefined = undefined
  /** Every server session ever made, for the end-of-run checks. */
  readonly sessions: Array<Session.Session> = []
  /** Every instance ever started, for the end-of-run checks. */
  readonly instances: Array<RpcServer.Detached> = []
  private readonly network: Network
  private readonly handlers: Readonly<Record<string, RpcServer.Handler>>
  private readonly parent: Scope.Scope

  constructor(network: Network, port: number, handlers: Readonly<Record<string, RpcServer.Handler>>, parent: Scope.Scope) {
    this.network = network
    this.host = "127.0.0.1"
    this.port = port
    this.address = `127.0.0.1:${port}`
    this.handlers = handlers
    this.parent = parent
  }

  readonly start: Effect.Effect<void> = Effect.gen({ self: this }, function*() {
    if (this.up) return
    const { server: options } = this.network.scenario
    const scope = yield* Scope.fork(this.parent)
    const server = yield* Effect.orDie(RpcServer.make({
      host: this.host,
      port: this.port,
      handlers: this.handlers,
      maxStreamsPerSession: options.maxStreamsPerSession
    }))
    this.instance = { server, scope }
    this.instances.push(server)
    this.up = true
  })

  /** Stops the instance: every session closes, its clients read EOF; dials are refused until `start`. */
  readonly stop: Effect.Effect<void> = Effect.suspend(() => {
    const instance = this.instance
    if (!this.up || instance === undefined) return Effect.void
    this.up = false
    this.instance = undefined
    this.restarts++
    return Scope.close(instance.scope, { _tag: "Success", value: undefined } as Exit.Exit<void>)
  })

  /** Serves the server end of `link` in a fiber of `instance`'s Scope (closed already: the link is destroyed). */
  accept(link: Link, instance: NonNullable<SimServer["instance"]>): Effect.Effect<void> {
    const { server: options } = this.network.scenario
    const serve = Effect.gen({ self: this }, function*() {
      const session = yield* Session.make(link.server, {
        role: "server",
        address: link.name,
        acceptBacklog: options.acceptBacklog,
        enableKeepAlive: options.keepAlive,
        keepAliveInterval: options.keepAliveInterval,
        streamCloseTimeout: options.streamCloseTimeout,
        maxStreams: Math.min(options.maxStreamsPerSession, 8192)
      })
      this.sessions.push(session)
      yield* instance.server.serveSession(session, link.name)
    }).pipe(
      Effect.scoped,
      // Interrupted before it ran (the instance stopped): the client must not wait on a silent end.
      Effect.ensuring(Effect.sync(() => link.server.destroy()))
    )
    return Effect.asVoid(Effect.forkIn(serve, instance.scope))
  }
}

/** The Connector the RPC pool dials through: latency, refusals, dark hosts, and a link per connection. */
export const connector = (network: Network, servers: ReadonlyMap<string, SimServer>): Connector => (options) => {
  const address = `${options.host}:${options.port}`
  const { prng } = network.runtime
  const dial = Effect.gen(function*() {
    const latency = prng.pick([0, 0, 1, 5, 30])
    if (latency > 0) yield* Effect.sleep(latency)
    const server = servers.get(address)
    if (server === undefined || !server.up) {
      return yield* Effect.fail(new TransportError({ reason: "DialFailed", address, detail: "connection refused" }))
    }
    if (server.dark) return yield* Effect.never
    const link = network.link(`rpc ${address}`)
    network.runtime.event(`dial ${address} link ${link.id}`)
    yield* Effect.addFinalizer(() => Effect.sync(() => link.client.destroy()))
    const accept = server.accept(link, server.instance!)
    if (network.scenario.server.lateAccept) yield* Effect.forkDetach(accept)
    else yield* accept
    return link.client
  })
  return Effect.timeoutOrElse(dial, {
    duration: options.dialTimeout ?? "10 seconds",
    orElse: () => Effect.fail(new TransportError({ reason: "DialTimeout", address }))
  })
}
