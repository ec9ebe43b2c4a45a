// @ts-check
// The layering of src/ and the sandbox package (and what the tests' child worker processes may import), checked by `npm run lint:layers` (CI runs it).
// Arrows run one way: entry points → worker → activities → adapters; workflows → pure rules only.

/** Modules that run inside Temporal's workflow sandbox, or that workflow code imports as values. */
const WORKFLOW_SIDE = '^src/(workflows|triage|diagnostics|signing)/|^src/(domain|shared|revoke-sessions|reconcile|user-paging|render-safe)\\.ts$|^src/review/(build|render)\\.ts$|^src/keys/ref\\.ts$|^src/roster/(schema|parse|resolve|policy|rotation)\\.ts$';
/** I/O: Node built-ins and the clients that reach the network or the disk. */
const IO_MODULES = '^(node:)?(fs|http|https|net|child_process|os|path|dns|tls|worker_threads|stream)$|^node_modules/(@clerk/backend|@temporalio/(client|worker|activity)|pg|fastify|node-sqlite3-wasm|undici)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'child-workers-no-vitest',
      severity: 'error',
      comment: 'Child worker processes of the tests run under plain node (tsx), where importing vitest throws: keep vitest out of everything they import (tests/helpers/ids.ts, not temporal.ts).',
      from: { path: '^tests/(helpers/[a-z-]+-worker|selfhosted/incident-worker)\\.ts$' },
      to: { path: '(^|/)node_modules/vitest/', reachable: true },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'An import cycle: split the shared piece into a module both sides import.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'workflow-side-no-io',
      severity: 'error',
      comment: 'Workflow code and the pure rules it runs are deterministic: no I/O, no Node built-ins (types are fine).',
      from: { path: WORKFLOW_SIDE },
      to: { path: IO_MODULES, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'workflow-side-no-activity-values',
      severity: 'error',
      comment: 'Workflows import activities as types only (proxyActivities), never their implementation.',
      from: { path: WORKFLOW_SIDE },
      to: { path: '^src/(activities|stores|keys|codec|worker|cli|drill|temporal)/|^src/(config|connection|main|runtime-file|reconcile-setup)\\.ts$', pathNot: '^src/keys/ref\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'activities-never-import-workflows',
      severity: 'error',
      comment: 'Activities never import workflow implementation; what both sides need is in incident-messages.ts (definitions) and incident-types.ts (data).',
      from: { path: '^src/(activities|stores|keys|codec|review/fetch)' },
      to: { path: '^src/workflows/', pathNot: '^src/workflows/(incident-(messages|types)|bypass-lease-messages)\\.ts$' },
    },
    {
      name: 'foundations-below-activities',
      severity: 'error',
      comment: 'Configuration, keys, codec, stores and the Temporal helpers sit below the activities and the worker.',
      from: { path: '^src/(keys|codec|stores|temporal)/|^src/(config|connection|shared|domain|runtime-file)\\.ts$' },
      to: { path: '^src/(activities|worker|drill|review)/' },
    },
    {
      name: 'config-is-a-leaf',
      severity: 'error',
      comment: 'Environment parsing (config.ts) knows schemas, not the modules that use them.',
      from: { path: '^src/config\\.ts$' },
      to: { path: '^src/(codec|keys|stores|activities)/', pathNot: '^src/codec/key-format\\.ts$' },
    },
    {
      name: 'sandbox-stands-alone',
      severity: 'error',
      comment: 'The Clerk sandbox is its own package: it imports nothing from the product.',
      from: { path: '^packages/clerk-sandbox/' },
      to: { path: '^(src|bench|scripts|tests)/' },
    },
    {
      name: 'product-uses-sandbox-by-its-entry-points',
      severity: 'error',
      comment: 'The product uses the sandbox package through its exports (index, admin-client), not its internals.',
      from: { path: '^(src|bench|scripts|tests)/' },
      to: { path: '^packages/clerk-sandbox/src/', pathNot: '^packages/clerk-sandbox/src/(index|admin-client)\\.ts$' },
    },
    {
      name: 'nothing-imports-entry-points',
      severity: 'error',
      comment: 'Entry points (CLIs, npm start, scripts, benches, tests) sit on top; nothing below imports them.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/|^src/main\\.ts$|^(bench|scripts|tests)/' },
    },
    {
      name: 'cli-not-from-workers',
      severity: 'error',
      comment: 'The product does not import the CLIs; a helper both need lives below them.',
      from: { path: '^src/cli/' },
      to: { path: '^src/main\\.ts$|^(bench|scripts|tests)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Packages stay in the graph as leaves (doNotFollow), so rules can name them; only our own build output is left out.
    exclude: { path: '^(dist|\\.tools|\\.data)/|^packages/[^/]+/dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
};
