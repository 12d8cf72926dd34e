/**
 * Socket reads without an allocation per read: a plaintext `net.Socket` made
 * with the `onread` option reads into one buffer, reused for every read of
 * every such socket, and each read is emitted as `data` with a view of that
 * buffer, lent for the listeners' call (`ByteTransport`'s contract).
 *
 * **Why**: without `onread`, Node allocates a fresh `ArrayBuffer` for every
 * read; at megabyte payloads that is a megabyte of external memory per call,
 * which drives V8's full collections (docs/decisions.md, "Reads into one
 * reused buffer"). The session copies what must outlive the call exactly
 * once: into a large value's final buffer, or a small carry.
 *
 * **Why one buffer for the process**: JavaScript runs on one thread and Node
 * hands each read to its callback synchronously, before the next read starts,
 * so one buffer serves every socket; one per socket would hold 64 KiB per idle
 * connection. TLS sockets keep Node's own reads (`tls` ignores `onread` over an
 * existing socket).
 *
 * **Nothing is lost to a late reader**: a read that arrives while nobody takes
 * `data` in flowing mode (before the session listens, during the preamble's
 * `read(1)`, while paused) is copied into the socket's readable buffer, in
 * order, and the socket stops reading until that is drained, as a socket
 * without `onread` would hold it.
 *
 * @since 0.1.0
 */
import * as net from "node:net"

/** Bytes per read: 64 KiB, Node's own read size. */
export const ReadBufferBytes = 64 * 1024

// A plain Uint8Array, so that views of it are too: a Buffer's `slice` would be another view, not a copy.
const shared = new Uint8Array(ReadBufferBytes)

function lend(this: net.Socket, n: number, buffer: Uint8Array): boolean {
  const view = buffer.subarray(0, n)
  if (this.readableFlowing === true && this.readableLength === 0) {
    this.emit("data", view)
    return true
  }
  // Nobody takes it now: keep a copy behind what is held, and read again once that is drained.
  this.push(Buffer.from(view))
  return false
}

/** The `onread` option: every read lands in the shared buffer and is lent to the `data` listeners. */
const onread: net.OnReadOpts = { buffer: shared, callback: lend as net.OnReadOpts["callback"] }

/** `net.createConnection` with lent reads. */
export const connect = (options: net.TcpNetConnectOpts): net.Socket => net.createConnection({ ...options, onread })

/**
 * Moves an accepted socket's handle to a socket with lent reads. `accepted`
 * must not have read yet (a server with `pauseOnConnect`); it is left without
 * a handle, so destroying it closes nothing. The new socket reads once it is
 * read from (`read`, a `readable` or `data` listener). Returns `accepted`
 * itself when its handle cannot be taken.
 */
export const adopt = (accepted: net.Socket): net.Socket => {
  const holder = accepted as unknown as { _handle?: object | null }
  const handle = holder._handle
  if (handle === undefined || handle === null) return accepted
  // Node's net.Socket takes an existing handle (as its server does for every accepted
  // connection); only then can `onread` apply. The old socket must forget the handle first.
  holder._handle = null
  accepted.destroy()
  return new net.Socket(
    { handle, onread, readable: true, writable: true, manualStart: true } as net.SocketConstructorOpts
  )
}
