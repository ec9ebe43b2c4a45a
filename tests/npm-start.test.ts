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
import { randomUUID } from 'node:crypto';
import { DrillSlack } from '../src/drill/slack';
import { parseRoster } from '../src/roster/parse';
import { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import { connectTemporal, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';

it('uses the server already at TEMPORAL_ADDRESS, runs the printed sample incident, detects an outage by its watch (an alert joins it), and stops on SIGINT', async () => {
  const root = join(__dirname, '..');
  const taskQueue = uniqueTaskQueue('npm-start');
  const deployment = `npm-start-${randomUUID().slice(0, 8)}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: inject('temporalAddress'),
    TEMPORAL_TASK_QUEUE: taskQueue,
    CLERK_SANDBOX_PORT: String(await freePort()),
    // Keep this run away from the project's real .data/runtime.json.
    CIR_RUNTIME_FILE: join(mkdtempSync(join(tmpdir(), 'cir-runtime-')), 'runtime.json'),
    // Detection on: a fast watch, and the alert intake on a port of its own, for a deployment of this test only.
    WATCH_INTERVAL: '2s',
    ALERT_INTAKE_TOKEN: 'npm-start-test-token-0123456789abcdef',
    ALERT_INTAKE_PORT: String(await freePort()),
    ALERT_DEPLOYMENT: deployment,
    SLACK_PORT: String(await freePort()),
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
    // The emulated Slack: the incident's thread has the gate with its buttons; bob approves with a click.
    expect(output).toMatch(/Slack app: http:\/\/127\.0\.0\.1:\d+\/slack\/interactions and \/slack\/commands/);
    expect(output).toMatch(/Slack \(emulated, no workspace needed\): http:\/\/127\.0\.0\.1:\d+\/slack shows the channel/);
    const slackSandbox = new SandboxAdminClient((JSON.parse(readFileSync(runtimeFile, 'utf8')) as { sandboxUrl: string }).sandboxUrl);
    await new DrillSlack(slackSandbox, parseRoster({ file: 'roster.sample.yaml', text: readFileSync(join(root, 'config', 'roster.sample.yaml'), 'utf8') })).approve(handle.workflowId, 'emergency_bypass', 'bob@example.com');
    expect((await handle.query(getIncidentState)).gates.find((g) => g.step === 'emergency_bypass')?.approvals.map((a) => a.approver)).toEqual(['bob']);
    await handle.terminate('test over');

    // Detection: the watch runs every 2 s; Clerk goes down, two failing runs open the incident by themselves.
    expect(output).toContain('Watch: probes every 2s, opens an incident on 2 failing run(s) in a row (schedule created;');
    const intakeUrl = /Alert intake: (http:\/\/\S+)\/alerts\/alertmanager/.exec(output)?.[1];
    expect(intakeUrl).toBeDefined();
    const sandboxUrl = (JSON.parse(readFileSync(runtimeFile, 'utf8')) as { sandboxUrl: string }).sandboxUrl;
    await new SandboxAdminClient(sandboxUrl).outage({ active: true, indicator: 'major' });
    const detectedId = `incident-${deployment}-clerk_outage`;
    const detected = await eventually(async () => (await temporal.client.workflow.getHandle(detectedId).query(getIncidentState).catch(() => undefined))?.detection, 30_000, 250);
    expect(detected.detectedBy).toBe('watch');
    // An Alertmanager notification of the same category joins it (one incident, one more timeline line).
    const alert = { version: '4', groupKey: '{}:{alertname="ClerkAPI5xx"}', truncatedAlerts: 0, status: 'firing', receiver: 'pager', groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://am:9093',
      alerts: [{ status: 'firing', labels: { alertname: 'ClerkAPI5xx' }, annotations: {}, startsAt: new Date().toISOString(), endsAt: '0001-01-01T00:00:00Z', generatorURL: 'http://prom', fingerprint: 'f1' }] };
    const res = await fetch(`${intakeUrl}/alerts/alertmanager`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${env.ALERT_INTAKE_TOKEN}` }, body: JSON.stringify(alert) });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ incidents: [{ category: 'clerk_outage', incidentId: detectedId, joined: true }] });
    const joined = await temporal.client.workflow.getHandle(detectedId).query(getIncidentState);
    expect(joined.timeline.filter((e) => e.step === 'detection').map((e) => e.actor)).toEqual(['watch', 'alert:pager']);
    await temporal.client.workflow.getHandle(detectedId).terminate('test over');
    await temporal.client.schedule.getHandle(`runbook-watch:${taskQueue}`).delete();

    ctrlC(child);
    expect(await exited).toBe(0);
    expect(output).toContain('worker stopped');
    expect(existsSync(runtimeFile)).toBe(false);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await temporal.close();
  }
});
