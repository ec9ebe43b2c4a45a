/**
 * The post-incident review built from each recorded incident history and its final state:
 * rendered Markdown compared with tests/golden/reviews/ (`npm run reviews:golden` rewrites them on
 * purpose), and the facts the review promises checked against the history itself.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { buildReview, type Review } from '../src/review/build';
import { renderReviewMarkdown } from '../src/review/render';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { getIncidentState, incidentWorkflow } from '../src/workflows/incident';
import { runCli } from './helpers/cli';
import { sandboxDeps, waitForState } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';
import { draftOf, GOLDEN_DIR, reviewCase, reviewCases, type ReviewCase } from '../scripts/golden-reviews';
import { defaultPayloadConverter } from '@temporalio/common';

const cases = reviewCases();
const built = cases.filter((c): c is ReviewCase & { state: NonNullable<ReviewCase['state']> } => Boolean(c.state));
/** A golden-set case, or any recorded incident by name (the `by-hand-*` set keeps steps done by hand and a dry run). */
const byName = (name: string) => {
  const found = built.find((b) => b.name === name) ?? reviewCase(name);
  const state = found.state;
  if (!state) throw new Error(`no result in recorded history ${name}`);
  const c = { ...found, state };
  return { c, review: buildReview(c.history, state) };
};
const acceptedUpdates = (c: ReviewCase) => c.history.events?.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes) ?? [];
const eventTime = (c: ReviewCase, id: number) => {
  const t = c.history.events?.find((e) => Number(e.eventId) === id)?.eventTime;
  return new Date(Number(t?.seconds ?? 0) * 1000 + Math.floor((t?.nanos ?? 0) / 1e6)).toISOString();
};

describe('post-incident review golden files', () => {
  it('covers every category', () => {
    const categories = new Set(built.map((c) => c.state.category));
    expect(categories).toEqual(new Set(['clerk_outage', 'key_compromise', 'middleware_failure', 'session_issues', 'webhook_backlog']));
  });

  it.each(built.map((c) => c.name))('%s renders as its golden file', (name) => {
    const { review } = byName(name);
    const golden = join(GOLDEN_DIR, `${name}.md`);
    expect(existsSync(golden), `${golden} missing: npm run reviews:golden`).toBe(true);
    expect(renderReviewMarkdown(review)).toBe(readFileSync(golden, 'utf8'));
  });

  it('a post-incident phase has a draft golden file (at resolved) and a final one (the findings, owned action items)', () => {
    const c = built.find((b) => b.name === 'automated-middleware-failure-reviewed');
    expect(c, 'the recorded incident with a post-incident phase').toBeDefined();
    const draftState = draftOf(c!.state)!;
    const draft = renderReviewMarkdown(buildReview(c!.history, draftState));
    expect(draft).toBe(readFileSync(join(GOLDEN_DIR, `${c!.name}-draft.md`), 'utf8'));
    expect(draft).toMatch(/^# Post-incident review \(DRAFT\): /);
    expect(draft).toContain('- root cause: not given');
    const final = renderReviewMarkdown(buildReview(c!.history, c!.state));
    expect(final).toContain('**Final:** finalized by alice@example.com at');
    expect(final).toContain('- root cause: a middleware matcher threw on /dashboard');
    expect(final).toContain('- went wrong: no canary loads /dashboard');
    expect(final).toContain('| add a canary that loads /dashboard | bob@example.com | 2026-12-20 | open |');
    expect(final).toContain('| alert on middleware 5xx | carol@example.com | 2026-12-10 | done |');
  });

  // A cancelled incident's history holds no result; the review its last step wrote is the writeReview activity's result.
  it.each(cases.filter((c) => !c.state).map((c) => c.name))('%s: the review written when it was cancelled is in its history', (name) => {
    const c = cases.find((x) => x.name === name)!;
    const events = c.history.events ?? [];
    const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'writeReview');
    expect(scheduled, 'a writeReview activity').toBeDefined();
    const done = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === String(scheduled?.eventId));
    const written = defaultPayloadConverter.fromPayload<{ markdown: string }>(done!.activityTaskCompletedEventAttributes!.result!.payloads![0]!);
    expect(written.markdown).toContain('| status | cancelled |');
    expect(written.markdown).toMatch(/incident_notice \| runbook \| compensated: withdraw the incident notice/);
  });
});

describe('the review', () => {
  it.each(built.map((c) => c.name))('%s: timeline times are the times of the history events they name', (name) => {
    const { c, review } = byName(name);
    const fromHistory = review.timeline.filter((t) => t.source !== 'state');
    expect(fromHistory.length).toBe(review.timeline.length); // every line of these histories has its event
    for (const t of fromHistory) if (t.source !== 'state') expect(t.time, `${t.step}: ${t.description}`).toBe(eventTime(c, t.source.eventId));
    const times = review.timeline.map((t) => t.time);
    expect(times).toEqual([...times].sort());
  });

  it('puts each decision at its WorkflowExecutionUpdateAccepted event', () => {
    const { c, review } = byName('by-hand-key-compromise-dry-run');
    const bob = review.timeline.find((t) => t.step === 'rotate_secret_key' && t.actor === 'bob@example.com' && t.description === 'approval 1 of 2');
    // Bob's approval is the first update the incident accepted.
    const first = Number(acceptedUpdates(c)[0]?.eventId);
    expect(bob?.source).toEqual({ eventId: first, eventType: 'workflowExecutionUpdateAccepted' });
    expect(bob?.time).toBe(eventTime(c, first));
    expect(review.timeline.at(-1)).toMatchObject({ step: 'closed', time: review.closedAt });
  });

  it('a timed-out approval asks for a second on-call approver; triage disagreeing asks for a probe or rule', () => {
    const { review } = byName('automated-middleware-failure-timed-out');
    expect(review.actionItems.map((a) => a.kind)).toEqual(['second_approver', 'probe_or_rule']);
    expect(review.actionItems[0]?.text).toBe('add a second on-call approver for operator_action');
    expect(review.timeline.find((t) => t.description.startsWith('timed_out'))?.source).toMatchObject({ eventType: 'timerFired' });
  });

  it('who decided: the approver named in each update beside the client identity Temporal recorded', () => {
    const { c, review } = byName('by-hand-clerk-outage-bypass');
    // The recording script's client identity (pid@host), as Temporal recorded it on each update.
    const identity = acceptedUpdates(c)[0]?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity ?? '';
    expect(identity).toMatch(/.+@.+/);
    expect(review.whoDecided.map((d) => [d.update, d.step, d.named, d.identity])).toEqual([
      ['approveStep', 'emergency_bypass', 'bob@example.com', identity],
      ['approveStep', 'emergency_bypass', 'carol@example.com', identity],
      ['confirmStep', 'emergency_bypass', 'bob@example.com', identity],
      ['confirmStep', 'bypass_off', 'bob@example.com', identity],
    ]);
    expect(renderReviewMarkdown(review)).toContain(`| approveStep | emergency_bypass | bob@example.com | ${identity} |`);
  });

  it('automated set: the bypass needs only the two approvals (no confirmation by hand); a signed decision names its key', () => {
    const bypass = byName('automated-clerk-outage-bypass').review;
    expect(bypass.whoDecided.map((d) => [d.update, d.step, d.named])).toEqual([
      ['approveStep', 'emergency_bypass', 'bob@example.com'],
      ['approveStep', 'emergency_bypass', 'carol@example.com'],
    ]);
    expect(bypass.impact.stepsByHand).toEqual([]);
    const signed = renderReviewMarkdown(byName('automated-clerk-outage-signed-rejection').review);
    expect(signed).toMatch(/\| rejectStep \| emergency_bypass \| bob@example\.com \| .* \(signed with key SHA256:[\w+/]+\) \|/);
  });

  it('with an identity mapping, a decision sent from an identity the mapping does not list for its approver is flagged', () => {
    const { c } = byName('by-hand-clerk-outage-bypass');
    const identity = acceptedUpdates(c)[0]?.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity ?? '';
    const review = buildReview(c.history, c.state, { 'carol@example.com': [identity], 'bob@example.com': ['bob@laptop'] });
    expect(review.whoDecided.map((d) => [d.named, d.mismatch])).toEqual([
      ['bob@example.com', `bob@example.com sends from bob@laptop, not ${identity}`],
      ['carol@example.com', undefined],
      ['bob@example.com', `bob@example.com sends from bob@laptop, not ${identity}`],
      ['bob@example.com', `bob@example.com sends from bob@laptop, not ${identity}`],
    ]);
    const markdown = renderReviewMarkdown(review);
    expect(markdown).toContain('**Identity mismatches** (against `APPROVER_IDENTITIES`):');
    expect(renderReviewMarkdown(buildReview(c.history, c.state))).not.toContain('Identity mismatches');
    expect(buildReview(c.history, c.state, {}).whoDecided[0]?.mismatch).toBe('bob@example.com is not in the identity mapping');
  });

  it('impact comes from what ran: revocation totals, steps by hand, open items; causes not given', () => {
    const targeted = byName('automated-session-issues-targeted').review;
    expect(targeted.impact).toMatchObject({ sessionsRevoked: 1, usersAffected: 3, dataLoss: 'not given' });
    const dry = byName('by-hand-key-compromise-dry-run').review;
    expect(dry.impact.sessionsRevoked).toBe(0);
    expect(dry.impact.revocations[0]).toMatchObject({ dryRun: true, sessionsFound: 116 });
    expect(dry.impact.stepsByHand).toEqual([{ step: 'rotate_secret_key', outcome: 'done_by_hand', by: 'bob@example.com', note: 'new key live, old key deleted' }]);
    expect(dry.actionItems.map((a) => a.text)).toEqual(['automate rotate_secret_key']);
    expect(dry.cause).toMatchObject({ rootCause: 'not given', trigger: 'not given', detection: 'not given' });
    expect(dry.cause.resolution).toContain('rehearsal over');
  });

  it("the commander's action items cannot forge the review's structure: Markdown, HTML and table syntax stay text in one row", () => {
    const c = built.find((b) => b.name === 'automated-middleware-failure-reviewed')!;
    const state = structuredClone(c.state);
    state.postIncident!.actionItems = [{ title: 'canary | forged | cell | <script>x</script> ## heading [link](https://evil.test)', owner: 'bob | x', due: '2026-12-20', state: 'open' }];
    const md = renderReviewMarkdown(buildReview(c.history, state));
    const section = md.split('## Action items')[1]!.split('\n## ')[0]!;
    const rows = section.split('\n').filter((l) => l.startsWith('|'));
    expect(rows).toHaveLength(3); // header, rule, the one item
    expect(rows[2]!.split(/(?<!\\)\|/).length).toBe(7); // five cells
    expect(section).not.toContain('<script>');
    expect(section).not.toMatch(/(?<!\\)\]\(https:\/\/evil/); // the brackets escaped: no link
  });

  it('shows each event once: an approval is one row, not "approved" and then "approved: …"', () => {
    for (const c of built) {
      const rows = buildReview(c.history, c.state).timeline;
      const doubled = rows.filter((r, i) => i > 0 && rows[i - 1]!.time === r.time && rows[i - 1]!.step === r.step && rows[i - 1]!.actor === r.actor && r.description.startsWith(`${rows[i - 1]!.description}: `));
      expect(doubled, c.name).toEqual([]);
    }
    const approvals = buildReview(byName('automated-middleware-failure-approved').c.history, byName('automated-middleware-failure-approved').c.state).timeline.filter((t) => t.step === 'operator_action' && t.actor === 'bob@example.com');
    expect(approvals.map((a) => a.description)).toEqual([expect.stringMatching(/^approved: confirm the fix .* approved by bob@example\.com$/)]);
  });

  it('an incident the watch opened: the detection first in the timeline, the time to detect in the table and the cause', () => {
    const { c } = byName('by-hand-webhook-backlog');
    const state = structuredClone(c.state);
    const openedAt = state.timeline[0]?.time ?? '';
    const detectedAt = new Date(Date.parse(openedAt) - 64_000).toISOString();
    state.detection = { detectedBy: 'watch', detectedAt, openedAt, reports: 3, lines: 2, last: { 'watch|webhook_backlog': 'firing' } };
    const review = buildReview(c.history, state);
    expect(review.detection).toEqual({ by: 'watch', at: detectedAt, openedAt, mttdMs: 64_000, mttd: '1m 4s', reports: 3 });
    expect(review.timeline[0]).toEqual({ time: detectedAt, source: 'state', step: 'detected', actor: 'watch', description: 'first seen by watch (the incident opened 1m 4s later)' });
    expect(review.cause.detection).toBe("the runbook's watch (triage probes on a Schedule), time to detect 1m 4s");
    const markdown = renderReviewMarkdown(review);
    expect(markdown).toContain(`| detected | by watch at ${detectedAt}; opened ${openedAt}; time to detect 1m 4s; 3 detection report(s) |`);
    // An alert's receiver is input: the review's Markdown escapes it like any other text.
    state.detection = { ...state.detection, detectedBy: 'alert:pager|*x*' };
    const fromAlert = renderReviewMarkdown(buildReview(c.history, state));
    expect(fromAlert).toContain('an alert (receiver pager\\|\\*x\\*)');
    expect(buildReview(c.history, { ...state, detection: undefined }).cause.detection).toBe('not given');
  });

  it('a failed notification asks to fix the chat webhook; a failed step asks for a follow-up', () => {
    const { c } = byName('by-hand-webhook-backlog');
    const state = structuredClone(c.state);
    state.timeline.push({ time: '2026-11-27T05:00:00.000Z', step: 'notify', actor: 'runbook', description: 'notification failed: Status: resolved: HTTP 500' });
    state.steps.push({ step: 'incident_notice', outcome: 'failed', at: '2026-11-27T05:00:00.000Z', actor: 'runbook', note: 'chat down' });
    const review = buildReview(c.history, state);
    expect(review.actionItems.map((a) => a.text)).toEqual(['fix the chat webhook', 'automate reconcile_webhooks', 'follow up incident_notice: chat down']);
    expect(review.timeline.find((t) => t.step === 'notify')?.source).toBe('state'); // no event at that time: the state's time
  });
});

describe('npm run incident -- review, against the dev server', () => {
  it('prints the review of a running incident (state by query) and writes a closed one (state from the result)', async () => {
    const temporal = await connectTemporal();
    const sandbox = await startSandbox({ users: 5, seed: 'review-cli-test' });
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress') };
    delete env.TEMPORAL_NAMESPACE;
    delete env.INCIDENT_OPERATOR;
    const incident = (args: string[]) => runCli('src/cli/incident.ts', args, env);
    try {
      const taskQueue = uniqueTaskQueue('review-cli');
      const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox));
      await worker.runUntil(async () => {
        const input = { reporter: 'alice', approvers: ['alice', 'bob'], category: 'webhook_backlog' as const, summary: 'user.created events missing', timeouts: { escalateAfter: '20s', decideWithin: '40s', probe: '2s' } };
        const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId(), args: [input] });
        await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'));

        const running = await incident(['review', handle.workflowId]);
        expect(running.code, running.stderr).toBe(0);
        expect(running.stdout).toContain('| closed | still running |');

        const confirmed = await incident(['confirm', handle.workflowId, '--step', 'reconcile_webhooks', '--by', 'alice', '--note', 'replayed', '--as', 'bob@ops']);
        expect(confirmed.code, confirmed.stderr).toBe(0);
        await handle.result();

        const out = join(mkdtempSync(join(tmpdir(), 'review-')), 'review.json');
        const written = await incident(['review', handle.workflowId, '--json', '--out', out]);
        expect(written.code, written.stderr).toBe(0);
        expect(written.stdout.trim()).toBe(`review of ${handle.workflowId} written to ${out}`);
        const review = JSON.parse(readFileSync(out, 'utf8')) as Review;
        expect(review.whoDecided).toMatchObject([{ update: 'confirmStep', step: 'reconcile_webhooks', named: 'alice', identity: 'bob@ops' }]);
        expect(review.closedAs).toBe('completed');
        const history = await handle.fetchHistory();
        const times = new Map((history.events ?? []).map((e) => [Number(e.eventId), new Date(Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6)).toISOString()]));
        for (const t of review.timeline) if (t.source !== 'state') expect(t.time).toBe(times.get(t.source.eventId));
      });
      const missing = await incident(['review', 'no-such-incident']);
      expect(missing.code).toBe(1);
      expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await sandbox.close();
      await temporal.close();
    }
  }, 60_000);
});
