/**
 * The operator commands of `npm run incident` (issue 18) against the run's real dev server, each in
 * a child process as a user runs it: list through visibility, cancel, watch, and the client identity
 * Temporal records for each update (--as / INCIDENT_OPERATOR). Each test runs its incidents on a
 * task queue of its own, which `list --task-queue` filters on, so parallel files never mix.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildProgram } from '../src/cli/incident';
import { buildListQuery, listFlagsSchema, quoteQueryValue, type IncidentRow } from '../src/cli/incident-views';
import type { IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { IncidentStatusKey } from '../src/shared';
import { confirmStep, getIncidentState, incidentWorkflow } from '../src/workflows/incident';
import { ctrlC, runCli, spawnCli, type CliRun } from './helpers/cli';
import { eventually, pendingStep, sandboxDeps, waitForState, withIncidents } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;
beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 20, seed: 'incident-cli-test' });
});
afterAll(async () => {
  await sandbox?.close();
  await temporal?.close();
});

/** The CLI's environment: the test server, none of the caller's Temporal or operator settings. */
function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), ...extra };
  delete env.TEMPORAL_NAMESPACE;
  if (!('INCIDENT_OPERATOR' in extra)) delete env.INCIDENT_OPERATOR;
  return env;
}

const incident = (args: string[], extra?: Record<string, string>): Promise<CliRun> => runCli('src/cli/incident.ts', args, cliEnv(extra));

const fast = { escalateAfter: '20s', decideWithin: '40s', probe: '2s' };
const keyCompromise: IncidentInput = { reporter: 'alice', approvers: ['alice', 'bob', 'carol'], category: 'key_compromise', summary: 'sk_live key in a public gist', dryRun: true, timeouts: fast };
const webhookBacklog: IncidentInput = { reporter: 'alice', approvers: ['alice', 'bob'], category: 'webhook_backlog', summary: 'user.created events missing', timeouts: fast };

type Handle = WorkflowHandle<typeof incidentWorkflow>;

/** A worker on a task queue of its own while `body` runs; starts incidents there. */
async function withQueue<T>(body: (start: (input: IncidentInput) => Promise<Handle>, taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueTaskQueue('incident-cli');
  const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox));
  return withIncidents(temporal.client, worker, taskQueue, (start) => body(start, taskQueue), { staticSummary: (input) => `Incident: ${input.summary}` });
}

async function expectCancelled(handle: Handle): Promise<void> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
}

describe('list: the visibility query comes from validated flags only', () => {
  it('quotes and escapes every value, and combines the filters', () => {
    expect(quoteQueryValue("it's \\ here")).toBe("'it\\'s \\\\ here'");
    const flags = listFlagsSchema.parse({ status: ['mitigating', 'needs_human'], severity: 'critical', open: true, since: '2026-11-27T08:00:00Z', taskQueue: 'q-1' });
    expect(buildListQuery(flags)).toBe(
      "WorkflowType = 'incidentWorkflow' AND IncidentStatus IN ('mitigating', 'needs_human') AND IncidentSeverity = 'critical' AND ExecutionStatus = 'Running' AND StartTime >= '2026-11-27T08:00:00.000Z' AND TaskQueue = 'q-1'",
    );
    expect(listFlagsSchema.safeParse({ taskQueue: "q' OR WorkflowType != '" }).success).toBe(false);
  });
});

describe.concurrent('npm run incident: bad flags exit 2 naming the flag', () => {
  it('list --status nope, --open with --closed, --limit 0', async () => {
    const [status, both, limit] = await Promise.all([incident(['list', '--status', 'nope']), incident(['list', '--open', '--closed']), incident(['list', '--limit', '0'])]);
    expect(status.firstError).toBe('error: --status: "nope" is not a status; one of triage, mitigating, monitoring, bypass_active, needs_human, resolved, cancelled');
    expect(both.firstError).toBe('error: --open: cannot be combined with --closed');
    expect(limit.firstError).toBe('error: --limit: must be at least 1');
    for (const r of [status, both, limit]) expect(r.code).toBe(2);
  });

  it('watch --interval 1h, list --since yesterday, --as with a line break, cancel without an id', async () => {
    const [interval, since, as, noId] = await Promise.all([
      incident(['watch', 'incident-1', '--interval', '1h']),
      incident(['list', '--since', 'yesterday']),
      incident(['list', '--as', 'bob\nmallory']),
      incident(['cancel']),
    ]);
    expect(interval.firstError).toBe('error: --interval: must be between 200ms and 1m');
    expect(since.firstError).toMatch(/^error: --since: "yesterday" is neither a duration/);
    expect(as.firstError).toBe('error: --as: must be one line of printable text');
    expect(noId.firstError).toBe("error: missing required argument 'workflowId'");
    for (const r of [interval, since, as, noId]) expect(r.code).toBe(2);
  });

  it('extend --for 3 (no unit), extend without --reason', async () => {
    const [unit, noReason] = await Promise.all([
      incident(['extend', 'incident-1', '--by', 'bob', '--for', '3', '--reason', 'r']),
      incident(['extend', 'incident-1', '--by', 'bob', '--for', '30m']),
    ]);
    expect(unit.firstError).toBe('error: --for: must be a duration like "30s", "15 minutes" or "2h"');
    expect(noReason.firstError).toBe("error: required option '--reason <text>' not specified");
    for (const r of [unit, noReason]) expect(r.code).toBe(2);
  });

  it('every command shows an example in its help', () => {
    const program = buildProgram();
    const names = program.commands.map((c) => c.name());
    expect(names).toEqual(expect.arrayContaining(['start', 'list', 'show', 'status', 'watch', 'cancel', 'approve', 'reject', 'confirm', 'resolve', 'request', 'extend']));
    for (const command of program.commands) {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text) });
      command.outputHelp();
      expect(help, command.name()).toMatch(new RegExp(`Examples?:\\n  npm run incident -- ${command.name()} `));
    }
  });
});

describe.concurrent('npm run incident against the test server', () => {
  it('list --status mitigating --json finds a started incident and not a cancelled one', async () => {
    await withQueue(async (start, taskQueue) => {
      const [open, cancelled] = await Promise.all([start(keyCompromise), start(keyCompromise)]);
      await Promise.all([open, cancelled].map((h) => waitForState(h, getIncidentState, pendingStep('rotate_secret_key'))));
      await cancelled.cancel();
      await expectCancelled(cancelled);
      // Visibility is eventually consistent: wait until it agrees, then ask the CLI once.
      await eventually(async () => {
        const seen = new Map<string, string | undefined>();
        for await (const i of temporal.client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) seen.set(i.workflowId, i.typedSearchAttributes.get(IncidentStatusKey));
        return seen.get(open.workflowId) === 'mitigating' && seen.get(cancelled.workflowId) === 'cancelled';
      });

      const [mitigating, closed, table] = await Promise.all([
        incident(['list', '--status', 'mitigating', '--task-queue', taskQueue, '--json']),
        incident(['list', '--closed', '--since', '1h', '--task-queue', taskQueue, '--json']),
        incident(['list', '--open', '--category', 'key_compromise', '--task-queue', taskQueue]),
      ]);
      expect(mitigating.code, mitigating.stderr).toBe(0);
      const rows = JSON.parse(mitigating.stdout) as IncidentRow[];
      expect(rows.map((r) => r.workflowId)).toEqual([open.workflowId]);
      expect(rows[0]).toMatchObject({ status: 'mitigating', executionStatus: 'running', category: 'key_compromise', severity: 'critical', taskQueue, summary: 'Incident: sk_live key in a public gist' });
      expect((JSON.parse(closed.stdout) as IncidentRow[]).map((r) => [r.workflowId, r.status, r.executionStatus])).toEqual([[cancelled.workflowId, 'cancelled', 'cancelled']]);
      expect(table.code, table.stderr).toBe(0);
      expect(table.stdout).toMatch(/^ID\s+STATUS\s+CATEGORY\s+SEVERITY\s+STARTED\s+SUMMARY\n/);
      expect(table.stdout).toMatch(new RegExp(`${open.workflowId}\\s+mitigating\\s+key_compromise\\s+critical\\s+\\S+Z\\s+Incident: sk_live key in a public gist`));
      expect(table.stdout).not.toContain(cancelled.workflowId);
    });
  });

  it('cancel ends the incident cancelled with its compensations (exit 0); a second cancel is refused (exit 1)', async () => {
    await withQueue(async (start) => {
      const handle = await start(keyCompromise);
      await waitForState(handle, getIncidentState, pendingStep('rotate_secret_key'));
      const first = await incident(['cancel', handle.workflowId, '--reason', 'false alarm: our own test key', '--as', 'dana@ops']);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toContain(`cancellation of ${handle.workflowId} requested by dana@ops: false alarm: our own test key`);
      expect(first.stdout).toContain(`npm run incident -- watch ${handle.workflowId}`);
      await expectCancelled(handle);
      const state = await handle.query(getIncidentState);
      expect(state.status).toBe('cancelled');
      expect(state.timeline.map((e) => e.step)).toContain('cancel');
      // Who asked and why, in history.
      const requested = (await handle.fetchHistory()).events?.find((e) => e.workflowExecutionCancelRequestedEventAttributes)?.workflowExecutionCancelRequestedEventAttributes;
      expect(requested).toMatchObject({ cause: 'false alarm: our own test key', identity: 'dana@ops' });

      const second = await incident(['cancel', handle.workflowId]);
      expect(second.firstError).toBe(`error: ${handle.workflowId} is already closed (status cancelled, the workflow cancelled): nothing to cancel; npm run incident -- show ${handle.workflowId}`);
      expect(second.code).toBe(1);
    });
  });

  it('watch follows an incident until it is resolved, printing its timeline, and exits 0', async () => {
    await withQueue(async (start) => {
      const handle = await start(webhookBacklog);
      const child = spawnCli('src/cli/incident.ts', ['watch', handle.workflowId, '--interval', '300ms'], cliEnv());
      child.stdin.end();
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));

      await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'));
      // The watcher shows the step to do by hand, with the command, before anyone confirms it.
      await eventually(async () => stdout.includes(`npm run incident -- confirm ${handle.workflowId} --step reconcile_webhooks`), 20_000);
      await handle.executeUpdate(confirmStep, { args: [{ step: 'reconcile_webhooks', confirmedBy: 'alice', note: 'replayed 12 events from the Svix portal' }] });

      expect(await exited, stderr).toBe(0);
      const final = await handle.result();
      expect(final.status).toBe('resolved');
      const lines = stdout.split('\n');
      // Every timeline line, once, in order.
      const printed = lines.filter((l) => /^ {4}\d{4}-\d{2}-\d{2}T/.test(l));
      expect(printed).toEqual(final.timeline.map((e) => `    ${e.time} ${e.step.padEnd(20)} ${e.actor.padEnd(16)} ${e.description}`));
      expect(stdout).toContain('replayed 12 events from the Svix portal');
      expect(lines.at(-2)).toBe('final status: resolved');
    });
  });

  it('watch stops on Ctrl-C (exit 1, the incident goes on)', async () => {
    await withQueue(async (start) => {
      const handle = await start(keyCompromise);
      const child = spawnCli('src/cli/incident.ts', ['watch', handle.workflowId, '--interval', '300ms'], cliEnv());
      child.stdin.end();
      let stdout = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      await eventually(async () => stdout.includes('pending approvals:'), 20_000);
      ctrlC(child);
      expect(await exited).toBe(1);
      expect(stdout).toContain(`stopped watching ${handle.workflowId}; the incident goes on`);
      expect((await handle.describe()).status.name).toBe('RUNNING');
    });
  });

  it('records the operator (--as, else INCIDENT_OPERATOR) as the identity of each update in history', async () => {
    await withQueue(async (start) => {
      const handle = await start(keyCompromise);
      await waitForState(handle, getIncidentState, pendingStep('rotate_secret_key'));
      const bob = await incident(['approve', handle.workflowId, '--step', 'rotate_secret_key', '--approver', 'bob', '--as', 'bob@laptop-7']);
      expect(bob.code, bob.stderr).toBe(0);
      const carol = await incident(['approve', handle.workflowId, '--step', 'rotate_secret_key', '--approver', 'carol'], { INCIDENT_OPERATOR: 'carol@oncall' });
      expect(carol.code, carol.stderr).toBe(0);

      const accepted = ((await handle.fetchHistory()).events ?? [])
        .map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.meta?.identity)
        .filter((id): id is string => typeof id === 'string');
      expect(accepted).toEqual(['bob@laptop-7', 'carol@oncall']);
    });
  });
});
