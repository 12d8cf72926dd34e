/**
 * Progress for long commands, on stderr only so stdout stays parseable.
 *
 * On a terminal: one bar redrawn in place at most every
 * `TtyRefreshInterval`. Otherwise (a pipe, a CI log): a plain line every
 * `PlainRefreshInterval`, never a carriage return.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import type { Scope } from "effect"

/** Redraw interval of the bar on a terminal: 100 ms. */
export const TtyRefreshInterval = Duration.millis(100)

/** Interval of the plain progress lines when stderr is not a terminal: 2 s. */
export const PlainRefreshInterval = Duration.seconds(2)

export interface ProgressOptions {
  /** Shown first on every line, e.g. `bench`. */
  readonly label: string
  /** Number of calls, when the run is bounded by a count. */
  readonly total?: number | undefined
  /** Length of the run, when it is bounded by time. */
  readonly duration?: Duration.Duration | undefined
  /** Default: whether stderr is a terminal. */
  readonly tty?: boolean | undefined
  /** Default: where the lines go, process.stderr. */
  readonly write?: ((text: string) => void) | undefined
}

export interface Progress {
  /** Counts one finished call. Cheap: only bumps counters, rendering is periodic. */
  readonly record: (ok: boolean) => void
}

/**
 * Starts drawing until the Scope closes; the last state is drawn once more
 * then, so the bar ends at its final count.
 */
export const make = (options: ProgressOptions): Effect.Effect<Progress, never, Scope.Scope> =>
  Effect.gen(function*() {
    const tty = options.tty ?? process.stderr.isTTY === true
    const write = options.write ?? ((text: string) => void process.stderr.write(text))
    const started = yield* Clock.currentTimeMillis
    const counts = { done: 0, failed: 0 }
    let drawn = false

    const render = (final: boolean) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const elapsed = Math.max(now - started, 1) / 1000
        const fraction = options.total !== undefined
          ? options.total === 0 ? 1 : counts.done / options.total
          : options.duration !== undefined
          ? Math.min(elapsed * 1000 / Math.max(Duration.toMillis(options.duration), 1), 1)
          : undefined
        const rate = Math.round(counts.done / elapsed)
        const count = options.total === undefined ? `${counts.done} calls` : `${counts.done}/${options.total} calls`
        const failed = counts.failed === 0 ? "" : `, ${counts.failed} failed`
        if (tty) {
          const bar = fraction === undefined ? "" : `${drawBar(fraction, barWidth())} ${percent(fraction)} `
          write(`\r\x1b[2K${options.label} ${bar}${count}  ${rate}/s  ${elapsed.toFixed(1)}s${failed}${final ? "\n" : ""}`)
        } else if (!final || drawn) {
          // A final plain line only when earlier lines were printed: short
          // runs in scripts stay silent on stderr.
          const pct = fraction === undefined ? "" : ` (${percent(fraction)})`
          write(`${options.label}: ${count}${pct}, ${rate} calls/s, ${elapsed.toFixed(1)}s${failed}\n`)
        }
        drawn = true
      })

    const interval = tty ? TtyRefreshInterval : PlainRefreshInterval
    // Finalizers run in reverse: the drawing fiber is interrupted before the
    // last frame, so nothing is drawn after it.
    yield* Effect.addFinalizer(() => Effect.suspend(() => tty || drawn ? render(true) : Effect.void))
    yield* Effect.forkScoped(
      Effect.andThen(Effect.sleep(interval), Effect.repeat(render(false), Schedule.spaced(interval)))
    )

    return {
      record: (ok: boolean) => {
        counts.done++
        if (!ok) counts.failed++
      }
    }
  })

const barWidth = (): number => Math.max(10, Math.min(40, (process.stderr.columns ?? 80) - 60))

const drawBar = (fraction: number, width: number): string => {
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`
}

const percent = (fraction: number): string => `${Math.floor(Math.min(Math.max(fraction, 0), 1) * 100)}%`
