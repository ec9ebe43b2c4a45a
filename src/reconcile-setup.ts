/**
 * The worker's reconciliation configuration from the environment (USER_STORE_URL,
 * USER_STORE_MAPPING, RECONCILE_WEBHOOK_URL, RECONCILE_DELIVERY, CLERK_WEBHOOK_SIGNING_SECRET), and
 * sandbox mode's ready-made setup: a SQLite store and the example receiver, fed by the sandbox's
 * webhooks with 10 % of deliveries dropped. Secrets and URLs stay here, never in workflow history.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ReconcileDeps } from './activities/reconcile-users';
import { ConfigError, type Env } from './config';
import type { RunningSandbox } from './sandbox';
import { openUserStore, storedUserFromClerk, storeMappingSchema, type UserStore } from './stores';
import { startWebhookReceiver } from '../examples/webhook-receiver/server';

function mappingFromEnv(env: Env) {
  let raw: unknown = {};
  if (env.USER_STORE_MAPPING) {
    try {
      raw = JSON.parse(env.USER_STORE_MAPPING);
    } catch {
      throw new ConfigError('Invalid environment:\n  USER_STORE_MAPPING: must be JSON like {"table":"users","id":"clerk_id"}');
    }
  }
  const parsed = storeMappingSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`Invalid environment:\n${parsed.error.issues.map((i) => `  USER_STORE_MAPPING.${i.path.join('.')}: ${i.message}`).join('\n')}`);
  return parsed.data;
}

/** The worker's reconciliation deps, or undefined when no store is configured (the step stays by hand). */
export function reconcileDepsFromEnv(env: Env, defaults: { storeUrl?: string; webhookUrl?: string; signingSecret?: string } = {}): ReconcileDeps | undefined {
  const storeUrl = env.USER_STORE_URL ?? defaults.storeUrl;
  if (!storeUrl) return undefined;
  const mapping = mappingFromEnv(env);
  const webhookUrl = env.RECONCILE_WEBHOOK_URL ?? defaults.webhookUrl;
  const type = env.RECONCILE_DELIVERY ?? (webhookUrl ? 'webhook' : 'store');
  const signingSecret = env.CLERK_WEBHOOK_SIGNING_SECRET ?? defaults.signingSecret;
  if (type === 'webhook' && (!webhookUrl || !signingSecret)) {
    throw new ConfigError('Invalid environment:\n  RECONCILE_DELIVERY: webhook delivery needs RECONCILE_WEBHOOK_URL and CLERK_WEBHOOK_SIGNING_SECRET');
  }
  const store = openUserStore(storeUrl, mapping);
  return { store, mapping, delivery: type === 'webhook' ? { type, endpoint: { url: webhookUrl!, signingSecret: signingSecret! } } : { type } };
}

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
    async close() {
      await receiver.close();
      await store.close();
    },
  };
}
