import type { ClerkClient } from '@clerk/backend';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningSandbox } from '../src';
import { DAY, clerkError, sandboxWithClient } from './helpers';

const NOW = Date.UTC(2026, 10, 1);
let sandbox: RunningSandbox;
let clerk: ClerkClient;

beforeAll(async () => {
  ({ sandbox, clerk } = await sandboxWithClient({ users: 1234, seed: 'api-tests', now: NOW }));
});
afterAll(() => sandbox.close());

describe('users through the SDK', () => {
  it('lists newest first with the total count, default page of 10', async () => {
    const page = await clerk.users.getUserList();
    expect(page.totalCount).toBe(1234);
    expect(page.data).toHaveLength(10);
    const created = page.data.map((u) => u.createdAt);
    expect([...created].sort((a, b) => b - a)).toEqual(created);
    expect(page.data[0]?.primaryEmailAddress?.emailAddress).toMatch(/@example\.com$/);
    expect(page.data[0]?.id).toMatch(/^user_[0-9A-Za-z]{27}$/);
  });

  it('walks every user exactly once with limit 500 and offset, the last page short', async () => {
    const seen = new Set<string>();
    const sizes: number[] = [];
    for (let offset = 0; ; offset += 500) {
      const page = await clerk.users.getUserList({ limit: 500, offset });
      sizes.push(page.data.length);
      for (const u of page.data) seen.add(u.id);
      if (page.data.length < 500) break;
    }
    expect(sizes).toEqual([500, 500, 234]);
    expect(seen.size).toBe(1234);
  });

  it('accepts limit 1 and 500 and rejects 0 < limit > 500 and negative offsets with 422', async () => {
    expect((await clerk.users.getUserList({ limit: 1 })).data).toHaveLength(1);
    expect((await clerk.users.getUserList({ limit: 500 })).data).toHaveLength(500);
    const tooMany = await clerkError(clerk.users.getUserList({ limit: 501 }));
    expect(tooMany.status).toBe(422);
    expect(tooMany.errors[0]?.code).toBe('form_param_value_invalid');
    expect(tooMany.errors[0]?.meta?.paramName).toBe('limit');
    const res = await fetch(`${sandbox.url}/v1/users?offset=-1`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
    expect(res.status).toBe(422);
    const beyond = await clerk.users.getUserList({ limit: 10, offset: 5000 });
    expect(beyond.data).toEqual([]);
    expect(beyond.totalCount).toBe(1234);
  });

  it('filters on last_active_at_after / _before, and the count agrees with the list', async () => {
    const after = NOW - 7 * DAY;
    const recent = await clerk.users.getUserList({ lastActiveAtAfter: after, limit: 500 });
    expect(recent.totalCount).toBeGreaterThan(100);
    expect(recent.totalCount).toBeLessThan(1234);
    expect(recent.data.every((u) => u.lastActiveAt !== null && u.lastActiveAt > after)).toBe(true);
    const before = await clerk.users.getCount({ lastActiveAtBefore: after } as Parameters<ClerkClient['users']['getCount']>[0]);
    const never = await fetch(`${sandbox.url}/v1/users/count`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
    expect(((await never.json()) as { total_count: number }).total_count).toBe(1234);
    // Users never active match neither bound.
    expect(before + recent.totalCount).toBeLessThan(1234);
  });

  it('orders by last_active_at descending with never-active users last', async () => {
    const page = await clerk.users.getUserList({ orderBy: '-last_active_at', limit: 500, offset: 1000 });
    const values = page.data.map((u) => u.lastActiveAt);
    const firstNull = values.indexOf(null);
    const active = values.slice(0, firstNull === -1 ? undefined : firstNull) as number[];
    expect([...active].sort((a, b) => b - a)).toEqual(active);
    if (firstNull !== -1) expect(values.slice(firstNull).every((v) => v === null)).toBe(true);
    const bad = await clerkError(clerk.users.getUserList({ orderBy: 'shoe_size' as '-created_at' }));
    expect(bad.status).toBe(422);
    expect(bad.errors[0]?.meta?.paramName).toBe('order_by');
  });

  it('filters by user id (include and exclude) and email address', async () => {
    const [a, b] = (await clerk.users.getUserList({ limit: 2 })).data;
    const both = await clerk.users.getUserList({ userId: [a!.id, b!.id] });
    expect(both.data.map((u) => u.id).sort()).toEqual([a!.id, b!.id].sort());
    expect(both.totalCount).toBe(2);
    const byEmail = await clerk.users.getUserList({ emailAddress: [a!.primaryEmailAddress!.emailAddress] });
    expect(byEmail.data.map((u) => u.id)).toEqual([a!.id]);
    const excluded = await clerk.users.getUserList({ userId: [`-${a!.id}`] });
    expect(excluded.totalCount).toBe(1233);
    expect(await clerk.users.getCount({ phoneNumber: ['+15555550100'] })).toBe(0);
  });

  it('pages with the starting_after cursor', async () => {
    const first = await clerk.users.getUserList({ limit: 3 });
    const res = await fetch(`${sandbox.url}/v1/users?limit=3&starting_after=${first.data[2]!.id}`, {
      headers: { authorization: `Bearer ${sandbox.secretKey}` },
    });
    const next = (await res.json()) as { id: string }[];
    const expected = (await clerk.users.getUserList({ limit: 3, offset: 3 })).data.map((u) => u.id);
    expect(next.map((u) => u.id)).toEqual(expected);
  });

  it('continues after a starting_after user that was deleted since, in both orders; an unknown id is a 422', async () => {
    // A sandbox of its own: deleting a user would change the counts the other tests expect.
    const own = await sandboxWithClient({ users: 30, seed: 'deleted-cursor', now: NOW });
    try {
      const page = async (query: string) => {
        const res = await fetch(`${own.sandbox.url}/v1/users?limit=5&${query}`, { headers: { authorization: `Bearer ${own.sandbox.secretKey}` } });
        return { status: res.status, body: (await res.json()) as unknown };
      };
      const ids = async (orderBy: '+created_at' | '-created_at') => (await own.clerk.users.getUserList({ limit: 30, orderBy })).data.map((u) => u.id);
      const ascending = await ids('+created_at');
      const descending = await ids('-created_at');
      const gone = ascending[10]!;
      await own.clerk.users.deleteUser(gone);
      expect(await own.clerk.users.getCount()).toBe(29);

      expect(await page(`order_by=%2Bcreated_at&starting_after=${gone}`)).toEqual({
        status: 200,
        body: ascending.slice(11, 16).map((id) => expect.objectContaining({ id })),
      });
      const after = descending.indexOf(gone);
      expect(await page(`order_by=-created_at&starting_after=${gone}`)).toEqual({
        status: 200,
        body: descending.slice(after + 1, after + 6).map((id) => expect.objectContaining({ id })),
      });
      expect(await page('starting_after=user_2neverexisted')).toMatchObject({
        status: 422,
        body: { errors: [{ code: 'form_param_value_invalid', meta: { param_name: 'starting_after' } }] },
      });
    } finally {
      await own.sandbox.close();
    }
  });

  it('gets one user, and 404 resource_not_found for an unknown id', async () => {
    const [u] = (await clerk.users.getUserList({ limit: 1 })).data;
    const got = await clerk.users.getUser(u!.id);
    expect(got.id).toBe(u!.id);
    expect(got.emailAddresses[0]?.emailAddress).toBe(u!.primaryEmailAddress?.emailAddress);
    const missing = await clerkError(clerk.users.getUser('user_doesnotexist'));
    expect(missing.status).toBe(404);
    expect(missing.errors[0]?.code).toBe('resource_not_found');
    expect(missing.clerkTraceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('answers with Content-Type exactly application/json, as the SDK requires', async () => {
    const res = await fetch(`${sandbox.url}/v1/users/count`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({ object: 'total_count', total_count: 1234 });
  });
});

describe('sessions through the SDK', () => {
  it('lists a user\'s sessions, paginated as the SDK asks, filtered by status', async () => {
    const recent = await clerk.users.getUserList({ lastActiveAtAfter: NOW - DAY, limit: 20 });
    let checked = 0;
    for (const u of recent.data) {
      const all = await clerk.sessions.getSessionList({ userId: u.id });
      const active = await clerk.sessions.getSessionList({ userId: u.id, status: 'active' });
      expect(all.totalCount).toBe(all.data.length);
      expect(active.data.every((s) => s.status === 'active' && s.userId === u.id)).toBe(true);
      expect(active.totalCount).toBeGreaterThanOrEqual(1);
      expect(active.data[0]?.latestActivity?.browserName).toBeTruthy();
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('gives users inactive for longer than the session lifetime no active session', async () => {
    const dormant = await clerk.users.getUserList({ lastActiveAtBefore: NOW - 8 * DAY, limit: 30 } as Parameters<ClerkClient['users']['getUserList']>[0]);
    for (const u of dormant.data) {
      expect((await clerk.sessions.getSessionList({ userId: u.id, status: 'active' })).totalCount).toBe(0);
    }
  });

  it('requires user_id or client_id and a valid status; a bare array without paginated', async () => {
    const missing = await clerkError(clerk.sessions.getSessionList({}));
    expect(missing.status).toBe(422);
    expect(missing.errors[0]?.code).toBe('form_param_missing');
    const badStatus = await clerkError(clerk.sessions.getSessionList({ userId: 'user_x', status: 'sleepy' as 'active' }));
    expect(badStatus.errors[0]?.meta?.paramName).toBe('status');
    const [sessionId] = sandbox.admin.sessionIds('active');
    const session = await clerk.sessions.getSession(sessionId!);
    const raw = await fetch(`${sandbox.url}/v1/sessions?client_id=${session.clientId}`, { headers: { authorization: `Bearer ${sandbox.secretKey}` } });
    const body = (await raw.json()) as { id: string }[];
    expect(Array.isArray(body)).toBe(true);
    expect(body.map((s) => s.id)).toEqual([sessionId]);
  });

  it('revokes an active session once; a second revoke is refused with 400 and changes nothing', async () => {
    const [sessionId] = sandbox.admin.sessionIds('active');
    const revoked = await clerk.sessions.revokeSession(sessionId!);
    expect(revoked.status).toBe('revoked');
    expect((await clerk.sessions.getSession(sessionId!)).status).toBe('revoked');
    const again = await clerkError(clerk.sessions.revokeSession(sessionId!));
    expect(again.status).toBe(400);
    expect(again.errors[0]?.code).toBe('session_not_active');
    expect(sandbox.admin.revokes()[sessionId!]).toEqual({ calls: 2, revoked: 1, rejected: 0 });
    const unknown = await clerkError(clerk.sessions.revokeSession('sess_nope'));
    expect(unknown.status).toBe(404);
  });

  it('revokes every active session of the recent users exactly once, as the audit proves', async () => {
    sandbox.admin.resetAudit();
    const users = await clerk.users.getUserList({ lastActiveAtAfter: NOW - 7 * DAY, limit: 500 });
    const expected: string[] = [];
    for (const u of users.data) {
      const { data } = await clerk.sessions.getSessionList({ userId: u.id, status: 'active' });
      for (const s of data) {
        expected.push(s.id);
        await clerk.sessions.revokeSession(s.id);
      }
    }
    const revokes = sandbox.admin.revokes();
    expect(Object.keys(revokes).sort()).toEqual([...expected].sort());
    expect(Object.values(revokes).every((r) => r.calls === 1 && r.revoked === 1)).toBe(true);
    const summary = sandbox.admin.auditSummary();
    expect(summary.revokes.sessionsWithRepeatCalls).toBe(0);
    expect(summary.byRoute['POST /v1/sessions/{session_id}/revoke']?.count).toBe(expected.length);
    expect(summary.requestsWithDeletedKey).toBe(0);
  });

  it('returns the Svix portal URL for generateSvixAuthURL', async () => {
    const { svix_url } = (await clerk.webhooks.generateSvixAuthURL()) as unknown as { svix_url: string };
    expect(svix_url).toContain(`${sandbox.url}/__sandbox/svix-portal`);
    expect((await fetch(svix_url)).status).toBe(200);
  });
});
