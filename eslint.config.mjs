// @ts-check
import { builtinModules } from 'node:module';
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', '.data/**', 'coverage/**', 'bench/results/**', 'dist/**', '.dependency-cruiser.cjs', 'examples/nextjs-bypass/*', '!examples/nextjs-bypass/bypass-decision.ts'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no I/O clients.
    files: ['src/workflows/**/*.ts', 'src/domain.ts', 'src/shared.ts', 'src/revoke-sessions.ts', 'src/reconcile.ts', 'src/user-paging.ts', 'src/triage/**/*.ts', 'src/diagnostics/**/*.ts', 'src/review/build.ts', 'src/review/render.ts', 'src/signing/**/*.ts', 'src/roster/{schema,parse,resolve,policy,rotation}.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules.flatMap((m) => [m, `node:${m}`]).map((name) => ({ name, message: 'Node built-ins are not allowed in workflow code: use an activity.' })),
            { name: '@clerk/backend', message: 'Clerk is called from activities only.' },
            { name: '@temporalio/client', message: 'Workflow code must not use the client.' },
            { name: '@temporalio/worker', message: 'Workflow code must not use the worker.' },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() in a loop.' },
        { name: 'fetch', message: 'I/O belongs in activities.' },
        { name: 'process', message: 'Workflow code must not read the process.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use the deterministic random of @temporalio/workflow (it is patched, but say so).' },
      ],
    },
  },
  // The Clerk sandbox stands alone: nothing from the product (src/, tests/, bench/, scripts/) or another
  // package; only the example app's bypass decision (examples/nextjs-bypass), which it serves.
  ...[
    { files: ['packages/clerk-sandbox/*.{ts,mts}'], up: 2 },
    { files: ['packages/clerk-sandbox/{src,tests}/*.ts'], up: 3 },
    { files: ['packages/clerk-sandbox/{src,tests}/*/*.ts'], up: 4 },
  ].map(({ files, up }) => ({
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: `^(\\.\\./){${up - 1},}(?!(\\.\\./)*examples/nextjs-bypass/)`, message: 'The sandbox imports nothing outside packages/clerk-sandbox (it stands alone).' },
            { regex: '^clerk-incident-runbook(/|$)', message: 'The sandbox imports nothing from the product.' },
          ],
        },
      ],
    },
  })),
  {
    files: ['**/*.mjs', '**/*.mts'],
    ...tseslint.configs.disableTypeChecked,
  },
);
