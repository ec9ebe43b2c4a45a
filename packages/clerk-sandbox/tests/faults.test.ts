import type { ClerkClient } from '@clerk/backend';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { RunningSandbox } from '../src';
import { clerkError, sandboxWithClient } from './helpers';

let sandbox: RunningSandbox;
let clerk: ClerkClient;

beforeAll(async () => {
  ({ sandbox, clerk } = await sandboxWithClient({ users: 20, seed: 'faults' }));
});
afterAll(() => sandbox.close());
beforeEach(() => {
  sandbox.admin.setFaults({});
  sandbox.admin.setOutage({ active: false, clearWindows: true });
  sandbox.admin.setApp({ middlewareFailure: false });
});

const put = (path: string, body: unknown) =>
  fetch(`${sandbox.url}/__sandbox${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('injected faults', () => {
  it('adds fixed latency plus bounded jitter', async () => {
    expect((await put('/faults', { latency: { fixedMs: 80, jitterMs: 40 } })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      await clerk.users.getCount();
      const ms = performance.now() - t0;
      expect(ms).toBeGreaterThanOrEqual(78);
      expect(ms).toBeLessThan(400);
    }
    expect(sandbox.admin.faultCounters().latency).toBeGreaterThanOrEqual(3);
  });

  it.each([500, 502, 503] as const)('answers %i at an error rate of 1, as the SDK sees it', async (status) => {
    sandbox.admin.setFaults({ errorRates: { [String(status)]: 1 } });
    const err = await clerkError(clerk.users.getCount());
    expect(err.status).toBe(status);
    if (status === 502) expect(err.errors).toEqual([]); // a proxy's HTML page, no Clerk body
    else expect(err.errors[0]?.code).toBe(status === 500 ? 'internal_clerk_error' : 'service_unavailable');
  });

  it('applies an error rate of 0.5 to about half the requests, reproducibly from the seed', async () => {
    sandbox.admin.setFaults({ errorRates: { '503': 0.5 } });
    let failed = 0;
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${sandbox.url}/v1/users/count`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
      if (res.status === 503) failed++;
    }
    expect(failed).toBeGreaterThan(15);
    expect(failed).toBeLessThan(45);
  });

  it('hangs until the client gives up, records it, and never runs the handler', async () => {
    sandbox.admin.setFaults({ routes: { 'POST /v1/sessions/{session_id}/revoke': { hangRate: 1 } } });
    const [sessionId] = sandbox.admin.sessionIds('active');
    const t0 = performance.now();
    await expect(
      fetch(`${sandbox.url}/v1/sessions/${sessionId}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sandbox.secretKey}` },
        signal: AbortSignal.timeout(250),
      }),
    ).rejects.toThrow(/abort|timeout/i);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    // Other routes are untouched by a per-route override.
    expect(await clerk.users.getCount()).toBe(20);
    // The hung request is recorded once the sandbox sees the client's connection close.
    await vi.waitFor(() => {
      const [hung] = sandbox.admin.auditEntries({ route: 'POST /v1/sessions/{session_id}/revoke' });
      expect(hung).toMatchObject({ status: 0, fault: 'hang' });
    });
    expect((await clerk.sessions.getSession(sessionId!)).status).toBe('active');
  });

  it('overrides faults per route, including the example app and status page', async () => {
    sandbox.admin.setFaults({ errorRates: { '500': 1 }, routes: { 'GET /v1/users/count': { errorRates: {} }, 'GET /api/v2/status.json': { errorRates: { '503': 1 } } } });
    expect(await clerk.users.getCount()).toBe(20);
    expect((await clerkError(clerk.users.getUser('user_x'))).status).toBe(500);
    expect((await fetch(`${sandbox.url}/api/v2/status.json`)).status).toBe(503);
    expect((await fetch(`${sandbox.url}/api/v2/summary.json`)).status).toBe(200);
  });

  it('rejects the revoke of the listed sessions with a Clerk-shaped 4xx, every time, and no other', async () => {
    sandbox.admin.resetAudit();
    const [a, b, other] = sandbox.admin.sessionIds('active');
    const rejectSessions = { sessionIds: [a!, b!], status: 403, code: 'forbidden', message: 'Not allowed to revoke this session' };
    const res = await put('/faults', { rejectSessions });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ faults: { rejectSessions } });

    for (const id of [a!, a!, b!]) {
      const err = await clerkError(clerk.sessions.revokeSession(id));
      expect(err.status).toBe(403);
      expect(err.errors[0]).toMatchObject({ code: 'forbidden', message: 'Not allowed to revoke this session', meta: { sessionId: id } });
      expect(err.clerkTraceId).toMatch(/^[0-9a-f]{32}$/);
    }
    // Nothing changed for the rejected sessions; other sessions and other routes are untouched.
    expect((await clerk.sessions.getSession(a!)).status).toBe('active');
    expect((await clerk.sessions.revokeSession(other!)).status).toBe('revoked');
    expect(await clerk.users.getCount()).toBe(20);

    expect(sandbox.admin.revokes()).toEqual({
      [a!]: { calls: 2, revoked: 0, rejected: 2 },
      [b!]: { calls: 1, revoked: 0, rejected: 1 },
      [other!]: { calls: 1, revoked: 1, rejected: 0 },
    });
    expect(sandbox.admin.faultCounters().rejected).toBeGreaterThanOrEqual(3);
    const route = 'POST /v1/sessions/{session_id}/revoke';
    expect(sandbox.admin.auditEntries({ route }).map((e) => [e.status, e.fault])).toEqual([
      [403, 'rejected'],
      [403, 'rejected'],
      [403, 'rejected'],
      [200, null],
    ]);
    expect(sandbox.admin.auditSummary().faults.rejected).toBe(3);
    const faults = (await (await fetch(`${sandbox.url}/__sandbox/faults`)).json()) as { injected: Record<string, number> };
    expect(faults.injected.rejected).toBe(sandbox.admin.faultCounters().rejected);

    // Switching faults off lets the same session be revoked.
    expect((await fetch(`${sandbox.url}/__sandbox/faults`, { method: 'DELETE' })).status).toBe(200);
    expect((await clerk.sessions.revokeSession(b!)).status).toBe('revoked');
  });

  it.each([400, 404, 422] as const)('rejects with %i and the configured code, a default message naming the session', async (status) => {
    const [id] = sandbox.admin.sessionIds('active');
    sandbox.admin.setFaults({ rejectSessions: { sessionIds: [id!], status, code: 'sandbox_refused' } });
    const err = await clerkError(clerk.sessions.revokeSession(id!));
    expect(err.status).toBe(status);
    expect(err.errors[0]?.code).toBe('sandbox_refused');
    expect(err.errors[0]?.longMessage).toContain(id);
  });
});

describe('outage, status page and example app', () => {
  it('follows the outage switch in the status indicator, the API and the health route', async () => {
    const ok = (await (await fetch(`${sandbox.url}/api/v2/status.json`)).json()) as { status: { indicator: string } };
    expect(ok.status.indicator).toBe('none');
    const healthy = await fetch(`${sandbox.url}/api/clerk-health`);
    expect(healthy.status).toBe(200);
    expect(await healthy.json()).toMatchObject({ status: 'ok', sandbox: true, clerk: { reachable: true } });

    expect((await put('/outage', { active: true, indicator: 'critical' })).status).toBe(200);
    const down = (await (await fetch(`${sandbox.url}/api/v2/summary.json`)).json()) as {
      status: { indicator: string };
      components: { name: string; status: string }[];
      incidents: unknown[];
    };
    expect(down.status.indicator).toBe('critical');
    expect(down.components.find((c) => c.name === 'Backend API')?.status).toBe('major_outage');
    expect(down.incidents).toHaveLength(1);
    const err = await clerkError(clerk.users.getCount());
    expect(err.status).toBe(503);
    const sick = await fetch(`${sandbox.url}/api/clerk-health`);
    expect(sick.status).toBe(503);
    expect(await sick.json()).toMatchObject({ status: 'error', clerk: { status: 503, errorCode: 'service_unavailable' } });

    await put('/outage', { active: false });
    expect(await clerk.users.getCount()).toBe(20);
  });

  it('runs scheduled outage windows', async () => {
    sandbox.admin.setOutage({ windows: [{ startInMs: 0, durationMs: 200 }] });
    expect((await clerkError(clerk.users.getCount())).status).toBe(503);
    await vi.waitFor(() => expect(sandbox.admin.outageState().down).toBe(false), { timeout: 2000, interval: 20 });
    expect(await clerk.users.getCount()).toBe(20);
    const status = (await (await fetch(`${sandbox.url}/api/v2/status.json`)).json()) as { status: { indicator: string } };
    expect(status.status.indicator).toBe('none');
  });

  it('health reports a timeout when Clerk hangs, and the app key being invalid', async () => {
    sandbox.admin.setFaults({ routes: { 'GET /v1/users/count': { hangRate: 1 } } });
    const hung = await fetch(`${sandbox.url}/api/clerk-health`);
    expect(hung.status).toBe(503);
    expect(await hung.json()).toMatchObject({ clerk: { reachable: false, errorCode: 'timeout' } });
    sandbox.admin.setFaults({});
    sandbox.admin.setApp({ secretKey: 'sk_test_rotatedawayrotatedaway' });
    const badKey = await fetch(`${sandbox.url}/api/clerk-health`);
    expect(await badKey.json()).toMatchObject({ status: 'error', clerk: { status: 401, errorCode: 'clerk_key_invalid' } });
    sandbox.admin.setApp({ secretKey: sandbox.secretKey });
  }, 15_000);

  it('fails the example app routes with 500 while middlewareFailure is on', async () => {
    expect((await fetch(`${sandbox.url}/app/dashboard`)).status).toBe(200);
    expect((await put('/app', { middlewareFailure: true })).status).toBe(200);
    expect((await fetch(`${sandbox.url}/app/dashboard`)).status).toBe(500);
    expect((await fetch(`${sandbox.url}/app/profile`)).status).toBe(500);
    expect(await (await fetch(`${sandbox.url}/api/clerk-health`)).json()).toMatchObject({ middleware: 'failing' });
  });
});

describe('admin input', () => {
  it.each([
    ['/faults', 'PUT', { errorRates: { '500': 2 } }, 'errorRates.500'],
    ['/faults', 'PUT', { routes: { 'GET /nowhere': {} } }, 'routes.GET /nowhere'],
    ['/faults', 'PUT', { latency: { fixedMs: -1 } }, 'latency.fixedMs'],
    ['/faults', 'PUT', { errorRates: { '500': 0.7, '503': 0.7 } }, 'errorRates'],
    ['/faults', 'PUT', { rejectSessions: { sessionIds: ['sess_1'], status: 500, code: 'forbidden' } }, 'rejectSessions.status'],
    ['/faults', 'PUT', { rejectSessions: { sessionIds: ['user_1'], status: 403, code: 'forbidden' } }, 'rejectSessions.sessionIds.0'],
    ['/faults', 'PUT', { rejectSessions: { sessionIds: [], status: 403, code: 'forbidden' } }, 'rejectSessions.sessionIds'],
    ['/faults', 'PUT', { rejectSessions: { sessionIds: ['sess_1'], status: 403 } }, 'rejectSessions.code'],
    ['/outage', 'PUT', { active: 'yes' }, 'active'],
    ['/outage', 'PUT', { windows: [{ durationMs: 0 }] }, 'windows.0.durationMs'],
    ['/keys', 'POST', { secretKey: 'pk_test_nope' }, 'secretKey'],
    ['/seed', 'POST', { users: -5 }, 'users'],
    ['/rate-limit', 'PUT', { rateLimit: 'turbo' }, 'rateLimit'],
    ['/webhooks', 'PUT', { url: 'not a url' }, 'url'],
    ['/app', 'PUT', { middlewareFailure: 1 }, 'middlewareFailure'],
    ['/users', 'POST', { count: 0 }, 'count'],
  ])('%s %s %j answers 400 naming %s', async (path, method, body, field) => {
    const res = await fetch(`${sandbox.url}/__sandbox${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request', field });
  });

  it('refuses a bad rejectSessions through the in-process handle too, naming the field', () => {
    expect(() => sandbox.admin.setFaults({ rejectSessions: { sessionIds: ['sess_1'], status: 429, code: 'x' } })).toThrow(
      expect.objectContaining({ name: 'SandboxInputError', field: 'rejectSessions.status' }),
    );
    expect(sandbox.admin.getFaults()).toEqual({});
  });

  it('survives malformed JSON, empty bodies and bad query strings', async () => {
    const bad = await fetch(`${sandbox.url}/__sandbox/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"latency":' });
    expect(bad.status).toBe(400);
    expect((await fetch(`${sandbox.url}/__sandbox/faults`, { method: 'PUT', headers: { 'content-type': 'application/json' } })).status).toBe(400);
    expect((await fetch(`${sandbox.url}/__sandbox/audit?limit=abc`)).status).toBe(400);
    expect((await fetch(`${sandbox.url}/__sandbox/audit?bogus=1`)).status).toBe(400);
    expect((await fetch(`${sandbox.url}/__sandbox/sessions?status=asleep`)).status).toBe(400);
    expect(await clerk.users.getCount()).toBe(20);
  });
});
