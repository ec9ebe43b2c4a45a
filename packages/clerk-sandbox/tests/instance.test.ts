/**
 * The instance the diagnostics read (instance, domains, JWKS, session tokens) through the SDK,
 * and the fault knobs that break each check: skewed clock, the app's publishable key, origin,
 * cookie domain and SDK version, short-lived expired sessions.
 */
import type { ClerkClient } from '@clerk/backend';
import { decodeJwt, verifyJwt } from '@clerk/backend/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePublishableKey, type RunningSandbox } from '../src';
import { SandboxAdminClient } from '../src/admin-client';
import { clerkError, sandboxWithClient } from './helpers';

let sandbox: RunningSandbox;
let clerk: ClerkClient;
let admin: SandboxAdminClient;

beforeAll(async () => {
  ({ sandbox, clerk } = await sandboxWithClient({ users: 20, seed: 'instance-test' }));
  admin = new SandboxAdminClient(sandbox.url);
});
afterAll(() => sandbox.close());

const health = async () => {
  const res = await fetch(`${sandbox.url}/api/clerk-health`);
  return { date: res.headers.get('date'), body: (await res.json()) as Record<string, unknown> };
};

describe('allowed_origins through @clerk/backend (PATCH /v1/instance)', () => {
  it('replaces the list, reads back through GET /v1/instance, and refuses what is not an origin naming the field', async () => {
    const before = (await clerk.instance.get()).allowedOrigins ?? [];
    await clerk.instance.update({ allowedOrigins: [...before, 'https://app.elsewhere.test'] });
    expect((await clerk.instance.get()).allowedOrigins).toEqual([...before, 'https://app.elsewhere.test']);
    const err = await clerkError(clerk.instance.update({ allowedOrigins: ['https://ok.test', 'not an origin'] }));
    expect(err.status).toBe(422);
    expect(err.errors[0]).toMatchObject({ code: 'form_param_format_invalid', meta: { paramName: 'allowed_origins' } });
    // Refused whole: the list is as it was.
    expect((await clerk.instance.get()).allowedOrigins).toEqual([...before, 'https://app.elsewhere.test']);
    await clerk.instance.update({ allowedOrigins: before });
    expect((await clerk.instance.get()).allowedOrigins).toEqual(before);
  });
});

describe('the instance through @clerk/backend', () => {
  it('publishable key encodes the Frontend API host the domains name', async () => {
    const host = Buffer.from(sandbox.publishableKey.replace(/^pk_test_/, ''), 'base64').toString();
    expect(host).toBe('instance-test.clerk.accounts.dev$');
    expect(sandbox.publishableKey).toBe(encodePublishableKey('instance-test.clerk.accounts.dev'));
    const instance = await clerk.instance.get();
    expect(instance.id).toBe(sandbox.admin.instanceId);
    const domains = await clerk.domains.list();
    expect(domains.totalCount).toBe(2);
    const primary = domains.data.find((d) => !d.isSatellite)!;
    expect(primary.frontendApiUrl).toBe('https://instance-test.clerk.accounts.dev');
    expect(primary.name).toBe(new URL(sandbox.url).host);
    expect((await admin.instance()).publishableKey).toBe(sandbox.publishableKey);
  });

  it('a session token is an RS256 JWT the JWKS verifies, living 60 s', async () => {
    const [sid] = sandbox.admin.sessionIds('active');
    const { jwt } = await clerk.sessions.getToken(sid!, '');
    const jwks = await clerk.jwks.getJwks();
    const key = jwks.keys?.[0];
    expect(key?.alg).toBe('RS256');
    const payload = await verifyJwt(jwt, { key: key as Parameters<typeof verifyJwt>[1]['key'], authorizedParties: [new URL(sandbox.url).origin] });
    expect(payload.sid).toBe(sid);
    expect(payload.iss).toBe('https://instance-test.clerk.accounts.dev');
    expect(payload.exp - payload.iat).toBe(60);
    expect(decodeJwt(jwt).header.kid).toBe(key?.kid);
    const err = await clerkError(clerk.sessions.getToken('sess_doesnotexist', ''));
    expect(err.status).toBe(404);
  });
});

describe('fault knobs', () => {
  it('a skewed clock shows in the Date header of Clerk and of the health route, and in token times', async () => {
    await admin.setClock({ skewMs: 30_000 });
    try {
      const res = await fetch(`${sandbox.url}/v1/jwks`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
      const skew = Date.parse(res.headers.get('date')!) - Date.now();
      expect(skew).toBeGreaterThan(28_000);
      expect(skew).toBeLessThan(32_000);
      expect(Date.parse((await health()).date!) - Date.now()).toBeGreaterThan(28_000);
      const [sid] = sandbox.admin.sessionIds('active');
      const { jwt } = await clerk.sessions.getToken(sid!, '');
      expect(decodeJwt(jwt).payload.iat * 1000 - Date.now()).toBeGreaterThan(28_000);
      await admin.setClock({ skewMs: -10_000, applyTo: ['app'] });
      const clerkDate = (await fetch(`${sandbox.url}/v1/instance`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } })).headers.get('date');
      expect(Math.abs(Date.parse(clerkDate!) - Date.now())).toBeLessThan(2000);
      expect(Date.parse((await health()).date!) - Date.now()).toBeLessThan(-8000);
    } finally {
      await admin.resetClock();
    }
    expect((await admin.instance()).clock.skewMs).toBe(0);
  });

  it('the health route reports middleware, SDK, origin, cookie domain, publishable key; overrides and reset', async () => {
    const before = (await health()).body;
    expect(before).toMatchObject({
      status: 'ok',
      middleware: 'ok',
      sdk: { name: '@clerk/backend' },
      origin: new URL(sandbox.url).origin,
      cookieDomain: '127.0.0.1',
      publishableKey: sandbox.publishableKey,
      clerk: { reachable: true },
    });
    const foreign = encodePublishableKey('other-app-42.clerk.accounts.dev');
    await admin.setApp({ publishableKey: foreign, origin: 'https://app.elsewhere.test', sdkVersion: '0.9.1', cookieDomain: 'elsewhere.test' });
    expect((await health()).body).toMatchObject({ publishableKey: foreign, origin: 'https://app.elsewhere.test', sdk: { version: '0.9.1' }, cookieDomain: 'elsewhere.test' });
    await admin.setApp({ origin: null });
    expect((await health()).body.origin).toBe(new URL(sandbox.url).origin);
    const reset = await admin.resetApp();
    expect(reset).toMatchObject({ publishableKey: null, origin: null, sdkVersion: null, cookieDomain: null, middlewareFailure: false });
    const { clerk: _c1, ...beforeApp } = before;
    const { clerk: _c2, ...afterApp } = (await health()).body;
    expect(afterApp).toEqual(beforeApp);
  });

  it('rejects bad knob values naming the field', async () => {
    const res = await fetch(`${sandbox.url}/__sandbox/app`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"sdkVersion":"latest"}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: 'sdkVersion' });
    expect(() => sandbox.admin.setClock({ skewMs: 1.5 })).toThrow(expect.objectContaining({ name: 'SandboxInputError', field: 'skewMs' }));
  });

  it('users with short-lived sessions that ended as expired', async () => {
    const [user] = sandbox.admin.createUsers({ count: 1, expiredSessions: { count: 4, lifetimeMs: 600_000 } });
    const sessions = await clerk.sessions.getSessionList({ userId: user!.id });
    expect(sessions.data.map((s) => s.status)).toEqual(['active', 'expired', 'expired', 'expired', 'expired']);
    for (const s of sessions.data.filter((x) => x.status === 'expired')) {
      expect(s.expireAt - s.createdAt).toBe(600_000);
      expect(s.updatedAt - s.createdAt).toBe(600_000);
    }
  });
});
