/**
 * One Redis connection over `node:net`, for `ConnPool`: `dial` opens it in
 * the current `Scope` (closing the scope destroys the socket) and `closed`
 * is the close signal the pool watches.
 *
 * One command at a time is enough here, since the pool lends a connection
 * to one caller at a time; replies are still matched to requests in order.
 */
import * as net from "node:net"
import { Data, Deferred, Effect, Exit } from "effect"
import type { Scope } from "effect"
import type { RespValue } from "./resp.ts"
import { encodeCommand, RespDecoder } from "./resp.ts"

/** The connection failed or closed. A Redis error reply is not one: it is a `RespValue`. */
export class RedisConnError extends Data.TaggedError("RedisConnError")<{
  readonly address: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `${this.address}: ${this.detail}`
  }
}

export interface RedisConn {
  readonly address: string
  /** Sends one command and waits for its reply (error replies included). */
  readonly command: (...args: ReadonlyArray<string>) => Effect.Effect<RespValue, RedisConnError>
  /** Completes when the socket closes, whoever closed it. */
  readonly closed: Effect.Effect<void>
}

const open = (socket: net.Socket, address: string): RedisConn => {
  const decoder = new RespDecoder()
  const pending: Array<(reply: Effect.Effect<RespValue, RedisConnError>) => void> = []
  const closed = Deferred.makeUnsafe<void>()
  let failure: RedisConnError | undefined

  socket.on("data", (chunk: Buffer) => {
    let replies: Array<RespValue>
    try {
      replies = decoder.push(chunk)
    } catch (cause) {
      socket.destroy(cause as Error)
      return
    }
    for (const reply of replies) pending.shift()?.(Effect.succeed(reply))
  })
  socket.on("error", (cause) => {
    failure ??= new RedisConnError({ address, detail: cause.message, cause })
  })
  socket.on("close", () => {
    failure ??= new RedisConnError({ address, detail: "connection closed" })
    const error = Effect.fail(failure)
    for (const resume of pending.splice(0)) resume(error)
    Deferred.doneUnsafe(closed, Exit.void)
  })

  return {
    address,
    command: (...args) =>
      Effect.callback<RespValue, RedisConnError>((resume) => {
        if (failure !== undefined) return resume(Effect.fail(failure))
        pending.push(resume)
        socket.write(encodeCommand(args))
      }),
    closed: Deferred.await(closed)
  }
}

/** Opens a connection in the current scope; closing the scope, or interrupting the connect, destroys the socket. */
export const dial = (options: { readonly host: string; readonly port: number }): Effect.Effect<
  RedisConn,
  RedisConnError,
  Scope.Scope
> => {
  const address = `${options.host}:${options.port}`
  const connect = Effect.callback<{ readonly socket: net.Socket; readonly conn: RedisConn }, RedisConnError>(
    (resume) => {
      const socket = net.createConnection({ host: options.host, port: options.port, noDelay: true })
      const onError = (cause: Error) =>
        resume(Effect.fail(new RedisConnError({ address, detail: cause.message, cause })))
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed({ socket, conn: open(socket, address) }))
      })
      return Effect.sync(() => socket.destroy())
    }
  )
  // Interruptible, so a pool that gives up on the connect (dialTimeout, its
  // caller gone, the pool closing) ends it at once: `connect`'s cleanup
  // destroys the socket. With acquireRelease's default uninterruptible
  // acquire, a connect to a host that drops SYNs would linger in SYN_SENT for
  // the kernel's two minutes of retries.
  return Effect.map(
    Effect.acquireRelease(connect, ({ socket }) => Effect.sync(() => socket.destroy()), { interruptible: true }),
    ({ conn }) => conn
  )
}
