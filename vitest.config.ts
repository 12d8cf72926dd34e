import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Interop and integration suites start real servers (Go peer, redis-server) on loopback.
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: "forks"
  }
})
