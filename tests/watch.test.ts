/**
 * The runbook's watch on a real Temporal server, as a real Schedule against the Clerk sandbox: the
 * Schedule is created once (and kept paused across an update), a category must be seen in
 * consecutive runs (a flap opens nothing), an inconclusive run neither counts nor breaks a streak,
 * two detections (the watch and an alert) make one incident, and the watch tells the incident when
 * it clears (it closes nothing). Each run is triggered by hand so the test decides what each sees.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { createWorker } from '../src/worker';
import { Worker } from '@temporalio/worker';
import { ensureWatchSchedule, watchConfigFromEnv, watchScheduleId, watchStatus, WatchConfigError, type WatchConfig } from '../src/watch/schedule';
import { createTemporalIncidentOpener, detectedIncidentId } from '../src/intake/temporal-opener';
import { getIncidentState, recordDetection, type IncidentState } from '../src/workflows/incident';
import { eventually, sandboxDeps } from './helpers/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { connectTemporal, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';
import { refusal } from './helpers/refusal';
import { runCli } from './helpers/cli';

let temporal: TemporalTestContext;
let client: Client;
beforeAll(async () => {
  temporal = await connectTemporal();
  client = temporal.client;
});
afterAll(async () => temporal?.close());

const config = (over: { intervalMs?: number; consecutive?: number; deployment: string }): WatchConfig => ({
  enabled: true,
  intervalMs: over.intervalMs ?? 3_600_000,
  input: { deployment: over.deployment, consecutive: over.consecutive ?? 2, approvers: ['bob@example.com', 'carol@example.com'], probeTimeoutMs: 2_000 },
});

/**
 * Triggers one run and waits for it to be done; returns the run's status line. The Schedule learns
 * of a run's end (and its result, which the next run reads) shortly after it: a trigger before
 * that would be skipped (overlap SKIP) or see the result before. Runs also need distinct seconds
 * (the Schedule's workflow ids end in the second). A real interval is never this short.
 */
async function runOnce(taskQueue: string): Promise<Awaited<ReturnType<typeof watchStatus>>['runs'][number]> {
  await new Promise((r) => setTimeout(r, 1_500));
  const before = (await watchStatus(client, taskQueue, 100)).runs.length;
  await client.schedule.getHandle(watchScheduleId(taskQueue)).trigger(ScheduleOverlapPolicy.SKIP);
  return eventually(
    async () => {
      const s = await watchStatus(client, taskQueue, 100);
      const last = s.runs.at(-1);
      return s.runs.length > before && last && last.status !== 'RUNNING' && s.running === 0 ? last : undefined;
    },
    30_000,
    200,
  );
}

async function withWatch<T>(body: (ctx: { sandbox: RunningSandbox; taskQueue: string; deployment: string; chat: ChatReceiver }) => Promise<T>, consecutive = 2): Promise<T> {
  const sandbox = await startSandbox({ users: 3, seed: 'watch-test' });
  const chat = await startChatReceiver();
  const taskQueue = uniqueTaskQueue('watch');
  const deployment = taskQueue.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 60);
  try {
    const worker = await createWorker({ connection: temporal.nativeConnection, taskQueue, deps: sandboxDeps(sandbox, chat.url), workflowBundle: { codePath: inject('workflowBundlePath') } });
    return await worker.runUntil(async () => {
      // Paused: only the test's triggers run it (a trigger runs a paused schedule too).
      await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, config({ deployment, consecutive }));
      await client.schedule.getHandle(watchScheduleId(taskQueue)).pause('test: runs are triggered');
      try {
        return await body({ sandbox, taskQueue, deployment, chat });
      } finally {
        await client.schedule.getHandle(watchScheduleId(taskQueue)).delete();
      }
    });
  } finally {
    await chat.close();
    await sandbox.close();
  }
}

const stateOf = (id: string) => client.workflow.getHandle(id).query(getIncidentState);
async function runsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.runId);
  return runs;
}
const exists = async (id: string) =>
  client.workflow
    .getHandle(id)
    .describe()
    .then(() => true)
    .catch(() => false);

describe('the watch schedule', () => {
  it('is created once, left as it is when nothing changed, and updated (still paused) when the configuration changed', async () => {
    const taskQueue = uniqueTaskQueue('watch-schedule');
    const c = config({ deployment: 'sched', intervalMs: 30_000 });
    expect(await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, c)).toBe('created');
    expect(await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, c)).toBe('exists');
    const handle = client.schedule.getHandle(watchScheduleId(taskQueue));
    await handle.pause('maintenance window');
    expect(await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, { ...c, intervalMs: 45_000 })).toBe('updated');
    const d = await handle.describe();
    expect(d.state.paused).toBe(true);
    expect(d.spec.intervals?.[0]?.every).toBe(45_000);
    expect(await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, { ...c, intervalMs: 45_000 })).toBe('exists');
    const status = await watchStatus(client, taskQueue);
    expect(status).toMatchObject({ paused: true, every: '45s', consecutive: 2, runs: [] });
    await handle.delete();
  });

  it('reads its configuration from the environment, refusing bad values by name', () => {
    expect(watchConfigFromEnv({}, ['bob@example.com', 'carol@example.com'])).toMatchObject({ enabled: true, intervalMs: 30_000, input: { consecutive: 2, deployment: 'production' } });
    expect(watchConfigFromEnv({ WATCH: 'off' })).toEqual({ enabled: false, reason: 'WATCH=off' });
    expect(watchConfigFromEnv({})).toMatchObject({ enabled: false, reason: expect.stringMatching(/WATCH_APPROVERS/) });
    expect(watchConfigFromEnv({ ALERT_APPROVERS: 'dave,erin', WATCH_INTERVAL: '10s', WATCH_CONSECUTIVE: '3' })).toMatchObject({ intervalMs: 10_000, input: { consecutive: 3, approvers: ['dave', 'erin'] } });
    for (const [env, field] of [
      [{ WATCH_INTERVAL: 'soon' }, 'WATCH_INTERVAL'],
      [{ WATCH_INTERVAL: '100ms' }, 'WATCH_INTERVAL'],
      [{ WATCH_CONSECUTIVE: '0' }, 'WATCH_CONSECUTIVE'],
      [{ WATCH_CONSECUTIVE: '21' }, 'WATCH_CONSECUTIVE'],
      [{ WATCH: 'maybe' }, 'WATCH'],
      [{ WATCH_APPROVERS: 'bob\u001b[31m' }, 'WATCH_APPROVERS'],
      [{ ALERT_DEPLOYMENT: 'prod/eu' }, 'ALERT_DEPLOYMENT'],
    ] as const) {
      expect(() => watchConfigFromEnv({ ALERT_APPROVERS: 'bob,carol', ...env }), field).toThrow(WatchConfigError);
      expect(() => watchConfigFromEnv({ ALERT_APPROVERS: 'bob,carol', ...env }), field).toThrow(new RegExp(`^${field}`));
    }
  });
});

describe('the watch against the sandbox', () => {
  it('a flap opens nothing, an inconclusive run neither counts nor breaks the streak, two runs in a row open one incident, an alert joins it, and a clear is told, not acted on', async () => {
    await withWatch(async ({ sandbox, taskQueue, deployment, chat }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'clear' });

      // A flap: down, up, down. Never two in a row: no incident.
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'firing', seen: { category: 'clerk_outage' }, streak: { count: 1 } });
      sandbox.admin.setOutage({ active: false });
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'clear' });
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const first = (await runOnce(taskQueue)).result;
      expect(first).toMatchObject({ outcome: 'firing', streak: { count: 1 } });
      expect(await exists(incidentId)).toBe(false);

      // The status page cannot be read, and Clerk looks fine otherwise: inconclusive, the streak stays at 1.
      sandbox.admin.setOutage({ active: false });
      sandbox.admin.faults.set({ routes: { 'GET /api/v2/summary.json': { errorRates: { '500': 1 } } } });
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'inconclusive', streak: { count: 1, category: 'clerk_outage' } });
      expect(await exists(incidentId)).toBe(false);
      sandbox.admin.faults.set({});

      // Seen again: the second failing run opens the incident, detected by the watch at the streak's first run.
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const opened = (await runOnce(taskQueue)).result;
      expect(opened).toMatchObject({ outcome: 'opened', streak: { count: 2, since: first?.at }, incident: { workflowId: incidentId } });
      const state = await eventually(async () => (await stateOf(incidentId).catch(() => undefined))?.detection, 15_000);
      expect(state).toMatchObject({ detectedBy: 'watch', detectedAt: first?.at, reports: 1 });
      const s0 = await stateOf(incidentId);
      expect(s0.reporter).toBe('monitor:watch');
      expect(s0.category).toBe('clerk_outage');
      expect(s0.timeline.find((e) => e.step === 'detection')?.description).toMatch(new RegExp(`^detected by watch at ${first?.at}; the incident opened \\d+ s later \\(2 evidence line\\(s\\)`));

      // Still down: the watch knows its incident, opens no second one and adds nothing to it.
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'firing', streak: { count: 3 }, incident: { workflowId: incidentId } });
      expect(await runsOf(incidentId)).toHaveLength(1);

      // An alert of the same category joins the same incident, once per group.
      const opener = createTemporalIncidentOpener({ client, taskQueue, deployment, approvers: ['bob@example.com', 'carol@example.com'], categories: ['clerk_outage'] });
      const alert = { category: 'clerk_outage' as const, severity: 'critical' as const, dedupKey: 'g1|clerk_outage', detectedBy: 'alert:pager' as const, startsAt: '2026-12-02T03:00:00Z', evidence: ['firing ClerkAPI5xx [ab] since 2026-12-02T03:00:00Z'] };
      expect(await opener.openOrJoin(alert)).toMatchObject({ incidentId, joined: true, recorded: true });
      expect(await opener.openOrJoin(alert)).toMatchObject({ incidentId, joined: true, recorded: false });
      expect(await runsOf(incidentId)).toHaveLength(1);
      const joined = await stateOf(incidentId);
      expect(joined.timeline.filter((e) => e.step === 'detection').map((e) => e.actor)).toEqual(['watch', 'alert:pager']);

      // Clear for two runs: the incident is told (timeline and channel, nothing decided yet); it stays open.
      sandbox.admin.setOutage({ active: false });
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'clear', incident: { clearRuns: 1, reportedClear: false } });
      const reported = await runOnce(taskQueue);
      expect(reported.result).toMatchObject({ outcome: 'reported_clear', incident: { reportedClear: true } });
      // The run's history replays against the current workflow code (it read the last result, probed and reported).
      const history = await client.workflow.getHandle(reported.workflowId, reported.runId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: 'watch' }, history, reported.workflowId);
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'clear', incident: { reportedClear: true } });
      const told = await stateOf(incidentId);
      expect(told.timeline.filter((e) => e.step === 'detection' && /sees it clear again/.test(e.description))).toHaveLength(1);
      expect(told.timeline.find((e) => /sees it clear again/.test(e.description))?.description).toMatch(/nothing is closed automatically; no decision was taken yet/);
      expect(told.status).not.toMatch(/resolved|cancelled/);
      await eventually(async () => chat.texts().some((t) => /Detection cleared/.test(t) && /Nothing is closed automatically/.test(t)), 15_000);
      expect((await client.workflow.getHandle(incidentId).describe()).status.name).toBe('RUNNING');
      await client.workflow.getHandle(incidentId).terminate('test over');
    });
  }, 240_000);

  it('with consecutive 1 the first failing run opens; an incident closed while the fault lasts is opened again under the same id', async () => {
    await withWatch(async ({ sandbox, taskQueue, deployment }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'opened' });
      await client.workflow.getHandle(incidentId).terminate('test: closed by a person');
      // Still down after the incident was closed: the next run opens a new incident under the same id.
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'opened' });
      expect(await runsOf(incidentId)).toHaveLength(2);
      await client.workflow.getHandle(incidentId).terminate('test over');
    }, 1);
  }, 120_000);
});

describe('recordDetection: what anyone who can reach Temporal may send', () => {
  it('is checked field by field, bounded in the timeline, and refused once the incident is closed', async () => {
    await withWatch(async ({ sandbox, taskQueue, deployment, chat }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      await runOnce(taskQueue);
      expect((await runOnce(taskQueue)).result).toMatchObject({ outcome: 'opened' });
      const handle = client.workflow.getHandle(incidentId);
      const ok = { kind: 'firing' as const, detectedBy: 'alert:pager', detectedAt: '2026-12-02T03:00:00Z', dedupKey: 'k', evidence: [] };
      for (const [bad, field] of [
        [{ ...ok, kind: 'closed' }, 'kind'],
        [{ ...ok, detectedBy: 'someone' }, 'detectedBy'],
        [{ ...ok, detectedBy: 'alert:x\ninjected line' }, 'detectedBy'],
        [{ ...ok, detectedAt: 'yesterday' }, 'detectedAt'],
        [{ ...ok, dedupKey: '' }, 'dedupKey'],
        [{ ...ok, evidence: ['one\ntwo'] }, 'evidence.0'],
        [{ ...ok, evidence: ['sk_live_' + 'a'.repeat(40)] }, 'evidence.0'],
        [{ ...ok, evidence: Array(21).fill('x') }, 'evidence'],
        [{ ...ok, extra: 1 }, 'extra'],
      ] as const) {
        const message = await refusal(handle.executeUpdate(recordDetection, { args: [bad as never] }));
        expect(message, field).toMatch(new RegExp(`\\b${field.replace('.', '\\.')}\\b`));
      }
      // A clear before any decision goes to chat: a receiver name with Slack syntax mentions nobody and links nothing.
      await handle.executeUpdate(recordDetection, { args: [{ ...ok, kind: 'cleared', detectedBy: 'alert:<!channel> <https://evil.test|click> *bold*', dedupKey: 'hostile' }] });
      const cleared = await eventually(async () => chat.messages.find((m) => /Detection cleared/.test(m.text)), 15_000);
      expect(cleared.text).not.toMatch(/<!channel>|<https:\/\/evil\.test\|/);
      expect(JSON.stringify(cleared.blocks ?? [])).not.toMatch(/<!channel>|<https:\/\/evil\.test\|/);
      // Sixty sources: forty lines, one line that says the rest are counted, and every report counted.
      for (let i = 0; i < 60; i++) await handle.executeUpdate(recordDetection, { args: [{ ...ok, dedupKey: `g${i}` }] });
      const s: IncidentState = await stateOf(incidentId);
      const lines = s.timeline.filter((e) => e.step === 'detection');
      expect(lines.length).toBe(41);
      expect(lines.at(-1)?.description).toMatch(/later ones are counted/);
      expect(s.detection?.reports).toBe(62);
      await handle.terminate('test over');
      await expect(handle.executeUpdate(recordDetection, { args: [ok] })).rejects.toThrow();
    });
  }, 120_000);
});

describe('npm run watch', () => {
  const cli = (args: string[], taskQueue: string) => runCli('src/cli/watch.ts', args, { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue, INCIDENT_OPERATOR: 'dana' });

  it('pauses, resumes, triggers and shows the watch; refuses bad arguments by name; names a missing watch', { timeout: 120_000 }, async () => {
    const taskQueue = uniqueTaskQueue('watch-cli');
    const missing = await cli(['status'], taskQueue);
    expect(missing.code).toBe(1);
    expect(missing.firstError).toMatch(/^error: runbook-watch:\S+: no such watch; npm start creates it/);

    await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, config({ deployment: 'cli' }));
    const paused = await cli(['pause', '--reason', 'maintenance until 04:00'], taskQueue);
    expect(paused.code, paused.stderr).toBe(0);
    expect(paused.stdout).toMatch(/paused \(paused by dana: maintenance until 04:00\)/);
    const shown = await cli(['status'], taskQueue);
    expect(shown.code).toBe(1); // paused: not watching
    expect(shown.stdout).toMatch(/: PAUSED \(paused by dana: maintenance until 04:00\)\nevery 1h, acts on 2 run\(s\) in a row/);
    const resumed = await cli(['resume'], taskQueue);
    expect(resumed.code, resumed.stderr).toBe(0);
    const json = await cli(['status', '--json'], taskQueue);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ paused: false, every: '1h', consecutive: 2, runs: [] });

    for (const [args, message] of [
      [['pause', '--reason', 'line one\nline two'], /^error: --reason: must be one line/],
      [['pause', '--reason', `key ${'sk_live_' + 'a'.repeat(40)}`], /^error: --reason: looks like a Clerk secret key/],
      [['status', '--runs', '0'], /^error: --runs: must be a whole number from 1 to 100/],
      [['status', '--runs', 'all'], /^error: --runs: must be a whole number from 1 to 100/],
      [['stop'], /^error: unknown command 'stop'/],
      [['--task-queue', 'q\nforged line', 'status'], /^error: --task-queue: must be one line of plain text/],
    ] as const) {
      const run = await cli([...args], taskQueue);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.firstError, args.join(' ')).toMatch(message);
    }
    await client.schedule.getHandle(watchScheduleId(taskQueue)).delete();
  });
});
