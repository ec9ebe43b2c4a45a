/**
 * A worker SIGKILLed in the middle of a batch: a fresh worker resumes the batch from the cursor
 * it heartbeated, no active session is missed, and at most a batch's worth is revoked twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { getRevocationProgress, revokeSessionsWorkflow } from '../src/workflows';
import {
  activeSessions,
  baseInput,
  gatewayOptions,
  revocationDeps,
  revokeAudit,
  startChildWorker,
  type ChildWorker,
} from './helpers/revocation';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let child: ChildWorker | undefined;

beforeAll(async () => {
  temporal = await connectTemporal();
  // A few ms per request and a 400 requests/s limit: the run lasts several seconds, long enough to kill.
  sandbox = await startSandbox({ users: 4000, seed: 'revocation-kill', rateLimit: 'off', faults: { latency: { fixedMs: 3, jitterMs: 4 } } });
});
afterAll(async () => {
  child?.kill('SIGKILL');
  await child?.exited;
  await sandbox?.close();
  await temporal?.close();
});

describe('revokeSessionsWorkflow when its worker is killed', () => {
  // A child worker's start, a 2 s heartbeat timeout, then 4,000 users at 400 requests/s: over a minute under a full suite's load (CI timed out at 60 s).
  it('resumes from the heartbeated cursor on a fresh worker: nothing missed, duplicates bounded', async () => {
    const before = activeSessions(sandbox);
    const taskQueue = uniqueTaskQueue('revoke-kill');
    const limit = { requests: 400, windowMs: 1000, headroom: 0 };
    const usersInFlight = 16;
    child = await startChildWorker({
      temporalAddress: inject('temporalAddress'),
      taskQueue,
      workflowBundlePath: inject('workflowBundlePath'),
      identity: 'worker-to-kill',
      clerk: gatewayOptions(sandbox, { limit }),
    });
    const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
      taskQueue,
      workflowId: uniqueWorkflowId('revoke-kill'),
      args: [{ ...baseInput, scope: { type: 'all' }, tuning: { heartbeatTimeoutSeconds: 2, usersInFlight, batchMaxUsers: 5000 } }],
    });
    // Kill it once a good part of the (single) batch is done, mid-page.
    await expect.poll(() => sandbox.admin.auditSummary().revokes.calls, { timeout: 20_000, interval: 50 }).toBeGreaterThan(before.size / 3);
    child.kill('SIGKILL');
    expect(await child.exited).toBe(null); // killed by the signal, not exited
    const revokedAtKill = sandbox.admin.auditSummary().revokes.sessionsRevoked;
    expect(revokedAtKill).toBeLessThan(before.size);

    const replacement = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox, { limit }), 'replacement');
    const { result, progress } = await replacement.runUntil(async () => {
      const r = await handle.result();
      return { result: r, progress: await handle.query(getRevocationProgress) };
    });

    const audit = revokeAudit(sandbox, before.keys());
    expect(audit.missed).toEqual([]);
    expect(audit.unexpected).toEqual([]);
    // Only revokes in flight at the moment of the kill can be sent twice.
    expect(audit.repeated.length).toBeLessThanOrEqual(usersInFlight * 2);
    expect(activeSessions(sandbox).size).toBe(0);
    // Sessions the killed attempt revoked after its last heartbeat are counted as already revoked.
    expect(result.totals.sessionsRevoked + result.totals.sessionsAlreadyRevoked).toBe(before.size);
    expect(result.totals.failures).toBe(0);

    // The batch was resumed, not restarted: attempt 2 ran on the replacement, and the users
    // listed twice are far fewer than the users done before the kill.
    const history = await handle.fetchHistory();
    const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
    const last = started.at(-1)?.activityTaskStartedEventAttributes;
    expect(last?.attempt).toBe(2);
    expect(last?.identity).toBe('replacement');
    const sessionLists = sandbox.admin.auditSummary().byRoute['GET /v1/sessions']?.count ?? 0;
    expect(sessionLists - result.totals.usersScanned).toBeLessThan(revokedAtKill / 2);
    expect(progress.phase).toBe('completed');
  }, 240_000);
});
