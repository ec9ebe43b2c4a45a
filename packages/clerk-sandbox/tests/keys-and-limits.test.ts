import { afterEach, describe, expect, it, vi } from 'vitest';
import { startSandbox, type RunningSandbox } from '../src';
import { clerkError, clientFor } from './helpers';

let sandbox: RunningSandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

const KEY_A = 'sk_test_aaaaaaaaaaaaaaaaaaaaaaaa';
const KEY_B = 'sk_test_bbbbbbbbbbbbbbbbbbbbbbbb';

describe('secret keys', () => {
  it('accepts several active keys at once and rejects unknown ones with 401 clerk_key_invalid', async () => {
    sandbox = await startSandbox({ users: 5, secretKeys: [KEY_A, KEY_B], rateLimit: 'off' });
    expect(sandbox.secretKey).toBe(KEY_A);
    expect(await clientFor(sandbox, KEY_A).users.getCount()).toBe(5);
    expect(await clientFor(sandbox, KEY_B).users.getCount()).toBe(5);
    const err = await clerkError(clientFor(sandbox, 'sk_test_unknownunknownunknown').users.getCount());
    expect(err.status).toBe(401);
    expect(err.errors[0]?.code).toBe('clerk_key_invalid');
    const noHeader = await fetch(`${sandbox.url}/v1/users/count`);
    expect(noHeader.status).toBe(401);
    expect(sandbox.admin.auditSummary().requestsWithUnknownKey).toBe(1);
    expect(sandbox.admin.auditSummary().requestsWithoutKey).toBe(1);
  });

  it('rotates: add a key over the admin API, delete the old one, the old one then gets 401', async () => {
    sandbox = await startSandbox({ users: 5, rateLimit: 'off' });
    const admin = `${sandbox.url}/__sandbox`;
    const added = (await (await fetch(`${admin}/keys`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"label":"new"}' })).json()) as {
      id: string;
      secretKey: string;
    };
    expect(added.secretKey).toMatch(/^sk_test_/);
    const oldClient = clientFor(sandbox, sandbox.secretKey);
    const newClient = clientFor(sandbox, added.secretKey);
    expect(await newClient.users.getCount()).toBe(5);
    expect(await oldClient.users.getCount()).toBe(5);
    const [oldKey] = sandbox.admin.listKeys();
    const del = await fetch(`${admin}/keys/${oldKey!.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    const err = await clerkError(oldClient.users.getCount());
    expect(err.status).toBe(401);
    expect(err.errors[0]?.code).toBe('clerk_key_invalid');
    expect(await newClient.users.getCount()).toBe(5);
    const summary = sandbox.admin.auditSummary();
    expect(summary.requestsWithDeletedKey).toBe(1);
    expect(summary.byKey[oldKey!.id]).toEqual({ count: 2, whileDeleted: 1 });
    expect(summary.byKey[added.id]).toEqual({ count: 2, whileDeleted: 0 });
    expect((await fetch(`${admin}/keys/key_nope`, { method: 'DELETE' })).status).toBe(404);
  });
});

describe('rate limit', () => {
  it('defaults to the production limit of 1000 requests per 10 s', async () => {
    sandbox = await startSandbox({ users: 1 });
    expect(sandbox.admin.getRateLimit()).toEqual({ requests: 1000, windowMs: 10_000 });
  });

  it('answers the 101st request of a development window with 429 and Retry-After, which the SDK surfaces', async () => {
    sandbox = await startSandbox({ users: 3, rateLimit: 'development' });
    const clerk = clientFor(sandbox, sandbox.secretKey);
    // getUserList is two requests (list + count): 50 calls use the whole window.
    for (let i = 0; i < 50; i++) await clerk.users.getUserList({ limit: 1 });
    const err = await clerkError(clerk.users.getCount());
    expect(err.status).toBe(429);
    expect(err.errors[0]?.code).toBe('too_many_requests');
    expect(err.retryAfter).toBeGreaterThanOrEqual(1);
    expect(err.retryAfter).toBeLessThanOrEqual(10);
    const raw = await fetch(`${sandbox.url}/v1/users/count`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
    expect(raw.status).toBe(429);
    expect(Number(raw.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Admin routes are never limited.
    expect((await fetch(`${sandbox.url}/__sandbox/audit/summary`)).status).toBe(200);
    expect(sandbox.admin.auditSummary().faults.rate_limited).toBe(2);
  });

  it('opens a new window once the old one has passed (custom limit set at run time)', async () => {
    sandbox = await startSandbox({ users: 3 });
    const res = await fetch(`${sandbox.url}/__sandbox/rate-limit`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rateLimit: { requests: 2, windowMs: 300 } }),
    });
    expect(res.status).toBe(200);
    const clerk = clientFor(sandbox, sandbox.secretKey);
    await clerk.users.getCount();
    await clerk.users.getCount();
    expect((await clerkError(clerk.users.getCount())).status).toBe(429);
    // Refused until the 300 ms window has passed, then answered.
    await vi.waitFor(async () => expect(await clerk.users.getCount()).toBe(3), { timeout: 2000, interval: 25 });
  });
});
