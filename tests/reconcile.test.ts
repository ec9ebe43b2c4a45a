/**
 * `reconcileUsersWorkflow` on the run's real dev server, against a Clerk sandbox whose own
 * Svix-signed deliveries (some dropped) feed the example receiver and its SQLite store: the store
 * compared with Clerk's users through the SDK is the ground truth.
 */
import { createServer, type Server } from 'node:http';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ActivityDeps } from '../src/activities';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { openUserStore, type UserStore } from '../src/stores';
import { decideReconcile, getReconcileProgress, reconcileUsersWorkflow } from '../src/workflows';
import type { ReconcileUsersInput } from '../src/workflows/reconcile-users';
import type { RunningReceiver } from '../examples/webhook-receiver/server';
import { expectStoreEqualsClerk, makeDrift, reconcileDeps, startReceiver, tempSqliteUrl, webhookDelivery } from './helpers/reconcile';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let store: UserStore;
let receiver: RunningReceiver;

const base = { requestedBy: 'alice@example.com', reason: 'test: webhook deliveries were lost' } satisfies Partial<ReconcileUsersInput>;
/** Small pages and batches, so a few hundred users cross batch and continue-as-new boundaries. */
const small = { pageSize: 50, batchMaxUsers: 100, batchesPerRun: 3, heartbeatTimeoutSeconds: 5, usersInFlight: 8 };

beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});
beforeEach(async () => {
  sandbox = await startSandbox({ users: 0, seed: 'reconcile-tests', rateLimit: 'off' });
  store = openUserStore(tempSqliteUrl());
  await store.ensureSchema();
  receiver = await startReceiver(sandbox, store);
});
afterEach(async () => {
  await sandbox?.close();
  await receiver?.close();
  await store?.close();
});

async function run(deps: ActivityDeps, input: Partial<ReconcileUsersInput>) {
  const taskQueue = uniqueTaskQueue('reconcile');
  const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
  return worker.runUntil(
    temporal.client.workflow.execute(reconcileUsersWorkflow, { taskQueue, workflowId: uniqueWorkflowId('reconcile'), args: [{ ...base, tuning: small, ...input }] }),
  );
}

describe('reconcileUsersWorkflow', () => {
  it('finds missing, stale and deleted users at once; a dry run changes nothing; the run fixes them; a second run is a no-op', async () => {
    const drift = await makeDrift(sandbox, store, receiver.url, { count: 400, dropRate: 0.1, deleted: 7, stale: 5 });
    expect(drift.missing.length).toBeGreaterThan(10);
    const deps = reconcileDeps(sandbox, store, webhookDelivery(sandbox, receiver.url));
    const before = await store.all();

    const dry = await run(deps, { dryRun: true });
    expect(dry.outcome).toBe('succeeded');
    expect(dry.totals).toMatchObject({ missing: drift.missing.length, stale: drift.stale.length, deleted: drift.deleted.length, applied: 0 });
    expect(dry.samples.missing.length).toBe(Math.min(10, drift.missing.length));
    expect(dry.samples.stale.map((s) => s.userId).sort()).toEqual([...drift.stale].sort());
    expect(dry.samples.stale[0]!.fields).toEqual(expect.arrayContaining(['firstName', 'updatedAt']));
    expect(dry.samples.deleted.sort()).toEqual([...drift.deleted].sort());
    expect(await store.all()).toEqual(before);
    expect(dry.svixPortalUrl).toMatch(/\/__sandbox\/svix-portal\?token=/);

    const applied = receiver.counts.applied;
    const result = await run(deps, {});
    const fixed = drift.missing.length + drift.stale.length + drift.deleted.length;
    expect(result.outcome).toBe('succeeded');
    expect(result.planned).toMatchObject({ missing: drift.missing.length, stale: drift.stale.length, deleted: drift.deleted.length });
    expect(result.totals).toMatchObject({ applied: fixed, rejected: 0 });
    expect(result.left).toBe(0);
    expect(result.runs).toBeGreaterThan(1); // crossed continue-as-new
    expect(receiver.counts.applied - applied).toBe(fixed);
    expect(result.timeline.map((e) => e.description).join('\n')).toMatch(/Svix portal[\s\S]*complete \(webhook delivery\)/);
    await expectStoreEqualsClerk(sandbox, store);

    const again = await run(deps, {});
    expect(again.planned).toMatchObject({ missing: 0, stale: 0, deleted: 0 });
    expect(again.totals.applied).toBe(0);
    expect(receiver.counts.applied - applied).toBe(fixed);
  });

  it('waits while the endpoint is down and Clerk throttles and fails, then finishes from its cursor', async () => {
    const drift = await makeDrift(sandbox, store, receiver.url, { count: 300, dropRate: 0.2, deleted: 3, stale: 3 });
    const port = receiver.port;
    const url = receiver.url;
    await receiver.close();
    sandbox.admin.setRateLimit({ requests: 40, windowMs: 1000 });
    sandbox.admin.setFaults({ errorRates: { '503': 0.1 } });
    const taskQueue = uniqueTaskQueue('reconcile');
    // The worker's limiter allows more than the sandbox: 429s reach it.
    const worker = await testWorker(temporal.nativeConnection, taskQueue, reconcileDeps(sandbox, store, webhookDelivery(sandbox, url), { limit: { requests: 80, windowMs: 1000, headroom: 0 } }));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(reconcileUsersWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('reconcile-down'),
        args: [{ ...base, tuning: small, approvalAbove: null }],
      });
      await vi.waitFor(async () => expect((await handle.query(getReconcileProgress)).lastError?.type).toBe('WebhookEndpointUnavailable'), { timeout: 30_000, interval: 200 });
      receiver = await startReceiver(sandbox, store, port);
      const result = await handle.result();
      expect(result.outcome).toBe('succeeded');
      expect(result.totals.applied).toBe(drift.missing.length + drift.stale.length + drift.deleted.length);
      expect(result.totals.rateLimited + result.totals.retries).toBeGreaterThan(0);
      expect(result.timeline.map((e) => e.description).join('\n')).toMatch(/webhook endpoint unavailable[\s\S]*answered again/);
    });
    sandbox.admin.setFaults({});
    sandbox.admin.setRateLimit('off');
    await expectStoreEqualsClerk(sandbox, store);
  });

  it('records what the endpoint refuses (4xx) per user, goes on, and says what is left', async () => {
    const drift = await makeDrift(sandbox, store, receiver.url, { count: 200, dropRate: 0.2, deleted: 2, stale: 2 });
    const refused = drift.missing.slice(0, 2);
    // The app's endpoint refuses two users' events; everything else goes through to the receiver.
    const proxy: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        if (refused.some((id) => body.includes(id))) {
          res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"email domain not allowed"}');
          return;
        }
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k.startsWith('svix-') || k === 'content-type')) as Record<string, string>;
        void fetch(receiver.url, { method: 'POST', headers, body }).then(async (r) => res.writeHead(r.status).end(await r.text()));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const address = proxy.address();
    const proxyUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
    try {
      const result = await run(reconcileDeps(sandbox, store, webhookDelivery(sandbox, proxyUrl)), { approvalAbove: null });
      expect(result.outcome).toBe('partial');
      expect(result.totals.rejected).toBe(2);
      expect(result.left).toBe(2);
      expect(result.failures.map((f) => f.userId).sort()).toEqual([...refused].sort());
      expect(result.failures[0]).toMatchObject({ type: 'user.created', status: 422, answer: expect.stringContaining('email domain not allowed') });
      const stored = await store.getMany(refused);
      expect(stored.size).toBe(0);
    } finally {
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  it('asks for an approval above the threshold; the requester cannot give it', async () => {
    const drift = await makeDrift(sandbox, store, receiver.url, { count: 100, dropRate: 0.3, deleted: 1, stale: 1 });
    const taskQueue = uniqueTaskQueue('reconcile');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, reconcileDeps(sandbox, store, webhookDelivery(sandbox, receiver.url)));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(reconcileUsersWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('reconcile-approval'),
        args: [{ ...base, tuning: small, approvalAbove: 3 }],
      });
      await vi.waitFor(async () => expect((await handle.query(getReconcileProgress)).stage).toBe('approval'), { timeout: 30_000, interval: 200 });
      const progress = await handle.query(getReconcileProgress);
      expect(progress.planned?.missing).toBe(drift.missing.length);
      expect(receiver.counts.applied).toBeGreaterThan(0);
      const appliedBefore = receiver.counts.applied;
      const self = await handle.executeUpdate(decideReconcile, { args: [{ decision: 'approve', approver: base.requestedBy }] }).catch((e: unknown) => e);
      expect(self).toBeInstanceOf(WorkflowUpdateFailedError);
      expect(String(((self as Error).cause as Error | undefined)?.message)).toMatch(/update.approver: alice@example.com requested this reconciliation/);
      expect(receiver.counts.applied).toBe(appliedBefore);
      await handle.executeUpdate(decideReconcile, { args: [{ decision: 'approve', approver: 'bob@example.com', reason: 'checked the sample' }] });
      const result = await handle.result();
      expect(result.approval).toMatchObject({ decision: 'approved', by: 'bob@example.com' });
      expect(result.outcome).toBe('succeeded');
    });
    await expectStoreEqualsClerk(sandbox, store);
  });

  it('writes the store directly when configured so', async () => {
    await makeDrift(sandbox, store, receiver.url, { count: 150, dropRate: 0.2, deleted: 2, stale: 2 });
    const applied = receiver.counts.applied;
    const result = await run(reconcileDeps(sandbox, store, { type: 'store' }), { approvalAbove: null });
    expect(result.delivery).toBe('store');
    expect(result.outcome).toBe('succeeded');
    expect(receiver.counts.applied).toBe(applied); // nothing went through the endpoint
    await expectStoreEqualsClerk(sandbox, store);
  });

  it('refuses a bad input, naming the field', async () => {
    const err = await run(reconcileDeps(sandbox, store, { type: 'store' }), { scope: { type: 'createdBetween', from: 'yesterday' } } as never).catch((e: unknown) => e);
    expect(String(((err as Error).cause as Error | undefined)?.message)).toMatch(/scope\.from/);
  });
});
