/**
 * `npm run revoke` as an operator runs it (src/cli/revoke-sessions.ts in a child process) against
 * the run's dev server, a worker in this process and a Clerk sandbox: flags, the errors that name
 * them, exit codes (0 succeeded, 1 refused or failed or partial, 2 usage), the outcome with the
 * ids, and the trouble Temporal's activity retries show in the progress.
 */
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { inputFromFlags, troubleText } from '../src/cli/revoke-sessions';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { RevocationProgress } from '../src/revoke-sessions';
import { activeSessions, revocationDeps } from './helpers/revocation';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';
import { runCli, spawnCli, type CliRun } from './helpers/cli';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;

beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 300, seed: 'revoke-cli', rateLimit: 'off' });
});
afterAll(async () => {
  await sandbox?.close();
  await temporal?.close();
});
beforeEach(() => {
  sandbox.admin.seed({ users: 300, seed: 'revoke-cli' });
  sandbox.admin.setFaults({});
  sandbox.admin.setOutage({ active: false, clearWindows: true });
});

function revokeEnv(taskQueue: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue };
  delete env.TEMPORAL_NAMESPACE;
  return env;
}

/** The command in a child process, to completion. */
function runRevoke(args: string[], taskQueue = uniqueTaskQueue('revoke-cli')): Promise<CliRun> {
  return runCli('src/cli/revoke-sessions.ts', args, revokeEnv(taskQueue));
}

const who = ['--requester', 'alice@example.com', '--reason', 'test: INC-7'];

describe('npm run revoke: flags and their errors', () => {
  it.each([
    [{ user: ['alice'] }, '--user: must be a Clerk user id like "user_2abc…" (got "alice")'],
    [{ user: ['user_1,user_2'] }, '--user: one user id per flag, repeat --user for each (got "user_1,user_2")'],
    [{ all: true, exclude: ['bob'] }, '--exclude: must be a Clerk user id like "user_2abc…" (got "bob")'],
    [{ activeFrom: 'yesterday' }, '--active-from: must be an ISO 8601 time like "2026-11-26T10:00:00Z" (got "yesterday")'],
    [{ all: true, user: ['user_1'] }, 'scope: give exactly one of --all, --user <userId> (repeatable), --active-from <time>'],
  ])('refuses %j naming the flag, not a JSON path', (flags, message) => {
    expect(() => inputFromFlags({ requester: 'alice@example.com', reason: 'test', ...flags })).toThrow(message);
    expect(() => inputFromFlags({ requester: 'alice@example.com', reason: 'test', ...flags })).not.toThrow(/input\./);
  });

  it('exits 2 for a usage error, naming the flag typed; the old flags are gone', async () => {
    const bad = await runRevoke(['start', '--user', 'alice', ...who]);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr.trim()).toBe('error: --user: must be a Clerk user id like "user_2abc…" (got "alice")');
    for (const old of [['--workflow-id', 'x'], ['--requested-by', 'alice@example.com'], ['--users', 'user_1']]) {
      const run = await runRevoke(['start', '--all', ...who, ...old]);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`error: unknown option '${old[0]}'`);
    }
    const missing = await runRevoke(['start', '--all', '--reason', 'x']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--requester <name>' not specified");
  });

  it('exits 1 with one line for an unknown workflow id and for the id of an incident', async () => {
    const unknown = uniqueWorkflowId('nothing');
    const notFound = await runRevoke(['progress', unknown]);
    expect(notFound.code).toBe(1);
    expect(notFound.stderr.trim()).toBe(`error: no workflow ${unknown} in namespace default`);

    // An incident nobody works on (no worker polls its queue): only its type matters here.
    const incidentId = uniqueWorkflowId('incident');
    const incident = await temporal.client.workflow.start('incidentWorkflow', { taskQueue: uniqueTaskQueue('idle'), workflowId: incidentId, args: [{}] });
    try {
      const run = await runRevoke(['progress', incidentId, '--once']);
      expect(run.code).toBe(1);
      expect(run.stderr.trim()).toBe(`error: ${incidentId} is an incidentWorkflow, not a revocation: try npm run incident -- show ${incidentId}`);
    } finally {
      await incident.terminate('test done');
    }
  });
});

describe('npm run revoke: outcome and exit code', () => {
  it('exits 0 for succeeded, 1 for partial with the ids not found, and 1 for failed', async () => {
    const users = [...new Set(activeSessions(sandbox).values())];
    const unknown = 'user_2doesnotexist0000000000';
    const taskQueue = uniqueTaskQueue('revoke-cli');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox));
    await worker.runUntil(async () => {
      const okId = uniqueWorkflowId('revoke-cli-ok');
      const ok = await runRevoke(['start', '--user', users[0]!, '--user', users[1]!, ...who, '--id', okId, '--follow'], taskQueue);
      expect(ok.code).toBe(0);
      expect(ok.stderr).not.toContain('error');
      // The bar (on stderr) ends with the outcome.
      expect(ok.stderr).toMatch(/100% \| 2\/2 users \| [1-9]\d* revoked .*ETA done \| completed: succeeded/);
      expect(ok.stdout).toContain(`started revocation ${okId}`);
      expect(ok.stdout).toMatch(/^succeeded: completed in .*: \d+ revoked, 0 already revoked; 0 idle user\(s\) skipped; 0 user\(s\) not found; 0 failure\(s\)$/m);

      const partial = await runRevoke(['start', '--user', users[2]!, '--user', unknown, ...who, '--follow'], taskQueue);
      expect(partial.code).toBe(1);
      expect(partial.stdout).toMatch(/^partial: completed in .*; 1 user\(s\) not found; 0 failure\(s\)$/m);
      expect(partial.stdout).toContain(`\n  not found: ${unknown}\n`);

      const failedId = uniqueWorkflowId('revoke-cli-failed');
      const failed = await runRevoke(['start', '--user', unknown, ...who, '--id', failedId, '--follow', '--json'], taskQueue);
      expect(failed.code).toBe(1);
      const last = JSON.parse(failed.stdout.trim().split('\n').at(-1)!) as { result: { outcome: string; notFoundUserIds: string[] } };
      expect(last.result).toMatchObject({ outcome: 'failed', notFoundUserIds: [unknown] });
      expect(failed.stderr).toContain(`started revocation ${failedId}`); // kept off stdout, which is JSON only

      // The progress of a finished revocation: the same outcome and exit code; --once is a snapshot, exit 0.
      const again = await runRevoke(['progress', failedId], taskQueue);
      expect(again.code).toBe(1);
      expect(again.stdout).toMatch(/^failed: completed in /m);
      const once = await runRevoke(['progress', failedId, '--once'], taskQueue);
      expect(once.code).toBe(0);
      expect(JSON.parse(once.stdout)).toMatchObject({ phase: 'completed', outcome: 'failed', notFoundUserIds: [unknown], pendingActivity: null });

      const taken = await runRevoke(['start', '--all', ...who, '--id', okId], taskQueue);
      expect(taken.code).toBe(1);
      expect(taken.stderr.trim()).toBe(
        `error: --id: a workflow ${okId} already exists in namespace default: pick another, or see it: npm run revoke -- progress ${okId}`,
      );
    });
  });

  it("shows Temporal's retries of the count during a Clerk outage: attempt and 503 in the JSON lines, then completes", async () => {
    sandbox.admin.setOutage({ active: true });
    const taskQueue = uniqueTaskQueue('revoke-cli');
    const worker = await testWorker(temporal.nativeConnection, taskQueue, revocationDeps(sandbox, { retry: { maxUnavailableAttempts: 2, initialBackoffMs: 5, maxBackoffMs: 10 } }));
    await worker.runUntil(async () => {
      const workflowId = uniqueWorkflowId('revoke-cli-outage');
      const started = await runRevoke(['start', '--all', '--dry-run', ...who, '--id', workflowId], taskQueue);
      expect(started.code).toBe(0);

      const child = spawnCli('src/cli/revoke-sessions.ts', ['progress', workflowId, '--json'], revokeEnv(taskQueue));
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      const lines: Record<string, unknown>[] = [];
      let troubled: (RevocationProgress & { pendingActivity: { type: string; attempt: number; lastFailure: string | null } | null }) | undefined;
      for await (const line of createInterface({ input: child.stdout })) {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        lines.push(parsed);
        const p = parsed as unknown as NonNullable<typeof troubled>;
        if (!troubled && (p.pendingActivity?.attempt ?? 0) >= 2) {
          troubled = p;
          sandbox.admin.setOutage({ active: false });
        }
      }
      expect(await exited).toBe(0);
      expect(troubled).toBeDefined();
      expect(troubled!.phase).toBe('counting');
      expect(troubled!.pendingActivity).toMatchObject({ type: 'countRevocationScope', lastFailure: expect.stringContaining('503') });
      expect(troubleText(troubled!, { ...troubled!.pendingActivity!, lastFailureType: 'ClerkUnavailable' })).toMatch(/^Clerk: attempt \d+, .*503/);
      expect(lines.at(-1)).toMatchObject({ result: { outcome: 'succeeded', dryRun: true } });
    });
  });
});

describe('the progress bar trouble text', () => {
  const base = { lastClerkError: null } as unknown as RevocationProgress;
  it('names Clerk and the attempt for a retried activity, the interruptions for interrupted batches, nothing when all is well', () => {
    expect(troubleText(base, null)).toBe('');
    expect(troubleText(base, { type: 'revokeSessionsBatch', attempt: 1, lastFailure: null, lastFailureType: null })).toBe('');
    expect(
      troubleText(base, { type: 'countRevocationScope', attempt: 8, lastFailure: 'users.getCount: 503 service_unavailable', lastFailureType: 'ClerkUnavailable' }),
    ).toBe('Clerk: attempt 8, users.getCount: 503 service_unavailable');
    expect(troubleText(base, { type: 'revokeSessionsBatch', attempt: 2, lastFailure: 'activity Heartbeat timeout', lastFailureType: null })).toBe(
      'revokeSessionsBatch: attempt 2, activity Heartbeat timeout',
    );
    const interrupted = { lastClerkError: { type: 'ClerkUnavailable', message: '503 service_unavailable', at: '2026-11-27T10:00:00.000Z', interruptionsInARow: 3 } };
    expect(troubleText(interrupted as unknown as RevocationProgress, null)).toBe('Clerk: 3 batch(es) interrupted in a row, ClerkUnavailable: 503 service_unavailable');
  });
});
