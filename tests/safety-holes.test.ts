/**
 * Smaller holes of the safety issue (i29 §5), each as a class tried with several members, judged
 * by what the real dev server records rather than by the CLI's word: the CLI finds the running
 * `npm start` through its runtime file (an explicit TEMPORAL_ADDRESS wins; a stale or broken file
 * is named), an incident id that was used once is never reused, and every CLI whose reader closes
 * its output early (`| head -1`) exits quietly instead of crashing on EPIPE.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { incidentWorkflow } from '../src/workflows/incident';
import { ROOT, runCli, tsxArgs } from './helpers/cli';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
const dir = mkdtempSync(join(tmpdir(), 'safety-holes-'));
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The CLI's environment without TEMPORAL_ADDRESS, reading the runtime file at `runtimeFile`. */
function envWith(runtimeFile: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, CIR_RUNTIME_FILE: runtimeFile, PAYLOAD_KEY: '', PAYLOAD_KEYS_FILE: '', NO_COLOR: '1', ...extra };
  if (!('TEMPORAL_ADDRESS' in extra)) delete env.TEMPORAL_ADDRESS;
  delete env.TEMPORAL_NAMESPACE;
  return env;
}
const runtime = (name: string, info: unknown) => {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, typeof info === 'string' ? info : JSON.stringify(info));
  return path;
};
const info = (pid: number, temporalAddress: string) => ({ pid, mode: 'sandbox', sandboxUrl: 'http://127.0.0.1:1', temporalAddress, uiUrl: 'http://127.0.0.1:8233', startedAt: new Date().toISOString() });
/** The pid of a process that has ended. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid as number;
const startArgs = (id: string) => ['start', '--category', 'middleware_failure', '--reporter', 'alice', '--summary', 'dashboard answers 500', '--approver', 'bob', '--id', id];

describe('the CLI reaches the running npm start (its runtime file) when TEMPORAL_ADDRESS is not set', () => {
  it('starts the incident on the server the runtime file names, as the server records it', { timeout: 60_000 }, async () => {
    const file = runtime('alive', info(process.pid, inject('temporalAddress')));
    const id = uniqueWorkflowId();
    const run = await runCli('src/cli/incident.ts', startArgs(id), envWith(file, { TEMPORAL_TASK_QUEUE: uniqueTaskQueue('runtime-file') }));
    expect(run.stderr).toBe('');
    expect(run).toMatchObject({ code: 0 });
    expect(run.stdout).toContain(`started ${id}`);
    const handle = temporal.client.workflow.getHandle(id);
    expect((await handle.describe()).type).toBe('incidentWorkflow');
    await handle.terminate('test: started only to prove where the CLI went');
  });

  it('an explicit TEMPORAL_ADDRESS wins; a runtime address that does not answer, a stale or a broken file is named', { timeout: 120_000 }, async () => {
    const alive = runtime('alive-elsewhere', info(process.pid, inject('temporalAddress')));
    const show = (env: NodeJS.ProcessEnv) => runCli('src/cli/incident.ts', ['show', 'incident-does-not-exist'], env);
    const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
      ['TEMPORAL_ADDRESS set', envWith(alive, { TEMPORAL_ADDRESS: '127.0.0.1:1' }), /^error: cannot reach Temporal at 127\.0\.0\.1:1 \(TEMPORAL_ADDRESS\)/],
      ['a runtime address that does not answer', envWith(runtime('unanswered', info(process.pid, '127.0.0.1:1'))), /^error: cannot reach Temporal at 127\.0\.0\.1:1 \(the running npm start, pid \d+, .*unanswered\.json\)/],
    ];
    for (const [name, env, message] of cases) {
      const run = await show(env);
      expect(run.code, name).toBe(1);
      expect(run.firstError, name).toMatch(message);
    }
    // Stale or broken: a note on stderr naming the file and what is wrong, then the default address.
    const noted: [string, string, RegExp][] = [
      ['a pid that is not running', runtime('stale', info(deadPid(), inject('temporalAddress'))), /^note: .*stale\.json names pid \d+, which is not running; using localhost:7233/],
      ['not JSON', runtime('not-json', '{"pid": 1,'), /^note: .*not-json\.json is not JSON; using localhost:7233/],
      ['no address in it', runtime('no-address', { ...info(process.pid, 'x'), temporalAddress: undefined }), /^note: .*no-address\.json: temporalAddress: .*; using localhost:7233/],
      ['a field it does not know', runtime('extra', { ...info(process.pid, inject('temporalAddress')), evil: true }), /^note: .*extra\.json: .*; using localhost:7233/],
    ];
    for (const [name, file, note] of noted) {
      const run = await show(envWith(file));
      expect(run.code, name).toBe(1);
      expect(run.firstError, name).toMatch(note);
      expect(run.stderr, name).not.toMatch(/^\s+at /m);
    }
  });
});

describe('an incident id is used once: a closed incident\'s id is refused, not silently reused', () => {
  it('refuses the id of a running, a terminated and a timed-out incident, naming what it was; the server keeps one run', { timeout: 120_000 }, async () => {
    const taskQueue = uniqueTaskQueue('id-reuse');
    const env: NodeJS.ProcessEnv = { ...process.env, TEMPORAL_ADDRESS: inject('temporalAddress'), TEMPORAL_TASK_QUEUE: taskQueue, PAYLOAD_KEY: '', PAYLOAD_KEYS_FILE: '', NO_COLOR: '1' };
    delete env.TEMPORAL_NAMESPACE;
    const input = { category: 'middleware_failure' as const, reporter: 'alice', summary: 'dashboard answers 500', approvers: ['bob'] };
    const [running, terminated, timedOut] = [uniqueWorkflowId(), uniqueWorkflowId(), uniqueWorkflowId()];
    for (const id of [running, terminated]) await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: id, args: [input] });
    await temporal.client.workflow.getHandle(terminated).terminate('test: closed');
    await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: timedOut, args: [input], workflowExecutionTimeout: '1s' });
    await temporal.client.workflow.getHandle(timedOut).result().catch(() => undefined);

    const cases: [string, RegExp][] = [
      [running, /^error: --id \S+: an incident with this id is already running; choose another id or leave --id out \(follow it: npm run incident -- show /],
      [terminated, /^error: --id \S+: an incident with this id already ran and is closed \(terminated at \S+\); an incident id is never reused/],
      [timedOut, /^error: --id \S+: an incident with this id already ran and is closed \(timed_out at \S+\); an incident id is never reused/],
    ];
    for (const [id, message] of cases) {
      const run = await runCli('src/cli/incident.ts', startArgs(id), env);
      expect(run.code, id).toBe(2);
      expect(run.firstError, id).toMatch(message);
      // The server's record: still the one run, of the first incident.
      const runs = [];
      for await (const w of temporal.client.workflow.list({ query: `WorkflowId = '${id}'` })) runs.push(w.runId);
      expect(runs, id).toHaveLength(1);
    }
    await temporal.client.workflow.getHandle(running).terminate('test: done');
  });
});

describe('a CLI whose reader stops early (| head -1) exits quietly, without a stack trace', () => {
  it('every CLI: --help into a reader that has gone, and into head -1', { timeout: 240_000 }, async () => {
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', PAYLOAD_KEY: '', PAYLOAD_KEYS_FILE: '', NO_COLOR: '1' };
    const scripts = ['src/cli/incident.ts', 'src/cli/triage.ts', 'src/cli/diagnose.ts', 'src/cli/drill.ts', 'src/cli/revoke-sessions.ts', 'src/cli/reconcile.ts'];
    const commands: [string, string[]][] = [...scripts.map((s): [string, string[]] => [s, ['--help']]), ['src/cli/incident.ts', ['start', '--help']], ['src/cli/reconcile.ts', ['start', '--help']]];
    for (const [script, args] of commands) {
      for (const reader of ['true', 'head -1']) {
        const errFile = join(dir, `stderr-${commands.findIndex((c) => c[0] === script && c[1] === args)}-${reader.length}`);
        const cli = [process.execPath, ...tsxArgs(script, args)].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
        const result = spawnSync('bash', ['-c', `${cli} 2>'${errFile}' | ${reader} >/dev/null; echo "\${PIPESTATUS[0]}"; cat '${errFile}' >&2`], { cwd: ROOT, env, encoding: 'utf8' });
        const name = `${script} ${args.join(' ')} | ${reader}`;
        expect(result.stderr, name).not.toMatch(/EPIPE|Unhandled 'error' event|^\s+at /m);
        expect(result.stderr, name).toBe('');
        expect(Number(result.stdout.trim()), name).toBe(0);
      }
    }
  });
});
