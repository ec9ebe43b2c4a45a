/**
 * The README's `webhook_backlog` incident in sandbox mode, wired as `npm start` wires it (a SQLite
 * store, the example receiver, the sandbox dropping 10 % of deliveries): it ends `resolved` with the
 * store equal to Clerk's users, every step automated, and the replayed events in the review.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatState } from '../src/cli/incident-views';
import { loadEnv } from '../src/config';
import type { IncidentInput } from '../src/domain';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { getReview, incidentWorkflow } from '../src/workflows/incident';
import { findSecrets } from './helpers/history-scan';
import { expectStoreEqualsClerk } from './helpers/reconcile';
import { sandboxDeps } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

/** The README's sample input, as pasted into the UI's Start Workflow form. */
const README_INPUT: IncidentInput = { category: 'webhook_backlog', reporter: 'alice@example.com', summary: 'user.created events missing in our store', approvers: ['bob@example.com'] };

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let users: Awaited<ReturnType<typeof startSandboxReconcile>>;

beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 150, seed: 'reconcile-incident', rateLimit: 'production' });
  users = await startSandboxReconcile(loadEnv({}), sandbox, mkdtempSync(join(tmpdir(), 'reconcile-incident-')));
});
afterAll(async () => {
  await sandbox?.close();
  await users?.close();
  await temporal?.close();
});

describe('webhook_backlog incident in sandbox mode', () => {
  it('reconciles the store with Clerk through the child workflow, every step automated', async () => {
    expect(sandbox.admin.webhookConfig()).toMatchObject({ url: users.receiverUrl, dropRate: 0.1 });
    // Sign-ups and deletions whose webhooks the sandbox delivers, 10 % dropped; the seeded users never had one.
    for (let k = 0; k < 4; k++) {
      sandbox.admin.createUsers({ count: 25 });
      await sandbox.admin.webhooksIdle();
    }
    const ids = (await users.deps.store.all()).map((u) => u.id);
    for (const id of ids.slice(0, 3)) sandbox.admin.deleteUser(id);
    await sandbox.admin.webhooksIdle();

    const taskQueue = uniqueTaskQueue('reconcile-incident');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, { ...sandboxDeps(sandbox), reconcile: users.deps });
    const { state, review, histories } = await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('webhook-backlog'), args: [README_INPUT] });
      const s = await handle.result();
      const child = temporal.client.workflow.getHandle(`${s.incidentId}-reconcile_webhooks`);
      return { state: s, review: await handle.query(getReview), histories: [await handle.fetchHistory(), await child.fetchHistory()] };
    });
    // The signing secret, the store's path and the secret key are worker configuration, never history.
    for (const h of histories) expect(findSecrets(h, [sandbox.webhookSigningSecret, sandbox.secretKey, users.storeUrl])).toEqual([]);
    await expectStoreEqualsClerk(sandbox, users.deps.store);
    expect(state.status).toBe('resolved');
    const step = state.steps.filter((s) => s.step === 'reconcile_webhooks').at(-1);
    expect(step?.outcome).toBe('succeeded');
    expect(state.manualSteps).toEqual([]);
    expect(state.steps.some((s) => s.outcome === 'not_automated')).toBe(false);
    expect(state.timeline.map((t) => t.description).join('\n')).toContain("Clerk's Svix portal");
    expect(review?.markdown).toMatch(/webhook events replayed \(user reconciliation\): [1-9]\d*/);
    // `npm run incident -- show` names the child a reconciliation, followed with the reconcile CLI.
    const childId = `${state.incidentId}-reconcile_webhooks`;
    expect(formatState(state)).toContain(`  reconciliation of reconcile_webhooks: workflow ${childId}\n      npm run reconcile -- progress ${childId}`);
  }, 120_000);
});
