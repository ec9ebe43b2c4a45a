import { defineConfig } from 'vitest/config';

// `npm test -w @clerk-incident-runbook/clerk-sandbox`: the sandbox's own tests, no Temporal needed.
// The root `npm test` runs them too (its include names packages/*/tests).
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
  },
});
