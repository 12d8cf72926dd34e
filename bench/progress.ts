/**
 * The progress bar of `npm run bench`, on stderr so stdout stays free. The unit is one
 * contender run. On a terminal one line is redrawn in place, in the style of src/cli/progress.ts;
 * in a pipe or a CI log each finished run prints one plain line instead, never a carriage return.
 */

export interface Progress {
  /** A run is starting: shows what is running now. */
  readonly start: (label: string) => void
  /** The run just started has finished; `note` is its headline number or its error. */
  readonly done: (note: string) => void
  /** Drops `n` planned runs that will not happen (a server did not start), without a line each. */
  readonly skip: (n: number) => void
  /** Says something between runs (a skipped scenario, a server starting). */
  readonly say: (text: string) => void
  /** Ends the bar. */
  readonly finish: () => void
}

const BarWidth = 30

const clock = (ms: number): string => {
  const s = Math.max(0, Math.round(ms / 1000))
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`
}

/** `total` runs, each expected to take about `estimateMs(i)`, for the time-left estimate. */
export const make = (total: number, estimateMs: (index: number) => number): Progress => {
  const tty = process.stderr.isTTY === true
  const write = (text: string) => void process.stderr.write(text)
  const started = performance.now()
  let finished = 0
  let label = ""
  let timer: ReturnType<typeof setInterval> | undefined

  const left = (): number => {
    // Scale the estimate of the runs still to come by how the finished ones compared with theirs.
    let estimatedDone = 0
    for (let i = 0; i < finished; i++) estimatedDone += estimateMs(i)
    let estimatedLeft = 0
    for (let i = finished; i < total; i++) estimatedLeft += estimateMs(i)
    const elapsed = performance.now() - started
    return estimatedDone > 0 ? estimatedLeft * (elapsed / estimatedDone) : estimatedLeft
  }

  const draw = () => {
    const fraction = total === 0 ? 1 : finished / total
    const filled = Math.round(fraction * BarWidth)
    const bar = `[${"#".repeat(filled)}${"-".repeat(BarWidth - filled)}]`
    const width = process.stderr.columns ?? 100
    const line = `bench ${bar} ${finished}/${total}  ${clock(performance.now() - started)} elapsed, ~${clock(left())} left  ${label}`
    write(`\r\x1b[2K${line.slice(0, width - 1)}`)
  }

  if (tty) timer = setInterval(draw, 250)
  timer?.unref()

  return {
    start: (text) => {
      label = text
      if (tty) draw()
    },
    done: (note) => {
      finished++
      if (tty) draw()
      else write(`bench ${finished}/${total} ${label}: ${note}\n`)
    },
    skip: (n) => {
      finished += n
      if (tty) draw()
    },
    say: (text) => {
      write(tty ? `\r\x1b[2K${text}\n` : `${text}\n`)
      if (tty) draw()
    },
    finish: () => {
      if (timer !== undefined) clearInterval(timer)
      if (tty) {
        draw()
        write("\n")
      }
    }
  }
}
