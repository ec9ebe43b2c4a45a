/**
 * Bad input at the workflow boundary (docs/guarantees.md, "Bad input"), on the run's real dev
 * server with one worker for the file: a malformed start of every workflow fails at once with a
 * non-retryable ApplicationFailure naming the field (never a workflow task retried for ever), and
 * a malformed update of every kind is refused by its validator, leaving no trace in history, the
 * incident's state unchanged, and the workflow still taking a good update. The CLI, the sandbox's
 * admin API and the codec server are in bad-input-boundaries.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { DEFAULT_MAPPING, openUserStore, type UserStore } from '../src/stores';
import { approveStep, decideReconcile, getIncidentState, getReconcileProgress } from '../src/workflows';
import type { IncidentState } from '../src/workflows/incident';
import { getBypassLease } from '../src/workflows/bypass-lease-messages';
import { eventually, pendingStep, sandboxDeps, waitForState } from './helpers/incident';
import { tempSqliteUrl } from './helpers/reconcile';
import { emptyTotals } from '../src/revoke-sessions';
import { emptyReconcileTotals, emptySamples } from '../src/reconcile';
import { firstCursor } from '../src/user-paging';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';
import { huge, MB_STRING, type StartRow, type UpdateRow } from './helpers/bad-input';
import { DELIBERATE_SECRET_PREFIX } from './helpers/history-scan';
import { SECRET_SAMPLES } from './helpers/secret-shapes';

/** A secret sample by kind (tests/helpers/secret-shapes.ts). */
const secret = (kind: string) => SECRET_SAMPLES.find(([k]) => k === kind)![1];
const SECRET_TEXT = /looks like .*never carries a secret/;

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let store: UserStore;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueTaskQueue('bad-input');

beforeAll(async () => {
  temporal = await connectTemporal();
  // Five users in Clerk and none in the store: a reconciliation plans five deliveries and waits for approval.
  sandbox = await startSandbox({ users: 5, seed: 'bad-input', rateLimit: 'off' });
  store = openUserStore(tempSqliteUrl());
  await store.ensureSchema();
  worker = await testWorker(temporal.nativeConnection, taskQueue, {
    ...sandboxDeps(sandbox),
    reconcile: { store, mapping: DEFAULT_MAPPING, delivery: { type: 'store' } },
  });
  running = worker.run();
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await temporal?.close();
  await sandbox?.close();
  await store?.close();
});

// -- starts ---------------------------------------------------------------------------------------

const incident = { category: 'middleware_failure', reporter: 'alice', summary: 'dashboard answers 500', approvers: ['bob'] };
const revoke = { scope: { type: 'users', userIds: ['user_1'] }, requestedBy: 'alice', reason: 'test: a leaked token' };
const reconcile = { requestedBy: 'alice', reason: 'test: webhook deliveries were lost' };
/** Checkpoints that parse, as a run hands them to the next: a start that carries one forges the run's progress. */
const revocationCheckpoint = { startedAt: Date.now(), lastActiveAtAfter: null, lastActiveAtBefore: null, usersInInstance: 1, usersInScope: 1, cursor: firstCursor('ids'), totals: { ...emptyTotals(), usersScanned: 1 }, failures: [], failuresDropped: 0, batches: 1, runs: 1, lastBatchFinishedAt: Date.now(), timeline: [] };
const reconcileCheckpoint = { startedAt: Date.now(), stage: 'done', cursor: firstCursor('listing'), delivery: null, storeRows: null, usersInScope: null, planned: null, totals: emptyReconcileTotals(), samples: emptySamples(), failures: [], failuresDropped: 0, approval: null, svixPortalUrl: null, lastError: null, batches: 0, runs: 1, lastBatchFinishedAt: null, timeline: [] };
const without = (o: object, key: string) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== key));

const START_ROWS: StartRow[] = [
  // incidentWorkflow
  ['incidentWorkflow', 'detection by someone', { ...incident, detection: { detectedBy: 'alice', detectedAt: '2026-12-02T03:00:00Z' } }, /input\.detection\.detectedBy: must be "watch", "manual" or "alert:<receiver>"/],
  ['incidentWorkflow', 'detection without a time', { ...incident, detection: { detectedBy: 'watch' } }, /input\.detection\.detectedAt: must be an ISO date-time/],
  ['incidentWorkflow', 'detection in the future', { ...incident, detection: { detectedBy: 'watch', detectedAt: '2999-01-01T00:00:00Z' } }, /input\.detection\.detectedAt: must not be in the future/],
  ['incidentWorkflow', 'detection evidence forging a line', { ...incident, detection: { detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', evidence: ['ok\n2026-12-02 approved by bob'] } }, /input\.detection\.evidence\.0: must be one line/],
  ['incidentWorkflow', 'unknown category', { ...incident, category: 'drop_tables' }, /input\.category: .*expected one of "clerk_outage"/],
  ['incidentWorkflow', 'category of the wrong type', { ...incident, category: 42 }, /input\.category: .*expected one of/],
  ['incidentWorkflow', 'reporter missing', without(incident, 'reporter'), /input\.reporter: .*expected string, received undefined/],
  ['incidentWorkflow', 'unknown field', { ...incident, severity: 'low' }, /input\.severity: unknown field/],
  ['incidentWorkflow', '1 MB summary', { ...incident, summary: MB_STRING }, /input\.summary: Too big: expected string to have <=2000 characters/],
  ['incidentWorkflow', '100k approvers', { ...incident, approvers: huge(100_000, (i) => `approver${i}`) }, /input\.approvers: Too big: expected array to have <=50 items/],
  ['incidentWorkflow', 'NUL in the reporter', { ...incident, reporter: 'alice\u0000' }, /input\.reporter: must be one line of plain text/],
  ['incidentWorkflow', 'ANSI escape in an approver', { ...incident, approvers: ['bob\u001b[31m'] }, /input\.approvers\.0: must be one line of plain text/],
  ['incidentWorkflow', 'newline in the reporter', { ...incident, reporter: 'alice\n[WARN] forged log line' }, /input\.reporter: must be one line of plain text/],
  ['incidentWorkflow', 'ANSI escape in the summary', { ...incident, summary: 'sign-in broken \u001b[2J' }, /input\.summary: must be plain text/],
  ['incidentWorkflow', 'lone surrogate in the summary', { ...incident, summary: 'broken \ud800 text' }, /input\.summary: .*broken Unicode/],
  ['incidentWorkflow', 'SQL injection as a user id', { ...incident, category: 'session_issues', approvers: [], affectedUserIds: ["user_1'; DROP TABLE users;--"] }, /input\.affectedUserIds\.0: must be a Clerk user id/],
  ['incidentWorkflow', 'shell injection as a time', { ...incident, category: 'key_compromise', approvers: ['bob', 'carol'], exposedAt: '$(rm -rf /)' }, /input\.exposedAt: must be an ISO date-time/],
  ['incidentWorkflow', 'script as a duration', { ...incident, timeouts: { decideWithin: '<script>alert(1)</script>' } }, /input\.timeouts\.decideWithin: must be a duration/],
  ['incidentWorkflow', 'a string, not an object', 'please start an incident', /input: .*expected object, received string/],
  ['incidentWorkflow', 'dryRun as a string', { ...incident, dryRun: 'yes' }, /input\.dryRun: .*expected boolean, received string/],
  ['incidentWorkflow', 'one approver under two cases', { ...incident, approvers: ['bob', 'Bob'] }, /input\.approvers\.1: Bob is the same person as bob/],
  ['incidentWorkflow', 'one approver in full-width letters', { ...incident, approvers: ['alice@example.com', 'ａｌｉｃｅ@example.com'] }, /input\.approvers\.1: ａｌｉｃｅ@example\.com is the same person as alice@example\.com/],
  ['incidentWorkflow', 'one approver with padding and ẞ', { ...incident, approvers: ['strauss', ' STRAUẞ '] }, /input\.approvers\.1: .* is the same person as strauss/],
  ['incidentWorkflow', 'a Clerk secret key in the summary', { ...incident, summary: secret('Clerk live secret key') }, new RegExp(`input\\.summary: ${SECRET_TEXT.source}`)],
  ['incidentWorkflow', 'a Vercel token in the summary', { ...incident, summary: secret('Vercel token (assigned)') }, /input\.summary: looks like a secret assigned to a variable/],
  ['incidentWorkflow', 'a private key in the summary', { ...incident, summary: secret('private key (PEM)') }, /input\.summary: looks like a private key/],
  ['incidentWorkflow', 'a GitHub token as the reporter', { ...incident, reporter: secret('GitHub personal token') }, /input\.reporter: looks like a GitHub token/],
  ['incidentWorkflow', 'an exposedAt in the future', { ...incident, category: 'key_compromise', approvers: ['bob', 'carol'], exposedAt: new Date(Date.now() + 86_400_000).toISOString() }, /input\.exposedAt: must not be in the future/],
  ['incidentWorkflow', 'field of another category', { ...incident, targetedRevocation: { userIds: ['user_1'] } }, /input\.targetedRevocation: only for category session_issues/],
  ['incidentWorkflow', 'a rollback named for another category', { ...incident, category: 'webhook_backlog', rollback: { from: 'release-41', to: 'release-40' } }, /input\.rollback: only for category middleware_failure/],
  ['incidentWorkflow', 'a rollback to the deployment it comes from', { ...incident, category: 'middleware_failure', rollback: { from: 'release-41', to: 'release-41' } }, /input\.rollback\.to: from and to must be different deployments/],
  ['incidentWorkflow', 'a deployment id that forges a line', { ...incident, category: 'middleware_failure', rollback: { from: 'release-41', to: 'release-40\n2026-12-03T03:00:00Z bob: approved' } }, /input\.rollback\.to: must be a deployment id/],
  ['incidentWorkflow', 'a deployment id with markup', { ...incident, category: 'middleware_failure', rollback: { from: '[x](http://evil)', to: 'release-40' } }, /input\.rollback\.from: must be a deployment id/],
  ['incidentWorkflow', 'a rollback with an unknown field', { ...incident, category: 'middleware_failure', rollback: { from: 'a', to: 'b', force: true } }, /input\.rollback\.force: unknown field/],
  // The carried state of continue-as-new (second argument): only for a run the incident continued itself.
  ['incidentWorkflow', 'carried state on a new incident', incident, /carried state: only a run the incident continued as new itself/, { runs: 1, state: { status: 'resolved' }, journal: {}, optional: { requests: [], closed: [], until: {} }, dropped: { count: 0, lastRecordedAt: 0 } }],
  ['incidentWorkflow', 'carried state as a string', incident, /carried state: only a run the incident continued as new itself/, 'approved'],
  // revokeSessionsWorkflow
  ['revokeSessionsWorkflow', 'unknown scope type', { ...revoke, scope: { type: 'everyone' } }, /input\.scope\.type: Invalid discriminator value\. Expected 'all' \| 'users' \| 'activeBetween'/],
  ['revokeSessionsWorkflow', '20k user ids', { ...revoke, scope: { type: 'users', userIds: huge(20_000, (i) => `user_${i}`) } }, /input\.scope\.userIds: Too big: expected array to have <=10000 items/],
  ['revokeSessionsWorkflow', 'requestedBy missing', without(revoke, 'requestedBy'), /input\.requestedBy: .*expected string, received undefined/],
  ['revokeSessionsWorkflow', 'shell injection as a user id', { ...revoke, excludeUserIds: ['$(rm -rf /)'] }, /input\.excludeUserIds\.0: must be a Clerk user id/],
  ['revokeSessionsWorkflow', 'unknown field', { ...revoke, force: true }, /input\.force: unknown field/],
  ['revokeSessionsWorkflow', 'a forged checkpoint (a run that says it is done)', { ...revoke, checkpoint: revocationCheckpoint }, /input\.checkpoint: only a run continued as new carries one/],
  ['revokeSessionsWorkflow', 'a Slack token in the reason', { ...revoke, reason: secret('Slack bot token') }, /input\.reason: looks like a Slack token/],
  ['revokeSessionsWorkflow', 'newline in the incident id', { ...revoke, incidentId: 'incident-1\nincident-2' }, /input\.incidentId: must be one line of plain text/],
  // reconcileUsersWorkflow
  ['reconcileUsersWorkflow', 'time that is not a time', { ...reconcile, scope: { type: 'createdBetween', from: 'yesterday' } }, /input\.scope\.from: must be an ISO 8601 time/],
  ['reconcileUsersWorkflow', 'negative threshold', { ...reconcile, approvalAbove: -1 }, /input\.approvalAbove: Too small/],
  ['reconcileUsersWorkflow', 'page size above Clerk’s limit', { ...reconcile, tuning: { pageSize: 10_000 } }, /input\.tuning\.pageSize: Too big: expected number to be <=500/],
  ['reconcileUsersWorkflow', '1 MB reason', { ...reconcile, reason: MB_STRING }, /input\.reason: Too big: expected string to have <=2000 characters/],
  ['reconcileUsersWorkflow', 'a forged checkpoint', { ...reconcile, checkpoint: reconcileCheckpoint }, /input\.checkpoint: only a run continued as new carries one/],
  ['reconcileUsersWorkflow', 'an AWS key in the reason', { ...reconcile, reason: secret('AWS access key id') }, /input\.reason: looks like an AWS access key id/],
  ['reconcileUsersWorkflow', 'sweepStore as a string', { ...reconcile, sweepStore: 'false' }, /input\.sweepStore: .*expected boolean, received string/],
];

const REFUSAL_TYPE = { incidentWorkflow: 'InvalidIncidentInput', revokeSessionsWorkflow: 'InvalidRevocationInput', reconcileUsersWorkflow: 'InvalidReconcileInput' } as const;

describe.concurrent('a malformed start fails at once, naming the field', () => {
  it.each(START_ROWS)('%s: %s', async (workflow, _what, input, message, second) => {
    // A start carrying a secret keeps it in its start event (Temporal records a start before any code
    // runs; the CLI refuses it before starting): this test puts it there on purpose, under an id the
    // suite's scan of every history knows (tests/global-setup.ts), so the scan stays strict for the rest.
    const deliberate = SECRET_SAMPLES.some(([, text]) => JSON.stringify(input).includes(JSON.stringify(text).slice(1, -1)));
    const workflowId = deliberate ? `${DELIBERATE_SECRET_PREFIX}${randomUUID()}` : uniqueWorkflowId(`bad-${workflow}`);
    const handle = await temporal.client.workflow.start(workflow, { taskQueue, workflowId, args: second === undefined ? [input] : [input, second] });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe(REFUSAL_TYPE[workflow]);
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
    expect(cause?.message).toMatch(message);
    // Failed on its first workflow task: nothing retried, nothing ran before the refusal.
    const { events } = await handle.fetchHistory();
    expect(events?.filter((e) => e.workflowTaskFailedEventAttributes)).toEqual([]);
    expect(events?.filter((e) => e.activityTaskScheduledEventAttributes || e.startChildWorkflowExecutionInitiatedEventAttributes)).toEqual([]);
    expect(events?.at(-1)?.workflowExecutionFailedEventAttributes).toBeTruthy();
  });
});

// -- updates --------------------------------------------------------------------------------------

const UPDATE_ROWS: UpdateRow[] = [
  ['incident', 'approveStep', 'unknown step', { step: 'drop_tables', approver: 'bob' }, /update\.step: .*expected one of "emergency_bypass"/],
  ['incident', 'approveStep', 'approver missing', { step: 'operator_action' }, /update\.approver: .*expected string, received undefined/],
  ['incident', 'approveStep', 'unknown field', { step: 'operator_action', approver: 'bob', force: true }, /update\.force: unknown field/],
  ['incident', 'approveStep', '1 MB comment', { step: 'operator_action', approver: 'bob', comment: MB_STRING }, /update\.comment: Too big/],
  ['incident', 'approveStep', 'newline in the approver', { step: 'operator_action', approver: 'bob\nmallory' }, /update\.approver: must be one line of plain text/],
  ['incident', 'rejectStep', 'reason missing', { step: 'operator_action', approver: 'bob' }, /update\.reason: a rejection needs a reason/],
  ['incident', 'rejectStep', 'step of the wrong type', { step: 42, approver: 'bob', reason: 'no' }, /update\.step: .*expected one of/],
  ['incident', 'rejectStep', 'ANSI escape in the reason', { step: 'operator_action', approver: 'bob', reason: '\u001b[31mred\u001b[0m' }, /update\.reason: must be plain text/],
  ['incident', 'requestStep', 'a remedy that is not optional', { step: 'update_allowed_origins', requester: 'alice' }, /update\.step: update_allowed_origins cannot be requested in this incident/],
  ['incident', 'requestStep', 'the undo of a rollback that never happened', { step: 'undo_rollback', requester: 'alice' }, /update\.step: undo_rollback can be requested once a rollback is verified and in place \(there is none\)/],
  ['incident', 'requestStep', 'SQL injection as a user id', { step: 'targeted_revocation', requester: 'alice', userIds: ["user_1'; DROP TABLE sessions;--"] }, /update\.userIds\.0: must be a Clerk user id/],
  ['incident', 'requestStep', '100k user ids', { step: 'targeted_revocation', requester: 'alice', userIds: huge(100_000, (i) => `user_${i}`) }, /update\.userIds: Too big: expected array to have <=1000 items/],
  ['incident', 'requestStep', 'NUL as the requester', { step: 'targeted_revocation', requester: '\u0000', userIds: ['user_1'] }, /update\.requester: must be one line of plain text/],
  ['incident', 'confirmStep', 'unknown step', { step: 'rotate_everything', confirmedBy: 'alice', note: 'done' }, /update\.step: .*expected one of "emergency_bypass"/],
  ['incident', 'confirmStep', 'empty note', { step: 'rotate_secret_key', confirmedBy: 'alice', note: '   ' }, /update\.note: say what was done/],
  ['incident', 'resolve', 'unknown detection', { resolvedBy: 'alice', summary: 'fixed', detection: 'psychic' }, /update\.detection: .*expected one of "monitoring_alert"/],
  ['incident', 'resolve', 'negative count', { resolvedBy: 'alice', summary: 'fixed', usersAffected: -5 }, /update\.usersAffected: Too small/],
  ['incident', 'resolve', '100k action items', { resolvedBy: 'alice', summary: 'fixed', actionItems: huge(100_000, (i) => `item ${i}`) }, /update\.actionItems: Too big: expected array to have <=50 items/],
  ['incident', 'extendBypass', 'duration that is not one', { approver: 'bob', extendBy: 'forever', reason: 'still down' }, /update\.extendBy: must be a duration/],
  ['incident', 'extendBypass', 'duration as a number', { approver: 'bob', extendBy: 1800, reason: 'still down' }, /update\.extendBy: .*expected string, received number/],
  ['incident', 'provideNewKey', 'a raw secret key instead of a reference', { ref: 'sk_test_AbCdEfGhIjKlMnOpQrSt', providedBy: 'alice' }, /update\.ref: this looks like a raw secret key/],
  ['incident', 'provideNewKey', 'shell injection as a reference', { ref: '$(rm -rf /)', providedBy: 'alice' }, /update\.ref: must be a key reference/],
  ['incident', 'provideNewKey', 'escape in a file reference', { ref: 'file:/run/secrets/clerk\u001b[2J', providedBy: 'alice' }, /update\.ref: must be a key reference/],
  ['incident', 'provideNewKey', 'the worker environment as a file', { ref: 'file:/proc/self/environ', providedBy: 'alice' }, /update\.ref: a key file cannot be under \/proc/],
  ['incident', 'provideNewKey', 'a ../ escape', { ref: 'file:/run/secrets/../../etc/shadow', providedBy: 'alice' }, /update\.ref: a file: path must be plain/],
  ['incident', 'provideNewKey', "the worker's deployment token", { ref: 'env:VERCEL_TOKEN', providedBy: 'alice' }, /update\.ref: VERCEL_TOKEN is one of the worker's own secrets/],
  ['incident', 'provideNewKey', "the worker's own key", { ref: 'env:CLERK_SECRET_KEY', providedBy: 'alice' }, /update\.ref: CLERK_SECRET_KEY is one of the worker's own secrets/],
  ['incident', 'provideNewKey', 'a vault .. path', { ref: 'vault:secret/clerk/../../sys#token', providedBy: 'alice' }, /update\.ref: a vault: path must be plain/],
  ['incident', 'provideNewKey', 'an encoded vault traversal', { ref: 'vault:secret/%2e%2e/sys#token', providedBy: 'alice' }, /update\.ref: a vault: reference must be plain: no "%"/],
  ['incident', 'provideNewKey', 'a Clerk key in the note', { ref: 'file:/run/secrets/clerk-new', providedBy: 'alice', note: secret('Clerk test secret key') }, new RegExp(`update\\.note: ${SECRET_TEXT.source}`)],
  ['incident', 'approveStep', 'a webhook secret in the comment', { step: 'operator_action', approver: 'bob', comment: secret('Clerk/Svix webhook secret') }, /update\.comment: looks like a webhook signing secret/],
  ['incident', 'rejectStep', 'a JWT in the reason', { step: 'operator_action', approver: 'bob', reason: secret('JWT') }, /update\.reason: looks like a JWT/],
  ['incident', 'requestStep', 'a bearer token in the reason', { step: 'targeted_revocation', requester: 'alice', reason: secret('bearer token'), userIds: ['user_1'] }, /update\.reason: looks like a bearer token/],
  ['incident', 'confirmStep', 'a Vault token in the note', { step: 'rotate_secret_key', confirmedBy: 'alice', note: secret('Vault token') }, /update\.note: looks like a HashiCorp Vault token/],
  ['incident', 'resolve', 'a private key in the summary', { resolvedBy: 'alice', summary: secret('RSA private key (PEM)') }, /update\.summary: looks like a private key/],
  ['incident', 'resolve', 'a key in a lesson', { resolvedBy: 'alice', summary: 'fixed', lessons: { wentWrong: [secret('Clerk live secret key')] } }, /update\.lessons\.wentWrong\.0: looks like a Clerk secret key/],
  ['incident', 'extendBypass', 'a GitHub token in the reason', { approver: 'bob', extendBy: '10m', reason: secret('GitHub fine-grained token') }, /update\.reason: looks like a GitHub token/],
  ['incident', 'confirmOldKeyDeleted', 'a payload key in the note', { confirmedBy: 'alice', note: secret('payload encryption key') }, /update\.note: looks like a 32-byte base64 key/],
  ['incident', 'confirmOldKeyDeleted', 'confirmedBy of the wrong type', { confirmedBy: 123 }, /update\.confirmedBy: .*expected string, received number/],
  ['incident', 'confirmOldKeyDeleted', 'unknown field', { confirmedBy: 'alice', keyId: 'ins_1' }, /update\.keyId: unknown field/],
  ['incident', 'recordDetection', 'unknown kind', { kind: 'closed', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k' }, /update\.kind: .*expected one of "firing"\|"cleared"/],
  ['incident', 'recordDetection', 'detectedBy not a source', { kind: 'firing', detectedBy: 'alice', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k' }, /update\.detectedBy: must be "watch", "manual" or "alert:<receiver>"/],
  ['incident', 'recordDetection', 'a newline in the receiver', { kind: 'firing', detectedBy: 'alert:pager\nforged', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k' }, /update\.detectedBy: must be one line of plain text/],
  ['incident', 'recordDetection', 'detectedAt not a time', { kind: 'firing', detectedBy: 'watch', detectedAt: 'at 3 a.m.', dedupKey: 'k' }, /update\.detectedAt: must be an ISO date-time/],
  ['incident', 'recordDetection', 'dedupKey missing', { kind: 'cleared', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z' }, /update\.dedupKey: .*expected string, received undefined/],
  ['incident', 'recordDetection', '21 evidence lines', { kind: 'firing', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k', evidence: huge(21, () => 'x') }, /update\.evidence: Too big/],
  ['incident', 'recordDetection', 'an evidence line of two', { kind: 'firing', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k', evidence: ['a\nb'] }, /update\.evidence\.0: must be one line/],
  ['incident', 'recordDetection', 'a secret key in the evidence', { kind: 'firing', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k', evidence: [secret('Clerk live secret key')] }, /update\.evidence\.0: looks like a Clerk secret key/],
  ['incident', 'recordDetection', 'unknown field', { kind: 'firing', detectedBy: 'watch', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k', close: true }, /update\.close: unknown field/],
  ['incident', 'completeReview', 'completedBy missing', { rootCause: 'x' }, /update\.completedBy: .*expected string, received undefined/],
  ['incident', 'completeReview', 'an action item without owner', { completedBy: 'alice', actionItems: [{ title: 'canary', due: '2026-12-20' }] }, /update\.actionItems\.0\.owner: .*expected string, received undefined/],
  ['incident', 'completeReview', 'a due date that is no date', { completedBy: 'alice', actionItems: [{ title: 'canary', owner: 'bob', due: '2026-02-30' }] }, /update\.actionItems\.0\.due: must be a date like "2026-12-31"/],
  ['incident', 'completeReview', 'an unknown action item state', { completedBy: 'alice', actionItems: [{ title: 'canary', owner: 'bob', due: '2026-12-20', state: 'wontfix' }] }, /update\.actionItems\.0\.state: .*expected one of "open"\|"done"\|"dropped"/],
  ['incident', 'completeReview', '51 action items', { completedBy: 'alice', actionItems: huge(51, (i) => ({ title: `t${i}`, owner: 'bob', due: '2026-12-20' })) }, /update\.actionItems: Too big/],
  ['incident', 'completeReview', 'a secret key in the root cause', { completedBy: 'alice', rootCause: secret('Clerk live secret key') }, /update\.rootCause: looks like a Clerk secret key/],
  ['incident', 'finalizeReview', 'finalizedBy of the wrong type', { finalizedBy: 7 }, /update\.finalizedBy: .*expected string, received number/],
  ['incident', 'finalizeReview', 'unknown field', { finalizedBy: 'alice', force: true }, /update\.force: unknown field/],
  ['incident', 'completeReview', 'before the incident is resolved', { completedBy: 'alice', rootCause: 'too early' }, /update: the incident is not in its post-incident phase/],
  ['incident', 'requestCancel', 'cancelledBy missing', { reason: 'false alarm' }, /update\.cancelledBy: .*expected string, received undefined/],
  ['incident', 'requestCancel', 'newline in cancelledBy', { cancelledBy: 'alice\nbob' }, /update\.cancelledBy: must be one line of plain text/],
  ['incident', 'requestCancel', 'unknown field', { cancelledBy: 'alice', force: true }, /update\.force: unknown field/],
  ['incident', 'requestCancel', 'a secret key in the reason', { cancelledBy: 'alice', reason: secret('Clerk live secret key') }, /update\.reason: looks like a Clerk secret key/],
  ['incident', 'confirmStep', '100 kB signature', { step: 'operator_action', confirmedBy: 'alice', note: 'done', signature: 'x'.repeat(100_000) }, /update\.signature: Too big/],
  ['incident', 'resolve', 'nonce of the wrong type', { resolvedBy: 'alice', summary: 'over', nonce: 7 }, /update\.nonce: .*expected string, received number/],
  ['reconcile', 'decideReconcile', 'unknown decision', { decision: 'maybe', approver: 'bob' }, /update\.decision: .*expected one of "approve"\|"reject"/],
  ['reconcile', 'decideReconcile', 'approver missing', { decision: 'approve' }, /update\.approver: .*expected string, received undefined/],
  ['reconcile', 'decideReconcile', '1 MB reason', { decision: 'reject', approver: 'bob', reason: MB_STRING }, /update\.reason: Too big/],
  ['reconcile', 'decideReconcile', 'a Svix token in the reason', { decision: 'reject', approver: 'bob', reason: secret('Svix-style API token') }, /update\.reason: looks like an API secret key/],
  ['reconcile', 'decideReconcile', 'a string, not an object', 'approve', /update: .*expected object, received string/],
  // the bypass lease: any client with namespace access can send these, not only the incident's activities
  ['lease', 'acquireBypass', 'until that is not a time', { workflowId: 'incident-1', runId: 'run-1', incidentId: 'incident-1', until: 'tomorrow' }, /update\.until: /],
  ['lease', 'acquireBypass', 'newline in the incident id', { workflowId: 'incident-1', runId: 'run-1', incidentId: 'incident-1\nforged', until: '2099-01-01T00:00:00Z' }, /update\.incidentId: must be one line of plain text/],
  ['lease', 'acquireBypass', 'unknown field', { workflowId: 'incident-1', runId: 'run-1', incidentId: 'incident-1', until: '2099-01-01T00:00:00Z', holders: [] }, /update\.holders: unknown field/],
  ['lease', 'extendBypassLease', 'extension as a duration string', { workflowId: 'incident-1', runId: 'run-1', extendByMs: '30m' }, /update\.extendByMs: .*expected number, received string/],
  ['lease', 'extendBypassLease', 'a year of extension', { workflowId: 'incident-1', runId: 'run-1', extendByMs: 365 * 86_400_000 }, /update\.extendByMs: Too big/],
  ['lease', 'releaseBypass', '1 MB reason', { workflowId: 'incident-1', runId: 'run-1', reason: MB_STRING, verifyWithinMs: 60_000, probeTimeoutMs: 5000 }, /update\.reason: Too big/],
  ['lease', 'releaseBypass', 'workflow id missing', { runId: 'run-1', reason: 'done', verifyWithinMs: 60_000, probeTimeoutMs: 5000 }, /update\.workflowId: .*expected string, received undefined/],
  ['lease', 'reconcileBypass', 'flagSeen as a word', { flagSeen: 'yes', by: 'sweep' }, /update\.flagSeen: /],
];

const handles: { incident?: WorkflowHandle; reconcile?: WorkflowHandle; lease?: WorkflowHandle } = {};
let stateBefore: IncidentState;

describe('a malformed update is refused and changes nothing', () => {
  beforeAll(async () => {
    const [inc, rec] = await Promise.all([
      temporal.client.workflow.start('incidentWorkflow', {
        taskQueue,
        workflowId: uniqueWorkflowId('bad-input-updates'),
        args: [{ ...incident, approvers: ['bob', 'carol'], timeouts: { escalateAfter: '10m', decideWithin: '20m', probe: '2s' } }],
      }),
      temporal.client.workflow.start('reconcileUsersWorkflow', {
        taskQueue,
        workflowId: uniqueWorkflowId('bad-input-reconcile'),
        args: [{ ...reconcile, approvalAbove: 0 }],
      }),
    ]);
    handles.incident = inc;
    handles.reconcile = rec;
    // A lease of a target nobody writes to: refused requests must not reach it.
    handles.lease = await temporal.client.workflow.start('bypassLeaseWorkflow', {
      taskQueue,
      workflowId: uniqueWorkflowId('bad-input-lease'),
      args: [{ target: { target: 'vercel:bad-input.invalid/prj_none', adapter: 'vercel', needsRedeploy: true, flagKey: 'CLERK_AUTH_BYPASS', maxDurationMs: 3_600_000 } }],
    });
    stateBefore = await waitForState(inc, getIncidentState, pendingStep('operator_action'), 30_000);
    await eventually(async () => (await rec.query(getReconcileProgress)).stage === 'approval', 30_000, 200);
  });
  afterAll(async () => {
    await Promise.all([handles.incident, handles.reconcile, handles.lease].map((h) => h?.terminate('bad-input test over').catch(() => undefined)));
  });

  describe.concurrent('refused by the validator, naming the field', () => {
    it.each(UPDATE_ROWS)('%s %s: %s', async (target, update, _what, request, message) => {
      const err = await handles[target]!.executeUpdate(update, { args: [request] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
      const cause = (err as WorkflowUpdateFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      if (target !== 'reconcile') expect((cause as ApplicationFailure).type).toBe('UpdateRefused');
      expect(cause?.message).toMatch(message);
    });
  });

  describe('afterwards', () => {
    it('the bypass lease: no update in history, nobody holds it, still running', async () => {
      const handle = handles.lease!;
      const { events } = await handle.fetchHistory();
      expect(events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes || e.activityTaskScheduledEventAttributes)).toEqual([]);
      expect((await handle.query(getBypassLease)).holders).toEqual([]);
      expect((await handle.describe()).status.name).toBe('RUNNING');
    });

    it('the incident: same state, no update in history, still running, and a good approval is taken', async () => {
      const handle = handles.incident!;
      expect(await handle.query(getIncidentState)).toEqual(stateBefore);
      const { events } = await handle.fetchHistory();
      expect(events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      const decision = await handle.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob', comment: 'rolled back' }] });
      expect(decision).toMatchObject({ step: 'operator_action', decision: 'approved', approvedBy: ['bob'] });
    });

    it('the reconciliation: still waiting for its approval, nothing delivered, and a good decision is taken', async () => {
      const handle = handles.reconcile!;
      const progress = await handle.query(getReconcileProgress);
      expect(progress).toMatchObject({ stage: 'approval', approval: null });
      expect(progress.totals.applied).toBe(0);
      expect(await store.all()).toEqual([]);
      const { events } = await handle.fetchHistory();
      expect(events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toEqual([]);
      const answer = await handle.executeUpdate(decideReconcile, { args: [{ decision: 'reject', approver: 'bob', reason: 'not now' }] });
      expect(answer).toMatchObject({ decision: 'rejected', by: 'bob' });
    });
  });
});
