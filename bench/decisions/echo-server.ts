/**
 * A trivial node:net echo server for bench/decisions/transport.ts, run as a child process so
 * client and server each get a core. Prints the bound port on the first stdout line and exits
 * when stdin closes (so a crashed parent leaves nothing behind).
 *
 *   npx node bench/decisions/echo-server.ts
 */
import * as net from "node:net"

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on("error", () => socket.destroy())
  socket.pipe(socket)
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address() as net.AddressInfo
  process.stdout.write(`${address.port}\n`)
})
process.stdin.on("data", () => {})
process.stdin.on("end", () => process.exit(0))
process.stdin.resume()
