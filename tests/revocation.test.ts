/**
 * `revokeSessionsWorkflow` on the run's real dev server against a Clerk sandbox in this process:
 * what the sandbox's audit log says was revoked is the ground truth.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { formatCount, type RevokeSessionsResult } from '../src/revoke-sessions';
import type { RevokeSessionsInput } from '../src/workflows/revoke-sessions';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { getRevocationProgress, revokeSessionsWorkflow } from '../src/workflows';
import { activeSessions, baseInput, revocationDeps, revokeAudit } from './helpers/revocation';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;

beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 3000, seed: 'revocation-tests', rateLimit: 'off' });
});
afterAll(async () => {
  await sandbox?.close();
  await temporal?.close();
});
beforeEach(() => {
  // Every test starts from the same seeded instance, with a clean audit and no faults.
  sandbox.admin.seed({ users: 3000, seed: 'revocation-tests' });
  sandbox.admin.setFaults({});
  sandbox.admin.setRateLimit('off');
  sandbox.admin.resetAudit();
});

/** Small batches and runs, so a few thousand users cross batch and continue-as-new boundaries. */
const smallBatches = { pageSize: 100, batchMaxUsers: 300, batchesPerRun: 2, heartbeatTimeoutSeconds: 5 };

/** Run one revocation to completion on a worker and task queue of its own. */
async function revokeToCompletion(prefix: string, input: Partial<RevokeSessionsInput> & Pick<RevokeSessionsInput, 'scope'>): Promise<RevokeSessionsResult> {
  const taskQueue = uniqueTaskQueue('revoke');
  const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
  return worker.runUntil(
    temporal.client.workflow.execute(revokeSessionsWorkflow, {
      taskQueue,
      workflowId: uniqueWorkflowId(prefix),
      args: [{ ...baseInput, ...input }],
    }),
  );
}

async function failureOf(p: Promise<unknown>): Promise<WorkflowFailedError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return err as WorkflowFailedError;
}

describe('revokeSessionsWorkflow', () => {
  it('revokes every active session exactly once, none of an excluded user, across batches and continue-as-new', async () => {
    const before = activeSessions(sandbox);
    const users = [...new Set(before.values())];
    const excluded = users.slice(0, 2);
    const expected = [...before].filter(([, user]) => !excluded.includes(user)).map(([id]) => id);
    const stats = sandbox.admin.stats();
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke'),
        args: [{ ...baseInput, scope: { type: 'all' }, excludeUserIds: excluded, tuning: smallBatches }],
      });
      const result = await handle.result();

      const audit = revokeAudit(sandbox, expected);
      expect(audit.missed).toEqual([]);
      expect(audit.repeated).toEqual([]);
      expect(audit.unexpected).toEqual([]); // in particular, no session of an excluded user
      expect(activeSessions(sandbox).size).toBe(before.size - expected.length);
      for (const user of activeSessions(sandbox).values()) expect(excluded).toContain(user);

      const t = result.totals;
      expect(result.outcome).toBe('succeeded');
      expect(result.notFoundUserIds).toEqual([]);
      expect(t.sessionsRevoked).toBe(expected.length);
      expect(t.sessionsAlreadyRevoked).toBe(0);
      expect(t.failures).toBe(0);
      expect(t.usersExcluded).toBe(2);
      expect(result.usersInInstance).toBe(stats.users);
      // Users idle for longer than 7 days + 1 day were never listed, let alone asked for sessions.
      expect(t.usersSkippedByFilter + t.usersScanned).toBe(stats.users);
      expect(t.usersSkippedByFilter).toBeGreaterThan(stats.users / 2);
      const summary = sandbox.admin.auditSummary();
      expect(summary.byRoute['GET /v1/sessions']?.count).toBe(t.usersScanned - t.usersExcluded);
      expect(t.requests).toBe(summary.total);
      expect(result.runs).toBeGreaterThan(1);
      expect(result.batches).toBeGreaterThan(3);
      expect(result.timeline.map((e) => e.description)).toEqual([
        expect.stringContaining('session revocation started by alice@example.com'),
        ...Array.from({ length: result.runs - 1 }, () => expect.stringContaining('continuing as new')),
        expect.stringContaining(`session revocation complete: ${formatCount(expected.length)} revoked`),
      ]);

      const description = await handle.describe();
      expect(description.runId).not.toBe(handle.firstExecutionRunId);
      const progress = await handle.query(getRevocationProgress);
      expect(progress.phase).toBe('completed');
      expect(progress.totals).toEqual(t);
      expect(progress.etaSeconds).toBe(0);
      expect(progress).toMatchObject({ outcome: 'succeeded', notFoundUserIds: [], failures: [], lastClerkError: null });
    });
  });

  it('dry run counts the users and sessions it would revoke and revokes nothing', async () => {
    const before = activeSessions(sandbox);
    const result = await revokeToCompletion('revoke-dry', { scope: { type: 'all' }, dryRun: true });
    expect(sandbox.admin.auditSummary().revokes.calls).toBe(0);
    expect(activeSessions(sandbox)).toEqual(before);
    expect(result.dryRun).toBe(true);
    expect(result.outcome).toBe('succeeded'); // a clean dry run: its plan is the result
    expect(result.totals.sessionsFound).toBe(before.size);
    expect(result.totals.sessionsRevoked).toBe(0);
    expect(result.timeline.at(-1)?.description).toContain(`dry run complete: ${formatCount(before.size)} active session(s)`);
  });

  it('scopes to a list of users and to users active in a time window', async () => {
    const before = activeSessions(sandbox);
    const users = [...new Set(before.values())];
    const listed = users.slice(10, 40);
    const unknown = 'user_2doesnotexist0000000000';
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const byList = await temporal.client.workflow.execute(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-list'),
        args: [{ ...baseInput, scope: { type: 'users', userIds: [...listed, unknown] }, excludeUserIds: [listed[0]!], tuning: { pageSize: 7, batchMaxUsers: 10 } }],
      });
      const expected = [...before].filter(([, u]) => listed.slice(1).includes(u)).map(([id]) => id);
      const audit = revokeAudit(sandbox, expected);
      expect(audit).toMatchObject({ missed: [], repeated: [], unexpected: [] });
      expect(byList.totals).toMatchObject({ sessionsRevoked: expected.length, usersNotFound: 1, usersExcluded: 1 });
      // Something was revoked, but a listed user does not exist: not a success.
      expect(byList.outcome).toBe('partial');
      expect(byList.notFoundUserIds).toEqual([unknown]);
      expect(byList.timeline.at(-1)?.description).toBe(`1 listed user(s) not found in Clerk: ${unknown}`);

      // Window: active in the last 24 hours. Every active session of those users goes, and no other.
      sandbox.admin.resetAudit();
      const now = sandbox.admin.store.seedInfo.now;
      const from = new Date(now - 86_400_000).toISOString();
      const recent = new Set<string>();
      for (let row = 0; row < sandbox.admin.store.userRowCount; row++) {
        const user = sandbox.admin.store.userJson(row);
        if ((user.last_active_at ?? 0) > now - 86_400_000) recent.add(user.id);
      }
      const expectedWindow = [...activeSessions(sandbox)].filter(([, u]) => recent.has(u)).map(([id]) => id);
      const byWindow = await temporal.client.workflow.execute(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-window'),
        args: [{ ...baseInput, scope: { type: 'activeBetween', from } }],
      });
      expect(revokeAudit(sandbox, expectedWindow)).toMatchObject({ missed: [], repeated: [], unexpected: [] });
      expect(byWindow.totals.sessionsRevoked).toBe(expectedWindow.length);
      expect(byWindow.totals.usersScanned).toBe(recent.size);
    });
  });

  it('waits out a 429 storm without losing work: each session is still revoked exactly once', async () => {
    // The sandbox allows 150 requests a second; the worker believes in 2000 and has 16 in flight.
    sandbox.admin.seed({ users: 1200, seed: 'revocation-429' });
    sandbox.admin.resetAudit();
    sandbox.admin.setRateLimit({ requests: 150, windowMs: 1000 });
    const before = activeSessions(sandbox);
    const result = await revokeToCompletion('revoke-429', { scope: { type: 'all' } });
    const summary = sandbox.admin.auditSummary();
    expect(summary.byStatus['429']).toBeGreaterThan(0);
    expect(result.totals.rateLimited).toBe(summary.byStatus['429']);
    expect(revokeAudit(sandbox, before.keys())).toMatchObject({ missed: [], repeated: [], unexpected: [] });
    expect(result.totals).toMatchObject({ sessionsRevoked: before.size, failures: 0 });
    // One 429 pauses every call for Retry-After: the storm stays a handful of answers per window, not a flood.
    expect(summary.byStatus['429']).toBeLessThan(summary.total * 0.25);
  });

  it('retries injected 5xx and network-level 502s with backoff and still revokes each session once', async () => {
    sandbox.admin.setFaults({ errorRates: { '500': 0.08, '502': 0.04, '503': 0.08 } });
    const before = activeSessions(sandbox);
    const result = await revokeToCompletion('revoke-5xx', { scope: { type: 'all' }, tuning: { pageSize: 200 } });
    const injected = sandbox.admin.faultCounters();
    expect(injected.error500 + injected.error502 + injected.error503).toBeGreaterThan(50);
    expect(revokeAudit(sandbox, before.keys())).toMatchObject({ missed: [], repeated: [], unexpected: [] });
    // A batch that Clerk interrupts stops at its cursor; sessions it revoked past it count as already revoked next time.
    expect(result.totals.sessionsRevoked + result.totals.sessionsAlreadyRevoked).toBe(before.size);
    expect(result.totals.failures).toBe(0);
    // Every injected error was retried, save the rare one that ended an interrupted batch or hit a count.
    expect(result.totals.retries).toBeGreaterThan(0.9 * (injected.error500 + injected.error502 + injected.error503));
  });

  it('reports sessions Clerk refuses with a permanent 4xx as failures, calls each once, and completes', async () => {
    const before = activeSessions(sandbox);
    const byUser = new Map<string, string[]>();
    for (const [session, user] of before) byUser.set(user, [...(byUser.get(user) ?? []), session]);
    // One refused session belongs to a user with another active session, which must still go.
    const [withSibling] = [...byUser].find(([, sessions]) => sessions.length > 1)!;
    const [otherUser] = [...byUser].find(([user]) => user !== withSibling)!;
    const refused = new Map([
      [byUser.get(withSibling)![0]!, withSibling],
      [byUser.get(otherUser)![0]!, otherUser],
    ]);
    const message = 'This session cannot be revoked by this instance';
    sandbox.admin.setFaults({ rejectSessions: { sessionIds: [...refused.keys()], status: 403, code: 'forbidden', message } });
    const expected = [...before.keys()].filter((id) => !refused.has(id));
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-403'),
        // Several batches in one run, so the history below holds every activity attempt.
        args: [{ ...baseInput, scope: { type: 'all' }, tuning: { pageSize: 100, batchMaxUsers: 300 } }],
      });
      const result = await handle.result(); // completes: a refused item is reported, not fatal

      const bySession = (a: { sessionId: string | null }, b: { sessionId: string | null }) => (a.sessionId ?? '').localeCompare(b.sessionId ?? '');
      expect([...result.failures].sort(bySession)).toEqual(
        [...refused]
          .map(([sessionId, userId]) => ({
            userId,
            sessionId,
            operation: 'sessions.revokeSession',
            status: 403,
            code: 'forbidden',
            clerkTraceId: expect.stringMatching(/^[0-9a-f]{32}$/),
            message,
          }))
          .sort(bySession),
      );
      expect(result.failuresDropped).toBe(0);
      expect(result.outcome).toBe('partial');
      expect(result.totals.usersChecked).toBe(result.totals.usersScanned - 2); // all but the two refused sessions' users
      expect(result.runs).toBe(1);
      expect(result.batches).toBeGreaterThan(1);

      // Not retried: one call per refused session, and one per other session, which was revoked.
      const revokes = sandbox.admin.revokes();
      for (const id of refused.keys()) expect(revokes[id]).toEqual({ calls: 1, revoked: 0, rejected: 1 });
      const audit = revokeAudit(sandbox, expected);
      expect(audit).toMatchObject({ missed: [], repeated: [], calls: before.size });
      expect([...audit.unexpected].sort()).toEqual([...refused.keys()].sort());
      expect(sandbox.admin.auditSummary().faults.rejected).toBe(2);
      expect([...activeSessions(sandbox).keys()].sort()).toEqual([...refused.keys()].sort());

      const t = result.totals;
      expect(t).toMatchObject({ sessionsFound: before.size, sessionsRevoked: expected.length, sessionsAlreadyRevoked: 0, failures: 2 });
      expect(t.sessionsRevoked + t.sessionsAlreadyRevoked + t.failures).toBe(before.size);
      expect(result.timeline.at(-1)?.description).toContain(`${formatCount(expected.length)} revoked, 0 already revoked, 2 failure(s)`);
      // No batch failed and was retried over it: every activity ran once.
      const history = await handle.fetchHistory();
      const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
      expect(started).toHaveLength(result.batches + 1); // the count, then each batch
      expect(started.every((e) => e.activityTaskStartedEventAttributes?.attempt === 1)).toBe(true);
    });
  });

  it('ends "failed", not "succeeded", when no listed user exists, and keeps their ids in the result and the progress', async () => {
    const unknown = ['user_2doesnotexist0000000001', 'user_2doesnotexist0000000002'];
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-unknown'),
        args: [{ ...baseInput, scope: { type: 'users', userIds: unknown } }],
      });
      const result = await handle.result();
      expect(result.outcome).toBe('failed');
      expect(result.notFoundUserIds).toEqual(unknown);
      expect(result.totals).toMatchObject({ usersNotFound: 2, sessionsRevoked: 0, failures: 0 });
      expect(result.timeline.at(-1)?.description).toBe(`2 listed user(s) not found in Clerk: ${unknown.join(', ')}`);
      const progress = await handle.query(getRevocationProgress);
      expect(progress).toMatchObject({ phase: 'completed', outcome: 'failed', notFoundUserIds: unknown });
    });
  });

  it('shows the latest Clerk error and the interruptions in a row in the progress while batches are interrupted, and clears it once Clerk answers', async () => {
    const users = [...new Set(activeSessions(sandbox).values())].slice(0, 5);
    // Listing users works; listing their sessions answers 503 until the faults are lifted.
    sandbox.admin.setFaults({ routes: { 'GET /v1/sessions': { errorRates: { '503': 1 } } } });
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-503'),
        args: [{ ...baseInput, scope: { type: 'users', userIds: users } }],
      });
      let progress = await handle.query(getRevocationProgress);
      const deadline = Date.now() + 30_000;
      while ((progress.lastClerkError?.interruptionsInARow ?? 0) < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        progress = await handle.query(getRevocationProgress);
      }
      expect(progress.phase).toBe('revoking');
      expect(progress.lastClerkError).toMatchObject({
        type: 'ClerkUnavailable',
        message: expect.stringContaining('503'),
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        interruptionsInARow: expect.any(Number),
      });
      expect(progress.lastClerkError!.interruptionsInARow).toBeGreaterThanOrEqual(2);
      expect(progress.totals.retries).toBeGreaterThan(0);

      sandbox.admin.setFaults({});
      const result = await handle.result();
      expect(result.outcome).toBe('succeeded');
      const after = await handle.query(getRevocationProgress);
      expect(after.lastClerkError).toBeNull();
      const descriptions = result.timeline.map((e) => e.description);
      // One line when the series starts, one when it ends: not one per interrupted batch.
      expect(descriptions.filter((d) => d.startsWith('Clerk unavailable (ClerkUnavailable)'))).toHaveLength(1);
      expect(descriptions).toContainEqual(expect.stringMatching(/^Clerk answered again after \d+ interrupted batch\(es\)$/));
    });
  });

  it('fails at once, without retrying, when Clerk refuses the secret key', async () => {
    const taskQueue = uniqueTaskQueue('revoke');
    const deps = revocationDeps(sandbox, { secretKey: 'sk_test_thisKeyWasNeverIssued000' });
    const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(revokeSessionsWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-key'),
        args: [{ ...baseInput, scope: { type: 'all' } }],
      });
      const error = await failureOf(handle.result());
      const failure = error.cause as ApplicationFailure;
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe('ClerkKeyInvalid');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toContain('session revocation stopped');
      // Down the chain: the activity's own failure, typed by the Clerk adapter, with Clerk's code.
      const activityFailure = failure.cause as ActivityFailure;
      expect(activityFailure).toBeInstanceOf(ActivityFailure);
      const clerkFailure = activityFailure.cause as ApplicationFailure;
      expect(clerkFailure).toBeInstanceOf(ApplicationFailure);
      expect(clerkFailure.type).toBe('ClerkKeyInvalid');
      expect(clerkFailure.message).toContain('clerk_key_invalid');
      expect(clerkFailure.details?.[0]).toMatchObject({ status: 401, code: 'clerk_key_invalid' });
      // The totals so far travel with the failure, for the incident's timeline.
      expect(failure.details?.[0]).toMatchObject({ phase: 'counting', totals: { sessionsRevoked: 0 } });
      const history = await handle.fetchHistory();
      const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
      expect(started.map((e) => e.activityTaskStartedEventAttributes?.attempt)).toEqual([1]);
    });
  });

  it.each([
    [{ scope: { type: 'everyone' } }, 'input.scope.type'],
    [{ scope: { type: 'users', userIds: ['alice'] } }, 'input.scope.userIds.0: must be a Clerk user id'],
    [{ scope: { type: 'users', userIds: [] } }, 'input.scope.userIds'],
    [{ scope: { type: 'activeBetween', from: 'yesterday' } }, 'input.scope.from: must be an ISO 8601 time'],
    [{ scope: { type: 'all' }, excludeUserIds: 'user_1' }, 'input.excludeUserIds'],
    [{ scope: { type: 'all' }, tuning: { pageSize: 1000 } }, 'input.tuning.pageSize'],
    [{ scope: { type: 'all' }, requestedBy: '' }, 'input.requestedBy'],
    [{ scope: { type: 'all' }, everyone: true }, 'input.everyone: unknown field'],
    [{ reason: 'no scope', requestedBy: 'alice' }, 'input.scope'],
  ])('refuses bad input %j naming the field, before any Clerk call', async (input, field) => {
    const taskQueue = uniqueTaskQueue('revoke');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start('revokeSessionsWorkflow', {
        taskQueue,
        workflowId: uniqueWorkflowId('revoke-bad'),
        args: [{ ...baseInput, ...input }],
      });
      const error = await failureOf(handle.result());
      expect(error.cause).toBeInstanceOf(ApplicationFailure);
      expect((error.cause as ApplicationFailure).type).toBe('InvalidRevocationInput');
      expect((error.cause as ApplicationFailure).nonRetryable).toBe(true);
      expect(error.cause?.message).toContain(field);
      const history = await handle.fetchHistory();
      expect(history.events?.filter((e) => e.activityTaskScheduledEventAttributes)).toHaveLength(0);
    });
  });
});
