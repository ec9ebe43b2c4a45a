/**
 * The CLI convention (docs/cli.md) as a user meets it: each command in a child process, its exit
 * code (0 ok, 1 refused or failed, 2 usage) and the first line of stderr, which names what the
 * user typed and the next command to run.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { formatState } from '../src/cli/incident-views';
import type { IncidentState } from '../src/workflows/incident';
import { runCli, type CliRun } from './helpers/cli';
import { emptyTotals, type RevocationProgress } from '../src/revoke-sessions';


/** `npx tsx <script> <args>` with none of the caller's Temporal configuration unless given. */
function run(script: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const name of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE']) if (!(name in env)) delete childEnv[name];
  return runCli(script, args, childEnv);
}

const incident = (args: string[], env?: Record<string, string>) => run('src/cli/incident.ts', args, env);

describe.concurrent('npm run incident: exit codes and errors that name what was typed', () => {
  it('exits 2 for an unknown command or a missing required flag, naming it', async () => {
    const [unknown, noReporter] = await Promise.all([incident(['strat']), incident(['start', '--summary', 'nobody can sign in'])]);
    expect(unknown.firstError).toBe("error: unknown command 'strat'");
    expect(unknown.code).toBe(2);
    expect(noReporter.firstError).toBe('error: --reporter: required (who reports the incident)');
    expect(noReporter.code).toBe(2);
  });

  it('marks the required flags of start in its help', async () => {
    const help = await incident(['start', '--help']);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain('--reporter <name> who reports the incident (required unless --input)');
    expect(help.code).toBe(0);
  });

  it('exits 2 when --input is combined with another input flag, naming --input', async () => {
    const r = await incident(['start', '--input', '{"reporter":"alice","summary":"down"}', '--reporter', 'alice']);
    expect(r.firstError).toBe('error: --input: it is the whole input; put --reporter inside the JSON instead of beside it');
    expect(r.code).toBe(2);
  });

  it('exits 2 for --decide-within shorter than the default --escalate-after, naming the default', async () => {
    const r = await incident(['start', '--reporter', 'alice', '--summary', 'down', '--decide-within', '10m']);
    expect(r.firstError).toBe('error: --escalate-after: must be shorter than --decide-within (10m); it is 15m (the default)');
    expect(r.code).toBe(2);
  });

  it('exits 1 when Temporal is unreachable, naming the address, its variable and what to run', async () => {
    const r = await incident(['approve', 'incident-1', '--step', 'emergency_bypass', '--approver', 'bob'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.firstError).toBe('error: cannot reach Temporal at 127.0.0.1:1 (TEMPORAL_ADDRESS): is npm start running?');
    expect(r.code).toBe(1);
  });
});

describe('npm run incident against the test server', () => {
  let connection: Connection;
  let client: Client;
  const revocationId = `revoke-${randomUUID()}`;
  beforeAll(async () => {
    connection = await Connection.connect({ address: inject('temporalAddress') });
    client = new Client({ connection });
    // A revocation no worker will run: only its type matters here.
    await client.workflow.start('revokeSessionsWorkflow', { taskQueue: `nobody-${randomUUID()}`, workflowId: revocationId, args: [{}] });
  });
  afterAll(async () => {
    await client.workflow.getHandle(revocationId).terminate('test over');
    await connection.close();
  });

  it('exits 1 for an unknown workflow id, and says how to list them', async () => {
    const id = `incident-${randomUUID()}`;
    const r = await incident(['show', id], { TEMPORAL_ADDRESS: inject('temporalAddress') });
    expect(r.firstError).toBe(`error: no workflow ${id} in namespace default: list incidents with npm run temporal -- workflow list`);
    expect(r.code).toBe(1);
  });

  it('exits 1 for the id of a revocation, and names the command that reads it', async () => {
    const r = await incident(['show', revocationId], { TEMPORAL_ADDRESS: inject('temporalAddress') });
    expect(r.firstError).toBe(`error: ${revocationId} is a revokeSessionsWorkflow, not an incident: try npm run revoke -- progress ${revocationId}`);
    expect(r.code).toBe(1);
  });
});

describe.concurrent('the other CLIs follow the same convention', () => {
  it('npm run triage: exits 2 for the old --timeout flag (now --probe-timeout)', async () => {
    const r = await run('src/cli/triage.ts', ['--timeout', '5s']);
    expect(r.firstError).toBe("error: unknown option '--timeout'");
    expect(r.code).toBe(2);
  });

  it('npm run sandbox: exits 2 for a bad flag value, naming the flag', async () => {
    const r = await run('packages/clerk-sandbox/src/cli.ts', ['--users', 'many']);
    expect(r.firstError).toBe("error: option '-u, --users <count>' argument 'many' is invalid. users must be a whole number");
    expect(r.code).toBe(2);
  });

  it('npm run temporal: runs the provisioned Temporal CLI with the arguments and passes on its exit code', async () => {
    const [version, bad] = await Promise.all([run('scripts/temporal.ts', ['--version']), run('scripts/temporal.ts', ['workflow', 'no-such-subcommand'])]);
    expect(version.stdout).toMatch(/^temporal version \d+\.\d+\.\d+/);
    expect(version.code).toBe(0);
    expect(bad.code).not.toBe(0);
  });
});

describe('npm run incident -- show', () => {
  it("prints the revocation child's workflow id and the command to follow it", () => {
    const state = {
      incidentId: 'incident-42',
      summary: 'key leaked',
      status: 'mitigating',
      category: 'key_compromise',
      severity: 'critical',
      reporter: 'alice',
      waitingFor: 'revoke_all_sessions: revoking all sessions',
      pendingApprovals: [],
      manualSteps: [],
      openItems: [],
      attention: [],
      steps: [{ step: 'revoke_all_sessions', outcome: 'approved', at: '2026-11-27T10:00:00Z', actor: 'bob and carol', note: 'approved' }],
      timeline: [],
    } as unknown as IncidentState;
    expect(formatState(state)).toContain(
      '  revocation of revoke_all_sessions: workflow incident-42-revoke_all_sessions\n      npm run revoke -- progress incident-42-revoke_all_sessions',
    );
    // With the child's progress, a bar between the two.
    const totals = { ...emptyTotals(), usersScanned: 500, sessionsRevoked: 120 };
    const progress = { phase: 'revoking', dryRun: false, usersInScope: 2000, totals, etaSeconds: 90, outcome: 'succeeded', lastClerkError: null } as unknown as RevocationProgress;
    expect(formatState(state, new Map([['incident-42-revoke_all_sessions', progress]]))).toContain(
      '  revocation of revoke_all_sessions: workflow incident-42-revoke_all_sessions\n      [######------------------] 25% · 500 of 2,000 users · 120 revoked · succeeded · ETA 1m 30s\n',
    );
  });

  it("calls a webhook_backlog incident's child a reconciliation and names the reconcile command, while it runs and after", () => {
    const running = {
      incidentId: 'incident-43',
      summary: 'webhooks dropped',
      status: 'mitigating',
      category: 'webhook_backlog',
      severity: 'high',
      reporter: 'alice',
      waitingFor: "reconcile_webhooks: reconciling the app's user store with Clerk in child workflow incident-43-reconcile_webhooks",
      pendingApprovals: [],
      manualSteps: [],
      openItems: [],
      attention: [],
      steps: [],
      timeline: [],
    } as unknown as IncidentState;
    const child = '  reconciliation of reconcile_webhooks: workflow incident-43-reconcile_webhooks\n      npm run reconcile -- progress incident-43-reconcile_webhooks';
    expect(formatState(running)).toContain(child);
    const done = {
      ...running,
      status: 'resolved',
      waitingFor: 'nothing',
      timeline: [{ time: '2026-11-27T10:05:00Z', step: 'reconcile_webhooks', actor: 'runbook', description: 'delivered 3', details: { childWorkflowId: 'incident-43-reconcile_webhooks' } }],
    } as unknown as IncidentState;
    expect(formatState(done)).toContain(child);
    for (const state of [running, done]) {
      expect(formatState(state)).not.toMatch(/revocation of|npm run revoke/);
    }
  });
});
