/**
 * A reconciliation worker SIGKILLed in the middle of a batch: a fresh worker resumes from the
 * heartbeated cursor, the store ends equal to Clerk's users, and only deliveries in flight at the
 * kill (at most a batch's worth) reach the receiver twice, with the same `svix-id`.
 */
import { existsSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { openUserStore, type UserStore } from '../src/stores';
import { getReconcileProgress, reconcileUsersWorkflow } from '../src/workflows';
import type { RunningReceiver } from '../examples/webhook-receiver/server';
import { expectStoreEqualsClerk, reconcileDeps, startReceiver, tempSqliteUrl, webhookDelivery } from './helpers/reconcile';
import { gatewayOptions, startChildWorker, type ChildWorker } from './helpers/revocation';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let store: UserStore;
let receiver: RunningReceiver;
let child: ChildWorker | undefined;
const storeUrl = tempSqliteUrl();
const USERS = 800;

beforeAll(async () => {
  temporal = await connectTemporal();
  // Seeded users never had a webhook: every one is missing from the store.
  sandbox = await startSandbox({ users: USERS, seed: 'reconcile-kill', rateLimit: 'off' });
  store = openUserStore(storeUrl);
  await store.ensureSchema();
  receiver = await startReceiver(sandbox, store);
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await child?.exited;
  await receiver?.close();
  await store?.close();
  await sandbox?.close();
  await temporal?.close();
});

describe('reconcileUsersWorkflow when its worker is killed', () => {
  it('resumes from the heartbeated cursor: the store ends equal to Clerk, duplicates bounded and recognised', async () => {
    const taskQueue = uniqueTaskQueue('reconcile-kill');
    const usersInFlight = 8;
    const delivery = webhookDelivery(sandbox, receiver.url);
    child = await startChildWorker({
      temporalAddress: inject('temporalAddress'),
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      identity: 'worker-to-kill',
      clerk: gatewayOptions(sandbox),
      reconcile: { storeUrl, delivery },
    });
    const handle = await temporal.client.workflow.start(reconcileUsersWorkflow, {
      taskQueue,
      workflowId: uniqueWorkflowId('reconcile-kill'),
      args: [{ requestedBy: 'alice@example.com', reason: 'test: worker killed', approvalAbove: null, tuning: { heartbeatTimeoutSeconds: 2, usersInFlight, batchMaxUsers: 5000 } }],
    });
    await expect.poll(() => receiver.counts.applied, { timeout: 30_000, interval: 20 }).toBeGreaterThan(USERS / 5);
    child.kill('SIGKILL');
    expect(await child.exited).toBe(null);
    const appliedAtKill = receiver.counts.applied;
    expect(appliedAtKill).toBeLessThan(USERS);
    // SQLite's lock of the WASM build is a `<file>.lock` directory: a process killed during a read leaves it behind.
    const lock = `${storeUrl.slice('sqlite:'.length)}.lock`;
    if (existsSync(lock)) rmSync(lock, { recursive: true });

    const replacement = await testWorker(temporal.nativeConnection, taskQueue, reconcileDeps(sandbox, store, delivery), 'replacement');
    const { result, progress } = await replacement.runUntil(async () => ({ result: await handle.result(), progress: await handle.query(getReconcileProgress) }));

    expect(result.outcome).toBe('succeeded');
    // Every user compared once in the totals: those fixed after the last heartbeat count as in sync on the second look.
    expect(result.totals.usersScanned).toBe(USERS);
    expect(result.totals.missing + result.totals.inSync).toBe(USERS);
    expect(result.totals.applied).toBe(result.totals.missing);
    expect(result.left).toBe(0);
    await expectStoreEqualsClerk(sandbox, store);
    // Redelivered messages: only those in flight or finished after the last heartbeat, recognised by svix-id.
    expect(receiver.counts.duplicates).toBeLessThanOrEqual(usersInFlight * 4);
    expect(receiver.counts.applied).toBe(USERS);
    const history = await handle.fetchHistory();
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    const last = started.at(-1)?.activityTaskStartedEventAttributes;
    expect(last?.identity).toBe('replacement');
    expect(progress.stage).toBe('done');
  }, 120_000);
});
