/**
 * `npm run test:selfhosted` (not part of `npm test`): the self-hosted topology of
 * docker-compose.yml run natively (tests/selfhosted/cluster.ts): Temporal Server 1.32.0 on a
 * private PostgreSQL, set up by deploy/temporal/scripts. Two workers in processes of their own
 * share the incidents; the server is `kill -9`ed while every incident is in its recovery watch and
 * started again; the incidents complete; the UI's search-attribute filters work on PostgreSQL
 * visibility. Worker Versioning: an incident started on build A runs to its end on A after build B
 * is made current, and a new incident runs on B.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { buildWorkflowBundle } from '../../src/worker/bundle';
import { getIncidentState, incidentWorkflow } from '../../src/workflows';
import { ensureTemporalServer } from '../../scripts/temporal-server';
import { uniqueTaskQueue, uniqueWorkflowId } from '../helpers/ids';
import { startSelfHostedCluster, type SelfHostedCluster } from './cluster';
import type { IncidentWorkerConfig } from './incident-worker';

const log = (line: string) => process.stdout.write(`[selfhosted] ${line}\n`);

let cluster: SelfHostedCluster;
let sandbox: RunningSandbox;
let connection: Connection;
let client: Client;
let bundleDir: string;
let bundlePath: string;
const children: { kill: () => void; exited: Promise<unknown> }[] = [];

beforeAll(async () => {
  const install = ensureTemporalServer(log);
  cluster = await startSelfHostedCluster(install, log);
  bundleDir = mkdtempSync(join(tmpdir(), 'cir-selfhosted-bundle-'));
  bundlePath = await buildWorkflowBundle(join(bundleDir, 'workflow-bundle.js'));
  sandbox = await startSandbox({ users: 30, seed: 'selfhosted' });
  connection = await Connection.connect({ address: cluster.address });
  client = new Client({ connection });
});

afterAll(async () => {
  for (const c of children) c.kill();
  await Promise.all(children.map((c) => c.exited));
  await connection?.close();
  await sandbox?.close();
  await cluster?.stop();
  if (bundleDir) rmSync(bundleDir, { recursive: true, force: true });
});

async function startWorker(config: IncidentWorkerConfig): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'incident-worker.ts'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  children.push({ kill: () => child.kill('SIGTERM'), exited });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`worker ${config.identity} exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout }).on('line', (line) => line === 'ready' && resolve());
  });
}

/** Who ran the incident's tasks, as the history records it. */
async function identities(handle: WorkflowHandle): Promise<Set<string>> {
  const history = await handle.fetchHistory();
  const out = new Set<string>();
  for (const e of history.events ?? []) {
    const id = e.workflowTaskCompletedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
    if (id) out.add(id);
  }
  return out;
}

/** The build that ran each workflow task and the identity of each activity's worker, from the history. */
async function buildsAndWorkers(handle: WorkflowHandle): Promise<{ builds: (string | undefined)[]; activityWorkers: Set<string>; events: number }> {
  const events = (await handle.fetchHistory()).events ?? [];
  return {
    builds: events.filter((e) => e.workflowTaskCompletedEventAttributes).map((e) => e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId ?? undefined),
    activityWorkers: new Set(events.map((e) => e.activityTaskStartedEventAttributes?.identity).filter((id): id is string => !!id)),
    events: events.length,
  };
}

const outageIncident = (summary: string) => ({
  reporter: 'alice',
  approvers: ['alice', 'bob', 'carol'],
  category: 'clerk_outage' as const,
  summary,
  timeouts: { escalateAfter: '1s', decideWithin: '2s', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '10m' },
});

const INCIDENTS = 4;
const ids: string[] = [];

describe('self-hosted Temporal 1.32.0 on PostgreSQL, natively', () => {
  it('two workers share the incidents; kill -9 of the server mid-incident and a restart: every incident completes', async () => {
    log(`cluster up: ${JSON.stringify(cluster.timings)}`);
    const taskQueue = uniqueTaskQueue('selfhosted');
    const sandboxRef = { url: sandbox.url, secretKey: sandbox.secretKey, publishableKey: sandbox.publishableKey };
    await Promise.all(
      ['worker-a', 'worker-b'].map((identity) => startWorker({ temporalAddress: cluster.address, taskQueue, workflowBundlePath: bundlePath, identity, sandbox: sandboxRef })),
    );

    // Clerk is down: each incident times out its bypass approval, then watches for recovery.
    sandbox.admin.setOutage({ active: true });
    const handles = await Promise.all(
      Array.from({ length: INCIDENTS }, () =>
        client.workflow.start(incidentWorkflow, {
          taskQueue,
          workflowId: uniqueWorkflowId('selfhosted'),
          args: [
            {
              reporter: 'alice',
              approvers: ['alice', 'bob', 'carol'],
              category: 'clerk_outage',
              summary: 'nobody can sign in (self-hosted suite)',
              timeouts: { escalateAfter: '1s', decideWithin: '2s', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '10m' },
            },
          ],
        }),
      ),
    );
    ids.push(...handles.map((h) => h.workflowId));
    for (const handle of handles) {
      await expect.poll(async () => (await handle.query(getIncidentState)).gates[0]?.outcome, { timeout: 60_000, interval: 250 }).toBe('timed_out');
    }

    // Mid-incident (all four in their recovery watch): the server dies without a chance to flush anything.
    await cluster.killServer();
    const restartMs = await cluster.startServer();
    log(`server killed with SIGKILL and restarted: serving again after ${restartMs} ms`);
    expect(restartMs).toBeLessThan(60_000);

    // Clerk recovers; the watch (durable timers and activities) sees it on the restarted server.
    sandbox.admin.setOutage({ active: false });
    const results = await Promise.all(handles.map((h) => h.result()));
    for (const result of results) {
      expect(result.status).toBe('resolved');
      expect(result.steps.find((s) => s.step === 'recovery_watch')?.outcome).toBe('succeeded');
    }

    // The incidents were split: both workers ran tasks of them.
    const seen = new Set<string>();
    for (const handle of handles) for (const id of await identities(handle)) seen.add(id);
    expect(seen).toEqual(new Set(['worker-a', 'worker-b']));
  }, 240_000);

  it('search-attribute queries on PostgreSQL visibility find the incidents the UI filters on', async () => {
    expect(ids).toHaveLength(INCIDENTS);
    const list = async (query: string) => {
      const found: string[] = [];
      for await (const w of client.workflow.list({ query })) found.push(w.workflowId);
      return found.filter((id) => ids.includes(id)).sort();
    };
    await expect.poll(() => list(`IncidentCategory = 'clerk_outage' AND IncidentStatus = 'resolved'`), { timeout: 30_000 }).toEqual([...ids].sort());
    expect(await list(`IncidentSeverity = 'critical' AND ExecutionStatus = 'Completed'`)).toEqual([...ids].sort());
    expect(await list(`IncidentCategory = 'webhook_backlog'`)).toEqual([]);
    expect(await list(`IncidentStatus = 'mitigating'`)).toEqual([]);
    const { count } = await client.workflow.count(`IncidentCategory = 'clerk_outage' AND WorkflowType = 'incidentWorkflow'`);
    expect(count).toBeGreaterThanOrEqual(INCIDENTS);
  });

  it('Worker Versioning: an incident started on build A stays on A after build B is made current; a new incident runs on B', async () => {
    const taskQueue = uniqueTaskQueue('selfhosted-versions');
    const deploymentName = `cir-selfhosted-${randomUUID().slice(0, 8)}`;
    const sandboxRef = { url: sandbox.url, secretKey: sandbox.secretKey, publishableKey: sandbox.publishableKey };
    const service = client.workflowService;
    const current = async () => (await service.describeWorkerDeployment({ namespace: 'default', deploymentName }).catch(() => undefined))?.workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId;

    // Build A on a fresh deployment: it makes itself current (the deployment has no current version).
    await startWorker({ temporalAddress: cluster.address, taskQueue, workflowBundlePath: bundlePath, identity: 'build-a-worker', sandbox: sandboxRef, version: { deploymentName, buildId: 'build-a' } });
    await expect.poll(current, { timeout: 60_000, interval: 250 }).toBe('build-a');

    // Incident 1 on A, held in its recovery watch (a workflow task every second) by the outage.
    sandbox.admin.setOutage({ active: true });
    const first = await client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('versions-a'), args: [outageIncident('started on build A')] });
    await expect.poll(async () => (await first.query(getIncidentState)).gates[0]?.outcome, { timeout: 60_000, interval: 250 }).toBe('timed_out');

    // Build B joins (A stays current: a worker never promotes itself over another build), then the operator makes B current.
    await startWorker({ temporalAddress: cluster.address, taskQueue, workflowBundlePath: bundlePath, identity: 'build-b-worker', sandbox: sandboxRef, version: { deploymentName, buildId: 'build-b' } });
    expect(await current()).toBe('build-a');
    await expect
      .poll(
        () =>
          service.setWorkerDeploymentCurrentVersion({ namespace: 'default', deploymentName, buildId: 'build-b', identity: 'selfhosted-suite' }).then(
            () => 'set',
            (err: unknown) => String(err),
          ),
        { timeout: 60_000, interval: 500 },
      )
      .toBe('set');
    expect(await current()).toBe('build-b');
    const atSwitch = (await buildsAndWorkers(first)).builds.length;

    const second = await client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('versions-b'), args: [outageIncident('started after build B became current')] });
    await expect.poll(async () => (await second.query(getIncidentState)).gates[0]?.outcome, { timeout: 60_000, interval: 250 }).toBe('timed_out');
    // Incident 1 keeps working (its recovery checks) after the switch, before Clerk recovers.
    await expect.poll(async () => (await buildsAndWorkers(first)).builds.length, { timeout: 30_000, interval: 500 }).toBeGreaterThan(atSwitch + 2);

    const pinned = async (handle: WorkflowHandle) => {
      const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
      return { behavior: info?.behavior, buildId: info?.deploymentVersion?.buildId };
    };
    const PINNED = temporal.api.enums.v1.VersioningBehavior.VERSIONING_BEHAVIOR_PINNED;
    expect(await pinned(first)).toEqual({ behavior: PINNED, buildId: 'build-a' });
    expect(await pinned(second)).toEqual({ behavior: PINNED, buildId: 'build-b' });

    sandbox.admin.setOutage({ active: false });
    for (const result of await Promise.all([first.result(), second.result()])) expect(result.status).toBe('resolved');

    // Every workflow task of incident 1, before and after the switch, ran on build A, its activities on A's worker; incident 2's on B.
    const a = await buildsAndWorkers(first);
    const b = await buildsAndWorkers(second);
    log(`incident 1: ${a.builds.length} workflow tasks (${a.builds.length - atSwitch} after B became current); incident 2: ${b.builds.length}`);
    expect(a.builds.length).toBeGreaterThan(atSwitch);
    expect(new Set(a.builds)).toEqual(new Set(['build-a']));
    expect(a.activityWorkers).toEqual(new Set(['build-a-worker']));
    expect(new Set(b.builds)).toEqual(new Set(['build-b']));
    expect(b.activityWorkers).toEqual(new Set(['build-b-worker']));
  }, 240_000);
});
