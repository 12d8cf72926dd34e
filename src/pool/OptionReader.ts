/**
 * Reading untrusted options: each read checks one option's type and range
 * and either returns its value (or the default when it is `undefined`) or
 * records an `InvalidOption` naming it and what it got. Nothing is clamped
 * into range and nothing throws: `NaN`, a negative or non-finite number where
 * it has no meaning, a string where a number belongs, an object that merely
 * looks like a duration, all become a typed configuration error.
 *
 * Why not `Duration.fromInput` alone: it reads `NaN`, `{}` and `[NaN, 0]` as a
 * zero duration, which would turn a typo into "never wait".
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Schedule } from "effect"
import * as Observability from "../observability/Observability.ts"
import { InvalidOption } from "./PoolError.ts"

const durationKeys: ReadonlySet<string> = new Set([
  "weeks",
  "days",
  "hours",
  "minutes",
  "seconds",
  "milliseconds",
  "microseconds",
  "nanoseconds"
])

const isNonNegative = (n: unknown): n is number => typeof n === "number" && !Number.isNaN(n) && n >= 0

/** A duration input with no NaN, no negative part and no unknown shape; `undefined` if it is not one. */
const toDuration = (value: unknown): Duration.Duration | undefined => {
  if (Duration.isDuration(value)) return Duration.isNegative(value) ? undefined : value
  if (typeof value === "number") return isNonNegative(value) ? Duration.millis(value) : undefined
  if (typeof value === "bigint") return value >= BigInt(0) ? Duration.nanos(value) : undefined
  if (Array.isArray(value)) {
    const [seconds, nanos] = value as Array<unknown>
    const ok = value.length === 2 && isNonNegative(seconds) && Number.isFinite(seconds) &&
      isNonNegative(nanos) && Number.isFinite(nanos)
    return ok ? Duration.fromInputUnsafe([seconds, nanos]) : undefined
  }
  if (typeof value === "string") {
    const parsed = Duration.fromInput(value as Duration.Input)
    return Option.isSome(parsed) && !Duration.isNegative(parsed.value) ? parsed.value : undefined
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
    const ok = entries.length > 0 && entries.every(([key, n]) => durationKeys.has(key) && isNonNegative(n))
    return ok ? Duration.fromInputUnsafe(value as Duration.DurationObject) : undefined
  }
  return undefined
}

/** How a rejected value is shown in the error: short, and never a throw. */
const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)
  if (typeof value === "bigint") return `${value}n`
  if (typeof value === "function") return "a function"
  if (Array.isArray(value)) return `an array of ${value.length}`
  if (typeof value === "object" && value !== null) return "an object"
  return String(value)
}

/**
 * @category models
 * @since 0.1.0
 */
export class OptionReader {
  /** The first invalid option met; later reads return their fallback. */
  error: InvalidOption | undefined = undefined
  readonly pool: string
  private readonly options: Readonly<Record<string, unknown>>

  constructor(pool: string, options: Readonly<Record<string, unknown>>) {
    this.pool = pool
    this.options = options
  }

  private reject<T>(option: string, expected: string, fallback: T): T {
    this.error ??= new InvalidOption({
      pool: this.pool,
      option,
      detail: `expected ${expected}, got ${show(this.options[option])}`
    })
    return fallback
  }

  /** An integer >= `min`, or `Infinity` where `infinite` allows it. */
  count(option: string, fallback: number, min: number, infinite: boolean): number {
    const n = this.options[option]
    if (n === undefined) return fallback
    const ok = typeof n === "number" && (Number.isInteger(n) ? n >= min : infinite && n === Infinity)
    return ok ? n : this.reject(option, `an integer >= ${min}${infinite ? " or Infinity" : ""}`, fallback)
  }

  /** A duration >= 0 (`Infinity` allowed), or > 0 with `positive`. */
  duration(option: string, fallback: Duration.Duration, positive = false): Duration.Duration {
    const value = this.options[option]
    if (value === undefined) return fallback
    const d = toDuration(value)
    if (d === undefined || (positive && Duration.isZero(d))) {
      return this.reject(option, `a duration ${positive ? "> 0" : ">= 0"}`, fallback)
    }
    return d
  }

  flag(option: string, fallback: boolean): boolean {
    const value = this.options[option]
    if (value === undefined) return fallback
    return typeof value === "boolean" ? value : this.reject(option, "a boolean", fallback)
  }

  text(option: string, fallback: string): string {
    const value = this.options[option]
    if (value === undefined) return fallback
    return typeof value === "string" ? value : this.reject(option, "a string", fallback)
  }

  /** An optional function, returned as the caller's type. */
  fn<F>(option: string): F | undefined {
    const value = this.options[option]
    if (value === undefined || typeof value === "function") return value as F | undefined
    return this.reject(option, "a function", undefined)
  }

  schedule<S>(option: string, fallback: S): S {
    const value = this.options[option]
    if (value === undefined) return fallback
    return Schedule.isSchedule(value) ? value as S : this.reject(option, "a Schedule", fallback)
  }

  /** The `observability` option, checked as every layer checks it. */
  observability(option: string): Observability.Config {
    const checked = Observability.normalize(this.options[option] as Observability.Options | undefined)
    if (!Observability.isProblem(checked)) return checked
    this.error ??= new InvalidOption({ pool: this.pool, option: checked.option, detail: checked.detail })
    return Observability.normalize(undefined) as Observability.Config
  }

  /** A required Effect. */
  effect<T>(option: string): T | undefined {
    const value = this.options[option]
    return Effect.isEffect(value) ? value as T : this.reject(option, "an Effect", undefined)
  }
}

/**
 * Reads `options` with `read`, turning options that are not an object, or
 * that throw when read (a getter, a Proxy), into `InvalidOption` too.
 *
 * @category constructors
 * @since 0.1.0
 */
export const readOptions = <T>(
  options: unknown,
  defaultName: string,
  read: (reader: OptionReader) => T
): T | InvalidOption => {
  if (typeof options !== "object" || options === null) {
    return new InvalidOption({ pool: defaultName, option: "options", detail: `expected an object, got ${show(options)}` })
  }
  let pool = defaultName
  try {
    // The pool's name goes into every error, so it is read first.
    const name = (options as { readonly name?: unknown }).name
    if (typeof name === "string") pool = name
    const reader = new OptionReader(pool, options as Readonly<Record<string, unknown>>)
    const value = read(reader)
    return reader.error ?? value
  } catch (cause) {
    const detail = `reading them threw: ${cause instanceof Error ? cause.message : show(cause)}`
    return new InvalidOption({ pool, option: "options", detail })
  }
}
