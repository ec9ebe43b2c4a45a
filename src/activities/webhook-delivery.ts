/**
 * Delivers synthesized Clerk webhook events to the app's endpoint as Svix does: a JSON body shaped
 * as Clerk's (`{data, object:"event", type, timestamp, instance_id}`) with `svix-id`,
 * `svix-timestamp` and `svix-signature` (signed by `standardwebhooks`, the library Clerk's
 * `verifyWebhook` checks it with), so the app accepts it. The `svix-id` is
 * derived from the user and the change, so a resend is recognisable as the same message.
 *
 * One module for the endpoint, with its errors and retry decision: 2xx delivered; 5xx, 429,
 * network errors and timeouts retried with backoff here, then `WebhookEndpointUnavailable`
 * (retryable: the batch stops at its cursor and the workflow waits); other 4xx `WebhookRejected`
 * (recorded for that user, the run goes on).
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';

export type ReconcileEventType = 'user.created' | 'user.updated' | 'user.deleted';

export interface WebhookEndpoint {
  url: string;
  /** The app's signing secret (`whsec_…`). */
  signingSecret: string;
  /** Clerk's `instance_id` for the events' body (default `ins_reconcile`). */
  instanceId?: string;
  /** Attempts per event before the endpoint counts as unavailable. */
  attempts?: number;
  initialBackoffMs?: number;
  timeoutMs?: number;
}

export class WebhookEndpointUnavailable extends Error {
  override readonly name = 'WebhookEndpointUnavailable' as const;
  readonly retryable = true;
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
  }
}

export class WebhookRejected extends Error {
  override readonly name = 'WebhookRejected' as const;
  readonly retryable = false;
  constructor(
    readonly status: number,
    /** The start of the endpoint's answer, for the operator. */
    readonly body: string,
  ) {
    super(`the endpoint answered ${status}: ${body.slice(0, 200)}`);
  }
}

/** `svix-id` of a change: the same user, event type and versions give the same id. */
export function reconcileMessageId(userId: string, type: ReconcileEventType, version: string): string {
  const digest = createHash('sha256').update(`${userId}|${type}|${version}`).digest('base64url').slice(0, 27);
  return `msg_rc${digest}`;
}

/** The body of a Clerk webhook event. */
export function eventBody(type: ReconcileEventType, data: object, instanceId: string, now = Date.now()): string {
  return JSON.stringify({
    data,
    event_attributes: { http_request: { client_ip: '', user_agent: 'clerk-incident-runbook reconcile' } },
    instance_id: instanceId,
    object: 'event',
    timestamp: now,
    type,
  });
}

/** POSTs one event; resolves once the endpoint answered 2xx. Each attempt is signed afresh (Svix's 5-minute tolerance). */
export async function deliverEvent(endpoint: WebhookEndpoint, msgId: string, type: ReconcileEventType, data: object): Promise<{ attempts: number }> {
  const attempts = endpoint.attempts ?? 4;
  const body = eventBody(type, data, endpoint.instanceId ?? 'ins_reconcile');
  // Svix's scheme: `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the base64 after `whsec_`.
  const signer = new Webhook(endpoint.signingSecret);
  let last = '';
  let lastStatus: number | null = null;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (attempt > 1) {
      const backoff = (endpoint.initialBackoffMs ?? 200) * 2 ** (attempt - 2);
      await sleep(Math.round(backoff * (0.5 + Math.random() / 2)));
    }
    const ts = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'svix-id': msgId,
          'svix-timestamp': String(ts),
          'svix-signature': signer.sign(msgId, new Date(ts * 1000), body),
          'user-agent': 'clerk-incident-runbook/reconcile',
        },
        body,
        signal: AbortSignal.timeout(endpoint.timeoutMs ?? 10_000),
      });
      const text = await res.text().catch(() => '');
      if (res.ok) return { attempts: attempt };
      lastStatus = res.status;
      last = `${res.status} ${text.slice(0, 200)}`;
      if (res.status < 500 && res.status !== 429 && res.status !== 408) throw new WebhookRejected(res.status, text.slice(0, 500));
    } catch (err) {
      if (err instanceof WebhookRejected) throw err;
      lastStatus = null;
      last = err instanceof Error ? (err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message) : String(err);
    }
  }
  throw new WebhookEndpointUnavailable(`webhook endpoint ${new URL(endpoint.url).host} unavailable after ${attempts} attempts: ${last}`, lastStatus);
}
