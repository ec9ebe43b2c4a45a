/**
 * The post-incident phase on a real Temporal server against the Clerk sandbox: a resolved incident
 * stays open with a draft review, the commander's completeReview (checked field by field, sent
 * twice) rewrites the draft, reminders reach the channel on durable timers, and finalizeReview
 * closes it with a final review holding what was sent; a phase nobody answers closes at its
 * deadline saying so.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli';
import { createTemporalIncidentOpener, detectedIncidentId } from '../src/intake/temporal-opener';
import { IncidentStatusKey } from '../src/shared';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { IncidentInput } from '../src/domain';
import { approveStep, completeReview, finalizeReview, getIncidentState, getReview } from '../src/workflows/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { eventually, pendingStep, sandboxDeps, waitForState, withIncidents } from './helpers/incident';
import { refusal } from './helpers/refusal';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let chat: ChatReceiver;
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 3, seed: 'review-phase' });
  chat = await startChatReceiver();
});
afterAll(async () => {
  await chat?.close();
  await sandbox?.close();
  await temporal?.close();
});

const middleware: IncidentInput = {
  category: 'middleware_failure',
  reporter: 'alice@example.com',
  summary: 'every page 500s after the deploy',
  approvers: ['bob@example.com', 'carol@example.com'],
  timeouts: { probe: '2s' },
};

async function withPhase<T>(phase: { withinMs: number; remindEveryMs: number }, body: Parameters<typeof withIncidents>[3]): Promise<T> {
  const taskQueue = uniqueTaskQueue('review-phase');
  const worker = await testWorker(temporal.nativeConnection, taskQueue, { ...sandboxDeps(sandbox, chat.url), reviewPhase: phase });
  return withIncidents(temporal.client, worker, taskQueue, body, { idPrefix: 'review-phase' }) as Promise<T>;
}

const findings = {
  completedBy: 'alice@example.com',
  rootCause: 'the 14:00 deploy shipped a middleware matcher that threw on /dashboard',
  trigger: 'deploy dpl_123',
  detection: 'monitoring_alert' as const,
  dataLoss: 'none' as const,
  usersAffected: 120,
  lessons: { wentWell: ['the rollback candidate was right'], wentWrong: ['the canary did not cover /dashboard'] },
};

describe('the post-incident phase', () => {
  it('resolved → draft at once; findings twice; a reminder; finalized: the final review holds what was sent, its action items owned', async () => {
    await withPhase({ withinMs: 10 * 60_000, remindEveryMs: 4_000 }, async (start) => {
      const h = await start(middleware);
      await waitForState(h, getIncidentState, pendingStep('operator_action'), 30_000);
      await h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
      const phase = await waitForState(h, getIncidentState, (s) => s.postIncident !== undefined && (s.review ?? '').includes('(DRAFT)'), 60_000);
      expect(phase.status).toBe('resolved');
      expect((await h.describe()).status.name).toBe('RUNNING');
      const draft = await h.query(getReview);
      expect(draft?.review.reviewState).toMatchObject({ state: 'draft', until: phase.postIncident?.until });
      expect(draft?.markdown).toMatch(/^# Post-incident review \(DRAFT\): /);
      expect(draft?.review.cause.rootCause).toBe('not given');
      await eventually(async () => chat.texts().some((t) => /Post-incident review: findings needed/.test(t) && /Still to give: rootCause, trigger/.test(t)), 15_000);

      // Refused, naming the field; nothing recorded.
      for (const [bad, message] of [
        [{ ...findings, completedBy: 'mallory@example.com' }, /^update\.completedBy: mallory@example\.com is neither the reporter/],
        [{ ...findings, usersAffected: -1 }, /^update\.usersAffected: /],
        [{ ...findings, actionItems: [{ title: 'add a canary for /dashboard', owner: 'bob@example.com', due: 'next week' }] }, /^update\.actionItems\.0\.due: must be a date like "2026-12-31"/],
        [{ ...findings, actionItems: [{ title: 'one\ntwo', owner: 'bob@example.com', due: '2026-12-31' }] }, /^update\.actionItems\.0\.title: must be one line/],
        [{ ...findings, dataLoss: 'partial' }, /^update\.dataLossDetails: say what was lost/],
        [{ ...findings, extra: true }, /^update\.extra: unknown field/],
      ] as const) {
        expect(await refusal(h.executeUpdate(completeReview, { args: [bad as never] }))).toMatch(message);
      }
      expect((await h.query(getIncidentState)).postIncident?.completions).toBe(0);

      await h.executeUpdate(completeReview, { args: [findings] });
      const items = [
        { title: 'add a canary that loads /dashboard', owner: 'bob@example.com', due: '2026-12-20' },
        { title: 'alert on middleware 5xx', owner: 'carol@example.com', due: '2026-12-10', state: 'done' as const },
        { title: 'automate operator_action', owner: 'carol@example.com', due: '2027-01-15', state: 'dropped' as const },
      ];
      const second = await h.executeUpdate(completeReview, { args: [{ completedBy: 'bob@example.com', lessons: { ...findings.lessons, gotLucky: ['it was a Tuesday'] }, actionItems: items }] });
      expect(second.message).toMatch(/^findings recorded \(lessons, 3 action item\(s\)\)/);
      const rewritten = await eventually(async () => {
        const r = await h.query(getReview);
        return r?.review.lessons.gotLucky.length ? r : undefined;
      }, 15_000);
      expect(rewritten.review.cause.rootCause).toBe(findings.rootCause);
      expect(rewritten.review.reviewState.state).toBe('draft');
      await eventually(async () => chat.texts().some((t) => /Reminder: post-incident review/.test(t)), 15_000);

      await h.executeUpdate(finalizeReview, { args: [{ finalizedBy: 'alice@example.com', note: 'reviewed in the Thursday meeting' }] });
      const done = await h.result();
      expect(done.status).toBe('resolved');
      expect(done.postIncident?.final).toMatchObject({ how: 'finalized', by: 'alice@example.com' });
      expect(done.timeline.some((e) => e.step === 'review' && /^post-incident review completed by alice@example\.com at \S+: reviewed in the Thursday meeting$/.test(e.description))).toBe(true);
      const final = await h.query(getReview);
      const r = final?.review;
      expect(r?.reviewState).toMatchObject({ state: 'final', how: 'finalized', by: 'alice@example.com' });
      expect(r?.cause).toMatchObject({ rootCause: findings.rootCause, trigger: 'deploy dpl_123', detection: 'a monitoring alert' });
      expect(r?.impact).toMatchObject({ dataLoss: 'none', usersReportedAffected: '120' });
      expect(r?.lessons).toEqual({ wentWell: findings.lessons.wentWell, wentWrong: findings.lessons.wentWrong, gotLucky: ['it was a Tuesday'] });
      expect(r?.actionItems.map((a) => [a.text, a.owner, a.due, a.state])).toEqual(items.map((i) => [i.title, i.owner, i.due, i.state ?? 'open']));
      expect(r?.trackerItems).toEqual([{ title: items[0]!.title, body: expect.stringContaining(`Incident ${h.workflowId}`), owner: 'bob@example.com', due: '2026-12-20' }]);
      expect(final?.markdown).toMatch(/^# Post-incident review: /);
      expect(final?.markdown).toContain('| add a canary that loads /dashboard | bob@example.com | 2026-12-20 | open |');
      expect(final?.markdown).toContain('**Final:** finalized by alice@example.com at');
      // Nothing is taken once the review is final.
      await expect(h.executeUpdate(completeReview, { args: [findings] })).rejects.toThrow();
    });
  }, 180_000);

  it('a phase nobody answers closes at its deadline, saying nothing was sent', async () => {
    await withPhase({ withinMs: 3_000, remindEveryMs: 60_000 }, async (start) => {
      const h = await start(middleware);
      await waitForState(h, getIncidentState, pendingStep('operator_action'), 30_000);
      await h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
      const done = await h.result();
      expect(done.postIncident?.final).toMatchObject({ how: 'deadline' });
      expect(done.timeline.some((e) => e.step === 'review' && /post-incident phase over after 3s: nothing was sent; the review is final as it stands/.test(e.description))).toBe(true);
      const final = await h.query(getReview);
      expect(final?.markdown).toContain('**Final:** the post-incident phase ended at its deadline');
      expect(final?.review.cause.rootCause).toBe('not given');
    });
  }, 120_000);

  it('from the CLI: complete-review with flags and a file, bad flags refused by name, finalize-review closes it', async () => {
    await withPhase({ withinMs: 10 * 60_000, remindEveryMs: 60_000 }, async (start) => {
      const h = await start(middleware);
      await waitForState(h, getIncidentState, pendingStep('operator_action'), 30_000);
      await h.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
      await waitForState(h, getIncidentState, (s) => s.postIncident !== undefined, 60_000);
      const env = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), INCIDENT_OPERATOR: 'alice' };
      const cli = (args: string[]) => runCli('src/cli/incident.ts', args, env);
      const dir = mkdtempSync(join(tmpdir(), 'cir-findings-'));
      const file = join(dir, 'findings.json');
      writeFileSync(file, JSON.stringify({ rootCause: 'from the file', trigger: 'deploy dpl_9', lessons: { wentWell: ['paged in a minute'] } }));
      for (const [args, message] of [
        [['--action-item', 'only a title'], /^error: --action-item 1: write "title\|owner\|YYYY-MM-DD"/],
        [['--action-item', 'canary|bob@example.com|soon'], /^error: --action-item: .*must be a date like "2026-12-31"/],
        [['--file', join(dir, 'missing.json')], /^error: --file: .* is not readable JSON/],
        [['--detection', 'psychic'], /^error: --detection: /],
      ] as const) {
        const run = await cli(['complete-review', h.workflowId, '--by', 'alice@example.com', ...args]);
        expect(run.code, args.join(' ')).toBe(2);
        expect(run.firstError, args.join(' ')).toMatch(message);
      }
      const sent = await cli(['complete-review', h.workflowId, '--by', 'alice@example.com', '--file', file, '--root-cause', 'the flag wins', '--went-wrong', 'no canary', '--action-item', 'add a canary|bob@example.com|2026-12-20']);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.stdout).toMatch(/^findings recorded \(/);
      const s = await h.query(getIncidentState);
      expect(s.postIncident?.findings).toMatchObject({ rootCause: 'the flag wins', trigger: 'deploy dpl_9', lessons: { wentWell: ['paged in a minute'], wentWrong: ['no canary'] }, by: 'alice@example.com' });
      expect(s.postIncident?.actionItems).toEqual([{ title: 'add a canary', owner: 'bob@example.com', due: '2026-12-20', state: 'open' }]);
      const fin = await cli(['finalize-review', h.workflowId, '--by', 'bob@example.com']);
      expect(fin.code, fin.stderr).toBe(0);
      const done = await h.result();
      expect(done.postIncident?.final).toMatchObject({ how: 'finalized', by: 'bob@example.com' });
      const printed = await cli(['review', h.workflowId]);
      expect(printed.stdout).toContain('root cause: the flag wins');
      expect(printed.stdout).toContain('| add a canary | bob@example.com | 2026-12-20 | open |');
      const json = await cli(['review', h.workflowId, '--json']);
      expect((JSON.parse(json.stdout) as { trackerItems: unknown[] }).trackerItems).toEqual([{ title: 'add a canary', body: expect.any(String), owner: 'bob@example.com', due: '2026-12-20' }]);
    });
  }, 180_000);

  it('an incident in its post-incident phase is over for detection: the next alert opens a new incident, the one after joins it', async () => {
    const taskQueue = uniqueTaskQueue('review-phase-detect');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, { ...sandboxDeps(sandbox, chat.url), reviewPhase: { withinMs: 10 * 60_000, remindEveryMs: 60_000 } });
    await worker.runUntil(async () => {
      const deployment = taskQueue.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 60);
      const opener = createTemporalIncidentOpener({ client: temporal.client, taskQueue, deployment, approvers: ['bob@example.com', 'carol@example.com'], categories: ['middleware_failure'] });
      const alert = (key: string) => ({ category: 'middleware_failure' as const, severity: 'high' as const, dedupKey: key, detectedBy: 'alert:pager' as const, startsAt: new Date(Date.now() - 10_000).toISOString(), evidence: [] });
      const first = await opener.openOrJoin(alert('g1|middleware_failure'));
      expect(first).toMatchObject({ incidentId: detectedIncidentId(deployment, 'middleware_failure'), joined: false });
      const h1 = temporal.client.workflow.getHandle(first.incidentId);
      await waitForState(h1, getIncidentState, pendingStep('operator_action'), 30_000);
      await h1.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
      await waitForState(h1, getIncidentState, (s) => s.postIncident !== undefined, 60_000);
      await eventually(async () => (await h1.describe()).typedSearchAttributes.get(IncidentStatusKey) === 'resolved', 15_000);

      const second = await opener.openOrJoin(alert('g2|middleware_failure'));
      expect(second.joined).toBe(false);
      expect(second.incidentId).toBe(`${first.incidentId}-after-${first.runId?.slice(0, 8)}`);
      expect(await opener.openOrJoin(alert('g3|middleware_failure'))).toMatchObject({ incidentId: second.incidentId, joined: true, recorded: true });
      expect(await opener.alertResolved({ category: 'middleware_failure', dedupKey: 'g3|middleware_failure', detectedBy: 'alert:pager', endsAt: new Date().toISOString(), evidence: [] })).toEqual({ incidentId: second.incidentId, recorded: true });
      // The first incident's phase is untouched.
      expect((await h1.query(getIncidentState)).timeline.filter((e) => e.step === 'detection')).toHaveLength(1);
      for (const id of [first.incidentId, second.incidentId]) await temporal.client.workflow.getHandle(id).terminate('test over');
    });
  }, 180_000);
});
