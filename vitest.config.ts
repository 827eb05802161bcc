import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    // Native kernels use every core; running test files in parallel would only make them fight.
    fileParallelism: false,
    reporters: ["default"],
  },
});
