import { defineConfig } from 'vitest/config';

// `npm run test:selfhosted`: the self-hosted cluster suite (tests/selfhosted), apart from `npm test`
// (whose include does not match *.selfhosted.ts): it needs Go's build of Temporal Server (cached
// per user by scripts/temporal-server.ts, which the npm script runs first) and PostgreSQL.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['tests/selfhosted/**/*.selfhosted.ts'],
    testTimeout: 240_000,
    hookTimeout: 300_000,
    fileParallelism: false,
  },
});
