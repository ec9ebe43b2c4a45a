/**
 * The Slack app (issue 34), end to end over HTTP: a worker whose notifications go to the
 * sandbox's emulated Slack through the real `@slack/web-api`, our interactivity endpoint, and
 * clicks the sandbox signs as Slack does. Judged by the sandbox's records (messages, edits,
 * ephemerals, views, deliveries) and the incident's own state: a valid click approves under the
 * clicker's roster identity; a tampered body, a stale timestamp or another secret is refused 401
 * and sends nothing; an unknown user is told so and sends nothing; a double click and a Slack
 * retry are applied once; a click on a gate decided elsewhere is refused; reject asks for a
 * reason in a modal; a signed gate shows the command instead of buttons; `/incident`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import type { ActivityDeps } from '../src/activities';
import { APPROVE_ACTION, gateButtons, OUTCOME_BLOCK, REJECT_ACTION } from '../src/chat/slack-messages';
import { slackWebClient } from '../src/chat/slack-client';
import { slackConfigFromEnv, startSlackApp, type RunningSlackApp, type SlackConfig } from '../src/chat/start';
import type { IncidentInput } from '../src/domain';
import { DrillSlack } from '../src/drill/slack';
import { parseRoster } from '../src/roster/parse';
import { resolvePerson } from '../src/roster/resolve';
import type { Roster } from '../src/roster/schema';
import { approveStep, getIncidentState, type IncidentState } from '../src/workflows/incident';
import { eventually, sandboxDeps, waitForState, withIncidents, type IncidentHandle, type StartIncident } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

const SAMPLE = readFileSync(join(__dirname, '..', 'config', 'roster.sample.yaml'), 'utf8');
const sample = parseRoster({ file: 'roster.sample.yaml', text: SAMPLE });
const signed = parseRoster({ file: 'roster.signed.yaml', text: SAMPLE.replaceAll('signed: false # production: true', 'signed: true') });

const BOB = 'U0SANDBOXBOB';
const CAROL = 'U0SANDBOXCAROL';
const ALICE = 'U0SANDBOXALICE';
const MALLORY = 'U0SANDBOXMALLORY';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
let admin: SandboxAdminClient;
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 10, seed: 'slack-test' });
  admin = new SandboxAdminClient(sandbox.url);
});
afterAll(async () => {
  await sandbox?.close();
  await temporal?.close();
});

const outage = (extra: Partial<IncidentInput> = {}): IncidentInput => ({
  category: 'clerk_outage',
  reporter: 'alice@example.com',
  summary: 'Users cannot sign in: <!channel> Clerk API returns 503',
  approvers: ['@auth-oncall'],
  timeouts: { escalateAfter: '3m', decideWithin: '5m', probe: '2s' },
  ...extra,
});

/** A worker with the Slack app on the sandbox's Slack, and the app's endpoint; each test its own queue (and its own Slack app, as the sandbox has one request URL at a time). */
async function withSlack<T>(roster: Roster, body: (ctx: { start: StartIncident; app: RunningSlackApp; config: SlackConfig; log: Array<Record<string, unknown>> }) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('slack');
  const config = slackConfigFromEnv({ SLACK: 'on', SLACK_PORT: '0' }, sandbox.url)!;
  const holder = { current: () => roster };
  const deps: ActivityDeps = { ...sandboxDeps(sandbox), roster: holder, slack: config.settings };
  const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
  const log: Array<Record<string, unknown>> = [];
  const app = await startSlackApp(config, { connection: temporal.client.connection, namespace: 'default', taskQueue, roster: () => roster, defaultApprovers: ['@auth-oncall'], sandboxUrl: sandbox.url, log: (e) => void log.push(e) });
  try {
    return await withIncidents(temporal.client, worker, taskQueue, (start) => body({ start, app, config, log }), { idPrefix: 'slack' });
  } finally {
    await app.close();
  }
}

const gateOpen = (step: string) => (s: IncidentState) => s.pendingApprovals.some((p) => p.step === step);
const approvalsOf = (s: IncidentState, step: string) => s.gates.find((g) => g.step === step)?.approvals.map((a) => a.approver) ?? [];

async function gate(h: IncidentHandle, step = 'emergency_bypass') {
  await waitForState(h, getIncidentState, gateOpen(step), 30_000);
  const slack = new DrillSlack(admin, sample);
  const at = await slack.gateMessage(h.workflowId, step as 'emergency_bypass', 15_000);
  return { ...at, slack };
}

async function message(incidentId: string, ts: string) {
  const thread = DrillSlack.threadOf(await admin.slack(), incidentId);
  return thread?.root.replies.find((r) => r.ts === ts);
}
const outcomeOf = async (incidentId: string, ts: string) => JSON.stringify((await message(incidentId, ts))?.blocks?.find((b) => (b as { block_id?: string }).block_id === OUTCOME_BLOCK) ?? null);
/** The outcome line's text as Slack renders it. */
const outcomeText = async (incidentId: string, ts: string) => ((await message(incidentId, ts))?.blocks?.find((b) => (b as { block_id?: string }).block_id === OUTCOME_BLOCK) as { elements?: { text: string }[] } | undefined)?.elements?.[0]?.text;
const ephemeralsTo = async (user: string) => (await admin.slack()).ephemerals.filter((e) => e.user === user).map((e) => e.text);

describe('the Slack app', () => {
  it('one thread per incident: the status message first, the gate with its evidence and buttons; two clicks approve it under the roster people, the message and the status follow', async () => {
    await withSlack(sample, async ({ start }) => {
      const h = await start(outage());
      const { channel, ts, slack } = await gate(h);
      const o = await admin.slack();
      const thread = DrillSlack.threadOf(o, h.workflowId)!;
      expect(thread.channel).toBe(channel);
      const root = JSON.stringify(thread.root.blocks);
      expect(root).toContain('Status: ');
      // The summary's <!channel> arrives escaped: it pings nobody.
      expect(root).not.toContain('<!channel>');
      expect(root).toContain('&lt;!channel&gt;');
      const gateMsg = await message(h.workflowId, ts);
      const shown = JSON.stringify(gateMsg?.blocks);
      expect(shown).toContain('What the runbook saw');
      expect(shown).toContain('Triage:');
      expect(shown).toMatch(/not done \(timed_out\)/);
      expect(shown).toContain(APPROVE_ACTION);
      expect(shown).toContain(REJECT_ACTION);

      await slack.approve(h.workflowId, 'emergency_bypass', 'bob@example.com');
      let s = await h.query(getIncidentState);
      expect(approvalsOf(s, 'emergency_bypass')).toEqual(['bob']);
      expect(s.timeline.some((e) => e.step === 'emergency_bypass' && e.description.includes(`sent as "slack:${BOB}"`))).toBe(true);
      // One of two: the buttons stay for the second approver.
      expect(JSON.stringify((await message(h.workflowId, ts))?.blocks)).toContain(APPROVE_ACTION);

      await slack.approve(h.workflowId, 'emergency_bypass', 'carol@example.com');
      s = await waitForState(h, getIncidentState, (x) => x.gates.some((g) => g.step === 'emergency_bypass' && g.outcome === 'approved'), 15_000);
      expect(approvalsOf(s, 'emergency_bypass')).toEqual(['bob', 'carol']);
      const after = await message(h.workflowId, ts);
      expect(JSON.stringify(after?.blocks)).not.toContain(APPROVE_ACTION);
      expect(await outcomeOf(h.workflowId, ts)).toContain(CAROL);
      // The thread's first message moved on with the incident.
      await eventually(async () => ((DrillSlack.threadOf(await admin.slack(), h.workflowId)?.root.edits ?? 0) > 0 ? true : undefined));
    });
  });

  it('a tampered body, a stale timestamp, another secret or no signature: 401, and nothing reaches the incident', async () => {
    await withSlack(sample, async ({ start, app }) => {
      const h = await start(outage());
      const { channel, ts } = await gate(h);
      const tries = [{ tamper: true }, { timestampOffsetSeconds: -301 }, { timestampOffsetSeconds: 400 }, { signingSecret: 'someone-elses-secret-0000' }];
      for (const t of tries) {
        const r = await admin.slackClick({ channel, ts, actionId: APPROVE_ACTION, userId: BOB, ...t });
        expect(r.status, JSON.stringify(t)).toBe(401);
        expect(r.body).toMatch(/X-Slack-(Signature|Request-Timestamp)/);
      }
      const unsigned = await fetch(`${app.url}/slack/interactions`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'payload=%7B%7D' });
      expect(unsigned.status).toBe(401);
      const s = await h.query(getIncidentState);
      expect(approvalsOf(s, 'emergency_bypass')).toEqual([]);
      expect(await outcomeOf(h.workflowId, ts)).toBe('null');
    });
  });

  it('a Slack user the roster does not know is told so, ephemerally, and nothing is sent', async () => {
    await withSlack(sample, async ({ start }) => {
      const h = await start(outage());
      const { channel, ts } = await gate(h);
      const r = await admin.slackClick({ channel, ts, actionId: APPROVE_ACTION, userId: MALLORY });
      expect(r.status).toBe(200);
      const told = await eventually(async () => (await ephemeralsTo(MALLORY)).find((t) => t.includes('not in the on-call roster')));
      expect(told).toContain(MALLORY);
      expect(approvalsOf(await h.query(getIncidentState), 'emergency_bypass')).toEqual([]);
    });
  });

  it('a Slack retry of one click and a double click are applied once; the second click is refused, one line, to the clicker', async () => {
    await withSlack(sample, async ({ start, log }) => {
      const h = await start(outage());
      const { channel, ts } = await gate(h);
      const r = await admin.slackClick({ channel, ts, actionId: APPROVE_ACTION, userId: BOB, retries: 2 });
      expect(r.deliveries.map((d) => d.retryNum)).toEqual([0, 1, 2]);
      await eventually(async () => ((await outcomeOf(h.workflowId, ts)).includes(BOB) ? true : undefined));
      expect(log.filter((e) => e.event === 'slack_retry_ignored')).toHaveLength(2);
      await admin.slackClick({ channel, ts, actionId: APPROVE_ACTION, userId: BOB });
      const refused = await eventually(async () => (await ephemeralsTo(BOB)).find((t) => t.includes('refused')));
      expect(refused).not.toContain('\n');
      const s = await h.query(getIncidentState);
      expect(approvalsOf(s, 'emergency_bypass')).toEqual(['bob']);
      expect(s.timeline.filter((e) => e.step === 'emergency_bypass' && e.description.includes(`sent as "slack:${BOB}"`)).length).toBe(1);
    });
  });

  it('a click on a gate decided elsewhere (the CLI) is refused; the incident keeps the first decision', async () => {
    await withSlack(sample, async ({ start }) => {
      const h = await start(outage());
      const { channel, ts } = await gate(h);
      await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob@example.com' }] });
      await h.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol@example.com' }] });
      await waitForState(h, getIncidentState, (x) => x.gates.some((g) => g.step === 'emergency_bypass' && g.outcome === 'approved'), 15_000);
      await admin.slackClick({ channel, ts, actionId: APPROVE_ACTION, userId: ALICE });
      const refused = await eventually(async () => (await ephemeralsTo(ALICE)).find((t) => t.includes('emergency_bypass')));
      expect(refused).toMatch(/refused/);
      expect(approvalsOf(await h.query(getIncidentState), 'emergency_bypass')).toEqual(['bob', 'carol']);
    });
  });

  it('Reject opens a modal; an empty reason is refused in the form, a reason rejects the step and the message says by whom', async () => {
    await withSlack(sample, async ({ start }) => {
      const h = await start(outage());
      const { channel, ts } = await gate(h);
      const r = await admin.slackClick({ channel, ts, actionId: REJECT_ACTION, userId: BOB });
      expect(r.status).toBe(200);
      const view = await eventually(async () => (await admin.slack()).views.find((v) => v.user === BOB && v.status === 'open'));
      const empty = await admin.slackSubmit({ viewId: view.id, userId: BOB, values: { reason: { reason: '   ' } } });
      expect(empty.closed).toBe(false);
      expect(empty.errors?.reason).toMatch(/needs a reason/);
      const done = await admin.slackSubmit({ viewId: view.id, userId: BOB, values: { reason: { reason: 'status page says Clerk recovers in 5 minutes\nIGNORE: approved by everyone' } } });
      expect(done.closed).toBe(true);
      const s = await waitForState(h, getIncidentState, (x) => x.gates.some((g) => g.step === 'emergency_bypass' && g.outcome === 'rejected'), 15_000);
      expect(s.gates.find((g) => g.step === 'emergency_bypass')?.rejection?.approver).toBe('bob');
      const outcome = await eventually(async () => {
        const o = await outcomeOf(h.workflowId, ts);
        return o.includes('Rejected') ? o : undefined;
      });
      expect(outcome).toContain(BOB);
      // The reason's newline cannot add a line of its own (an "IGNORE: approved by everyone" under the outcome).
      const text = await outcomeText(h.workflowId, ts);
      expect(text).toMatch(/^Rejected: /);
      expect(text).not.toContain('\n');
      expect(JSON.stringify((await message(h.workflowId, ts))?.blocks)).not.toContain(APPROVE_ACTION);
    });
  });

  it('a button of an earlier request of the step is refused: an old message never decides the gate asked for now', async () => {
    await withSlack(sample, async ({ start, config }) => {
      const h = await start(outage());
      const { channel } = await gate(h);
      // An older message of the same step, as a gate asked for before would have left it in the thread.
      const bot = slackWebClient(config.settings);
      const thread = DrillSlack.threadOf(await admin.slack(), h.workflowId)!;
      const old = await bot.chat.postMessage({ channel, thread_ts: thread.root.ts, text: 'Approval needed: emergency_bypass (an earlier request)', blocks: [gateButtons(h.workflowId, 'emergency_bypass', '2026-01-01T00:00:00.000Z')] as never });
      await admin.slackClick({ channel, ts: old.ts!, actionId: APPROVE_ACTION, userId: BOB });
      const refused = await eventually(async () => (await ephemeralsTo(BOB)).find((t) => t.includes('earlier') || t.includes('belongs to the request')));
      expect(refused).toMatch(/belongs to the request of 2026-01-01T00:00:00\.000Z/);
      expect(approvalsOf(await h.query(getIncidentState), 'emergency_bypass')).toEqual([]);
    });
  });

  it('a first reply that fails after the thread opened: the retry finds the thread and the thread stays one', async () => {
    await withSlack(sample, async ({ start }) => {
      // The first chat.postMessage (the thread's first message) passes, the next one (its first reply) fails once.
      await admin.slackSettings({ failNext: { method: 'chat.postMessage', error: 'internal_error', count: 1, after: 1 } });
      try {
        const h = await start(outage());
        await gate(h);
        const o = await admin.slack();
        const roots = o.channels.flatMap((c) => c.messages).filter((m) => JSON.stringify(m.blocks).includes(`"Incident ${h.workflowId}"`));
        expect(roots).toHaveLength(1);
        expect((await h.query(getIncidentState)).chat?.ts).toBe(roots[0]?.ts);
        expect(o.calls.some((c) => c.method === 'chat.postMessage' && c.error === 'internal_error')).toBe(true);
      } finally {
        await admin.slackSettings({ failNext: null });
      }
    });
  });

  it('a step whose decisions must be signed shows the command to sign, and no button', async () => {
    await withSlack(signed, async ({ start }) => {
      const h = await start(outage());
      await waitForState(h, getIncidentState, gateOpen('emergency_bypass'), 30_000);
      const reply = await eventually(async () => DrillSlack.threadOf(await admin.slack(), h.workflowId)?.root.replies.find((m) => m.text.includes('Approval needed: emergency_bypass')));
      const shown = JSON.stringify(reply.blocks);
      expect(shown).not.toContain(APPROVE_ACTION);
      expect(shown).toContain('must be decided with a signature');
      expect(shown).toContain('--sign');
    });
  });

  it('/incident: a roster person starts an incident and reads the status; an unknown user and a bad category are refused, naming why', async () => {
    await withSlack(sample, async ({ config }) => {
      void config;
      const unknown = await admin.slackCommand({ command: '/incident', text: 'start clerk_outage everything is down', userId: MALLORY });
      expect(unknown.body).toContain('not in the on-call roster');
      const bad = await admin.slackCommand({ command: '/incident', text: 'start everything_is_down please', userId: ALICE });
      expect(bad.body).toMatch(/category: must be one of/);
      const started = await admin.slackCommand({ command: '/incident', text: 'start clerk_outage Users cannot sign in', userId: ALICE });
      expect(started.status).toBe(200);
      const id = /started incident (incident-slack-[0-9a-f]+)/.exec(started.body)?.[1];
      expect(id, started.body).toBeDefined();
      const h = temporal.client.workflow.getHandle(id!);
      try {
        const s = await waitForState(h as IncidentHandle, getIncidentState, (x) => x.reporter === 'alice' || x.reporter === 'alice@example.com', 15_000);
        expect(s.summary).toBe('Users cannot sign in');
        const st = await admin.slackCommand({ command: '/incident', text: `status ${id}`, userId: BOB });
        expect(st.body).toContain(id!);
      } finally {
        await h.cancel().catch(() => undefined);
        await h.result().catch(() => undefined);
      }
    });
  });
});

describe('who a Slack click is', () => {
  it('slack:<member id> is the person whose chatUserId it is, exactly: never a name, an alias or another case', () => {
    expect(resolvePerson(sample, 'slack:U0SANDBOXBOB')).toMatchObject({ ok: true, person: { id: 'bob' } });
    expect(resolvePerson(sample, 'slack:u0sandboxbob')).toMatchObject({ ok: false, error: { name: 'PersonUnknown' } });
    // An alias that spells another person's member id is refused by the roster itself; one that spells the Slack handle cannot take the click.
    expect(() => parseRoster({ file: 'aliased.yaml', text: SAMPLE.replace('    chatUserId: U0SANDBOXCAROL', '    aliases: [U0SANDBOXBOB]\n    chatUserId: U0SANDBOXCAROL') })).toThrow(/"U0SANDBOXBOB" is also bob's chatUserId/);
    const aliased = parseRoster({ file: 'aliased.yaml', text: SAMPLE.replace('    chatUserId: U0SANDBOXCAROL', '    aliases: ["slack:U0SANDBOXBOB"]\n    chatUserId: U0SANDBOXCAROL') });
    expect(resolvePerson(aliased, 'slack:U0SANDBOXBOB')).toMatchObject({ ok: true, person: { id: 'bob' } });
    expect(resolvePerson(sample, 'slack:U0SANDBOXMALLORY')).toMatchObject({ ok: false, error: { name: 'PersonUnknown', message: expect.stringContaining('no person of the roster') } });
  });
});
