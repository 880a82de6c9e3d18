import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration tests share one Redis (each with its own prefix) and spawn worker processes;
    // two cores, so keep the fan-out modest.
    maxWorkers: 2,
    projects: [
      // No network: runs without Redis (`npm run test:unit`).
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Finds Redis for the run and audits every captured log when it ends.
          globalSetup: ['test/helpers/global-setup.ts'],
          // The teardown registry (test/helpers/teardown.ts) in every file.
          setupFiles: ['test/helpers/integration-setup.ts'],
        },
      },
    ],
  },
});
