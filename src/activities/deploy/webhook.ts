/**
 * The signed-webhook adapter, for any platform: each change is one POST of a JSON body
 * `{ id, type: "env.set" | "env.remove", key, value?, sensitive, sentAt }`, or for a rollback and
 * its undo `{ id, type: "deployment.rollback" | "deployment.promote", deploymentId, description?, sentAt }`,
 * with three headers:
 * - `X-Runbook-Delivery`: the body's id, for logs; replay protection keys on the body's (signed) id,
 * - `X-Runbook-Timestamp`: Unix seconds (a receiver refuses one older than 5 minutes),
 * - `X-Runbook-Signature`: `v1=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`, keyed by
 *   DEPLOY_WEBHOOK_SECRET.
 * The receiver applies the change and answers 2xx (docs/bypass.md has the recipe, and
 * `verifyRunbookWebhook` below is the check it runs). It reports nothing back: after a rollback the
 * probes are the only confirmation (docs/rollback.md).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { callJson } from './http';
import { rollbackErrorForStatus } from './errors';
import type { AliasRequested, DeployAdapter, SetValueOptions, ValueChange } from './types';

type WebhookMessage =
  | { type: 'env.set'; key: string; value: string; sensitive: boolean }
  | { type: 'env.remove'; key: string; sensitive: false }
  | { type: 'deployment.rollback' | 'deployment.promote'; deploymentId: string; description?: string };

export const WEBHOOK_HEADERS = { delivery: 'x-runbook-delivery', timestamp: 'x-runbook-timestamp', signature: 'x-runbook-signature' } as const;
export const WEBHOOK_TOLERANCE_SECONDS = 300;
/** The widest window a receiver may be configured with: a longer one lets old captures in. */
const MAX_TOLERANCE_SECONDS = 3600;

export interface WebhookOptions {
  url: string;
  secret: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** For tests: the clock and the delivery ids. */
  now?: () => number;
  newId?: () => string;
}

export function signRunbookWebhook(secret: string, timestamp: number, rawBody: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${rawBody}`).digest('hex')}`;
}

export type WebhookVerdict = { ok: true; deliveryId: string } | { ok: false; reason: string };

/** What a receiver remembers of deliveries: ids (a Set), or ids with their signed timestamp (a Map, pruned to the window). */
type SeenDeliveries = Set<string> | Map<string, number>;

/** The `id` of a delivery's body: covered by the signature, unlike the `X-Runbook-Delivery` header. */
function signedId(rawBody: string): string | undefined {
  try {
    const body: unknown = JSON.parse(rawBody);
    const id = body && typeof body === 'object' ? (body as { id?: unknown }).id : undefined;
    return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The receiver's check: signature over the raw body, timestamp within the tolerance (both
 * directions, at most an hour), and the body's signed `id` not seen before. Replay is keyed on
 * that signed id, never on the unsigned header (which must equal it when sent): `seen` must
 * remember ids at least as long as the tolerance; a Map is pruned to exactly that.
 */
export function verifyRunbookWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  opts: { seen?: SeenDeliveries; now?: number; toleranceSeconds?: number } = {},
): WebhookVerdict {
  const one = (h: string) => {
    const v = headers[h];
    return Array.isArray(v) ? v[0] : v;
  };
  const header = one(WEBHOOK_HEADERS.delivery);
  const ts = Number(one(WEBHOOK_HEADERS.timestamp));
  const sig = one(WEBHOOK_HEADERS.signature);
  if (!sig || !Number.isInteger(ts)) return { ok: false, reason: 'missing timestamp or signature header' };
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  const tolerance = Math.min(Math.max(opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS, 1), MAX_TOLERANCE_SECONDS);
  if (Math.abs(now - ts) > tolerance) return { ok: false, reason: 'timestamp outside the tolerance' };
  const expected = Buffer.from(signRunbookWebhook(secret, ts, rawBody));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature does not match' };
  const id = signedId(rawBody);
  if (!id) return { ok: false, reason: 'the signed body has no delivery id' };
  if (header !== undefined && header !== id) return { ok: false, reason: 'delivery header does not match the signed id' };
  const seen = opts.seen;
  if (seen instanceof Map) for (const [known, at] of seen) if (now - at > tolerance) seen.delete(known);
  if (seen?.has(id)) return { ok: false, reason: 'delivery already seen (replay)' };
  if (seen instanceof Map) seen.set(id, ts);
  else seen?.add(id);
  return { ok: true, deliveryId: id };
}

export function webhookAdapter(opts: WebhookOptions): DeployAdapter {
  const send = async (message: WebhookMessage) => {
    const now = opts.now ?? Date.now;
    const id = (opts.newId ?? randomUUID)();
    const body = JSON.stringify({ id, ...message, sentAt: new Date(now()).toISOString() });
    const timestamp = Math.floor(now() / 1000);
    const deployment = message.type === 'deployment.rollback' || message.type === 'deployment.promote';
    await callJson({
      adapter: 'webhook',
      method: 'POST',
      url: opts.url,
      operation: `POST ${message.type} webhook`,
      headers: {
        'content-type': 'application/json',
        [WEBHOOK_HEADERS.delivery]: id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signRunbookWebhook(opts.secret, timestamp, body),
      },
      body,
      timeoutMs: opts.timeoutMs ?? 10_000,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
      ...(deployment ? { classify: rollbackErrorForStatus } : {}),
    });
    return id;
  };
  const alias = async (type: 'rollback' | 'promote', deploymentId: string, description?: string): Promise<AliasRequested> => {
    await send({ type: `deployment.${type}`, deploymentId, ...(description ? { description } : {}) });
    return { adapter: 'webhook', type, toDeploymentId: deploymentId };
  };
  return {
    name: 'webhook',
    target: `webhook:${URL.canParse(opts.url) ? new URL(opts.url).host + new URL(opts.url).pathname : opts.url}`,
    needsRedeploy: false,
    // The receiver rolls back its own platform; it lists nothing and reports no alias status.
    rollbacks: { rollback: (deploymentId, o = {}) => alias('rollback', deploymentId, o.description), promote: (deploymentId) => alias('promote', deploymentId) },
    async setValue(key: string, value: string, o: SetValueOptions = {}): Promise<ValueChange> {
      const id = await send({ type: 'env.set', key, value, sensitive: o.sensitive ?? false });
      return { adapter: 'webhook', key, action: 'set', id };
    },
    async removeValue(key: string): Promise<ValueChange> {
      const id = await send({ type: 'env.remove', key, sensitive: false });
      return { adapter: 'webhook', key, action: 'removed', id };
    },
  };
}
