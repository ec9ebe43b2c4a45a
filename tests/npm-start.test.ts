/**
 * `npm start` as a user runs it (src/main.ts in a child process): against a Temporal server that
 * already answers at TEMPORAL_ADDRESS it starts no dev server, brings up the sandbox and the
 * worker, prints a JSON input that starts an incident as pasted, and stops cleanly on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, inject, it } from 'vitest';
import { getIncidentState, incidentWorkflow } from '../src/workflows';
import { eventually } from './helpers/incident';
import { ctrlC, tsxArgs } from './helpers/cli';
import { freePort } from './helpers/ports';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';

it('uses the server already at TEMPORAL_ADDRESS, runs the printed sample incident, and stops on SIGINT', async () => {
  const root = join(__dirname, '..');
  const taskQueue = uniqueTaskQueue('npm-start');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: taskQueue,
    CLERK_SANDBOX_PORT: String(await freePort()),
    // Keep this run away from the project's real .data/runtime.json.
    CIR_RUNTIME_FILE: join(mkdtempSync(join(tmpdir(), 'cir-runtime-')), 'runtime.json'),
  };
  const runtimeFile = env.CIR_RUNTIME_FILE as string;
  delete env.CLERK_SECRET_KEY;
  const child = spawn(process.execPath, tsxArgs('src/main.ts'), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const temporal = await connectTemporal();
  try {
    await eventually(async () => output.includes('Ctrl-C stops everything') || child.exitCode !== null, 60_000, 200);
    expect(output).toContain(`Temporal: using the server that already answers at ${inject('temporalAddress')}`);
    expect(output).not.toContain('starting the dev server');
    expect(output).toMatch(/Temporal UI: {2}http:\/\/localhost:\d+\/namespaces\/default\/workflows/);
    expect(output).toMatch(/Clerk: SANDBOX at http:\/\/127\.0\.0\.1:\d+ with 1000 seeded users/);
    // Sandbox mode decides by the sample roster: the printed command names its rotation, not people.
    expect(output).toMatch(/Roster: 4 people, 2 rotation\(s\), 5 rule\(s\) from .*config\/roster\.sample\.yaml/);
    expect(output).not.toContain('APPROVALS ARE UNAUTHENTICATED');
    const command = output.split('\n').find((line) => line.includes('or from a terminal:')) ?? '';
    expect(command).toContain('--approver @auth-oncall');
    // `npm run triage` and `incident start` find this sandbox (and its roster) through the runtime file.
    expect(JSON.parse(readFileSync(runtimeFile, 'utf8'))).toMatchObject({ pid: expect.any(Number), mode: 'sandbox', sandboxUrl: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), rosterFile: expect.stringMatching(/roster\.sample\.yaml$/) });

    // The line under "input:" is what a user pastes into the UI's Start Workflow form.
    const printed = output.split('\n').find((line) => line.trim().startsWith('{"category"'));
    expect(printed).toBeDefined();
    const handle = await temporal.client.workflow.start(incidentWorkflow, {
      taskQueue,
      workflowId: uniqueWorkflowId('npm-start'),
      args: [JSON.parse(printed!) as Parameters<typeof incidentWorkflow>[0]],
    });
    const state = await eventually(async () => {
      const s = await handle.query(getIncidentState);
      return s.pendingApprovals.some((p) => p.step === 'emergency_bypass') ? s : undefined;
    }, 30_000);
    expect(state.category).toBe('clerk_outage');
    await handle.terminate('test over');

    ctrlC(child);
    expect(await exited).toBe(0);
    expect(output).toContain('worker stopped');
    expect(existsSync(runtimeFile)).toBe(false);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await temporal.close();
  }
});
