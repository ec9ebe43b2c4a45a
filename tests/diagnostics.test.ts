/**
 * Diagnostics against the sandbox: each check with its fault off and on, a hanging source cut at
 * its timeout without hiding the others, the activity in a MockActivityEnvironment, and
 * `npm run diagnose`'s output and exit code.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createClerkClient } from '@clerk/backend';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createClerkGateway } from '../src/activities/clerk';
import { createDiagnosticsActivities, publishableKeyHost, runDiagnostics, type DiagnosticsDeps, type DiagnosticsReport, type RunDiagnosticsInput } from '../src/activities/diagnostics';
import type { CheckId } from '../src/diagnostics/rules';
import { encodePublishableKey, startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';

const DAY = 86_400_000;
let sandbox: RunningSandbox;
let deps: DiagnosticsDeps;

beforeAll(async () => {
  sandbox = await startSandbox({ users: 30, seed: 'diagnostics', rateLimit: 'off' });
  deps = {
    clerk: createClerkGateway({ secretKey: sandbox.secretKey, apiUrl: sandbox.url, retry: { maxUnavailableAttempts: 1 } }),
    clerkApiUrl: sandbox.url,
    appHealthUrl: `${sandbox.url}/api/clerk-health`,
    appRoutes: [`${sandbox.url}/app/dashboard`, `${sandbox.url}/app/profile`],
    publishableKey: sandbox.publishableKey,
    authorizedParties: [new URL(sandbox.url).origin],
    minSdkVersion: '3.0.0',
    maxSessionLifetimeMs: 7 * DAY,
  };
});
afterAll(() => sandbox.close());
afterEach(() => {
  sandbox.admin.resetApp();
  sandbox.admin.resetClock();
  sandbox.admin.setFaults({});
});

const check = (r: DiagnosticsReport, id: CheckId) => r.checks.find((c) => c.id === id)!;
const run = (extra: { userIds?: string[]; token?: string } = {}, timeoutMs = 3000) =>
  runDiagnostics(deps, { kind: 'session_issues', timeoutMs, ...(extra.userIds ? { userIds: extra.userIds } : {}) }, extra.token ? { token: extra.token } : {});

async function tokenFor(userId: string): Promise<string> {
  const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
  const [active] = (await clerk.sessions.getSessionList({ userId, status: 'active' })).data;
  return (await clerk.sessions.getToken(active!.id, '')).jwt;
}

it('publishable keys decode to their Frontend API host', () => {
  expect(publishableKeyHost(sandbox.publishableKey)).toBe('diagnostics.clerk.accounts.dev');
  expect(publishableKeyHost('pk_test_bm90IGEgaG9zdA==')).toBeNull();
  expect(publishableKeyHost('sk_test_x')).toBeNull();
});

describe('each check against the sandbox, fault off then on', () => {
  it('healthy sandbox: every check that has its input is ok', async () => {
    const [user] = sandbox.admin.createUsers({ count: 1 });
    const report = await run({ userIds: [user!.id], token: await tokenFor(user!.id) });
    expect(report.checks.map((c) => [c.id, c.verdict])).toEqual([
      ['clock_skew', 'ok'],
      ['keys_match', 'ok'],
      ['domains_origins', 'ok'],
      ['authorized_parties', 'ok'],
      ['session_lifetime', 'ok'],
      ['middleware_sdk', 'ok'],
    ]);
    expect(report.summary).toMatchObject({ verdict: 'ok', cause: null });
  });

  it('clock skew: 30 s ahead fails naming NTP', async () => {
    expect(check(await run(), 'clock_skew').verdict).toBe('ok');
    sandbox.admin.setClock({ skewMs: 30_000, applyTo: ['clerk'] });
    const c = check(await run(), 'clock_skew');
    expect(c.verdict).toBe('fail');
    expect(c.evidence).toMatch(/Clerk's clock \+(29\.\d|30\.\d) s/);
    expect(c.fix).toMatch(/the app's servers with NTP/);
    sandbox.admin.setClock({ skewMs: 3000, applyTo: ['app'] });
    expect(check(await run(), 'clock_skew').verdict).toBe('warn');
  });

  it('keys match: a foreign publishable key reported by the app fails', async () => {
    sandbox.admin.setApp({ publishableKey: encodePublishableKey('someone-else.clerk.accounts.dev') });
    const report = await run();
    const c = check(report, 'keys_match');
    expect(c.verdict).toBe('fail');
    expect(c.evidence).toMatch(/someone-else\.clerk\.accounts\.dev/);
    expect(c.fix).toMatch(/same Clerk instance/);
    // Reports carry hosts, never keys.
    expect(JSON.stringify(report)).not.toMatch(/pk_test_|sk_test_/);
  });

  it('domains and origins: an app origin outside the domains fails', async () => {
    sandbox.admin.setApp({ origin: 'https://app.elsewhere.test' });
    const c = check(await run(), 'domains_origins');
    expect(c.verdict).toBe('fail');
    expect(c.evidence).toMatch(/https:\/\/app\.elsewhere\.test is none of the instance's domains/);
    sandbox.admin.setApp({ origin: null, cookieDomain: 'other.test' });
    expect(check(await run(), 'domains_origins').evidence).toMatch(/other\.test does not cover 127\.0\.0\.1/);
  });

  it('authorized parties: the token\'s azp must be configured; a token of another instance fails', async () => {
    const [user] = sandbox.admin.createUsers({ count: 1 });
    const token = await tokenFor(user!.id);
    const saved = deps.authorizedParties;
    try {
      deps.authorizedParties = ['https://app.example.com'];
      const report = await run({ token });
      const c = check(report, 'authorized_parties');
      expect(c.verdict).toBe('fail');
      expect(c.fix).toMatch(/Add http:\/\/127\.0\.0\.1:\d+ to the app's authorizedParties/);
      expect(JSON.stringify(report)).not.toContain(token.split('.')[2]!);
    } finally {
      deps.authorizedParties = saved;
    }
    const other = await startSandbox({ users: 1, seed: 'other-instance', rateLimit: 'off' });
    try {
      const [u] = other.admin.createUsers({ count: 1 });
      const clerk = createClerkClient({ secretKey: other.secretKey, apiUrl: other.url });
      const [s] = (await clerk.sessions.getSessionList({ userId: u!.id, status: 'active' })).data;
      const foreign = (await clerk.sessions.getToken(s!.id, '')).jwt;
      expect(check(await run({ token: foreign }), 'authorized_parties')).toMatchObject({ verdict: 'fail', evidence: expect.stringMatching(/no key of the instance's JWKS/) });
    } finally {
      await other.close();
    }
  });

  it('session lifetime: users whose sessions keep expiring after 10 minutes fail', async () => {
    const [fine] = sandbox.admin.createUsers({ count: 1 });
    expect(check(await run({ userIds: [fine!.id] }), 'session_lifetime').verdict).toBe('ok');
    const [short] = sandbox.admin.createUsers({ count: 1, expiredSessions: { count: 5, lifetimeMs: 600_000 } });
    const c = check(await run({ userIds: [fine!.id, short!.id] }), 'session_lifetime');
    expect(c.verdict).toBe('fail');
    expect(c.evidence).toContain(`${short!.id}: 6 sessions (1 active, 5 expired); expired after median 10m; granted 10m`);
    expect(c.fix).toMatch(/instance grants 10m/);
  });

  it('middleware and SDK: an old SDK warns, a failing middleware fails', async () => {
    sandbox.admin.setApp({ sdkVersion: '0.9.1' });
    expect(check(await run(), 'middleware_sdk')).toMatchObject({ verdict: 'warn', fix: expect.stringMatching(/Upgrade @clerk\/backend from 0\.9\.1 to 3\.0\.0/) });
    sandbox.admin.setApp({ sdkVersion: null, middlewareFailure: true });
    const report = await runDiagnostics(deps, { kind: 'middleware_failure', timeoutMs: 3000 });
    expect(check(report, 'middleware_sdk')).toMatchObject({ verdict: 'fail', evidence: expect.stringMatching(/all 2 app routes answer 5xx/) });
    expect(report.summary.cause).toBe('middleware_sdk');
  });
});

describe('bounded and isolated', () => {
  it('a hanging source is cut at its timeout and the other checks still report', async () => {
    sandbox.admin.setFaults({ routes: { 'GET /v1/domains': { hangRate: 1 } } });
    const t0 = Date.now();
    const report = await run({}, 500);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(check(report, 'keys_match')).toMatchObject({ verdict: 'warn', evidence: expect.stringMatching(/no answer within 500 ms \(cut at its timeout\)/) });
    expect(check(report, 'clock_skew').verdict).toBe('ok');
    expect(check(report, 'middleware_sdk').verdict).toBe('ok');
  });

  it('runs as an activity (no token in its input) and reports a Clerk outage as verdicts, not a throw', async () => {
    sandbox.admin.setOutage({ active: true });
    try {
      const { runDiagnostics: activity } = createDiagnosticsActivities(deps);
      const input: RunDiagnosticsInput = { kind: 'middleware_failure', timeoutMs: 2000 };
      const report = (await new MockActivityEnvironment().run(activity, input)) as DiagnosticsReport;
      expect(check(report, 'keys_match')).toMatchObject({ verdict: 'warn', evidence: expect.stringMatching(/could not be checked/) });
      expect(check(report, 'authorized_parties').verdict).toBe('skipped');
      // The example app's pages fail during an outage, as clerkMiddleware() does; the fix names the bypass.
      expect(check(report, 'middleware_sdk')).toMatchObject({ verdict: 'fail', fix: expect.stringContaining('emergency bypass') });
      expect(report.summary.verdict).toBe('fail');
    } finally {
      sandbox.admin.setOutage({ active: false });
    }
  });
});

describe('npm run diagnose', () => {
  const ROOT = path.resolve(__dirname, '..');
  function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = { ...process.env, CIR_RUNTIME_FILE: path.join(ROOT, '.data', 'no-such-runtime.json') };
    for (const k of ['CLERK_SECRET_KEY', 'CLERK_API_URL', 'CLERK_PUBLISHABLE_KEY', 'APP_URL', 'APP_HEALTH_URL', 'APP_ROUTES', 'CLERK_AUTHORIZED_PARTIES']) delete env[k];
    return new Promise((resolve) => {
      const child = spawn('npx', ['tsx', 'src/cli/diagnose.ts', ...args], { cwd: ROOT, env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('healthy: every verdict printed, exit 0', async () => {
    const r = await cli(['--sandbox', sandbox.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const title of ['Clock skew', 'Keys match the instance', 'Domains and origins', 'Authorized parties', 'Session lifetime', 'Middleware and SDK']) expect(r.stdout).toContain(title);
    expect(r.stdout).toMatch(/summary: No cause found/);
  });

  it('a fault: FAIL with evidence and fix, exit 1; --json and --token leave the token out', async () => {
    sandbox.admin.setApp({ origin: 'https://app.elsewhere.test' });
    const [user] = sandbox.admin.createUsers({ count: 1 });
    const token = await tokenFor(user!.id);
    const r = await cli(['--sandbox', sandbox.url, '--user', user!.id, '--token', token, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as DiagnosticsReport;
    expect(report.kind).toBe('session_issues');
    expect(check(report, 'domains_origins').verdict).toBe('fail');
    expect(check(report, 'authorized_parties').verdict).toBe('fail');
    expect(report.summary.cause).toBe('domains_origins');
    expect(r.stdout).not.toContain(token.split('.')[2]!);
    const text = await cli(['--sandbox', sandbox.url]);
    expect(text.stdout).toMatch(/FAIL Domains and origins \(domains_origins\): https:\/\/app\.elsewhere\.test/);
    expect(text.stdout).toMatch(/\n +fix: Serve the app from the instance's domain/);
  });

  it('usage errors exit 2 naming the flag', async () => {
    const bad = await cli(['--kind', 'everything']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--kind/);
    const notSandbox = await cli(['--sandbox', 'http://127.0.0.1:9', '--probe-timeout', '1s']);
    expect(notSandbox.code).toBe(2);
    expect(notSandbox.stderr).toMatch(/--sandbox: http:\/\/127\.0\.0\.1:9 does not answer/);
  });
});
