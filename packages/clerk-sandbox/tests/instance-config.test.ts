/** The Platform API's instance config (`session` key) over HTTP, and the lifetime new sessions get from it. */
import type { ClerkClient } from '@clerk/backend';
import { afterEach, describe, expect, it } from 'vitest';
import { SandboxInputError, type RunningSandbox } from '../src';
import { SandboxAdminClient, SandboxAdminHttpError } from '../src/admin-client';
import { DAY, sandboxWithClient } from './helpers';

let sandbox: RunningSandbox | undefined;
let clerk: ClerkClient;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function start(): Promise<RunningSandbox> {
  ({ sandbox, clerk } = await sandboxWithClient({ users: 3, seed: 'instance-config' }));
  return sandbox;
}

interface ClerkErrorBody {
  errors: { code: string; message: string; long_message: string; meta: Record<string, unknown> }[];
}

/** A Platform API call with the sandbox's token (or `token`); the status and the parsed body. */
async function platform(sbx: RunningSandbox, method: 'GET' | 'PATCH', query = '', opts: { body?: unknown; ifMatch?: string; token?: string; env?: string } = {}) {
  const p = sbx.platform;
  const headers: Record<string, string> = { authorization: `Bearer ${opts.token ?? p.token}` };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
  const res = await fetch(`${p.url}/v1/platform/applications/${p.applicationId}/instances/${opts.env ?? p.instanceId}/config${query}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** A new user (a sign-up) and how long its session lasts: `expire_at - created_at`. */
async function newSessionLifetime(sbx: RunningSandbox): Promise<number> {
  const res = await fetch(`${sbx.url}/__sandbox/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"count":1}' });
  const { users } = (await res.json()) as { users: { id: string }[] };
  const { data } = await clerk.sessions.getSessionList({ userId: users[0]!.id, status: 'active' });
  expect(data).toHaveLength(1);
  return data[0]!.expireAt - data[0]!.createdAt;
}

describe('GET …/config', () => {
  it('answers the session settings and version to the Platform API token only', async () => {
    const sbx = await start();
    const read = await platform(sbx, 'GET');
    expect(read).toEqual({ status: 200, body: { config_version: '1', session: { lifetime: 604800, inactivity_timeout: null } } });
    expect((await platform(sbx, 'GET', '', { env: 'development' })).status).toBe(200);
    expect((await platform(sbx, 'GET', '?keys=session')).body).toEqual(read.body);

    const bad = await platform(sbx, 'GET', '?keys=session&keys=bogus');
    expect(bad.status).toBe(400);
    expect((bad.body as unknown as ClerkErrorBody).errors[0]).toMatchObject({ code: 'unknown_config_key', meta: { param_name: 'bogus' } });
    const unauth = await platform(sbx, 'GET', '', { token: sbx.secretKey });
    expect(unauth.status).toBe(401);
    expect((unauth.body as unknown as ClerkErrorBody).errors[0]?.code).toBe('authentication_invalid');
    expect((await platform(sbx, 'GET', '', { env: 'ins_someoneelse' })).status).toBe(404);
  });
});

describe('PATCH …/config', () => {
  it('a dry run previews the change and changes nothing', async () => {
    const sbx = await start();
    const dry = await platform(sbx, 'PATCH', '?dry_run=true', { body: { session: { lifetime: 3600 } }, ifMatch: '1' });
    expect(dry).toEqual({
      status: 200,
      body: { config_version: '1', dry_run: true, before: { session: { lifetime: 604800, inactivity_timeout: null } }, after: { session: { lifetime: 3600, inactivity_timeout: null } } },
    });
    expect((await platform(sbx, 'GET')).body).toMatchObject({ config_version: '1', session: { lifetime: 604800 } });
    expect(await newSessionLifetime(sbx)).toBe(7 * DAY);
    expect(sbx.admin.instance.configOverview().changes).toMatchObject([{ via: 'platform_api', dryRun: true, applied: false, version: '1' }]);
  });

  it('a real change moves the version, and sessions created after it last the new lifetime', async () => {
    const sbx = await start();
    const before = await newSessionLifetime(sbx);
    const patched = await platform(sbx, 'PATCH', '', { body: { session: { lifetime: 3600 } } });
    expect(patched.body).toMatchObject({ config_version: '2', dry_run: false, after: { session: { lifetime: 3600 } } });
    expect(before).toBe(7 * DAY);
    expect(await newSessionLifetime(sbx)).toBe(3_600_000);

    // Deep merge: the inactivity timeout alone; both on, a new session ends at the earlier.
    const idle = await platform(sbx, 'PATCH', '', { body: { session: { inactivity_timeout: 1800 } }, ifMatch: '"2"' });
    expect(idle.body).toMatchObject({ config_version: '3', after: { session: { lifetime: 3600, inactivity_timeout: 1800 } } });
    expect(await newSessionLifetime(sbx)).toBe(1_800_000);

    // The same values again: no change, no new version.
    expect((await platform(sbx, 'PATCH', '', { body: { session: { lifetime: 3600 } } })).body).toMatchObject({ config_version: '3' });
    // Clearing needs destructive=true.
    const clear = await platform(sbx, 'PATCH', '', { body: { session: { inactivity_timeout: null } } });
    expect(clear.status).toBe(400);
    expect((clear.body as unknown as ClerkErrorBody).errors[0]).toMatchObject({ code: 'destructive_operation_not_allowed', meta: { param_name: 'session.inactivity_timeout' } });
    expect((await platform(sbx, 'PATCH', '?destructive=true', { body: { session: { inactivity_timeout: null } } })).body).toMatchObject({ config_version: '4', after: { session: { inactivity_timeout: null } } });
    // The log: each accepted PATCH, `applied` where the version moved (the refused one is not there).
    expect(sbx.admin.instance.configOverview().changes.map((c) => [c.dryRun, c.applied, c.version])).toEqual([
      [false, true, '2'],
      [false, true, '3'],
      [false, false, '3'],
      [false, true, '4'],
    ]);
  });

  it('refuses a stale If-Match with 409 and changes nothing', async () => {
    const sbx = await start();
    await platform(sbx, 'PATCH', '', { body: { session: { lifetime: 86400 } } });
    const stale = await platform(sbx, 'PATCH', '', { body: { session: { lifetime: 3600 } }, ifMatch: '1' });
    expect(stale.status).toBe(409);
    expect((stale.body as unknown as ClerkErrorBody).errors[0]?.code).toBe('conflict');
    const staleDry = await platform(sbx, 'PATCH', '?dry_run=true', { body: { session: { lifetime: 3600 } }, ifMatch: 'W/"1"' });
    expect(staleDry.status).toBe(409);
    expect((await platform(sbx, 'GET')).body).toEqual({ config_version: '2', session: { lifetime: 86400, inactivity_timeout: null } });
    const overview = await new SandboxAdminClient(sbx.url).instanceConfig();
    expect(overview.changes.map((c) => [c.dryRun, c.applied])).toEqual([[false, true]]);
    expect(overview.conflicts).toMatchObject([
      { dryRun: false, ifMatch: '1', version: '2' },
      { dryRun: true, ifMatch: 'W/"1"', version: '2' },
    ]);
  });

  it('answers invalid changes as Clerk does: 400 with the parameter named', async () => {
    const sbx = await start();
    const cases: [string, unknown, string, string][] = [
      ['', { session: { lifetime: 10 } }, 'config_validation_error', 'session.lifetime'],
      ['', { session: { lifetime: 3600.5 } }, 'config_validation_error', 'session.lifetime'],
      ['', { session: { lifetime: '3600' } }, 'config_validation_error', 'session.lifetime'],
      ['', { session: { max_lifetime: 3600 } }, 'unknown_config_key', 'session.max_lifetime'],
      ['', { sessions: { lifetime: 3600 } }, 'unknown_config_key', 'sessions'],
      ['', { config_version: '1', session: { lifetime: 3600 } }, 'unknown_config_key', 'config_version'],
      ['?destructive=true', { session: { lifetime: null } }, 'config_validation_error', 'session'],
      ['?dry_run=yes', { session: { lifetime: 3600 } }, 'form_param_format_invalid', 'dry_run'],
    ];
    for (const [query, body, code, param] of cases) {
      const res = await platform(sbx, 'PATCH', query, { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((res.body as unknown as ClerkErrorBody).errors[0], JSON.stringify(body)).toMatchObject({ code, meta: { param_name: param } });
    }
    expect((await platform(sbx, 'GET')).body).toMatchObject({ config_version: '1', session: { lifetime: 604800 } });
  });

  it('meets the per-route faults of the pipeline', async () => {
    const sbx = await start();
    sbx.admin.setFaults({ routes: { 'PATCH /v1/platform/applications/{app}/instances/{env}/config': { errorRates: { '503': 1 } } } });
    expect((await platform(sbx, 'PATCH', '', { body: { session: { lifetime: 3600 } } })).status).toBe(503);
    expect((await platform(sbx, 'GET')).body).toMatchObject({ config_version: '1' });
  });
});

describe('admin hooks', () => {
  it('injects a short lifetime in process and over HTTP; the version moves as for a Dashboard change', async () => {
    const sbx = await start();
    expect(sbx.admin.instance.setSessionLifetime(30_000)).toEqual({ maxLifetimeMs: 30_000, inactivityTimeoutMs: null });
    expect(await newSessionLifetime(sbx)).toBe(30_000);
    expect((await platform(sbx, 'GET')).body).toEqual({ config_version: '2', session: { lifetime: 30, inactivity_timeout: null } });

    const client = new SandboxAdminClient(sbx.url);
    const set = await client.setSessionSettings({ maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: 60_000 });
    expect(set).toMatchObject({ configVersion: '3', session: { maxLifetimeMs: 7 * DAY, inactivityTimeoutMs: 60_000 }, newSessionLifetimeMs: 60_000 });
    expect(await newSessionLifetime(sbx)).toBe(60_000);
    const overview = await client.instanceConfig();
    expect(overview.changes.map((c) => [c.via, c.version])).toEqual([
      ['admin', '2'],
      ['admin', '3'],
    ]);
    expect(overview.changes.every((c) => c.applied)).toBe(true);

    const bad = await client.setSessionSettings({ maxLifetimeMs: 1500 }).catch((err: unknown) => err);
    expect(bad).toBeInstanceOf(SandboxAdminHttpError);
    expect((bad as SandboxAdminHttpError).status).toBe(400);
    expect((bad as SandboxAdminHttpError).body).toMatchObject({ field: 'maxLifetimeMs' });
    await expect(client.setSessionSettings({ maxLifetimeMs: null, inactivityTimeoutMs: null })).rejects.toMatchObject({ status: 400 });
    expect(() => sbx.admin.instance.setSessionLifetime(0)).toThrow(SandboxInputError);
    expect((await client.instanceConfig()).configVersion).toBe('3');
  });
});
