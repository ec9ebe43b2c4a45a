/**
 * The worker's reconciliation configuration from the environment (USER_STORE_URL,
 * USER_STORE_MAPPING, RECONCILE_WEBHOOK_URL, RECONCILE_DELIVERY, CLERK_WEBHOOK_SIGNING_SECRET).
 * Sandbox mode's ready-made setup is src/reconcile-sandbox.ts. Secrets and URLs stay here,
 * never in workflow history.
 */
import type { ReconcileDeps } from './activities/reconcile-users';
import { ConfigError, type Env } from './config';
import { openUserStore, storeMappingSchema } from './stores';

export function mappingFromEnv(env: Env) {
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
