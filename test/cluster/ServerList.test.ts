import { assert, describe, it } from "@effect/vitest"
import { ServerList } from "../../src/cluster/ServerList.ts"

describe("ServerList", () => {
  it("calls go to the head of the list", () => {
    const list = new ServerList(["a:1", "b:1", "c:1"])
    assert.strictEqual(list.current(), "a:1")
    assert.strictEqual(new ServerList([]).current(), undefined)
  })

  it("starts in the given order but keeps the seeds as configured", () => {
    const list = new ServerList(["a:1", "b:1"], ["b:1", "a:1"])
    assert.deepStrictEqual(list.snapshot(), ["b:1", "a:1"])
    assert.deepStrictEqual(list.seeds, ["a:1", "b:1"])
  })

  it("notifyFailed rotates the head to the back", () => {
    const list = new ServerList(["a:1", "b:1", "c:1"])
    assert.isTrue(list.notifyFailed("a:1"))
    assert.deepStrictEqual(list.snapshot(), ["b:1", "c:1", "a:1"])
  })

  it("notifyFailed leaves the list alone when the server is no longer the head", () => {
    const list = new ServerList(["a:1", "b:1", "c:1"])
    list.notifyFailed("a:1")
    // 64 callers failing on a:1 together rotate it once, not 64 times.
    assert.isFalse(list.notifyFailed("a:1"))
    assert.isFalse(list.notifyFailed("c:1"))
    assert.deepStrictEqual(list.snapshot(), ["b:1", "c:1", "a:1"])
  })

  it("notifyFailed does nothing with a single server", () => {
    const list = new ServerList(["a:1"])
    assert.isFalse(list.notifyFailed("a:1"))
    assert.deepStrictEqual(list.snapshot(), ["a:1"])
  })

  it("add appends an unknown server and clears offline; a known one is left where it is", () => {
    const list = new ServerList(["a:1", "b:1"])
    list.offline = true
    assert.isTrue(list.add("c:1"))
    assert.isFalse(list.offline)
    assert.isFalse(list.add("a:1"))
    assert.deepStrictEqual(list.snapshot(), ["a:1", "b:1", "c:1"])
  })

  it("remove never empties the list", () => {
    const list = new ServerList(["a:1", "b:1"])
    assert.isTrue(list.remove("a:1"))
    assert.isFalse(list.remove("b:1"))
    assert.isFalse(list.remove("x:1"))
    assert.deepStrictEqual(list.snapshot(), ["b:1"])
  })

  it("reconcile adopts a rebalanced order, dropping servers removed meanwhile and appending ones added", () => {
    const list = new ServerList(["a:1", "b:1", "c:1"])
    const order = ["c:1", "a:1", "b:1"]
    list.remove("b:1")
    list.add("d:1")
    assert.isTrue(list.reconcile(order))
    assert.deepStrictEqual(list.snapshot(), ["c:1", "a:1", "d:1"])
  })

  it("reconcile freezes in place when the chosen head was removed meanwhile", () => {
    const list = new ServerList(["a:1", "b:1", "c:1"])
    list.remove("c:1")
    assert.isFalse(list.reconcile(["c:1", "a:1", "b:1"]))
    assert.deepStrictEqual(list.snapshot(), ["a:1", "b:1"])
  })

  it("markOffline keeps the order and puts back the seeds discovery dropped", () => {
    const list = new ServerList(["a:1", "b:1"])
    list.add("c:1")
    list.remove("a:1")
    list.remove("b:1")
    assert.deepStrictEqual(list.markOffline(), ["a:1", "b:1"])
    assert.isTrue(list.offline)
    assert.deepStrictEqual(list.snapshot(), ["c:1", "a:1", "b:1"])
    assert.isTrue(list.reconcile(list.snapshot()))
    assert.isFalse(list.offline)
  })
})
