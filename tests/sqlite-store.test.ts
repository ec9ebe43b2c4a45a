/**
 * The SQLite store after a crash: its VFS locks with a `<file>.lock` directory, which a process
 * SIGKILLed inside a statement leaves behind. A lock older than any statement is cleared; a fresh
 * one is waited for, never taken.
 */
import { existsSync, mkdirSync, utimesSync } from 'node:fs';
import { rmdirSync } from 'node:fs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { openUserStore, type UserStore } from '../src/stores';
import { STALE_LOCK_MS } from '../src/stores/sqlite';
import { tempSqliteUrl } from './helpers/reconcile';

const url = tempSqliteUrl();
const path = url.slice('sqlite:'.length);
const lock = `${path}.lock`;
let store: UserStore;

beforeAll(async () => {
  store = openUserStore(url);
  await store.ensureSchema();
  await store.apply({ type: 'upsert', user: { id: 'user_1', email: 'a@example.com', firstName: null, lastName: null, updatedAt: 1 } }, 'msg_1');
});
afterAll(async () => {
  await store?.close();
});

it('waits for a lock a live process holds, and goes on once it is released', async () => {
  mkdirSync(lock);
  let done = false;
  const read = store.getMany(['user_1']).then((m) => ((done = true), m));
  await new Promise((r) => setTimeout(r, 300));
  expect(existsSync(lock)).toBe(true);
  expect(done).toBe(false);
  rmdirSync(lock);
  expect((await read).get('user_1')?.email).toBe('a@example.com');
});

it('clears a lock left by a process that died holding it (older than any statement), and says so', async () => {
  mkdirSync(lock);
  const past = (Date.now() - STALE_LOCK_MS - 1000) / 1000;
  utimesSync(lock, past, past);
  const said = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    expect((await store.getMany(['user_1'])).get('user_1')?.email).toBe('a@example.com');
    expect(said.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringContaining('removed a lock held for over 10 s')]);
  } finally {
    said.mockRestore();
  }
  expect(existsSync(lock)).toBe(false);
});
