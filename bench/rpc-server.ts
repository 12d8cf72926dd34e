/**
 * Our server for `npm run bench` (b): the test service (`Test.Echo` and friends) on RpcServer,
 * in its own process so it gets a core of its own, as the Go server does.
 *
 *   node bench/rpc-server.ts [--protocol consul|nomad] [--observability off|metrics|tracing|all]
 *
 * Listens on 127.0.0.1:0 and prints the bound `host:port` as the first stdout line. Exits when
 * stdin reaches EOF, so a bench that dies leaves no server behind.
 */
import { Cause, Effect, Exit } from "effect"
import { Protocol, TestService } from "../src/index.ts"
import { die, flags, messageOf, observabilityFlag } from "./cli.ts"

const f = flags(["protocol", "observability"])
const observability = observabilityFlag(f.observability)
const protocolName = f.protocol ?? "consul"
if (protocolName !== "consul" && protocolName !== "nomad") die(`--protocol: consul or nomad, got ${protocolName}`)

process.stdin.on("end", () => process.exit(0))
process.stdin.resume()

const exit = await Effect.runPromiseExit(Effect.scoped(Effect.gen(function*() {
  const server = yield* TestService.serve({
    host: "127.0.0.1",
    port: 0,
    protocol: Protocol.byName[protocolName as "consul" | "nomad"],
    observability
  })
  process.stdout.write(`${server.address}\n`)
  return yield* Effect.never
})))
if (Exit.isFailure(exit)) die(`rpc-server: ${messageOf(Cause.squash(exit.cause))}`, 1)
