/**
 * The in-memory ByteTransport pair, driven by hand: every delivery is a task the test runs, so
 * each assertion sees exactly what has and has not crossed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as MemoryTransport from "../../src/wire/MemoryTransport.ts"

/** A pair whose tasks wait in `tasks` until `run` runs them (and whatever they schedule). */
const manual = (options: MemoryTransport.PairOptions = {}) => {
  const tasks: Array<() => void> = []
  const pair = MemoryTransport.makePair({ ...options, schedule: (task) => tasks.push(task) })
  const run = () => {
    for (let task = tasks.shift(); task !== undefined; task = tasks.shift()) task()
  }
  return { ...pair, tasks, run }
}

/** Everything an end hears, in order. */
const record = (end: MemoryTransport.MemoryTransport) => {
  const events: Array<string> = []
  end.on("data", (chunk) => events.push(`data:${Buffer.from(chunk).toString()}`))
  end.on("drain", () => events.push("drain"))
  end.on("end", () => events.push("end"))
  end.on("error", (error) => events.push(`error:${error.message}`))
  end.on("close", () => events.push("close"))
  return events
}

const bytes = (text: string) => Buffer.from(text)

describe("MemoryTransport", () => {
  it("delivers writes in order, only when the scheduler runs, and counts them queued until then", () => {
    const { client, run, server, tasks } = manual()
    const heard = record(server)
    client.write(bytes("ab"))
    client.write(bytes("cd"))
    assert.deepStrictEqual(heard, [])
    assert.strictEqual(client.writableLength, 4)
    assert.strictEqual(tasks.length, 1, "one delivery task for the batch")
    run()
    assert.deepStrictEqual(heard, ["data:ab", "data:cd"])
    assert.strictEqual(client.writableLength, 0)
    assert.strictEqual(server.bytesRead, 4)
  })

  it("holds corked writes until uncork", () => {
    const { client, run, server } = manual()
    const heard = record(server)
    client.cork()
    client.write(bytes("a"))
    client.write(bytes("b"))
    run()
    assert.deepStrictEqual(heard, [])
    client.uncork()
    run()
    assert.deepStrictEqual(heard, ["data:a", "data:b"])
  })

  it("copies what it is given: the writer may reuse its buffer", () => {
    const { client, run, server } = manual()
    const heard = record(server)
    const buffer = bytes("xy")
    client.write(buffer)
    buffer.fill(0x7a)
    run()
    assert.deepStrictEqual(heard, ["data:xy"])
  })

  it("cuts deliveries where split says", () => {
    const { client, run, server } = manual({ split: (chunk) => [chunk.subarray(0, 1), chunk.subarray(1)] })
    const heard = record(server)
    client.write(bytes("abc"))
    run()
    assert.deepStrictEqual(heard, ["data:a", "data:bc"])
  })

  it("a reader that pauses keeps the bytes queued at the writer, whose write returns false past the high-water mark; resume delivers them and drains", () => {
    const { client, run, server } = manual({ highWaterMark: 4 })
    const heard = record(server)
    const writer = record(client)
    server.pause()
    assert.isTrue(client.write(bytes("ab")))
    assert.isFalse(client.write(bytes("cd")))
    run()
    assert.deepStrictEqual(heard, [])
    assert.strictEqual(client.writableLength, 4)
    server.resume()
    run()
    assert.deepStrictEqual(heard, ["data:ab", "data:cd"])
    assert.deepStrictEqual(writer, ["drain"])
    assert.strictEqual(client.writableLength, 0)
  })

  it("holds bytes for an end with no data listener yet, as a socket holds them until read, and delivers them to the first", () => {
    const { client, run, server } = manual()
    client.write(bytes("syn"))
    run()
    assert.strictEqual(client.writableLength, 3, "nobody read them")
    const heard = record(server)
    run()
    assert.deepStrictEqual(heard, ["data:syn"])
    assert.strictEqual(client.writableLength, 0)
  })

  it("end: the peer reads what was written, then EOF", () => {
    const { client, run, server } = manual()
    const heard = record(server)
    client.write(bytes("last"))
    client.end()
    assert.isFalse(client.write(bytes("after")), "no write after end")
    run()
    assert.deepStrictEqual(heard, ["data:last", "end"])
    assert.isTrue(server.readableEnded)
  })

  it("destroy: queued bytes are dropped, this end closes, the peer reads EOF and closes", () => {
    const { client, run, server } = manual()
    const heard = record(server)
    const local = record(client)
    client.write(bytes("lost"))
    client.destroy()
    client.destroy()
    run()
    assert.deepStrictEqual(local, ["close"])
    assert.deepStrictEqual(heard, ["end", "close"])
    assert.isTrue(client.destroyed)
    assert.isTrue(server.destroyed)
  })

  it("reset: the peer gets ECONNRESET, then close", () => {
    const { client, run, server } = manual()
    const heard = record(server)
    client.reset()
    run()
    assert.deepStrictEqual(heard, ["error:read ECONNRESET", "close"])
  })

  it("sever: bytes and closes vanish both ways and neither end hears a thing", () => {
    const { client, run, server, sever } = manual()
    const heard = record(server)
    const local = record(client)
    sever()
    client.write(bytes("into the void"))
    server.write(bytes("nor back"))
    run()
    client.destroy()
    run()
    assert.deepStrictEqual(heard, [])
    assert.deepStrictEqual(local, ["close"])
    assert.isFalse(server.destroyed)
    assert.strictEqual(client.writableLength, 0)
  })

  it("delivers on a microtask by default", async () => {
    const { client, server } = MemoryTransport.makePair()
    const heard = record(server)
    client.write(bytes("soon"))
    assert.deepStrictEqual(heard, [])
    await Promise.resolve()
    assert.deepStrictEqual(heard, ["data:soon"])
  })
})
