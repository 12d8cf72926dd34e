import { assert, describe, it } from "@effect/vitest"
import { Budget } from "../../src/server/Budget.ts"

describe("Budget", () => {
  it("takes bytes up to its limit and refuses, changing nothing, past it", () => {
    const budget = new Budget(100)
    assert.isTrue(budget.take(60))
    assert.isTrue(budget.take(40))
    assert.isFalse(budget.take(1))
    assert.strictEqual(budget.held, 100)
    budget.give(30)
    assert.isTrue(budget.take(30))
    assert.strictEqual(budget.held, 100)
  })

  it("counts a session's bytes against the server's too, and refuses when either would pass", () => {
    const server = new Budget(150)
    const one = new Budget(100, server)
    const two = new Budget(100, server)
    assert.isTrue(one.take(100))
    assert.isFalse(one.take(1), "the session's own limit")
    assert.isTrue(two.take(50))
    assert.isFalse(two.take(1), "the server's limit, though the session has room")
    assert.deepStrictEqual([one.held, two.held, server.held], [100, 50, 150])
    one.give(100)
    assert.isTrue(two.take(50))
    assert.deepStrictEqual([one.held, two.held, server.held], [0, 100, 100])
  })
})
