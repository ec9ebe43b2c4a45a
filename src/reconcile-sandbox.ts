/**
 * The app's side of webhooks in sandbox mode (`npm start`, the drills): a user store fed by the
 * example receiver. Apart from src/reconcile-setup.ts so the production worker build (which leaves
 * the sandbox and examples/ out) does not pull in the example receiver.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { ReconcileDeps } from './activities/reconcile-users';
import type { Env } from './config';
import { mappingFromEnv } from './reconcile-setup';
import { openUserStore, storedUserFromClerk, type UserStore } from './stores';
import { startWebhookReceiver } from '../examples/webhook-receiver/server';

/**
 * Sandbox mode: the store (default `sqlite:<dataDir>/users.db`) and the example receiver, which the
 * sandbox's webhooks reach with `dropRate` dropped. The sandbox's users are generated anew at every
 * start, so the default store starts anew too, as an in-sync copy of them: the drift is what this
 * session's webhooks lose.
 */
export async function startSandboxReconcile(env: Env, sandbox: RunningSandbox, dataDir: string, dropRate = 0.1) {
  const storeUrl = env.USER_STORE_URL ?? `sqlite:${dataDir}/users.db`;
  if (!env.USER_STORE_URL) {
    const path = storeUrl.slice('sqlite:'.length);
    mkdirSync(dirname(path), { recursive: true });
    for (const f of [path, `${path}-journal`, `${path}.lock`]) rmSync(f, { recursive: true, force: true });
  }
  const store: UserStore = openUserStore(storeUrl, mappingFromEnv(env));
  await store.ensureSchema();
  if (!env.USER_STORE_URL) {
    const rows = sandbox.admin.store.stats().users;
    const users = Array.from({ length: rows }, (_, i) => storedUserFromClerk(sandbox.admin.store.userJson(i)));
    await store.load(users);
  }
  const receiver = await startWebhookReceiver({ store, signingSecret: sandbox.webhookSigningSecret });
  sandbox.admin.setWebhooks({ url: receiver.url, dropRate });
  const deps: ReconcileDeps = {
    store,
    mapping: mappingFromEnv(env),
    delivery:
      env.RECONCILE_DELIVERY === 'store'
        ? { type: 'store' }
        : { type: 'webhook', endpoint: { url: env.RECONCILE_WEBHOOK_URL ?? receiver.url, signingSecret: env.CLERK_WEBHOOK_SIGNING_SECRET ?? sandbox.webhookSigningSecret } },
  };
  return {
    deps,
    storeUrl,
    receiverUrl: receiver.url,
    /** What the receiver did with what reached it (duplicates: a `svix-id` it had applied already). */
    receiverCounts: receiver.counts,
    async close() {
      await receiver.close();
      await store.close();
    },
  };
}
