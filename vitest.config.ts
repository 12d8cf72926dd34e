import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Interop and integration suites start real servers (Go peer, redis-server) on loopback.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks",
    // One worker per core, at least two: most suites wait on child processes and sockets rather
    // than compute, and vitest's default (cores - 1) ran the suite on one worker on a 2-core
    // machine (271 s; 144 s with two).
    maxWorkers: Math.max(2, availableParallelism())
  }
})
