/**
 * Several workers, one Clerk instance (docs/scale-out.md): with CLERK_WORKERS=n each worker paces
 * to ⌊limit / n⌋, so two workers on one task queue, each with a limiter of its own (as two
 * processes have), never make the instance exceed its limit. The proof is the sandbox's own
 * records: its rate limiter answered no 429, and no window of its audit log holds more requests
 * than the limit. The control run (each worker pacing to the whole limit) does draw 429s.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { clerkLimitsFromEnv, workerShare } from '../src/activities/clerk';
import { loadEnv } from '../src/config';
import { startSandbox, type AuditEntry, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { revokeSessionsWorkflow } from '../src/workflows';
import { baseInput, startChildWorker, usersWithActiveSessions, type ChildWorker } from './helpers/revocation';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

/** The instance's limit in this test: Clerk's shape (requests per fixed window), scaled down to keep the test short. */
const LIMIT = { requests: 60, windowMs: 2000 };
const HEADROOM = 0.1;

let sandbox: RunningSandbox;
let temporal: TemporalTestContext;

beforeAll(async () => {
  sandbox = await startSandbox({ users: 400, seed: 'clerk-share', rateLimit: LIMIT });
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
  await sandbox?.close();
});
beforeEach(() => sandbox.admin.resetAudit());

/** Most requests the sandbox received in any `windowMs`-long stretch (sliding, so stricter than its fixed windows). */
function busiestWindow(entries: AuditEntry[], windowMs: number): number {
  const times = entries.map((e) => Date.parse(e.time)).sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= windowMs) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

/**
 * Two workers on one queue, each in a process of its own (so each has its own limiter, as in
 * production) and with its own secret key of the instance (so the audit tells their requests
 * apart), running revocations split in `parts`.
 */
async function twoWorkers(workersSetting: number, parts: string[][], during: (done: Promise<unknown>) => Promise<void>) {
  const taskQueue = uniqueTaskQueue('share');
  const keys = [sandbox.secretKey, sandbox.admin.addKey().secretKey];
  const workers: ChildWorker[] = await Promise.all(
    keys.map((secretKey, i) =>
      startChildWorker({
        temporalAddress: inject('temporalAddress'),
        taskQueue,
        workflowBundlePath: inject('workflowBundlePath'),
        identity: `worker-${i + 1}`,
        clerk: {
          secretKey,
          apiUrl: sandbox.url,
          limit: { ...workerShare(LIMIT, workersSetting), headroom: HEADROOM },
          concurrency: 16,
          retry: { initialBackoffMs: 20, maxBackoffMs: 200 },
        },
      }),
    ),
  );
  const handles = await Promise.all(
    parts.map((userIds) =>
      temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('share'),
        args: [{ ...baseInput, scope: { type: 'users', userIds } }],
      }),
    ),
  );
  const done = Promise.all(handles.map((h) => h.result()));
  done.catch(() => undefined);
  try {
    await during(done);
  } finally {
    await Promise.all(handles.map((h) => h.terminate('test over').catch(() => undefined)));
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
  }
  return { done };
}

function split<T>(items: T[], n: number): T[][] {
  return Array.from({ length: n }, (_, k) => items.filter((_, i) => i % n === k));
}

describe('several workers share the Clerk rate limit', () => {
  it('CLERK_WORKERS=n gives each worker ⌊limit / n⌋ of its instance type', () => {
    expect(clerkLimitsFromEnv(loadEnv({ CLERK_WORKERS: '2', CLERK_INSTANCE_TYPE: 'development' }), 'sk_test_x').limit).toEqual({ requests: 50, windowMs: 10_000, headroom: 0.05 });
    expect(clerkLimitsFromEnv(loadEnv({ CLERK_WORKERS: '3' }), 'sk_live_x').limit).toEqual({ requests: 333, windowMs: 10_000, headroom: 0.05 });
    expect(clerkLimitsFromEnv(loadEnv({}), 'sk_live_x').limit?.requests).toBe(1000);
    expect(() => loadEnv({ CLERK_WORKERS: '0' })).toThrow(/CLERK_WORKERS/);
    expect(() => workerShare({ requests: 100, windowMs: 10_000 }, 51)).toThrow(RangeError);
  });

  it('two workers pacing to their share: every incident-scale revocation completes and the sandbox never rate-limits', async () => {
    const users = usersWithActiveSessions(sandbox);
    const sessionsBefore = sandbox.admin.sessionIds('active').length;
    expect(users.length).toBeGreaterThan(40);
    const { done } = await twoWorkers(2, split(users, 4), async (finished) => {
      await finished;
    });
    const results = (await done) as { outcome: string }[];
    expect(results.map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
    expect(sandbox.admin.sessionIds('active').length).toBe(0);

    const summary = sandbox.admin.auditSummary();
    // Both workers (one key each) did Clerk work, and together more than two full windows' worth: the limit was reached for real.
    const perKey = Object.values(summary.byKey).map((k) => k.count);
    expect(perKey).toHaveLength(2);
    for (const n of perKey) expect(n).toBeGreaterThan(0);
    expect(summary.total).toBeGreaterThan(2 * LIMIT.requests);
    expect(sessionsBefore).toBeGreaterThan(0);
    // The sandbox's own records: no 429 from its limiter, and no window over the limit.
    expect(sandbox.admin.limiter.limited).toBe(0);
    expect(summary.faults.rate_limited).toBe(0);
    expect(summary.byStatus['429'] ?? 0).toBe(0);
    expect(busiestWindow(sandbox.admin.auditEntries({ limit: 100_000 }), LIMIT.windowMs)).toBeLessThanOrEqual(LIMIT.requests);
  }, 120_000);

  it('control: two workers each pacing to the whole limit make the sandbox answer 429', async () => {
    sandbox.admin.seed({ users: 400, seed: 'clerk-share-control' });
    const users = usersWithActiveSessions(sandbox);
    const limitedBefore = sandbox.admin.limiter.limited;
    await twoWorkers(1, split(users, 4), async (finished) => {
      await Promise.race([
        finished,
        (async () => {
          const deadline = Date.now() + 60_000;
          while (sandbox.admin.limiter.limited === limitedBefore && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        })(),
      ]);
    });
    expect(sandbox.admin.limiter.limited).toBeGreaterThan(limitedBefore);
    expect(sandbox.admin.auditSummary().faults.rate_limited).toBeGreaterThan(0);
  }, 120_000);
});
