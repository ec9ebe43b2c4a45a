/**
 * The worker log on bad input (docs/guarantees.md, "Bad input"): a worker in a child process,
 * logging as `npm start`'s does, gets N malformed starts and one start that fails for another
 * reason. Each refusal is exactly one line naming the workflow type, id and field, with no stack
 * frame; the other failure still logs its stack.
 */
import { spawn } from 'node:child_process';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, expect, inject, it, vi } from 'vitest';
import { ROOT, tsxArgs } from './helpers/cli';
import type { BadInputWorkerConfig } from './helpers/bad-input-worker';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

const BAD_STARTS = [
  ['incidentWorkflow', { category: 'drop_tables', reporter: 'alice', summary: 's' }, 'input.category'],
  ['incidentWorkflow', { reporter: 'alice\n[WARN] forged', summary: 's' }, 'input.reporter'],
  ['incidentWorkflow', 'not an object', 'input'],
  ['revokeSessionsWorkflow', { scope: { type: 'everyone' }, requestedBy: 'alice', reason: 'r' }, 'input.scope.type'],
  ['reconcileUsersWorkflow', { requestedBy: 'alice', reason: 'r', approvalAbove: -1 }, 'input.approvalAbove'],
  ['reconcileUsersWorkflow', { requestedBy: 'alice', reason: 'r', sweepStore: 'false' }, 'input.sweepStore'],
] as const;

/** The log's entries: each starts with the logger's ISO timestamp; continuation lines belong to the entry above. */
function entries(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (/^\d{4}-\d\d-\d\dT/.test(line) || out.length === 0) out.push(line);
    else out[out.length - 1] += `\n${line}`;
  }
  return out.filter((e) => e.trim() !== '');
}

it('logs one line per refused start and keeps the stack of a failure that is not a refusal', async () => {
  const taskQueue = uniqueTaskQueue('bad-input-log');
  const config: BadInputWorkerConfig = { temporalAddress: inject('temporalAddress'), taskQueue, workflowBundlePath: inject('workflowBundlePath') };
  const child = spawn(process.execPath, tsxArgs('tests/helpers/bad-input-worker.ts', [JSON.stringify(config)]), { cwd: ROOT, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await vi.waitFor(() => expect(stdout, stderr).toContain('ready'), { timeout: 60_000, interval: 100 });

    const refused = await Promise.all(
      BAD_STARTS.map(async ([workflow, input, field]) => {
        const handle = await temporal.client.workflow.start(workflow, { taskQueue, workflowId: uniqueWorkflowId(`log-${workflow}`), args: [input] });
        await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
        return { workflow, id: handle.workflowId, field };
      }),
    );
    // Valid input, but this worker has no user store: fails with ReconcileNotConfigured, not a refusal.
    const other = await temporal.client.workflow.start('reconcileUsersWorkflow', {
      taskQueue,
      workflowId: uniqueWorkflowId('log-not-configured'),
      args: [{ requestedBy: 'alice', reason: 'r', approvalAbove: null }],
    });
    await expect(other.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    await vi.waitFor(() => expect(stderr).toMatch(new RegExp(`Workflow failed[^]*${other.workflowId}`)), { timeout: 10_000, interval: 100 });
    await vi.waitFor(() => expect(stderr.match(/Workflow input refused: /g)).toHaveLength(refused.length), { timeout: 10_000, interval: 100 });

    const log = entries(stderr);
    const refusals = log.filter((e) => e.includes('Workflow input refused: '));
    expect(refusals).toHaveLength(BAD_STARTS.length);
    for (const { workflow, id, field } of refused) {
      const mine = log.filter((e) => e.includes(id));
      expect(mine, stderr).toHaveLength(1);
      expect(mine[0]).not.toContain('\n');
      expect(mine[0]).toMatch(new RegExp(`\\[WARN\\] Workflow input refused: ${workflow} ${id}: ${field.replaceAll('.', '\\.')}[.:]`));
    }
    // The refused value is not echoed: the forged line never reaches the log.
    expect(stderr).not.toMatch(/^\[WARN\] forged/m);

    const failure = log.filter((e) => e.includes(other.workflowId) && e.includes('Workflow failed'));
    expect(failure).toHaveLength(1);
    expect(failure[0]).toContain('this worker has no user store');
    expect(failure[0]).toMatch(/^ {4,}at /m);
    // Every stack frame in the log belongs to an entry that is not a refusal.
    expect(refusals.join('\n')).not.toMatch(/^\s+at /m);
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
});
