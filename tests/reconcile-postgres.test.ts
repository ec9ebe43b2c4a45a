/**
 * The reconciliation and the example receiver on PostgreSQL (a private cluster the test starts):
 * drift of each kind fixed through the receiver, then by direct writes, with a custom table and
 * column mapping; the store ends equal to Clerk's users.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { openUserStore, storeMappingSchema, type UserStore } from '../src/stores';
import { reconcileUsersWorkflow } from '../src/workflows';
import type { RunningReceiver } from '../examples/webhook-receiver/server';
import { startWebhookReceiver } from '../examples/webhook-receiver/server';
import { POSTGRES_SKIP_REASON, postgresBinDir, startPostgres, type PrivatePostgres } from './helpers/postgres';
import { expectStoreEqualsClerk, makeDrift, reconcileDeps, webhookDelivery } from './helpers/reconcile';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

const available = postgresBinDir() !== null;
if (!available) console.warn(`SKIPPED tests/reconcile-postgres.test.ts: ${POSTGRES_SKIP_REASON}`);

let temporal: TemporalTestContext;
let pg: PrivatePostgres;

beforeAll(async () => {
  if (!available) return;
  temporal = await connectTemporal();
  pg = await startPostgres();
});
afterAll(async () => {
  await pg?.stop();
  await temporal?.close();
});

describe.skipIf(!available)('reconcileUsersWorkflow on PostgreSQL', () => {
  for (const mode of ['webhook', 'store'] as const) {
    it(`fixes missing, stale and deleted users (${mode} delivery, custom mapping)`, async () => {
      const mapping = storeMappingSchema.parse({ table: `app_users_${mode}`, id: 'external_id', firstName: 'given_name', lastName: null, messagesTable: `seen_${mode}` });
      const sandbox: RunningSandbox = await startSandbox({ users: 0, seed: `reconcile-pg-${mode}`, rateLimit: 'off' });
      const store: UserStore = openUserStore(pg.url, mapping);
      let receiver: RunningReceiver | undefined;
      try {
        await store.ensureSchema();
        receiver = await startWebhookReceiver({ store, signingSecret: sandbox.webhookSigningSecret });
        const drift = await makeDrift(sandbox, store, receiver.url, { count: 200, dropRate: 0.15, deleted: 3, stale: 3 });
        const deps = reconcileDeps(sandbox, store, mode === 'webhook' ? webhookDelivery(sandbox, receiver.url) : { type: 'store' });
        deps.reconcile!.mapping = mapping;
        const taskQueue = uniqueTaskQueue('reconcile-pg');
        const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
        const result = await worker.runUntil(
          temporal.client.workflow.execute(reconcileUsersWorkflow, {
            taskQueue,
            workflowId: uniqueWorkflowId('reconcile-pg'),
            args: [{ requestedBy: 'alice@example.com', reason: 'test: PostgreSQL store', tuning: { pageSize: 50, batchMaxUsers: 100 } }],
          }),
        );
        expect(result.planned).toMatchObject({ missing: drift.missing.length, stale: drift.stale.length, deleted: drift.deleted.length });
        expect(result).toMatchObject({ outcome: 'succeeded', left: 0, delivery: mode });
        // Without a last_name column, the comparison and the copy leave names' second half out.
        const truth = await import('./helpers/reconcile').then((m) => m.clerkTruth(sandbox));
        const stored = (await store.all()).sort((a, b) => (a.id < b.id ? -1 : 1));
        expect(stored).toEqual(truth.map((u) => ({ ...u, lastName: null })));
      } finally {
        await receiver?.close();
        await store.close();
        await sandbox.close();
      }
    });
  }
  it('the default mapping is the runbook\'s users.clerk_id', async () => {
    const sandbox = await startSandbox({ users: 30, seed: 'reconcile-pg-default', rateLimit: 'off' });
    const store = openUserStore(pg.url);
    try {
      await store.ensureSchema();
      // A user Clerk never had, loaded in bulk: the sweep finds it deleted.
      await store.load([{ id: 'user_gone', email: null, firstName: null, lastName: null, updatedAt: 1 }]);
      expect(await store.count()).toBe(1);
      const taskQueue = uniqueTaskQueue('reconcile-pg');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, reconcileDeps(sandbox, store, { type: 'store' }));
      const result = await worker.runUntil(
        temporal.client.workflow.execute(reconcileUsersWorkflow, { taskQueue, workflowId: uniqueWorkflowId('reconcile-pg'), args: [{ requestedBy: 'alice@example.com', reason: 'test' }] }),
      );
      expect(result.totals).toMatchObject({ missing: 30, deleted: 1, applied: 31 });
      await expectStoreEqualsClerk(sandbox, store);
    } finally {
      await store.close();
      await sandbox.close();
    }
  });
});
