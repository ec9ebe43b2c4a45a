/**
 * Clerk's webhooks as Svix delivers them: JSON events POSTed to the configured endpoint with
 * `svix-id`, `svix-timestamp` and `svix-signature` headers, signed by `standardwebhooks` (the
 * scheme Svix signs with, and what `verifyWebhook` from `@clerk/backend/webhooks` checks). A switch drops deliveries, so
 * the webhook-backlog step has real gaps to reconcile.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import { createRng } from './ids';
import type { WebhookBody } from './schemas';

export const WEBHOOK_EVENT_TYPES = [
  'user.created',
  'user.updated',
  'user.deleted',
  'session.created',
  'session.ended',
  'session.removed',
  'session.revoked',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'dropped' | 'no_endpoint';

export interface WebhookEventRecord {
  /** The Svix message id (`svix-id`), stable across retries and replays. */
  id: string;
  type: WebhookEventType;
  /** Id of the user or session the event is about. */
  subjectId: string;
  createdAt: string;
  status: DeliveryStatus;
  attempts: number;
  lastHttpStatus: number | null;
  lastError: string | null;
}

export interface WebhookConfig {
  url: string | null;
  drop: boolean;
  dropRate: number;
}

export function generateSigningSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The `svix-signature` header (`v1,<base64 HMAC-SHA256>`) of a delivery signed with `secret` (`whsec_…`). */
export function signSvix(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  return new Webhook(secret).sign(msgId, new Date(timestampSeconds * 1000), body);
}

const RETRY_DELAYS_MS = [100, 500];
const DELIVERY_TIMEOUT_MS = 5_000;
const MAX_EVENTS_KEPT = 100_000;

interface StoredEvent extends WebhookEventRecord {
  body: string;
}

export class WebhookDispatcher {
  private config: WebhookConfig;
  private readonly events = new Map<string, StoredEvent>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly rng: () => number;
  private msgCounter = 0;
  private closed = false;

  constructor(
    readonly signingSecret: string,
    readonly instanceId: string,
    seed: string | number,
    config: Partial<WebhookConfig> = {},
  ) {
    this.rng = createRng(`${seed}:webhooks`);
    this.config = { url: config.url ?? null, drop: config.drop ?? false, dropRate: config.dropRate ?? 0 };
  }

  configure(body: WebhookBody): WebhookConfig {
    if (body.url !== undefined) this.config.url = body.url;
    if (body.drop !== undefined) this.config.drop = body.drop;
    if (body.dropRate !== undefined) this.config.dropRate = body.dropRate;
    return this.getConfig();
  }

  getConfig(): WebhookConfig {
    return { ...this.config };
  }

  /** Records an event and delivers it (unless deliveries are dropped). */
  emit(type: WebhookEventType, subjectId: string, data: object): WebhookEventRecord {
    const now = Date.now();
    const id = `msg_${now.toString(36)}${(++this.msgCounter).toString(36).padStart(6, '0')}${randomBytes(6).toString('hex')}`;
    const body = JSON.stringify({
      data,
      event_attributes: { http_request: { client_ip: '127.0.0.1', user_agent: 'clerk-sandbox' } },
      instance_id: this.instanceId,
      object: 'event',
      timestamp: now,
      type,
    });
    const event: StoredEvent = {
      id,
      type,
      subjectId,
      createdAt: new Date(now).toISOString(),
      status: 'pending',
      attempts: 0,
      lastHttpStatus: null,
      lastError: null,
      body,
    };
    if (this.events.size >= MAX_EVENTS_KEPT) {
      const oldest = this.events.keys().next().value;
      if (oldest !== undefined) this.events.delete(oldest);
    }
    this.events.set(id, event);
    const dropped = this.config.drop || (this.config.dropRate > 0 && this.rng() < this.config.dropRate);
    if (dropped) event.status = 'dropped';
    else this.deliver(event);
    return publicRecord(event);
  }

  private deliver(event: StoredEvent): void {
    const url = this.config.url;
    if (!url || this.closed) {
      event.status = 'no_endpoint';
      return;
    }
    event.status = 'pending';
    const p = this.attempt(event, url).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private async attempt(event: StoredEvent, url: string): Promise<void> {
    for (let i = 0; i <= RETRY_DELAYS_MS.length; i++) {
      if (i > 0) await sleep(RETRY_DELAYS_MS[i - 1]);
      if (this.closed) break;
      event.attempts++;
      const ts = Math.floor(Date.now() / 1000);
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'svix-id': event.id,
            'svix-timestamp': String(ts),
            'svix-signature': signSvix(this.signingSecret, event.id, ts, event.body),
            'user-agent': 'Svix-Webhooks/1.0 (clerk-sandbox)',
          },
          body: event.body,
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => undefined);
        event.lastHttpStatus = res.status;
        event.lastError = null;
        if (res.ok) {
          event.status = 'delivered';
          return;
        }
      } catch (err) {
        event.lastError = err instanceof Error ? err.message : String(err);
      }
    }
    event.status = 'failed';
  }

  /** Re-delivers events (as Svix's "recover" does): the given ids, or all not delivered. */
  replay(eventIds: string[] | undefined, onlyUndelivered: boolean): { replayed: string[]; unknown: string[] } {
    const replayed: string[] = [];
    const unknown: string[] = [];
    const targets = eventIds ? eventIds.map((id) => this.events.get(id) ?? id) : [...this.events.values()];
    for (const t of targets) {
      if (typeof t === 'string') {
        unknown.push(t);
        continue;
      }
      if (onlyUndelivered && t.status === 'delivered') continue;
      this.deliver(t);
      replayed.push(t.id);
    }
    return { replayed, unknown };
  }

  list(filter: { type?: string; status?: string } = {}): WebhookEventRecord[] {
    const out: WebhookEventRecord[] = [];
    for (const e of this.events.values()) {
      if (filter.type && e.type !== filter.type) continue;
      if (filter.status && e.status !== filter.status) continue;
      out.push(publicRecord(e));
    }
    return out;
  }

  counts(): Record<DeliveryStatus, number> {
    const c: Record<DeliveryStatus, number> = { pending: 0, delivered: 0, failed: 0, dropped: 0, no_endpoint: 0 };
    for (const e of this.events.values()) c[e.status]++;
    return c;
  }

  /** Resolves when no delivery is in flight. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }
}

function publicRecord(e: StoredEvent): WebhookEventRecord {
  const { body: _body, ...rest } = e;
  return { ...rest };
}
