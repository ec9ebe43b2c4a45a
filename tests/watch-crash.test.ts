/**
 * The watch (issue 32) when its worker dies: a sandbox-mode worker in a child process (the crash
 * suite's ChaosWorker) is SIGKILLed while a watch run is in progress and started again, against
 * the run's Temporal dev server and the Clerk sandbox in outage. The killed run is not lost and
 * not doubled: its activity is retried on the new worker (visible in its history), the run
 * completes, the streak counts it once, and the outage has exactly one incident, detected by the
 * watch. Also: runs whose probes cannot run at all are inconclusive and never add up to an incident.
 *
 * Separate from tests/crash.test.ts: that file's beforeAll (its own dev server, 40 users, the
 * drills) takes minutes; this one needs a sandbox and a child worker per test.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { loadEnv } from '../src/config';
import { detectedIncidentId } from '../src/intake/temporal-opener';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { ensureWatchSchedule, watchScheduleId, watchStatus, type WatchConfig, type WatchRun } from '../src/watch/schedule';
import { getIncidentState } from '../src/workflows/incident';
import { ChaosWorker, SeededRandom } from './helpers/chaos';
import { eventually } from './helpers/incident';
import { connectTemporal, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let client: Client;
beforeAll(async () => {
  temporal = await connectTemporal();
  client = temporal.client;
});
afterAll(async () => temporal?.close());

const SUMMARY = 'GET /api/v2/summary.json';
/** The watch's activities have a 30 s start-to-close timeout and no heartbeat: a killed attempt is retried after it. */
const RETRY_AFTER_KILL_MS = 90_000;

interface Ctx {
  sandbox: RunningSandbox;
  taskQueue: string;
  deployment: string;
  chaos: ChaosWorker;
  /** The child worker's log, for a failure's message. */
  logTail: () => string;
}

/** A sandbox, a child worker on a task queue of its own and the watch's Schedule on it (paused: the test triggers each run). */
async function withChaosWatch<T>(label: string, consecutive: number, body: (ctx: Ctx) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'cir-watch-crash-'));
  const sandbox = await startSandbox({ users: 3, seed: `watch-crash-${label}` });
  const taskQueue = uniqueTaskQueue('watch-crash');
  const deployment = taskQueue.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 60);
  const incidentIds = [detectedIncidentId(deployment, 'clerk_outage')];
  let users: Awaited<ReturnType<typeof startSandboxReconcile>> | undefined;
  let chaos: ChaosWorker | undefined;
  try {
    users = await startSandboxReconcile(loadEnv({}), sandbox, dir);
    chaos = new ChaosWorker(
      {
        temporalAddress: inject('temporalAddress'),
        taskQueue,
        workflowBundlePath: inject('workflowBundlePath'),
        sandbox: { url: sandbox.url, secretKey: sandbox.secretKey, publishableKey: sandbox.publishableKey, vercel: sandbox.vercel, vault: sandbox.vault, platform: sandbox.platform, pagerduty: sandbox.pagerduty },
        keyFile: join(dir, 'clerk-secret-key'),
        reconcile: { storeUrl: users.storeUrl, delivery: users.deps.delivery },
        // Without a roster, as tests/watch.test.ts's worker: with one, the incident the watch opens fails at
        // start (reporter "watch" is not a roster person nor "monitor:<name>"), a bug of its own.
        noRoster: true,
      },
      new SeededRandom(`watch-crash-${label}`),
      join(dir, 'workers.log'),
    );
    await chaos.start();
    const config: WatchConfig = {
      enabled: true,
      intervalMs: 3_600_000,
      // Probes may take the injected 2 s of latency and still answer.
      input: { deployment, consecutive, approvers: ['bob@example.com', 'carol@example.com'], probeTimeoutMs: 5_000 },
    };
    await ensureWatchSchedule(temporal.nativeConnection, 'default', taskQueue, config);
    const schedule = client.schedule.getHandle(watchScheduleId(taskQueue));
    await schedule.pause('test: runs are triggered');
    const c = chaos;
    const logTail = () => {
      try {
        return readFileSync(c.logFile, 'utf8').split('\n').slice(-20).join('\n');
      } catch {
        return '';
      }
    };
    try {
      return await body({ sandbox, taskQueue, deployment, chaos, logTail });
    } finally {
      await schedule.delete();
      for (const id of incidentIds) await client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    }
  } finally {
    await chaos?.stop();
    await users?.close();
    await sandbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Triggers one run (overlap SKIP: the SDK's default ALLOW_ALL drops the last result); returns how many runs there were before. */
async function trigger(taskQueue: string): Promise<number> {
  // The Schedule learns of a run's end (and its result) shortly after it; its workflow ids end in the second.
  await new Promise((r) => setTimeout(r, 1_500));
  const before = (await watchStatus(client, taskQueue, 100)).runs.length;
  await client.schedule.getHandle(watchScheduleId(taskQueue)).trigger(ScheduleOverlapPolicy.SKIP);
  return before;
}

/** The run after `before`, once the Schedule has it and it is no longer running. */
const finished = (taskQueue: string, before: number, timeout = 30_000): Promise<WatchRun> =>
  eventually(
    async () => {
      const s = await watchStatus(client, taskQueue, 100);
      const last = s.runs.at(-1);
      return s.runs.length > before && last && last.status !== 'RUNNING' && s.running === 0 ? last : undefined;
    },
    timeout,
    200,
  );

const runOnce = async (taskQueue: string) => finished(taskQueue, await trigger(taskQueue));

/** The run after `before` once its activity `name` is executing on a worker (a pending activity in state STARTED). */
async function whenActivityStarted(taskQueue: string, before: number, name: string): Promise<WatchRun> {
  return eventually(
    async () => {
      const s = await watchStatus(client, taskQueue, 100);
      const run = s.runs.length > before ? s.runs.at(-1) : undefined;
      if (!run) return undefined;
      const handle = client.workflow.getHandle(run.workflowId, run.runId);
      const d = await handle.describe();
      // PENDING_ACTIVITY_STATE_STARTED = 2: a worker holds the task.
      return d.raw.pendingActivities?.some((a) => a.activityType?.name === name && Number(a.state) === 2) ? run : undefined;
    },
    15_000,
    50,
  );
}

/** Each activity's started attempts in a run's history, in order: `[{ name, attempt, lastFailure }]`. */
async function activityAttempts(workflowId: string, runId: string): Promise<Array<{ name: string; attempt: number; lastFailure?: string }>> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const names = new Map<string, string>();
  const out: Array<{ name: string; attempt: number; lastFailure?: string }> = [];
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) names.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      const failure = started.lastFailure?.message;
      out.push({ name: names.get(String(started.scheduledEventId)) ?? '?', attempt: started.attempt ?? 0, ...(failure ? { lastFailure: failure } : {}) });
    }
  }
  return out;
}

async function executionsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) runs.push(w.runId);
  return runs;
}

/** Exactly one execution under the id, once visibility has caught up (and still one a moment later). */
async function expectOneExecution(workflowId: string): Promise<void> {
  await eventually(async () => (await executionsOf(workflowId)).length >= 1, 15_000, 200);
  await new Promise((r) => setTimeout(r, 1_000));
  expect(await executionsOf(workflowId)).toHaveLength(1);
}

const exists = (id: string) =>
  client.workflow
    .getHandle(id)
    .describe()
    .then(() => true)
    .catch(() => false);

const stateOf = (id: string) => client.workflow.getHandle(id).query(getIncidentState);

describe('crashes: the worker SIGKILLed during a watch run (issue 32)', () => {
  it('killed while the opening run probes: the run resumes on the new worker, the streak counts it once, one incident detected by the watch', async () => {
    await withChaosWatch('probe-kill', 2, async ({ sandbox, taskQueue, deployment, chaos, logTail }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const first = (await runOnce(taskQueue)).result;
      expect(first).toMatchObject({ outcome: 'firing', streak: { count: 1, category: 'clerk_outage' } });

      // The second failing run would open the incident: its probes are slowed, and the worker dies while they run.
      sandbox.admin.faults.set({ routes: { [SUMMARY]: { latency: { fixedMs: 2_000, jitterMs: 0 } } } });
      const before = await trigger(taskQueue);
      const killed = await whenActivityStarted(taskQueue, before, 'runTriageProbes');
      await chaos.killAndRestart('watch run (runTriageProbes)');
      sandbox.admin.faults.set({});
      // Right after the kill the run is still open (its activity's attempt timed out only after 30 s): status shows it running.
      const during = await watchStatus(client, taskQueue, 100);
      expect(during.running, logTail()).toBe(1);
      expect(during.runs.at(-1)).toMatchObject({ runId: killed.runId, status: 'RUNNING' });
      expect(await exists(incidentId)).toBe(false);

      const run = await finished(taskQueue, before, RETRY_AFTER_KILL_MS);
      const story = `kills: ${JSON.stringify(chaos.kills)}; restarts: ${chaos.restarts.join('; ') || 'none'}\n${logTail()}`;
      // The same run completed (not a new one): it opened the incident at the streak's second run, since the first.
      expect(run.runId, story).toBe(killed.runId);
      expect(run.status, story).toBe('COMPLETED');
      expect(run.result, story).toMatchObject({ outcome: 'opened', streak: { count: 2, since: first?.at }, incident: { workflowId: incidentId } });
      // What shows the kill: the probes' attempt 1 was lost with the worker, attempt 2 ran on the new one.
      const attempts = await activityAttempts(run.workflowId, run.runId);
      expect(attempts.filter((a) => a.name === 'runTriageProbes').map((a) => a.attempt), story).toEqual([2]);
      expect(attempts.find((a) => a.name === 'runTriageProbes')?.lastFailure, story).toMatch(/timeout|timed out/i);
      expect(attempts.filter((a) => a.name === 'watchOpenOrJoin').map((a) => a.attempt), story).toEqual([1]);

      await expectOneExecution(incidentId);
      const detection = await eventually(async () => (await stateOf(incidentId).catch(() => undefined))?.detection, 15_000);
      expect(detection).toMatchObject({ detectedBy: 'watch', detectedAt: first?.at, reports: 1 });

      // The next run, on the restarted worker, knows its incident: streak 3, nothing opened or reported twice.
      const next = (await runOnce(taskQueue)).result;
      expect(next).toMatchObject({ outcome: 'firing', streak: { count: 3, since: first?.at }, incident: { workflowId: incidentId } });
      expect(await executionsOf(incidentId)).toHaveLength(1);
      expect((await stateOf(incidentId)).detection).toMatchObject({ detectedBy: 'watch', reports: 1 });
    });
  }, 150_000);

  it('killed as the opening run starts the incident: whether or not its watchOpenOrJoin is retried, one incident, detected by the watch', async () => {
    await withChaosWatch('open-kill', 1, async ({ sandbox, taskQueue, deployment, chaos, logTail }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const before = await trigger(taskQueue);
      // Killed the moment the incident exists: watchOpenOrJoin has started it and (most likely) not yet reported back.
      await eventually(() => exists(incidentId), 20_000, 2);
      await chaos.killAndRestart('watch run (watchOpenOrJoin)');
      const run = await finished(taskQueue, before, RETRY_AFTER_KILL_MS);
      const attempts = await activityAttempts(run.workflowId, run.runId);
      const opens = attempts.filter((a) => a.name === 'watchOpenOrJoin').map((a) => a.attempt);
      const story = `attempts: ${JSON.stringify(attempts)}; result: ${JSON.stringify(run.result)}\n${logTail()}`;
      process.stdout.write(`watch-crash: killed as the incident started; watchOpenOrJoin attempts ${JSON.stringify(opens)}, outcome ${run.result?.outcome}\n`);
      expect(run.status, story).toBe('COMPLETED');
      expect(opens, story).toHaveLength(1);
      // Retried (attempt 2): the incident it had started is found (USE_EXISTING) and joined, the watch's own report only counted.
      // Not retried (the completion was out before the kill): opened.
      if (opens[0] === 2) expect(run.result, story).toMatchObject({ outcome: 'joined', incident: { workflowId: incidentId } });
      else expect(run.result, story).toMatchObject({ outcome: 'opened', incident: { workflowId: incidentId } });
      expect(run.result?.streak, story).toMatchObject({ count: 1 });

      await expectOneExecution(incidentId);
      const detection = await eventually(async () => (await stateOf(incidentId).catch(() => undefined))?.detection, 15_000);
      // The retry's report reached the incident with its first task (the killed worker held that task for its 1 min
      // timeout): it is counted, never listed before or beside the opening detection, nor lost.
      expect(detection, story).toMatchObject({ detectedBy: 'watch', detectedAt: run.result?.streak?.since, reports: opens[0] === 2 ? 2 : 1, lines: 1 });
      const lines = (await stateOf(incidentId)).timeline.filter((e) => e.step === 'detection');
      expect(
        lines.map((e) => e.description),
        story,
      ).toEqual([expect.stringMatching(/^detected by watch at /)]);

      // Still down: the next run joins nothing new and opens nothing.
      const next = (await runOnce(taskQueue)).result;
      expect(next).toMatchObject({ outcome: 'firing', incident: { workflowId: incidentId } });
      expect(await executionsOf(incidentId)).toHaveLength(1);
    });
  }, 150_000);
});

describe('the watch when its probes cannot run', () => {
  it('status page 500 for three runs (consecutive 2): each run inconclusive in status, the streak before them kept, nothing opened', async () => {
    await withChaosWatch('inconclusive', 2, async ({ sandbox, taskQueue, deployment }) => {
      const incidentId = detectedIncidentId(deployment, 'clerk_outage');
      // One failing run: a streak of 1, one short of an incident.
      sandbox.admin.setOutage({ active: true, indicator: 'major' });
      const first = (await runOnce(taskQueue)).result;
      expect(first).toMatchObject({ outcome: 'firing', streak: { count: 1 } });
      // Then the status page cannot be read, and Clerk looks fine otherwise: three runs that could count would open.
      sandbox.admin.setOutage({ active: false });
      sandbox.admin.faults.set({ routes: { [SUMMARY]: { errorRates: { '500': 1 } } } });
      for (let i = 0; i < 3; i++) {
        const run = await runOnce(taskQueue);
        expect(run.status, `run ${i + 1}`).toBe('COMPLETED');
        expect(run.result, `run ${i + 1}`).toMatchObject({ outcome: 'inconclusive', seen: { rule: 'inconclusive' }, streak: { count: 1, since: first?.at } });
        expect(run.result?.incident, `run ${i + 1}`).toBeUndefined();
      }
      const status = await watchStatus(client, taskQueue, 100);
      expect(status.runs.map((r) => r.result?.outcome)).toEqual(['firing', 'inconclusive', 'inconclusive', 'inconclusive']);
      expect(await exists(incidentId)).toBe(false);
      expect(await executionsOf(incidentId)).toHaveLength(0);
    });
  }, 120_000);
});
