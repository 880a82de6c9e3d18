import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests share one Redis (each with its own prefix) and spawn worker processes;
    // two cores, so keep the fan-out modest.
    maxWorkers: 2,
  },
});
