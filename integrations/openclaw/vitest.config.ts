// The plugins' tests run against a real blitz daemon: pytest (tests/openclaw/test_fleet.py)
// starts `blitz serve` and runs vitest with BLITZ_URL and BLITZ_TOKEN in the environment.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["*/test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false, // one daemon, two cores: one file at a time
  },
});
