/**
 * `connpool`: serve, call, ping and bench Consul-style yamux/msgpack-rpc
 * servers, follow Nomad streaming RPCs, or run the self-contained demo. Loaded by `main.ts` once the
 * CLI's peer dependencies are known to be there.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
// Module paths, not the package barrel: the barrel also loads the HTTP stack
// (undici), which added about 0.7 s to every CLI start.
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Console, Context, Effect } from "effect"
import { CliConfig, CliOutput, Command, GlobalFlag, TerminalCapabilities } from "effect/cli"
import { bench } from "./bench.ts"
import { call } from "./call.ts"
import { demo } from "./demo.ts"
import { report, teardown, watchSignals } from "./exit.ts"
import { ping } from "./ping.ts"
import { serve } from "./serve.ts"
import { stream } from "./stream.ts"

// Same relative path from src/cli/ and dist/cli/.
const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

export const connpool = Command.make("connpool").pipe(
  Command.withDescription(
    "Serve, call, ping and benchmark Consul-style yamux/msgpack-rpc servers, and follow Nomad streaming RPCs"
  ),
  Command.withSubcommands([serve, call, ping, bench, stream, demo])
)

/**
 * Help goes to stdout only when asked for; a usage error is one line on
 * stderr (plus a pointer to `--help`), so stdout stays empty for scripts.
 */
const presenter: CliOutput.Presenter = {
  present: (event) =>
    Effect.gen(function*() {
      const context = yield* Effect.context()
      const formatter = Context.getOrUndefined(context, CliOutput.Formatter) ??
        CliOutput.defaultFormatter({ colors: Context.get(context, TerminalCapabilities.TerminalCapabilities).canColor })
      switch (event._tag) {
        case "Help":
          return yield* event.reason === "Requested"
            ? Console.log(formatter.formatHelpDoc(event.helpDoc))
            : Console.error(formatter.formatHelpDoc(event.helpDoc))
        case "InvalidInvocation": {
          const command = event.commandPath.join(" ")
          const first = event.errors[0]
          const what = first === undefined ? "invalid invocation" : first.message.replace(/\s*[\r\n]+\s*/g, " ")
          return yield* Console.error(`${command}: ${what} (see '${command} --help')`)
        }
        case "Version":
          return yield* Console.log(formatter.formatVersion(event.name, event.version))
      }
    })
}

// No --wizard (interactive prompts) or --log-level (the CLI does not log).
const cliConfig = CliConfig.make({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions] })

const program = Command.run(connpool, { version }).pipe(
  Effect.provideService(CliOutput.Presenter, presenter),
  Effect.provideService(CliConfig.CliConfig, cliConfig),
  report,
  Effect.provide(NodeServices.layer)
)

watchSignals()
NodeRuntime.runMain(program, { disableErrorReporting: true, teardown })
