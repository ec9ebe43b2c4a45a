import { describe, expect, it } from 'vitest';
import { MAX_SESSION_LIFETIME_MS } from '../src/columns';
import { ClerkStore } from '../src/store';
import { emptyUserFilter } from '../src/user-query';
import { startSandbox } from '../src';
import { sandboxWithClient } from './helpers';

const NOW = Date.UTC(2026, 0, 15);
const ALL = emptyUserFilter();

function sample(store: ClerkStore): unknown[] {
  const rows = store.queryUsers(ALL, { field: 'created_at', descending: false }, 'all');
  const out: unknown[] = [];
  for (let k = 0; k < rows.length; k += 97) {
    const i = rows[k]!;
    out.push(store.userJson(i), store.sessionRows(i).map((j) => store.sessionJson(j)));
  }
  return out;
}

describe('seeding', () => {
  it('is deterministic from the seed (and reference time), and differs across seeds', () => {
    const a = new ClerkStore({ users: 2000, seed: 7, now: NOW });
    const b = new ClerkStore({ users: 2000, seed: 7, now: NOW });
    const c = new ClerkStore({ users: 2000, seed: 8, now: NOW });
    expect(sample(a)).toEqual(sample(b));
    expect(a.stats()).toEqual(b.stats());
    expect(sample(a)).not.toEqual(sample(c));
  });

  it('spreads activity: recent users have active sessions, nobody idle past the session lifetime does', () => {
    const store = new ClerkStore({ users: 5000, seed: 'spread', now: NOW });
    const stats = store.stats();
    expect(stats.usersWithActiveSession / stats.users).toBeGreaterThan(0.25);
    expect(stats.usersWithActiveSession / stats.users).toBeLessThan(0.5);
    for (const status of ['active', 'revoked', 'ended', 'expired', 'removed', 'abandoned'] as const) {
      expect(stats.sessionsByStatus[status]).toBeGreaterThan(0);
    }
    let neverActive = 0;
    for (let i = 0; i < store.userRowCount; i++) {
      const user = store.userJson(i);
      const active = store.sessionRows(i, 'active');
      if (user.last_active_at === null) neverActive++;
      if (active.length > 0) {
        expect(user.last_active_at).not.toBeNull();
        expect(user.last_active_at!).toBeGreaterThan(NOW - MAX_SESSION_LIFETIME_MS);
        for (const j of active) expect(store.sessionJson(j).last_active_at).toBeLessThanOrEqual(user.last_active_at!);
      }
    }
    expect(neverActive).toBeGreaterThan(0);
  });

  it('serialises users directly exactly as JSON.stringify would', () => {
    const store = new ClerkStore({ users: 3000, seed: 'json', now: NOW });
    store.deleteUser(5);
    for (let i = 0; i < store.userRowCount; i += 7) expect(store.userJsonString(i)).toBe(JSON.stringify(store.userJson(i)));
  });

  it('reseeds over the admin API', async () => {
    const { sandbox, clerk } = await sandboxWithClient({ users: 10 });
    try {
      const res = await fetch(`${sandbox.url}/__sandbox/seed`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ users: 321, seed: 'again', now: NOW }),
      });
      expect(await res.json()).toMatchObject({ users: 321, seed: 'again' });
      expect(await clerk.users.getCount()).toBe(321);
    } finally {
      await sandbox.close();
    }
  });

  it('generates 1,000,000 users in seconds and well under 1 GB, and serves them', async () => {
    globalThis.gc?.();
    const before = process.memoryUsage();
    const t0 = performance.now();
    const sandbox = await startSandbox({ users: 1_000_000, seed: 'million', rateLimit: 'off' });
    const seconds = (performance.now() - t0) / 1000;
    const after = process.memoryUsage();
    try {
      const grown = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
      expect(seconds).toBeLessThan(15);
      expect(grown).toBeLessThan(1024 ** 3);
      const { createClerkClient } = await import('@clerk/backend');
      const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
      const page = await clerk.users.getUserList({ limit: 500, offset: 999_800 });
      expect(page.totalCount).toBe(1_000_000);
      expect(page.data).toHaveLength(200);
      const recent = await clerk.users.getCount({ lastActiveAtAfter: Date.now() - MAX_SESSION_LIFETIME_MS } as Parameters<typeof clerk.users.getCount>[0]);
      expect(recent).toBeGreaterThan(300_000);
    } finally {
      await sandbox.close();
    }
  }, 60_000);
});
