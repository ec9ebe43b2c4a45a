/**
 * `npm run triage` as a user runs it (src/cli/triage.ts in a child process) against a real
 * sandbox started per test: its exit code follows the verdict, and without flags it finds the
 * sandbox of a running `npm start` through the runtime file (CIR_RUNTIME_FILE, a temp file here).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findRunningStart, removeRuntimeFile, writeRuntimeFile, type RuntimeInfo } from '../src/runtime-file';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import { freePort } from './helpers/ports';
import { runCli, type CliRun } from './helpers/cli';

let dir: string;
let runtimeFile: string;
let sandbox: RunningSandbox;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cir-triage-'));
  runtimeFile = join(dir, 'runtime.json');
  sandbox = await startSandbox();
});
afterEach(async () => {
  await sandbox.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The command in a child process, with none of the worker's Clerk/app configuration inherited. */
function runTriage(args: string[]): Promise<CliRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, CIR_RUNTIME_FILE: runtimeFile };
  for (const name of ['CLERK_SECRET_KEY', 'CLERK_API_URL', 'CLERK_STATUS_PAGE_URL', 'APP_HEALTH_URL', 'APP_ROUTES']) delete env[name];
  return runCli('src/cli/triage.ts', args, env);
}

const runtimeInfo = (over: Partial<RuntimeInfo> = {}): RuntimeInfo => ({
  pid: process.pid,
  mode: 'sandbox',
  sandboxUrl: sandbox.url,
  temporalAddress: '127.0.0.1:7233',
  uiUrl: 'http://localhost:8233',
  startedAt: new Date().toISOString(),
  ...over,
});

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('npm run triage: the exit code follows the verdict', () => {
  it('exits 0 for a healthy sandbox named with --sandbox', async () => {
    const run = await runTriage(['--sandbox', sandbox.url, '--probe-timeout', '5s']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('rule all_clear: every probe ran and passes');
    expect(run.code).toBe(0);
  });

  it('exits 1 when the sandbox admin API has switched an outage on', async () => {
    await new SandboxAdminClient(sandbox.url).outage({ active: true, indicator: 'major' });
    const run = await runTriage(['--sandbox', sandbox.url]);
    expect(run.stdout).toContain('classification: clerk_outage (severity critical), rule status_page_outage');
    expect(run.code).toBe(1);
  });

  it('exits 1, inconclusive, when a probe could not run, and names it', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const run = await runTriage(['--sandbox', sandbox.url, '--status-page', closed]);
    expect(run.stdout).toMatch(/verdict: no category \(severity low, unclassified\): inconclusive: could not check: status page \(network_error: /);
    expect(run.code).toBe(1);
  });

  it('exits 2 for a bad flag or flag value, naming it', async () => {
    const unknown = await runTriage(['--sandbx', sandbox.url]);
    expect(unknown.stderr).toContain("unknown option '--sandbx'");
    expect(unknown.code).toBe(2);
    const badTimeout = await runTriage(['--sandbox', sandbox.url, '--probe-timeout', 'soon']);
    expect(badTimeout.stderr).toContain('--probe-timeout: must be a duration');
    expect(badTimeout.code).toBe(2);
    const notSandbox = await runTriage(['--sandbox', `http://127.0.0.1:${await freePort()}`]);
    expect(notSandbox.stderr).toMatch(/--sandbox: http:\/\/127\.0\.0\.1:\d+ does not answer/);
    expect(notSandbox.code).toBe(2);
  });

  it('documents the exit codes in its help', async () => {
    const help = await runTriage(['--help']);
    expect(help.stdout).toMatch(/Exit code:\n {2}0 {2}all clear.*\n {2}1 {2}something is wrong.*inconclusive.*\n {2}2 {2}usage error/);
    expect(help.code).toBe(0);
  });
});

describe('npm run triage without flags: the sandbox of a running npm start', () => {
  it('probes the sandbox the runtime file names when its pid is alive, and says so', async () => {
    writeRuntimeFile(runtimeInfo(), runtimeFile);
    const run = await runTriage([]);
    expect(run.stderr).toBe(`using the sandbox of the running npm start at ${sandbox.url} (pid ${process.pid})\n`);
    expect(run.stdout).toContain(`health route  ok           ${sandbox.url}/api/clerk-health`);
    expect(run.stdout).toContain('rule all_clear');
    expect(run.code).toBe(0);
    // The Backend API probe used a key of its own, added to that sandbox.
    expect(sandbox.admin.listKeys().map((k) => k.label)).toContain('npm run triage');
  });

  it('ignores a runtime file whose npm start is gone, and keeps stdout JSON', async () => {
    writeRuntimeFile(runtimeInfo({ pid: await deadPid() }), runtimeFile);
    const run = await runTriage(['--json', '--status-page', `http://127.0.0.1:${await freePort()}`]);
    expect(run.stderr).toMatch(/not using a running npm start: .*runtime\.json names pid \d+, which is not running/);
    const out = JSON.parse(run.stdout) as { verdict: { agreement: string; note: string; classification: { rule: string } } };
    expect(out.verdict.classification.rule).toBe('inconclusive');
    expect(out.verdict.note).toContain('Backend API (skipped: no Clerk secret key configured)');
    expect(sandbox.admin.listKeys().map((k) => k.label)).not.toContain('npm run triage');
    expect(run.code).toBe(1);
  });
});

describe('the runtime file', () => {
  it('round-trips through its schema and refuses what it does not know', () => {
    writeRuntimeFile(runtimeInfo(), runtimeFile);
    expect(findRunningStart(runtimeFile)).toEqual({ kind: 'found', info: runtimeInfo({ startedAt: expect.any(String) as string }) });
    writeFileSync(runtimeFile, JSON.stringify({ ...runtimeInfo(), mode: 'cloud' }));
    expect(findRunningStart(runtimeFile)).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('mode') as string });
    expect(findRunningStart(join(dir, 'nope.json'))).toMatchObject({ kind: 'missing' });
  });

  it('is removed only by the npm start that wrote it', () => {
    writeRuntimeFile(runtimeInfo({ pid: process.pid }), runtimeFile);
    removeRuntimeFile(process.pid + 1, runtimeFile);
    expect(JSON.parse(readFileSync(runtimeFile, 'utf8'))).toMatchObject({ pid: process.pid });
    removeRuntimeFile(process.pid, runtimeFile);
    expect(existsSync(runtimeFile)).toBe(false);
  });
});
