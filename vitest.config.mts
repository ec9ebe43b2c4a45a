import { defineConfig } from 'vitest/config';

// Temporal workers use native threads and worker_threads of their own: run test files in
// child processes (forks), never in vitest's worker threads.
export default defineConfig({
  test: {
    pool: 'forks',
    // The workspace packages' own tests (packages/clerk-sandbox/tests) run here too: CI runs only this.
    include: ['tests/**/*.test.ts', 'packages/*/tests/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    fileParallelism: true,
    // Two files at a time even on 2 cores (vitest's default is one fewer than the cores): the
    // crash and load suites spend most of their time waiting on timeouts and the server.
    maxWorkers: 2,
  },
});
