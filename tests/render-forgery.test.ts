/**
 * No text forges a record (issue 29 §4), end to end: incidents on the run's real Temporal server
 * started, decided, confirmed and cancelled through the CLI with hostile summaries, comments,
 * reasons and notes; then `show`, `list` and `review` as a user runs them, and the chat receiver's
 * capture, are judged by their structure (lines, rows, sections), not by the workflow's word.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { sandboxDeployAdapter } from '../src/activities/deploy';
import { renderReviewMarkdown } from '../src/review/render';
import type { Review } from '../src/review/build';
import { approveStep, getIncidentState, incidentWorkflow } from '../src/workflows/incident';
import type { IncidentState } from '../src/workflows/incident-types';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { runCli, type CliRun } from './helpers/cli';
import { FORGED_EVENT_LINE, FORGED_RUNBOOK_LINE, FORGED_TIMELINE, HOSTILE_COMMIT_TEXTS, INVISIBLE, LIVE_MARKDOWN_INLINE, LIVE_SLACK, markdownBlocks } from './helpers/hostile-text';
import { eventually, pendingStep, sandboxDeps, waitForState } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let chat: ChatReceiver;
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 10, seed: 'render-forgery-test' });
  chat = await startChatReceiver();
});
afterAll(async () => {
  await chat?.close();
  await sandbox?.close();
  await temporal?.close();
});

/** Hostile text that passes the input schemas (line breaks, bidi, zero-width; ESC is refused at the door). */
const HOSTILE = [
  'disk full',
  FORGED_TIMELINE,
  `ok\r${FORGED_TIMELINE}`,
  '# Root cause: none\n---\n| x | y |',
  '<script>alert(1)</script> [go](javascript:alert(1)) <https://evil.example>',
  '<!channel> <!here> @everyone <@U123ABC> <https://evil.example|Approve here>',
  FORGED_RUNBOOK_LINE,
  'by \u202erelliM\u202c \u200bz\u2028w',
].join('\n');

/** Every string in a value mapped by `f`, arrays and objects keeping their shape. */
function mapStrings<T>(value: T, f: (s: string) => string): T {
  if (typeof value === 'string') return f(value) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f)) as T;
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapStrings(v, f)])) as T;
  return value;
}

describe('hostile text through the CLI, the review and the chat, on the test server', () => {
  it('show, list, review and chat keep their structure whatever the summary, comments, reasons and notes say', async () => {
    const taskQueue = uniqueTaskQueue('render-forgery');
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue, INCIDENT_OPERATOR: 'tester' };
    delete env.TEMPORAL_NAMESPACE;
    const incident = (args: string[]): Promise<CliRun> => runCli('src/cli/incident.ts', args, env);
    const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox, chat.url));
    const [backlog, compromise] = [uniqueWorkflowId('forgery'), uniqueWorkflowId('forgery')];
    const fast = ['--escalate-after', '20s', '--decide-within', '40s', '--probe-timeout', '2s'];

    await worker.runUntil(async () => {
      const started = await Promise.all([
        incident(['start', '--id', backlog, '--category', 'webhook_backlog', '--reporter', 'alice', '--approver', 'alice', '--approver', 'bob', '--summary', HOSTILE, ...fast]),
        incident(['start', '--id', compromise, '--category', 'key_compromise', '--reporter', 'alice', '--approver', 'alice', '--approver', 'bob', '--approver', 'carol', '--summary', HOSTILE, '--dry-run', ...fast]),
      ]);
      for (const s of started) expect(s.code, s.stderr).toBe(0);
      const a = temporal.client.workflow.getHandle(backlog);
      const b = temporal.client.workflow.getHandle(compromise);
      try {
        // A: the step by hand confirmed with a hostile note; it resolves and writes its review.
        await waitForState(a, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'), 30_000);
        const confirmed = await incident(['confirm', backlog, '--step', 'reconcile_webhooks', '--by', 'alice', '--note', HOSTILE]);
        expect(confirmed.code, confirmed.stderr).toBe(0);
        expect(confirmed.stdout.trim().split('\n')).toHaveLength(1);
        const final = (await a.result()) as IncidentState;
        expect(final.status).toBe('resolved');

        // B: a rejection with a hostile reason, then a cancellation with one.
        await waitForState(b, getIncidentState, pendingStep('rotate_secret_key'), 30_000);
        const rejected = await incident(['reject', compromise, '--step', 'rotate_secret_key', '--approver', 'bob', '--reason', HOSTILE]);
        expect(rejected.code, rejected.stderr).toBe(0);
        const cancelled = await incident(['cancel', compromise, '--reason', HOSTILE]);
        expect(cancelled.code, cancelled.stderr).toBe(0);
        expect(cancelled.stdout.trim().split('\n')).toHaveLength(3);
        await b.result().catch(() => undefined);

        // show: one line per timeline event, every other line indented under the one header.
        for (const [id, handle] of [[backlog, a], [compromise, b]] as const) {
          const state = await handle.query(getIncidentState);
          expect(state.timeline.some((e) => e.description.includes(FORGED_TIMELINE) && e.description.includes('\n'))).toBe(true); // history keeps the text as typed
          const shown = await incident(['show', id]);
          expect(shown.code, shown.stderr).toBe(0);
          const lines = shown.stdout.replace(/\n$/, '').split('\n');
          expect(lines.filter((l) => /^ {4}\d{4}-\d{2}-\d{2}T/.test(l))).toHaveLength(state.timeline.length);
          expect(lines[0]).toMatch(new RegExp(`^${id}: disk full\\\\n12:00:00 approver approved`));
          expect(lines.slice(1).filter((l) => !l.startsWith('  '))).toEqual([]);
          expect(lines.filter((l) => l.trimStart().startsWith(FORGED_TIMELINE) || l.trimStart().startsWith('# Root'))).toEqual([]);
          for (const l of lines) expect(l).not.toMatch(INVISIBLE);
        }

        // list: a header and one row per incident.
        await eventually(async () => {
          const listed = await incident(['list', '--task-queue', taskQueue, '--json']);
          return listed.code === 0 && (JSON.parse(listed.stdout) as unknown[]).length === 2;
        }, 20_000);
        const table = await incident(['list', '--task-queue', taskQueue]);
        expect(table.code, table.stderr).toBe(0);
        const rows = table.stdout.replace(/\n$/, '').split('\n');
        expect(rows).toHaveLength(3);
        expect(rows.slice(1).map((r) => r.split(/\s+/)[0]).sort()).toEqual([backlog, compromise].sort());
        for (const r of rows) expect(r).not.toMatch(INVISIBLE);

        // review: the sections, table rows and lists of the same review with benign text.
        const [md, json] = await Promise.all([incident(['review', backlog]), incident(['review', backlog, '--json'])]);
        expect(md.code, md.stderr).toBe(0);
        const review = JSON.parse(json.stdout) as Review;
        expect(review.summary).toBe(HOSTILE);
        const keep = new Set(['state', 'not run', 'none']);
        const plain = renderReviewMarkdown(mapStrings(review, (s) => (keep.has(s) ? s : 'x')));
        const got = markdownBlocks(md.stdout);
        const want = markdownBlocks(plain);
        expect(got.headings.slice(1)).toEqual(want.headings.slice(1));
        expect(got.headings).toHaveLength(want.headings.length);
        expect(got.headings[0]).toMatch(/^# Post-incident review: /);
        const pipes = (row: string) => row.match(/(?<!\\)\|/g)?.length;
        expect(got.tableRows.map(pipes)).toEqual(want.tableRows.map(pipes));
        expect(got.blockStarts).toHaveLength(want.blockStarts.length);
        expect(md.stdout).not.toMatch(LIVE_MARKDOWN_INLINE);
        expect(md.stdout).not.toContain('<script');
        expect(md.stdout).toContain('&lt;script&gt;');

        // chat: nothing live, and the runbook's "•" lines are the runbook's own.
        const mine = chat.messages.filter((m) => m.text.includes(backlog) || m.text.includes(compromise));
        expect(mine.length).toBeGreaterThan(3);
        expect(mine.some((m) => m.text.includes('We are investigating'))).toBe(true);
        expect(mine.some((m) => m.text.includes('approve evil'))).toBe(true); // the attack did reach the chat, inert
        for (const m of mine) {
          for (const text of [m.text, ...(m.blocks ?? []).map((block) => (block as { text: { text: string } }).text.text)]) {
            expect(text).not.toMatch(LIVE_SLACK);
            // The forged line may be in the text (escaped, inside a line of the body), never a line of its own.
            expect(text.split('\n').filter((l) => l.startsWith('•') && l.includes('approve evil'))).toEqual([]);
            expect(text.split('\n').filter((l) => l.startsWith(FORGED_TIMELINE))).toEqual([]);
          }
        }
      } finally {
        for (const h of [a, b]) {
          await h.cancel().catch(() => undefined);
          await h.result().catch(() => undefined);
        }
      }
    });
  }, 180_000);
});

/** Every row of the commit-text table, joined by `join`: one candidate carries all of them. */
const allCommitTexts = (join: string) => HOSTILE_COMMIT_TEXTS.map((h) => h.text).join(join);

/**
 * Deployment meta as the real platform may report it (anyone who can push writes a commit's message
 * and branch; the API takes any meta). The sandbox's admin door refuses a non-hex sha and values over
 * 1000 characters, so the test writes the emulated Vercel's record itself; the adapter still reads
 * it over HTTP from `GET /v6/deployments`.
 */
const HOSTILE_META = {
  // The first line is what the approval quotes: the attacks that keep to one line go first.
  candidate: {
    githubCommitMessage: `\u001b[2J\u001b]8;;http://evil.example\u0007fix"), approved by bob and carol\r${FORGED_EVENT_LINE}\u2028**x** | y |\n${allCommitTexts('\n')}`,
    githubCommitRef: `main\n${FORGED_EVENT_LINE}\n${allCommitTexts(' ')}`,
    githubCommitSha: `$(id)\u202e\n${FORGED_EVENT_LINE}`,
  },
  current: {
    githubCommitMessage: `[link](http://evil.example) \`code\` <script>alert(1)</script> \u202erevo\u202c z\u200bw\n${FORGED_EVENT_LINE}`,
    githubCommitRef: `x\u2029${FORGED_EVENT_LINE}\r\n${'R'.repeat(100_000)}`,
    githubCommitSha: 'not-hex-at-all',
  },
};

describe('hostile commit text on a rollback candidate, on the test server', () => {
  it('the approval request, show, the review and the chat quote the deployments inert and bounded', async () => {
    const vsandbox = await startSandbox({ users: 5, seed: 'render-forgery-rollback' });
    const taskQueue = uniqueTaskQueue('render-forgery-rollback');
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue, INCIDENT_OPERATOR: 'tester' };
    delete env.TEMPORAL_NAMESPACE;
    const incident = (args: string[]): Promise<CliRun> => runCli('src/cli/incident.ts', args, env);
    try {
      // As tests/rollback.test.ts: the good build serves, a bad one takes production; then both carry hostile meta.
      const v = vsandbox.admin.vercel;
      v.buildMs = 200;
      v.aliasDelayMs = 300;
      const good = v.productionId;
      const bad = v.createDeployment({ bad: true }).id;
      await eventually(async () => v.servingBad());
      const record = (id: string) => v.deployments.find((d) => d.id === id)!;
      record(good).meta = { ...HOSTILE_META.candidate };
      record(bad).meta = { ...HOSTILE_META.current };

      const deps = { ...sandboxDeps(vsandbox, chat.url), deploy: sandboxDeployAdapter(vsandbox.vercel, 'vercel') };
      const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
      const workflowId = uniqueWorkflowId('forgery-rollback');
      await worker.runUntil(async () => {
        const handle = await temporal.client.workflow.start(incidentWorkflow, {
          taskQueue,
          workflowId,
          args: [{ category: 'middleware_failure', reporter: 'alice', approvers: ['alice', 'bob'], summary: '/dashboard answers 500', timeouts: { escalateAfter: '20s', decideWithin: '40s', probe: '2s', resolveWithin: '3s' } }],
        });
        try {
          const asked = await waitForState(handle, getIncidentState, pendingStep('rollback'), 30_000);
          // The approval request in the state: one line of visible text, bounded, the hostile text quoted.
          const title = asked.pendingApprovals.find((p) => p.step === 'rollback')?.title ?? '';
          expect(title).toContain(`from ${bad} (`);
          expect(title).toContain(`to ${good} (`);
          expect(title).toContain('(not a hex sha)');
          expect(title).toContain('\\u001b[2J'); // the attack reached the request, as visible text
          expect(title).not.toMatch(INVISIBLE);
          expect(title.length).toBeLessThan(2000);
          expect(title).not.toContain('RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR');
          expect(title).toContain('\\"), approved by'); // the fake approval is inside the message's quotes, which it cannot close
          expect(title).not.toMatch(/(?<!\\)"\), approved by/);
          await handle.executeUpdate(approveStep, { args: [{ step: 'rollback', approver: 'bob' }] });
          const done = (await handle.result()) as IncidentState;
          expect(done.status).toBe('resolved');
          expect(v.overview().productionDeploymentId).toBe(good);
          // Only bob approved, whatever the commit text says.
          const approvals = done.timeline.filter((e) => e.step === 'rollback' && /approved by/.test(e.description) && !e.description.startsWith('approval requested'));
          expect(approvals.map((e) => e.description.match(/: approved by (.*)$/)?.[1])).toEqual(['bob']);
          for (const e of done.timeline) {
            expect(e.description).not.toMatch(INVISIBLE);
            expect(e.description.length).toBeLessThan(4000);
          }

          // show: one line per timeline event, nothing starts like one but those, nothing invisible, bounded.
          const shown = await incident(['show', workflowId]);
          expect(shown.code, shown.stderr).toBe(0);
          const lines = shown.stdout.replace(/\n$/, '').split('\n');
          expect(lines.filter((l) => /^ {4}\d{4}-\d{2}-\d{2}T/.test(l))).toHaveLength(done.timeline.length);
          expect(lines.filter((l) => /^\s*\d{4}-\d{2}-\d{2}T/.test(l) && !/^ {4}\d{4}-\d{2}-\d{2}T\S+ \S/.test(l))).toEqual([]);
          expect(lines.filter((l) => l.trimStart().startsWith(FORGED_EVENT_LINE))).toEqual([]);
          expect(lines.slice(1).filter((l) => !l.startsWith('  '))).toEqual([]);
          for (const l of lines) {
            expect(l).not.toMatch(INVISIBLE);
            expect(l.length).toBeLessThan(4000);
          }

          // review: the structure of the same review with benign text; nothing live; bounded.
          const [md, json] = await Promise.all([incident(['review', workflowId]), incident(['review', workflowId, '--json'])]);
          expect(md.code, md.stderr).toBe(0);
          const review = JSON.parse(json.stdout) as Review;
          const keep = new Set(['state', 'not run', 'none']);
          const got = markdownBlocks(md.stdout);
          const want = markdownBlocks(renderReviewMarkdown(mapStrings(review, (s) => (keep.has(s) ? s : 'x'))));
          expect(got.headings).toHaveLength(want.headings.length);
          expect(got.headings.slice(1)).toEqual(want.headings.slice(1));
          const pipes = (row: string) => row.match(/(?<!\\)\|/g)?.length;
          expect(got.tableRows.map(pipes)).toEqual(want.tableRows.map(pipes));
          expect(got.blockStarts).toHaveLength(want.blockStarts.length);
          expect(md.stdout).toContain('approval requested: roll production back');
          expect(md.stdout).not.toMatch(LIVE_MARKDOWN_INLINE);
          expect(md.stdout).not.toContain('<script');
          expect(md.stdout).not.toMatch(/(?<!\\)\*\*x(?<!\\)\*\*/);
          expect(md.stdout).not.toMatch(/(?<!\\)`code(?<!\\)`/);
          expect(md.stdout.split('\n').filter((l) => l.trimStart().startsWith(FORGED_EVENT_LINE))).toEqual([]);
          expect(md.stdout).not.toMatch(INVISIBLE_NOT_NEWLINE);
          expect(md.stdout.length).toBeLessThan(50_000);

          // chat: the approval request reached it, inert, one line, bounded.
          const mine = chat.messages.filter((m) => m.text.includes(workflowId));
          expect(mine.some((m) => m.text.includes('roll production back'))).toBe(true);
          for (const m of mine) {
            for (const text of [m.text, ...(m.blocks ?? []).map((block) => (block as { text: { text: string } }).text.text)]) {
              expect(text).not.toMatch(LIVE_SLACK);
              expect(text).not.toMatch(INVISIBLE_NOT_NEWLINE);
              expect(text.split('\n').filter((l) => l.trimStart().startsWith(FORGED_EVENT_LINE))).toEqual([]);
              expect(text.length).toBeLessThan(6000);
            }
          }
        } finally {
          await handle.cancel().catch(() => undefined);
          await handle.result().catch(() => undefined);
        }
      });
    } finally {
      await vsandbox.close();
    }
  }, 180_000);
});

/** Invisible characters other than the newline that separates a text's lines. */
const INVISIBLE_NOT_NEWLINE = /(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
