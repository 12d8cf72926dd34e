import { assert, describe, it } from "@effect/vitest"
import { Clock, Duration, Effect } from "effect"
import { TestClock } from "effect/testing"
import type { TurnWaiter } from "../../src/pool/Turns.ts"
import { Turns } from "../../src/pool/Turns.ts"
import { settle } from "./utils.ts"

const waiter = (label: string, log: Array<string>): TurnWaiter => ({
  turnsNext: undefined,
  turnsPrev: undefined,
  turnsQueued: false,
  turnsDeadline: 0,
  turnsSince: 0,
  turnsLost: false,
  onTurn: () => log.push(`${label}:turn`),
  onTurnFree: () => log.push(`${label}:free`),
  onTurnTimeout: () => log.push(`${label}:timeout`),
  onTurnsClosed: () => log.push(`${label}:closed`)
})

/** Turns on a clock the test sets by hand. */
const makeTurns = (size: number, starvationMillis: number) => {
  const clock = { now: 0 }
  return { turns: new Turns(size, () => clock.now, starvationMillis), clock }
}

describe("Turns", () => {
  it("tryTake takes free turns without waiting and fails when none is free", () => {
    const { turns } = makeTurns(2, 1)
    assert.isTrue(turns.tryTake())
    assert.isTrue(turns.tryTake())
    assert.isFalse(turns.tryTake())
    turns.release()
    assert.strictEqual(turns.free, 1)
  })

  it("release frees the turn and wakes the head to compete: a newcomer may take it first (barging)", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(1, 1)
    turns.tryTake()
    const a = waiter("a", log)
    turns.enqueue(a, 0, Infinity)
    turns.release()
    assert.deepStrictEqual(log, ["a:free"])
    assert.strictEqual(turns.free, 1)
    assert.isTrue(turns.tryTake(), "the running fiber takes the freed turn")
    assert.isFalse(turns.retake(a), "the woken waiter lost it")
    assert.isTrue(a.turnsQueued, "and stays at the head")
    turns.release()
    assert.deepStrictEqual(log, ["a:free", "a:turn"], "having lost once, it is handed the next turn")
    assert.isFalse(a.turnsQueued)
    assert.strictEqual(turns.free, 0)
  })

  it("a woken waiter that takes its turn leaves the queue; with Infinity a loser is only woken again", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(1, Infinity)
    turns.tryTake()
    const a = waiter("a", log)
    turns.enqueue(a, 0, Infinity)
    turns.release()
    turns.tryTake()
    assert.isFalse(turns.retake(a))
    turns.release()
    assert.deepStrictEqual(log, ["a:free", "a:free"])
    assert.isTrue(turns.retake(a))
    assert.isFalse(a.turnsQueued)
    assert.strictEqual(turns.free, 0)
  })

  it("wakes one waiter at a time; a waiter that takes a turn wakes the next while turns are free", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(2, Infinity)
    turns.tryTake()
    turns.tryTake()
    const [a, b, c] = [waiter("a", log), waiter("b", log), waiter("c", log)]
    turns.enqueue(a, 0, Infinity)
    turns.enqueue(b, 0, Infinity)
    turns.enqueue(c, 0, Infinity)
    turns.release()
    turns.release()
    assert.deepStrictEqual(log, ["a:free"], "one woken, however many turns are free")
    assert.isTrue(turns.retake(a))
    assert.deepStrictEqual(log, ["a:free", "b:free"])
    assert.isTrue(turns.retake(b))
    assert.deepStrictEqual(log, ["a:free", "b:free"], "no turn left: c is not woken")
    assert.strictEqual(turns.waiters, 1)
  })

  it("once the head has waited the starvation threshold, a freed turn is handed to it and newcomers queue", () => {
    const log: Array<string> = []
    const { turns, clock } = makeTurns(1, 1)
    turns.tryTake()
    const [a, b] = [waiter("a", log), waiter("b", log)]
    turns.enqueue(a, 0, Infinity)
    turns.enqueue(b, 0, Infinity)
    clock.now = 1
    turns.release()
    assert.deepStrictEqual(log, ["a:turn"], "handed over, not freed")
    assert.strictEqual(turns.free, 0)
    assert.isTrue(turns.starving, "b waits on: hand-off mode")
    turns.release()
    assert.deepStrictEqual(log, ["a:turn", "b:turn"])
    assert.isFalse(turns.starving, "nobody left waiting")
    turns.release()
    assert.isTrue(turns.tryTake(), "back to normal mode")
  })

  it("in hand-off mode a newcomer cannot barge, and the mode ends with a waiter served within the threshold", () => {
    const log: Array<string> = []
    const { turns, clock } = makeTurns(1, 5)
    turns.tryTake()
    const [a, b, c] = [waiter("a", log), waiter("b", log), waiter("c", log)]
    turns.enqueue(a, 0, Infinity)
    turns.enqueue(b, 0, Infinity)
    clock.now = 10
    turns.release()
    assert.isTrue(turns.starving)
    turns.enqueue(c, 10, Infinity)
    turns.release()
    assert.deepStrictEqual(log, ["a:turn", "b:turn"])
    assert.isTrue(turns.starving, "b had waited 10 ms")
    clock.now = 12
    turns.release()
    assert.deepStrictEqual(log, ["a:turn", "b:turn", "c:turn"])
    assert.isFalse(turns.starving, "c had waited 2 ms, under the threshold")
  })

  it("threshold 0 hands every freed turn to the oldest waiter; Infinity never does", () => {
    const log: Array<string> = []
    const fifo = makeTurns(1, 0).turns
    fifo.tryTake()
    fifo.enqueue(waiter("a", log), 0, Infinity)
    fifo.release()
    assert.deepStrictEqual(log, ["a:turn"])
    assert.isFalse(fifo.tryTake(), "a newcomer cannot overtake the queue")
    const { turns: barging, clock } = makeTurns(1, Infinity)
    barging.tryTake()
    barging.enqueue(waiter("b", log), 0, Infinity)
    clock.now = 1e9
    barging.release()
    assert.deepStrictEqual(log, ["a:turn", "b:free"])
  })

  it("cancel removes a queued waiter, and only once; cancelling the woken head wakes the next", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(1, Infinity)
    turns.tryTake()
    const [a, b, c] = [waiter("a", log), waiter("b", log), waiter("c", log)]
    turns.enqueue(a, 0, Infinity)
    turns.enqueue(b, 0, Infinity)
    turns.enqueue(c, 0, Infinity)
    assert.isTrue(turns.cancel(b))
    assert.isFalse(turns.cancel(b))
    turns.release()
    assert.deepStrictEqual(log, ["a:free"])
    assert.isTrue(turns.cancel(a))
    assert.deepStrictEqual(log, ["a:free", "c:free"], "the free turn is not left unclaimed")
    assert.isTrue(turns.retake(c))
  })

  it("expire times out the waiters whose deadline has passed, oldest first", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(1, 1)
    turns.tryTake()
    turns.enqueue(waiter("a", log), 0, 100)
    turns.enqueue(waiter("b", log), 0, 200)
    turns.expire(150)
    assert.deepStrictEqual(log, ["a:timeout"])
    turns.expire(200)
    assert.deepStrictEqual(log, ["a:timeout", "b:timeout"])
    turns.release()
    assert.strictEqual(turns.free, 1)
  })

  it("drain tells every queued waiter the turns closed", () => {
    const log: Array<string> = []
    const { turns } = makeTurns(1, 1)
    turns.tryTake()
    turns.enqueue(waiter("a", log), 0, Infinity)
    turns.enqueue(waiter("b", log), 0, Infinity)
    turns.drain()
    assert.deepStrictEqual(log, ["a:closed", "b:closed"])
    assert.strictEqual(turns.waiters, 0)
  })

  it.effect("the timer parks for a deadline a float rounding error ahead of a frozen clock, and expires it one nanosecond later", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      let readings = 0
      const now = () => {
        readings++
        return Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000
      }
      const log: Array<string> = []
      const turns = new Turns(1, now, 1)
      turns.tryTake()
      // The clock at 2656.000001 ms; a wait that began at 1776.000001 ms with an 880 ms pool timeout has its
      // deadline at 2656.0000010000003 in floats: not due, and under half a nanosecond away. A sleep for the
      // rest rounded to zero, so the timer found it not due again and spun without end on the frozen clock.
      yield* TestClock.adjust(Duration.nanos(2_656_000_001n))
      turns.enqueue(waiter("a", log), now(), 1776.000001 + 880)
      yield* Effect.forkChild(turns.timer(clock))
      readings = 0
      yield* settle
      assert.isAtMost(readings, 2, "the timer parked instead of spinning")
      assert.deepStrictEqual(log, [])
      yield* TestClock.adjust(Duration.nanos(1n))
      assert.deepStrictEqual(log, ["a:timeout"])
    }))

  it.effect("the timer expires each waiter at its deadline with one fiber", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const now = () => Number(clock.monotonicTimeNanosUnsafe()) / 1_000_000
      const log: Array<string> = []
      const turns = new Turns(1, now, 1)
      turns.tryTake()
      yield* Effect.forkChild(turns.timer(clock))
      yield* settle
      turns.enqueue(waiter("a", log), now(), now() + 4000)
      yield* TestClock.adjust("1 second")
      turns.enqueue(waiter("b", log), now(), now() + 4000)
      yield* TestClock.adjust("2999 millis")
      assert.deepStrictEqual(log, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(log, ["a:timeout"])
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(log, ["a:timeout", "b:timeout"])
      turns.enqueue(waiter("c", log), now(), now() + 4000)
      yield* TestClock.adjust("4 seconds")
      assert.deepStrictEqual(log, ["a:timeout", "b:timeout", "c:timeout"])
    }))
})
