/**
 * The signed-webhook adapter, for any platform: each change is one POST of a JSON body
 * `{ id, type: "env.set" | "env.remove", key, value?, sensitive, sentAt }` with three headers:
 * - `X-Runbook-Delivery`: the id (a receiver refuses one it has already seen: replay protection),
 * - `X-Runbook-Timestamp`: Unix seconds (a receiver refuses one older than 5 minutes),
 * - `X-Runbook-Signature`: `v1=` + hex HMAC-SHA256 of `<timestamp>.<raw body>`, keyed by
 *   DEPLOY_WEBHOOK_SECRET.
 * The receiver applies the change and answers 2xx (docs/bypass.md has the recipe, and
 * `verifyRunbookWebhook` below is the check it runs).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { callJson } from './http';
import type { DeployAdapter, SetValueOptions, ValueChange } from './types';

export const WEBHOOK_HEADERS = { delivery: 'x-runbook-delivery', timestamp: 'x-runbook-timestamp', signature: 'x-runbook-signature' } as const;
export const WEBHOOK_TOLERANCE_SECONDS = 300;

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

/**
 * The receiver's check: signature over the raw body, timestamp within the tolerance, delivery id
 * not seen before (`seen` is the receiver's memory of ids, kept at least as long as the tolerance).
 */
export function verifyRunbookWebhook(
  secret: string,
  headers: Record<string, string | string[] | undefined>,
  rawBody: string,
  opts: { seen?: Set<string>; now?: number; toleranceSeconds?: number } = {},
): WebhookVerdict {
  const one = (h: string) => {
    const v = headers[h];
    return Array.isArray(v) ? v[0] : v;
  };
  const id = one(WEBHOOK_HEADERS.delivery);
  const ts = Number(one(WEBHOOK_HEADERS.timestamp));
  const sig = one(WEBHOOK_HEADERS.signature);
  if (!id || !sig || !Number.isInteger(ts)) return { ok: false, reason: 'missing delivery, timestamp or signature header' };
  const now = Math.floor((opts.now ?? Date.now()) / 1000);
  if (Math.abs(now - ts) > (opts.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) return { ok: false, reason: 'timestamp outside the tolerance' };
  const expected = Buffer.from(signRunbookWebhook(secret, ts, rawBody));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'signature does not match' };
  if (opts.seen?.has(id)) return { ok: false, reason: 'delivery already seen (replay)' };
  opts.seen?.add(id);
  return { ok: true, deliveryId: id };
}

export function webhookAdapter(opts: WebhookOptions): DeployAdapter {
  const send = async (type: 'env.set' | 'env.remove', key: string, value?: string, sensitive = false) => {
    const now = opts.now ?? Date.now;
    const id = (opts.newId ?? randomUUID)();
    const body = JSON.stringify({ id, type, key, ...(value !== undefined ? { value } : {}), sensitive, sentAt: new Date(now()).toISOString() });
    const timestamp = Math.floor(now() / 1000);
    await callJson({
      adapter: 'webhook',
      method: 'POST',
      url: opts.url,
      operation: `POST ${type} webhook`,
      headers: {
        'content-type': 'application/json',
        [WEBHOOK_HEADERS.delivery]: id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signRunbookWebhook(opts.secret, timestamp, body),
      },
      body,
      timeoutMs: opts.timeoutMs ?? 10_000,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
    return id;
  };
  return {
    name: 'webhook',
    target: `webhook:${URL.canParse(opts.url) ? new URL(opts.url).host + new URL(opts.url).pathname : opts.url}`,
    needsRedeploy: false,
    async setValue(key: string, value: string, o: SetValueOptions = {}): Promise<ValueChange> {
      const id = await send('env.set', key, value, o.sensitive ?? false);
      return { adapter: 'webhook', key, action: 'set', id };
    },
    async removeValue(key: string): Promise<ValueChange> {
      const id = await send('env.remove', key);
      return { adapter: 'webhook', key, action: 'removed', id };
    },
  };
}
