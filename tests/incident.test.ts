/**
 * incidentWorkflow end to end on the run's real dev server, against a Clerk sandbox per test:
 * triage from injected faults, approval gates (two-person rule, refusals, rejection, timeout and
 * escalation), optional steps, the revocation child workflow, and cancellation with compensation.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { approveStep, confirmStep, getIncidentState, getReview, incidentWorkflow, rejectStep, requestStep, resolveIncident, type IncidentState } from '../src/workflows/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { eventually, pendingStep, sandboxDeps, waitForState } from './helpers/incident';
import { cancelAndWait, refusal } from './helpers/refusal';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

/** Short gates for tests; a test that wants a decision sends it well within them. */
const fast = { escalateAfter: '20s', decideWithin: '40s', probe: '2s' };
const people = { reporter: 'alice', approvers: ['alice', 'bob', 'carol'] };

interface Run {
  sandbox: RunningSandbox;
  chat: ChatReceiver;
  handle: WorkflowHandle<typeof incidentWorkflow>;
}

/** A sandbox, a chat receiver and a worker of its own; `body` runs while the worker does. */
async function withIncident<T>(
  input: IncidentInput,
  body: (run: Run) => Promise<T>,
  setup: (sandbox: RunningSandbox) => void | Promise<void> = () => undefined,
): Promise<T> {
  const sandbox = await startSandbox({ users: 20, seed: 'incident-test' });
  const chat = await startChatReceiver();
  try {
    await setup(sandbox);
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox, chat.url));
    return await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [input],
        staticSummary: `Incident: ${input.summary}`,
      });
      return body({ sandbox, chat, handle });
    });
  } finally {
    await chat.close();
    await sandbox.close();
  }
}


const outcomes = (s: IncidentState) => Object.fromEntries(s.steps.map((x) => [x.step, x.outcome]));


describe('triage classifies each category from injected faults', () => {
  type Scenario = [name: string, category: IncidentInput['category'], inject: (s: RunningSandbox) => void, expected: { category: string; severity: string; rule: string; agreement: string }];
  const scenarios: Scenario[] = [
    ['Clerk outage (status page major)', undefined, (s) => void s.admin.setOutage({ active: true, indicator: 'major' }), { category: 'clerk_outage', severity: 'critical', rule: 'status_page_outage', agreement: 'classified' }],
    ['Backend API answering 503', undefined, (s) => void s.admin.setFaults({ errorRates: { '503': 1 } }), { category: 'clerk_outage', severity: 'critical', rule: 'backend_api_unavailable', agreement: 'classified' }],
    ['app routes answering 500', undefined, (s) => void s.admin.setApp({ middlewareFailure: true }), { category: 'middleware_failure', severity: 'high', rule: 'app_routes_500', agreement: 'classified' }],
    ['configured key deleted (401)', undefined, (s) => s.admin.listKeys().forEach((k) => s.admin.deleteKey(k.id)), { category: 'middleware_failure', severity: 'high', rule: 'secret_key_rejected', agreement: 'classified' }],
    ['rate limit exhausted (429)', undefined, (s) => void s.admin.setRateLimit({ requests: 1, windowMs: 60_000 }), { category: 'middleware_failure', severity: 'high', rule: 'backend_api_rate_limited', agreement: 'classified' }],
    ['key compromise, reported', 'key_compromise', () => undefined, { category: 'key_compromise', severity: 'critical', rule: 'all_clear', agreement: 'not_visible' }],
    ['session issues, reported', 'session_issues', () => undefined, { category: 'session_issues', severity: 'medium', rule: 'all_clear', agreement: 'not_visible' }],
    ['webhook backlog, reported', 'webhook_backlog', () => undefined, { category: 'webhook_backlog', severity: 'low', rule: 'all_clear', agreement: 'not_visible' }],
    ['reported outage confirmed', 'clerk_outage', (s) => void s.admin.setOutage({ active: true }), { category: 'clerk_outage', severity: 'critical', rule: 'status_page_outage', agreement: 'confirmed' }],
    ['reported session issues during an outage', 'session_issues', (s) => void s.admin.setOutage({ active: true }), { category: 'session_issues', severity: 'critical', rule: 'status_page_outage', agreement: 'disagreed' }],
  ];

  it.concurrent.each(scenarios)('%s', async (_name, category, inject, expected) => {
    await withIncident(
      { ...people, summary: 'users cannot sign in', ...(category ? { category } : {}), timeouts: { ...fast, decideWithin: '60s' } },
      async ({ handle }) => {
        const state = await waitForState(handle, getIncidentState, (s) => s.triage !== undefined);
        expect(state.triage).toMatchObject({ rule: expected.rule, agreement: expected.agreement });
        expect(state).toMatchObject({ category: expected.category, severity: expected.severity });
        if (expected.agreement === 'disagreed') expect(state.attention.join('\n')).toContain('triage disagrees');
        // The UI's list can filter on what triage found.
        await eventually(async () => {
          const sa = (await handle.describe()).typedSearchAttributes;
          return sa.get(IncidentCategoryKey) === expected.category && sa.get(IncidentSeverityKey) === expected.severity;
        });
        // Done with this one (webhook_backlog may have finished already).
        await handle.cancel().catch(() => undefined);
        await handle.result().catch(() => undefined);
      },
      inject,
    );
  });
});

describe('approval gates', () => {
  it('key compromise: two different approvers per critical step, the rotation done by hand is confirmed first, dry run flows into the revocation child and is not called resolved', async () => {
    await withIncident(
      { ...people, category: 'key_compromise', summary: 'sk_live key pasted in a public gist', dryRun: true, timeouts: fast },
      async ({ handle, chat, sandbox }) => {
        const gated = await waitForState(handle, getIncidentState, pendingStep('rotate_secret_key'));
        expect(gated.pendingApprovals[0]).toMatchObject({ step: 'rotate_secret_key', requestedBy: 'alice', approvalsNeeded: 2, eligible: ['bob', 'carol'] });
        expect(gated.waitingFor).toContain('approval of rotate_secret_key');
        expect((await handle.describe()).typedSearchAttributes.get(IncidentStatusKey)).toBe('mitigating');

        // Bad payloads are refused with the field named, before they reach history.
        expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'nope', approver: 'bob' }] }))).toContain('update.step');
        expect(await refusal(handle.executeUpdate('approveStep', { args: [{ step: 'rotate_secret_key', approver: 'bob', extra: 1 }] }))).toContain(
          'update.extra: unknown field',
        );
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob' }] }))).toMatch(
          /update\.step: emergency_bypass is not pending.*pending: rotate_secret_key/,
        );
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'mallory' }] }))).toBe(
          "update.approver: mallory is not on this incident's approver list (alice, bob, carol)",
        );
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'alice' }] }))).toContain(
          'alice requested rotate_secret_key and cannot approve their own request',
        );

        const first = await handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'bob', comment: 'confirmed the leak' }] });
        expect(first).toMatchObject({ decision: 'pending', approvedBy: ['bob'], approvalsNeeded: 2 });
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'bob' }] }))).toContain(
          'bob already approved rotate_secret_key; a critical step needs two different approvers',
        );
        const second = await handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'carol' }] });
        expect(second).toMatchObject({ decision: 'approved', approvedBy: ['bob', 'carol'] });
        // The answer says the runbook rotates the key, and how to confirm when the worker cannot (this one has no rotation configured).
        expect(second.message).toBe(
          `rotate_secret_key approved by bob and carol; the runbook rotates the key (Platform API, or the key sent with provideNewKey); a worker without key rotation configured asks for it by hand (npm run incident -- confirm ${handle.workflowId} --step rotate_secret_key --by <you> --note "<what you did>")`,
        );
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'carol' }] }))).toContain(
          'rotate_secret_key is not pending: it was already approved',
        );

        // The rotation is not automated: the workflow waits for a person to do it and confirm,
        // and does not ask for the revocation while the leaked key may still be valid.
        const byHand = await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'rotate_secret_key' && !m.outcome));
        expect(byHand.waitingFor).toContain(`npm run incident -- confirm ${handle.workflowId} --step rotate_secret_key`);
        expect(byHand.pendingApprovals).toEqual([]);
        expect(chat.texts().find((t) => t.includes('Do by hand: rotate_secret_key'))).toContain('--name confirmStep');
        expect(await refusal(handle.executeUpdate(confirmStep, { args: [{ step: 'bypass_off', confirmedBy: 'bob', note: 'done' }] }))).toContain(
          'update.step: bypass_off is not waiting for a confirmation in this incident (waiting: rotate_secret_key)',
        );
        expect(await refusal(handle.executeUpdate(confirmStep, { args: [{ step: 'rotate_secret_key', confirmedBy: 'mallory', note: 'done' }] }))).toContain(
          'update.confirmedBy: mallory is neither the reporter (alice) nor on the approver list',
        );
        expect(await refusal(handle.executeUpdate('confirmStep', { args: [{ step: 'rotate_secret_key', confirmedBy: 'bob' }] }))).toContain('update.note: say what was done');
        // resolve is refused while the playbook is still running.
        expect(await refusal(handle.executeUpdate(resolveIncident, { args: [{ resolvedBy: 'alice', summary: 'fine' }] }))).toContain('the incident is mitigating');
        const confirmed = await handle.executeUpdate(confirmStep, { args: [{ step: 'rotate_secret_key', confirmedBy: 'bob', note: 'new key ins_2 live in production, old key deleted' }] });
        expect(confirmed.message).toBe('rotate_secret_key confirmed as done by hand by bob');

        await waitForState(handle, getIncidentState, pendingStep('revoke_all_sessions'));
        await handle.executeUpdate(approveStep, { args: [{ step: 'revoke_all_sessions', approver: 'carol' }] });
        await handle.executeUpdate(approveStep, { args: [{ step: 'revoke_all_sessions', approver: 'bob' }] });

        // A dry run changed nothing: it is not resolved until a person says the rehearsal is over.
        const open = await waitForState(handle, getIncidentState, (s) => s.status === 'needs_human');
        expect(open.openItems).toEqual(['dry run: nothing was changed']);
        await eventually(async () => (await handle.describe()).typedSearchAttributes.get(IncidentStatusKey) === 'needs_human');
        expect(await refusal(handle.executeUpdate(resolveIncident, { args: [{ resolvedBy: 'alice', summary: 'x', dataLoss: 'partial' }] }))).toContain(
          'update.dataLossDetails: say what was lost when dataLoss is "partial"',
        );
        await handle.executeUpdate(resolveIncident, {
          args: [
            {
              resolvedBy: 'alice',
              summary: 'rehearsal over',
              rootCause: 'key committed to a public repo',
              detection: 'user_report',
              dataLoss: 'none',
              lessons: { wentWell: ['two approvers within a minute'] },
              actionItems: ['scan repos for keys in CI'],
            },
          ],
        });

        const result = await handle.result();
        expect(result.status).toBe('resolved');
        expect(result.resolution).toMatchObject({ resolvedBy: 'alice', summary: 'rehearsal over' });
        // The review was written last, from the history: in the result, the query and the channel.
        expect(result.review).toContain(handle.workflowId);
        expect(result.review).toContain('rehearsal over');
        // What only the commander knows reaches the review.
        expect(result.review).toContain('- root cause: key committed to a public repo');
        expect(result.review).toContain('- detection: a user report');
        expect(result.review).toContain('- data loss: none');
        expect(result.review).toContain('- went well: two approvers within a minute');
        expect(result.review).toContain('- scan repos for keys in CI — given by alice when resolving');
        const written = await handle.query(getReview);
        expect(written?.markdown).toBe(result.review);
        expect(written?.review.whoDecided.length).toBeGreaterThanOrEqual(5);
        expect(chat.texts().some((t) => t.includes('Post-incident review') && t.includes(`npm run incident -- review ${handle.workflowId}`))).toBe(true);
        expect(outcomes(result)).toMatchObject({
          incident_notice: 'succeeded',
          rotate_secret_key: 'done_by_hand', // approved (first record), then done by hand and confirmed
          revoke_all_sessions: 'succeeded',
          review: 'succeeded',
        });
        expect(result.steps.filter((s) => s.step === 'rotate_secret_key').map((s) => s.outcome)).toEqual(['approved', 'done_by_hand']);
        const revocation = result.steps.find((s) => s.step === 'revoke_all_sessions' && s.outcome === 'succeeded');
        expect(revocation?.note).toMatch(/^dry run: \d+ active session\(s\) would be revoked; nothing was revoked/);
        expect(Object.keys(sandbox.admin.revokes())).toHaveLength(0); // a dry run revokes nothing
        // The timeline names who decided what.
        expect(result.timeline.filter((e) => e.step === 'rotate_secret_key').map((e) => e.actor)).toEqual(['alice', 'bob', 'carol', 'carol', 'runbook', 'bob']);
        expect(result.pendingApprovals).toEqual([]);
        // Each approval request went to the channel with the commands to decide.
        const requests = chat.texts().filter((t) => t.includes('Approval needed'));
        expect(requests).toHaveLength(2);
        expect(requests[0]).toContain(`npm run incident -- approve ${handle.workflowId} --step rotate_secret_key --approver <you>`);
      },
    );
  });

  it('middleware failure: a rejection needs a reason, is recorded, nothing is verified, and the incident is not called resolved', async () => {
    await withIncident(
      { ...people, summary: 'dashboard answers 500', timeouts: { ...fast, resolveWithin: '3s' } },
      async ({ handle, chat }) => {
        await waitForState(handle, getIncidentState, pendingStep('operator_action'));
        expect(await refusal(handle.executeUpdate('rejectStep', { args: [{ step: 'operator_action', approver: 'bob' }] }))).toContain(
          'update.reason: a rejection needs a reason',
        );
        expect(await refusal(handle.executeUpdate(rejectStep, { args: [{ step: 'operator_action', approver: 'bob', reason: '  ' }] }))).toContain(
          'update.reason',
        );
        const decision = await handle.executeUpdate(rejectStep, { args: [{ step: 'operator_action', approver: 'bob', reason: 'rollback not done yet' }] });
        expect(decision).toMatchObject({ decision: 'rejected', rejectedBy: 'bob', reason: 'rollback not done yet' });
        const result = await handle.result();
        expect(result.category).toBe('middleware_failure');
        expect(outcomes(result)).toMatchObject({ diagnostics: 'succeeded', operator_action: 'rejected', verify_fix: 'not_needed' });
        // Diagnostics named the failing middleware, and the approvers saw it in the request.
        expect(result.steps.find((x) => x.step === 'diagnostics')?.note).toMatch(/^fail: .*middleware/i);
        expect(result.gates[0]?.title).toMatch(/; diagnostics: .*middleware/i);
        expect(result.gates[0]?.rejection).toMatchObject({ approver: 'bob', reason: 'rollback not done yet' });
        expect(chat.texts().some((t) => t.includes('operator_action: rejected'))).toBe(true);
        // Nobody resolved it: it closes still needing a human, and every surface says so.
        expect(result.status).toBe('needs_human');
        expect(result.openItems).toEqual(['verify_fix not done (not_needed)']);
        expect(result.timeline.find((e) => e.step === 'close')?.description).toMatch(/^closed unresolved: nobody sent resolve within 3s; still open: verify_fix not done/);
        expect(result.timeline.at(-1)?.step).toBe('review'); // the review is the last step however it ends
        expect((await handle.describe()).typedSearchAttributes.get(IncidentStatusKey)).toBe('needs_human');
        expect(chat.texts().some((t) => t.includes('Status: needs_human') && t.includes('still open: verify_fix not done'))).toBe(true);
        expect(chat.texts().some((t) => t.includes('Incident closed unresolved'))).toBe(true);
      },
      (s) => void s.admin.setApp({ middlewareFailure: true }),
    );
  });

  it('middleware failure: once the operator confirms the fix, the probes verify it', async () => {
    await withIncident(
      { ...people, summary: 'dashboard answers 500', timeouts: fast },
      async ({ handle, sandbox }) => {
        await waitForState(handle, getIncidentState, pendingStep('operator_action'));
        sandbox.admin.setApp({ middlewareFailure: false }); // the operator rolled back
        await handle.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'carol' }] });
        const result = await handle.result();
        expect(outcomes(result)).toMatchObject({ operator_action: 'approved', verify_fix: 'succeeded' });
        expect(result.status).toBe('resolved');
        expect(result.openItems).toEqual([]);
      },
      (s) => void s.admin.setApp({ middlewareFailure: true }),
    );
  });

  it('middleware failure: a fix confirmed while Clerk is down is not verified (the outage hides the app), so not resolved', async () => {
    await withIncident(
      { ...people, summary: 'dashboard answers 500', timeouts: { ...fast, resolveWithin: '2s' } },
      async ({ handle, sandbox }) => {
        await waitForState(handle, getIncidentState, pendingStep('operator_action'));
        sandbox.admin.setApp({ middlewareFailure: false }); // the operator rolled back...
        sandbox.admin.setOutage({ active: true, indicator: 'major' }); // ...just as Clerk went down
        await handle.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'carol' }] });
        const result = await handle.result();
        expect(outcomes(result)).toMatchObject({ operator_action: 'approved', verify_fix: 'failed' });
        expect(result.steps.find((x) => x.step === 'verify_fix')?.note).toMatch(/^could not verify the fix: status_page_outage: /);
        expect(result.status).toBe('needs_human');
      },
      (s) => void s.admin.setApp({ middlewareFailure: true }),
    );
  });

  it('nobody decides: escalation notified with the commands, then the safe default (timed_out, no bypass); Clerk is up, so it is resolved', async () => {
    await withIncident(
      { ...people, category: 'clerk_outage', summary: 'nobody can sign in', timeouts: { escalateAfter: '1s', decideWithin: '2s', probe: '2s' } },
      async ({ handle, chat }) => {
        const result = await handle.result();
        expect(outcomes(result)).toMatchObject({ emergency_bypass: 'timed_out', recovery_watch: 'succeeded', bypass_off: 'not_needed', review: 'succeeded' });
        expect(result.steps.some((s) => s.step === 'emergency_bypass' && s.outcome === 'not_automated')).toBe(false);
        expect(result.gates[0]).toMatchObject({ step: 'emergency_bypass', outcome: 'timed_out', escalated: true, approvals: [] });
        expect(result.attention).toContain('emergency_bypass timed out without a decision');
        expect(result.status).toBe('resolved'); // the status page says Clerk is up: verified by the recovery watch
        // The probes saw no outage: the disagreement is on record, the reporter's category stands.
        expect(result.triage?.agreement).toBe('disagreed');
        const escalation = chat.texts().find((t) => t.includes('Escalation: emergency_bypass'));
        expect(escalation).toContain(`--workflow-id ${handle.workflowId} --name approveStep`);
        expect(escalation).toContain('More Actions → Send an Update');
        const timeline = result.timeline.map((e) => e.description);
        expect(timeline).toContain('no decision after 1s: escalated');
        expect(timeline.some((d) => d.startsWith('timed_out: turn on the emergency auth bypass'))).toBe(true);
        // Timers carry summaries the UI shows.
        const history = await handle.fetchHistory();
        const timers = history.events?.filter((e) => e.timerStartedEventAttributes) ?? [];
        expect(timers.length).toBeGreaterThanOrEqual(2);
        expect(timers.every((e) => e.userMetadata?.summary)).toBe(true);
        const activities = history.events?.filter((e) => e.activityTaskScheduledEventAttributes) ?? [];
        expect(activities.every((e) => e.userMetadata?.summary)).toBe(true);
      },
    );
  });
});

describe('optional steps', () => {
  it('session issues: targeted revocation requested by one person, approved by another, run by the revocation child', async () => {
    await withIncident(
      { ...people, category: 'session_issues', summary: 'some users are signed out every minute', timeouts: fast },
      async ({ handle, sandbox }) => {
        const waiting = await waitForState(handle, getIncidentState, (s) => s.waitingFor.includes('requestStep'));
        expect(waiting.waitingFor).toContain('an optional request to end the sessions of the affected users');
        const users = (await sandboxDeps(sandbox).clerk?.listUsers({ limit: 2 }))?.users.map((u) => u.id) ?? [];
        expect(users).toHaveLength(2);

        expect(await refusal(handle.executeUpdate(requestStep, { args: [{ step: 'emergency_bypass', requester: 'carol' }] }))).toContain(
          'emergency_bypass cannot be requested in this incident',
        );
        expect(await refusal(handle.executeUpdate(requestStep, { args: [{ step: 'targeted_revocation', requester: 'carol' }] }))).toContain('update.userIds');
        const requested = await handle.executeUpdate(requestStep, { args: [{ step: 'targeted_revocation', requester: 'carol', userIds: users, reason: 'their sessions are corrupt' }] });
        expect(requested.requestedBy).toBe('carol');

        const gated = await waitForState(handle, getIncidentState, pendingStep('targeted_revocation'));
        expect(gated.pendingApprovals[0]).toMatchObject({ requestedBy: 'carol', approvalsNeeded: 1, eligible: ['alice', 'bob'] });
        expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'targeted_revocation', approver: 'carol' }] }))).toContain(
          'carol requested targeted_revocation and cannot approve their own request',
        );
        await handle.executeUpdate(approveStep, { args: [{ step: 'targeted_revocation', approver: 'alice' }] });
        const result = await handle.result();
        expect(outcomes(result)).toMatchObject({ diagnostics: 'succeeded', targeted_revocation: 'succeeded', review: 'succeeded' });
        expect(result.status).toBe('resolved');
        const revoked = Object.keys(sandbox.admin.revokes());
        const note = result.steps.find((s) => s.step === 'targeted_revocation' && s.outcome === 'succeeded')?.note ?? '';
        expect(note).toMatch(/^\d+ session\(s\) revoked/);
        expect(Number(/^(\d+)/.exec(note)?.[1])).toBe(revoked.length);
      },
    );
  });
});

describe('honest outcomes', () => {
  it('refuses at start an incident whose playbook has a gate it cannot fill, naming the field', async () => {
    await withIncident({ reporter: 'alice', approvers: ['alice', 'bob'], category: 'clerk_outage', summary: 'nobody can sign in', timeouts: fast }, async ({ handle }) => {
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(cause.type).toBe('InvalidIncidentInput');
      expect(cause.message).toContain(
        'input.approvers: clerk_outage asks for approval of emergency_bypass, which needs two different approvers other than the reporter alice; the incident lists 1 (alice, bob)',
      );
    });
  });

  it('Clerk outage: the bypass is done by hand and confirmed, Clerk recovers, the bypass is turned off by hand: resolved', async () => {
    await withIncident(
      { ...people, category: 'clerk_outage', summary: 'nobody can sign in', timeouts: { ...fast, recoveryCheckEvery: '1s', recoveryWatchFor: '30s' } },
      async ({ handle, sandbox }) => {
        await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'));
        await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob' }] });
        await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol' }] });
        const waiting = await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'emergency_bypass' && !m.outcome));
        // Nothing goes on to monitoring before the person confirms.
        expect(waiting.status).toBe('mitigating');
        expect(waiting.steps.some((x) => x.step === 'recovery_watch')).toBe(false);
        await handle.executeUpdate(confirmStep, { args: [{ step: 'emergency_bypass', confirmedBy: 'carol', note: 'AUTH_BYPASS=1 set on Vercel, redeployed dpl_1' }] });
        sandbox.admin.setOutage({ active: false }); // Clerk comes back
        await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'bypass_off' && !m.outcome), 30_000);
        await handle.executeUpdate(confirmStep, { args: [{ step: 'bypass_off', confirmedBy: 'bob', note: 'AUTH_BYPASS removed, redeployed dpl_2' }] });
        const result = await handle.result();
        expect(result.status).toBe('resolved');
        expect(outcomes(result)).toMatchObject({ emergency_bypass: 'done_by_hand', recovery_watch: 'succeeded', bypass_off: 'done_by_hand' });
        expect(result.steps.find((x) => x.step === 'bypass_off')?.note).toContain('confirmed by bob: AUTH_BYPASS removed, redeployed dpl_2');
      },
      (s) => void s.admin.setOutage({ active: true, indicator: 'major' }),
    );
  });

  it('key compromise: a rotation nobody confirms is timed_out, the revocation is skipped (not asked), and the incident needs a human', async () => {
    await withIncident(
      { ...people, category: 'key_compromise', summary: 'key in a public gist', timeouts: { ...fast, escalateAfter: '2s', decideWithin: '4s', resolveWithin: '2s', steps: { rotate_secret_key: { escalateAfter: '20s', decideWithin: '40s' } } } },
      async ({ handle }) => {
        await waitForState(handle, getIncidentState, pendingStep('rotate_secret_key'));
        await handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'bob' }] });
        await handle.executeUpdate(approveStep, { args: [{ step: 'rotate_secret_key', approver: 'carol' }] });
        const result = await handle.result();
        expect(result.steps.filter((x) => x.step === 'rotate_secret_key').map((x) => x.outcome)).toEqual(['approved', 'timed_out']);
        expect(outcomes(result)).toMatchObject({ revoke_all_sessions: 'skipped' });
        expect(result.gates.map((g) => g.step)).toEqual(['rotate_secret_key']); // never asked to revoke
        expect(result.status).toBe('needs_human');
        expect(result.openItems).toEqual(['rotate_secret_key not done (timed_out)', 'revoke_all_sessions not done (skipped)']);
        expect(result.manualSteps[0]).toMatchObject({ step: 'rotate_secret_key', outcome: 'timed_out', escalated: true });
      },
    );
  });

  it('session issues: a targeted revocation with a user Clerk does not know is partial, names the id, and leaves the incident open', async () => {
    await withIncident(
      { ...people, category: 'session_issues', summary: 'two users signed out every minute', timeouts: { ...fast, resolveWithin: '2s' } },
      async ({ handle, sandbox }) => {
        await waitForState(handle, getIncidentState, (s) => s.waitingFor.includes('requestStep'));
        const [known] = (await sandboxDeps(sandbox).clerk?.listUsers({ limit: 1 }))?.users.map((u) => u.id) ?? [];
        const unknown = 'user_doesnotexist00000000001';
        await handle.executeUpdate(requestStep, { args: [{ step: 'targeted_revocation', requester: 'carol', userIds: [known as string, unknown] }] });
        await waitForState(handle, getIncidentState, pendingStep('targeted_revocation'));
        await handle.executeUpdate(approveStep, { args: [{ step: 'targeted_revocation', approver: 'bob' }] });
        const result = await handle.result();
        const step = result.steps.find((x) => x.step === 'targeted_revocation' && x.outcome !== 'approved');
        expect(step?.outcome).toBe('partial');
        expect(step?.note).toContain(`1 user(s) not found: ${unknown}`);
        expect(result.attention.some((a) => a.startsWith('targeted_revocation partial: 1 user(s) not found: user_doesnotexist'))).toBe(true);
        expect(result.status).toBe('needs_human');
        // The remedy is not verified: the revocation left a user's sessions (the one Clerk does not know).
        expect(result.openItems).toEqual(['verify_remedy not done (failed)', expect.stringMatching(/^targeted_revocation partial: .*1 user\(s\) not found: user_doesnotexist/)]);
      },
    );
  });

  it('session issues: diagnostics run on the affected users, see sessions the instance grants for a minute, and propose the lifetime setting (not a revocation)', async () => {
    const affected: string[] = [];
    await withIncident(
      { ...people, category: 'session_issues', summary: 'two users signed out every minute', affectedUserIds: affected, timeouts: fast },
      async ({ handle }) => {
        const waiting = await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'update_session_lifetime'));
        const diagnostics = waiting.steps.find((x) => x.step === 'diagnostics');
        expect(diagnostics?.outcome).toBe('succeeded');
        expect(diagnostics?.note).toMatch(/^(warn|fail): /);
        expect(waiting.timeline.find((e) => e.step === 'diagnostics')?.details?.checks).toEqual(
          expect.arrayContaining([expect.stringMatching(/^(warn|fail) session_lifetime: /)]),
        );
        expect(waiting.timeline.find((e) => e.step === 'remedy')?.description).toMatch(/^session_lifetime failed, the most likely cause: remedy session_lifetime \(set the instance's maximum session lifetime to 7d \(the instance grants 1m\)\)/);
        expect(waiting.waitingFor).not.toContain('targeted_revocation');
        await handle.cancel();
        await handle.result().catch(() => undefined);
      },
      // Before the incident starts: two users whose sessions keep expiring after a minute.
      (s) => void affected.push(...s.admin.createUsers({ count: 2, expiredSessions: { count: 4, lifetimeMs: 60_000 } }).map((u) => u.id)),
    );
  });

  it('webhook backlog: the reconciliation is done by hand; once confirmed the incident is resolved', async () => {
    await withIncident({ ...people, category: 'webhook_backlog', summary: 'user.created events missing', timeouts: fast }, async ({ handle }) => {
      await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'));
      await handle.executeUpdate(confirmStep, { args: [{ step: 'reconcile_webhooks', confirmedBy: 'alice', note: 'replayed 12 events from the Svix portal' }] });
      const result = await handle.result();
      expect(outcomes(result)).toMatchObject({ reconcile_webhooks: 'done_by_hand' });
      expect(result.status).toBe('resolved');
    });
  });
});

describe('cancellation', () => {
  it('runs the compensations of applied steps: the incident notice is withdrawn', async () => {
    await withIncident(
      { ...people, category: 'session_issues', summary: 'false alarm', timeouts: fast },
      async ({ handle, chat }) => {
        await waitForState(handle, getIncidentState, (s) => s.steps.some((x) => x.step === 'incident_notice'));
        await cancelAndWait(handle);
        const state = await handle.query(getIncidentState);
        expect(state.status).toBe('cancelled');
        expect(state.steps.filter((s) => s.step === 'incident_notice').map((s) => s.outcome)).toEqual(['succeeded', 'compensated']);
        // A cancelled incident gets its review too.
        expect(state.steps.at(-1)).toMatchObject({ step: 'review', outcome: 'succeeded' });
        expect(state.review).toMatch(/cancelled/);
        expect(chat.texts().some((t) => t.includes('Incident notice withdrawn'))).toBe(true);
        expect(state.attention.some((a) => a.includes('compensation'))).toBe(false);
        expect((await handle.describe()).typedSearchAttributes.get(IncidentStatusKey)).toBe('cancelled');
      },
    );
  });

  it('escalates a compensation that fails instead of swallowing it', async () => {
    await withIncident(
      { ...people, category: 'session_issues', summary: 'false alarm', timeouts: fast },
      async ({ handle, chat }) => {
        await waitForState(handle, getIncidentState, (s) => s.steps.some((x) => x.step === 'incident_notice'));
        chat.respond = (m) => (m.text.includes('Incident notice withdrawn') ? 400 : 200); // the channel refuses the withdrawal
        await cancelAndWait(handle);
        const state = await handle.query(getIncidentState);
        expect(state.status).toBe('cancelled');
        const undo = state.steps.filter((s) => s.step === 'incident_notice');
        expect(undo.map((s) => s.outcome)).toEqual(['succeeded', 'failed']);
        expect(undo[1]?.note).toContain('compensation of incident_notice failed (withdraw the incident notice)');
        expect(undo[1]?.note).toContain('HTTP 400');
        expect(state.attention.some((a) => a.includes('a human must undo it'))).toBe(true);
        const escalation = chat.texts().find((t) => t.includes('Compensation failed: incident_notice'));
        expect(escalation).toContain('a human must undo it');
      },
    );
  });
});
