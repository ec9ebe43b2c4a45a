/** Helpers of the reconciliation tests: a sandbox whose webhooks reach the example receiver, drift of each kind, and Clerk's truth. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClerkClient } from '@clerk/backend';
import { expect } from 'vitest';
import type { ActivityDeps } from '../../src/activities';
import { createClerkGateway, type ClerkGatewayOptions } from '../../src/activities/clerk';
import type { ReconcileDeps } from '../../src/activities/reconcile-users';
import type { RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { DEFAULT_MAPPING, storedUserFromClerk, type StoredUser, type UserStore } from '../../src/stores';
import { startWebhookReceiver, type RunningReceiver } from '../../examples/webhook-receiver/server';
import { gatewayOptions } from './revocation';

export function tempSqliteUrl(name = 'users.db'): string {
  return `sqlite:${join(mkdtempSync(join(tmpdir(), 'reconcile-')), name)}`;
}

export function reconcileDeps(
  sandbox: RunningSandbox,
  store: UserStore,
  delivery: ReconcileDeps['delivery'],
  overrides: Partial<ClerkGatewayOptions> = {},
): ActivityDeps {
  return {
    statusPageUrl: sandbox.url,
    sandbox: true,
    clerk: createClerkGateway(gatewayOptions(sandbox, overrides)),
    reconcile: { store, mapping: DEFAULT_MAPPING, delivery },
  };
}

export function webhookDelivery(sandbox: RunningSandbox, url: string): ReconcileDeps['delivery'] {
  return { type: 'webhook', endpoint: { url, signingSecret: sandbox.webhookSigningSecret, attempts: 2, initialBackoffMs: 20, timeoutMs: 5_000 } };
}

/** Every user in Clerk, as the store would keep them (through the SDK, paged). */
export async function clerkTruth(sandbox: RunningSandbox): Promise<StoredUser[]> {
  const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
  const out: StoredUser[] = [];
  for (let offset = 0; ; offset += 500) {
    const page = await clerk.users.getUserList({ limit: 500, offset, orderBy: '+created_at' });
    for (const u of page.data) out.push(storedUserFromClerk(u.raw!));
    if (page.data.length < 500) break;
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

export async function expectStoreEqualsClerk(sandbox: RunningSandbox, store: UserStore): Promise<void> {
  const truth = await clerkTruth(sandbox);
  const stored = (await store.all()).sort((a, b) => (a.id < b.id ? -1 : 1));
  expect(stored.length).toBe(truth.length);
  expect(stored).toEqual(truth);
}

export interface Drift {
  missing: string[];
  stale: string[];
  deleted: string[];
}

/**
 * Drift of each kind through the sandbox's own deliveries: `count` sign-ups with `dropRate` of
 * their events dropped (missing), `deleted` users deleted while every delivery is dropped
 * (deleted in Clerk, still stored), and `stale` stored copies rewritten with an old name and time.
 */
export async function makeDrift(
  sandbox: RunningSandbox,
  store: UserStore,
  receiverUrl: string,
  opts: { count: number; dropRate: number; deleted: number; stale: number },
): Promise<Drift> {
  sandbox.admin.setWebhooks({ url: receiverUrl, drop: false, dropRate: opts.dropRate });
  // In small groups: a flood of deliveries would outlast the sandbox's delivery timeout, and a
  // delivery given up on may still land later, which would blur what is missing.
  const created = [];
  for (let done = 0; done < opts.count; done += 25) {
    created.push(...sandbox.admin.createUsers({ count: Math.min(25, opts.count - done) }));
    await sandbox.admin.webhooksIdle();
  }
  expect(sandbox.admin.webhookEvents({ status: 'failed' })).toEqual([]);
  const storedIds = new Set((await store.all()).map((u) => u.id));
  const missing = created.map((u) => u.id).filter((id) => !storedIds.has(id));
  const present = created.map((u) => u.id).filter((id) => storedIds.has(id));
  expect(present.length).toBeGreaterThan(opts.deleted + opts.stale);
  sandbox.admin.setWebhooks({ drop: true });
  const deleted = present.slice(0, opts.deleted);
  for (const id of deleted) sandbox.admin.deleteUser(id);
  const stale = present.slice(opts.deleted, opts.deleted + opts.stale);
  const copies = await store.getMany(stale);
  for (const id of stale) {
    const copy = copies.get(id)!;
    await store.apply({ type: 'delete', id });
    await store.apply({ type: 'upsert', user: { ...copy, firstName: 'Stale', updatedAt: (copy.updatedAt ?? 0) - 60_000 } });
  }
  // Later deliveries of the sandbox reach the receiver again.
  sandbox.admin.setWebhooks({ drop: false, dropRate: 0 });
  return { missing, stale, deleted };
}

export async function startReceiver(sandbox: RunningSandbox, store: UserStore, port = 0): Promise<RunningReceiver> {
  return startWebhookReceiver({ store, signingSecret: sandbox.webhookSigningSecret, port });
}
