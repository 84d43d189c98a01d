import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "gen/**", "dist/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Two cores: e2e files start servers, agents and databases of their own.
    maxWorkers: 2,
    // Builds the migrated PGlite template once and probes the test PostgreSQL (test/support/databases.ts).
    globalSetup: ["test/support/global-setup.ts"],
    // CI reads the counts from vitest's JSON report (.ci/run sets the path).
    reporters: process.env.GURU_VITEST_JSON ? ["default", ["json", { outputFile: process.env.GURU_VITEST_JSON }]] : ["default"],
  },
});
