/** The emulated PagerDuty Events API v2: validation and its error shapes, the dedup lifecycle, change events, faults, admin routes. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newRoutingKey, startSandbox, type RunningSandbox } from '../src';
import { SandboxAdminClient } from '../src/admin-client';

let sandbox: RunningSandbox;
let key: string;
let otherKey: string;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, seed: 'pagerduty', rateLimit: 'off' });
  [key = '', otherKey = ''] = sandbox.pagerduty.routingKeys;
});
afterAll(() => sandbox.close());
beforeEach(() => {
  sandbox.admin.pagerduty.reset();
  sandbox.admin.pagerduty.settings({ routingKeys: [key, otherKey], rateLimitPerMinute: 120 });
  sandbox.admin.setFaults({});
});

const post = async (path: string, body: unknown, raw = false) => {
  const res = await fetch(`${sandbox.pagerduty.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? (body as string) : JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
};
const enqueue = (body: unknown) => post('/v2/enqueue', body);
const trigger = (dedup: string, extra: Record<string, unknown> = {}) =>
  enqueue({ routing_key: key, event_action: 'trigger', dedup_key: dedup, payload: { summary: 'Approval needed: emergency_bypass', source: 'clerk-incident-runbook', severity: 'critical' }, ...extra });
const log = () => sandbox.admin.pagerduty.entries();

describe('emulated PagerDuty Events API v2', () => {
  it('serves on the sandbox URL and exposes its routing keys (32 letters or digits each)', () => {
    expect(sandbox.pagerduty.url).toBe(sandbox.url);
    expect(sandbox.pagerduty.routingKeys).toHaveLength(2);
    for (const k of sandbox.pagerduty.routingKeys) expect(k).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(new Set(sandbox.pagerduty.routingKeys).size).toBe(2);
  });

  it('accepts a trigger with 202 and the dedup key, and opens an alert with what the event said', async () => {
    const res = await trigger('inc-1/emergency_bypass', {
      links: [{ href: 'http://localhost:8233/namespaces/default/workflows/inc-1', text: 'Temporal UI' }],
      images: [{ src: 'https://example.com/graph.png' }],
      payload: { summary: 'Approval needed', source: 'runbook', severity: 'error', timestamp: '2026-12-02T10:00:00.000Z', component: 'clerk', group: 'auth', class: 'gate', custom_details: { commands: ['npm run incident -- approve inc-1'] } },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toEqual({ status: 'success', message: 'Event processed', dedup_key: 'inc-1/emergency_bypass' });
    const [alert] = sandbox.admin.pagerduty.alertList('inc-1/emergency_bypass');
    expect(alert).toMatchObject({ routingKey: key, status: 'triggered', summary: 'Approval needed', severity: 'error', source: 'runbook', triggers: 1, customDetails: { commands: ['npm run incident -- approve inc-1'] } });
    expect(alert?.links[0]?.text).toBe('Temporal UI');
    expect(log()).toEqual([expect.objectContaining({ endpoint: 'enqueue', status: 202, outcome: 'accepted', effect: 'opened', eventAction: 'trigger', routingKey: key, dedupKey: 'inc-1/emergency_bypass', severity: 'error' })]);
  });

  it('generates a dedup key for a trigger without one: each such trigger opens a new alert', async () => {
    const a = await enqueue({ routing_key: key, event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info' } });
    const b = await enqueue({ routing_key: key, event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info' } });
    expect(a.body.dedup_key).toMatch(/^[0-9a-f]{32}$/);
    expect(b.body.dedup_key).not.toBe(a.body.dedup_key);
    expect(sandbox.admin.pagerduty.alertList()).toHaveLength(2);
  });

  it('runs the dedup lifecycle: trigger → trigger again (same alert) → acknowledge → resolve → a new trigger opens a new alert', async () => {
    const dedup = 'inc-2/rotate_secret_key';
    await trigger(dedup);
    await trigger(dedup);
    const ack = await enqueue({ routing_key: key, event_action: 'acknowledge', dedup_key: dedup });
    expect(ack).toMatchObject({ status: 202, body: { status: 'success', message: 'Event processed', dedup_key: dedup } });
    expect(sandbox.admin.pagerduty.alertList(dedup)).toEqual([expect.objectContaining({ status: 'acknowledged', triggers: 2 })]);
    await enqueue({ routing_key: key, event_action: 'resolve', dedup_key: dedup });
    expect(sandbox.admin.pagerduty.alertList(dedup)[0]?.history.map((h) => h.action)).toEqual(['trigger', 'trigger', 'acknowledge', 'resolve']);
    await trigger(dedup);
    expect(sandbox.admin.pagerduty.alertList(dedup).map((a) => a.status)).toEqual(['resolved', 'triggered']);
    expect(log().map((e) => e.effect)).toEqual(['opened', 'retriggered', 'acknowledged', 'resolved', 'opened']);
  });

  it('drops (202, no change) an acknowledge or resolve with no open alert: never triggered, already resolved, or sent with another routing key', async () => {
    const dedup = 'inc-3/emergency_bypass';
    expect((await enqueue({ routing_key: key, event_action: 'acknowledge', dedup_key: 'never-triggered' })).status).toBe(202);
    await trigger(dedup);
    expect((await enqueue({ routing_key: otherKey, event_action: 'resolve', dedup_key: dedup })).status).toBe(202);
    expect(sandbox.admin.pagerduty.alertList(dedup)[0]?.status).toBe('triggered');
    await enqueue({ routing_key: key, event_action: 'resolve', dedup_key: dedup });
    await enqueue({ routing_key: key, event_action: 'resolve', dedup_key: dedup });
    expect(log().map((e) => e.effect)).toEqual(['dropped', 'opened', 'dropped', 'resolved', 'dropped']);
    expect(sandbox.admin.pagerduty.alertList()).toHaveLength(1);
  });

  it('keeps one alert per routing key for one dedup key (two services paged for the same step)', async () => {
    await trigger('inc-4/s');
    await enqueue({ routing_key: otherKey, event_action: 'trigger', dedup_key: 'inc-4/s', payload: { summary: 's', source: 'x', severity: 'critical' } });
    expect(sandbox.admin.pagerduty.alertList('inc-4/s').map((a) => a.routingKey)).toEqual([key, otherKey]);
  });

  describe('refuses invalid events with 400 {status: "invalid event", message, errors}, logged and not applied', () => {
    const cases: [string, unknown, string[]][] = [
      ['no routing key', { event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info' } }, ["'routing_key' is missing or blank"]],
      ['a short routing key', { routing_key: 'abc', event_action: 'resolve', dedup_key: 'd' }, ["Length of 'routing_key' is incorrect (should be 32 characters)"]],
      ['a routing key with punctuation', { routing_key: `${'a'.repeat(30)}-_`, event_action: 'resolve', dedup_key: 'd' }, ["'routing_key' cannot contain non-alphanumeric characters."]],
      ['no event_action', { routing_key: 'K', event_action: '' }, ["'event_action' is missing or blank"]],
      ['an unknown event_action', { routing_key: 'K', event_action: 'escalate', dedup_key: 'd' }, ["'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"]],
      ['acknowledge without dedup_key', { routing_key: 'K', event_action: 'acknowledge' }, ["'dedup_key' is missing or blank"]],
      ['resolve without dedup_key', { routing_key: 'K', event_action: 'resolve', dedup_key: '  ' }, ["'dedup_key' is missing or blank"]],
      ['a dedup_key over 255 characters', { routing_key: 'K', event_action: 'resolve', dedup_key: 'd'.repeat(256) }, ["'dedup_key' is too long (maximum is 255 characters)"]],
      ['a trigger without payload', { routing_key: 'K', event_action: 'trigger', dedup_key: 'd' }, ["'payload' is missing or blank"]],
      ['a trigger missing summary, source and severity', { routing_key: 'K', event_action: 'trigger', payload: {} }, ["'payload.summary' is missing or blank", "'payload.source' is missing or blank", "'payload.severity' is missing or blank"]],
      ['a summary over 1024 characters', { routing_key: 'K', event_action: 'trigger', payload: { summary: 's'.repeat(1025), source: 'x', severity: 'info' } }, ["'payload.summary' is too long (maximum is 1024 characters)"]],
      ['an unknown severity', { routing_key: 'K', event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'high' } }, ["'payload.severity' is invalid (must be one of: critical, error, warning, info)"]],
      ['a timestamp that is not ISO 8601', { routing_key: 'K', event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info', timestamp: 'yesterday' } }, ["'payload.timestamp' is invalid (must be an ISO 8601 timestamp)"]],
      ['a link without href', { routing_key: 'K', event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info' }, links: [{ text: 'UI' }] }, ["'links[0].href' is missing or blank"]],
      ['an image not served over HTTPS', { routing_key: 'K', event_action: 'trigger', payload: { summary: 's', source: 'x', severity: 'info' }, images: [{ src: 'http://example.com/a.png' }] }, ["'images[0].src' must be served over HTTPS"]],
      ['a body that is not an object', [1, 2], ['Event object is invalid: the body must be a JSON object']],
    ];
    for (const [name, event, errors] of cases) {
      it(name, async () => {
        const body = typeof event === 'object' && event !== null && !Array.isArray(event) && (event as { routing_key?: unknown }).routing_key === 'K' ? { ...event, routing_key: key } : event;
        const res = await enqueue(body);
        expect(res).toMatchObject({ status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } });
        expect(log()).toEqual([expect.objectContaining({ status: 400, outcome: 'invalid', errors })]);
        expect(sandbox.admin.pagerduty.alertList()).toEqual([]);
      });
    }

    it('a body that is not JSON', async () => {
      const res = await post('/v2/enqueue', '{"routing_key":', true);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ status: 'invalid event', message: 'Event object is invalid' });
      expect((res.body.errors as string[])[0]).toMatch(/^Invalid JSON/);
      expect(log()[0]).toMatchObject({ status: 400, outcome: 'invalid' });
    });

    it('a well-formed routing key that no integration has: 400 "Invalid routing key", as PagerDuty answers', async () => {
      const unknown = newRoutingKey();
      const res = await enqueue({ routing_key: unknown, event_action: 'trigger', dedup_key: 'd', payload: { summary: 's', source: 'x', severity: 'info' } });
      expect(res).toMatchObject({ status: 400, body: { status: 'invalid event', errors: ['Invalid routing key'] } });
      expect(log()[0]).toMatchObject({ routingKey: unknown, outcome: 'invalid' });
    });
  });

  describe('change events (POST /v2/change/enqueue)', () => {
    it('records a change with its summary, source, details and links; 202 without a dedup key', async () => {
      const res = await post('/v2/change/enqueue', {
        routing_key: key,
        payload: { summary: 'Emergency bypass turned on (inc-5)', source: 'clerk-incident-runbook', timestamp: '2026-12-02T10:00:00Z', custom_details: { step: 'emergency_bypass' } },
        links: [{ href: 'http://localhost:8233/x' }],
      });
      expect(res).toEqual({ status: 202, headers: expect.anything(), body: { status: 'success', message: 'Change event processed' } });
      expect(sandbox.admin.pagerduty.changeEvents()).toEqual([
        expect.objectContaining({ routingKey: key, summary: 'Emergency bypass turned on (inc-5)', source: 'clerk-incident-runbook', customDetails: { step: 'emergency_bypass' }, links: [{ href: 'http://localhost:8233/x' }] }),
      ]);
      expect(log()).toEqual([expect.objectContaining({ endpoint: 'change', status: 202, effect: 'recorded' })]);
      expect(sandbox.admin.pagerduty.alertList()).toEqual([]);
    });

    it('refuses a change without summary, or for an unknown routing key', async () => {
      expect((await post('/v2/change/enqueue', { routing_key: key, payload: { source: 'x' } })).body).toMatchObject({ status: 'invalid event', errors: ["'payload.summary' is missing or blank"] });
      expect((await post('/v2/change/enqueue', { routing_key: newRoutingKey(), payload: { summary: 's' } })).body).toMatchObject({ errors: ['Invalid routing key'] });
      expect(sandbox.admin.pagerduty.changeEvents()).toEqual([]);
    });
  });

  describe('faults', () => {
    it('failNext 429 with Retry-After: not ingested, logged as rate limited; the retry is accepted', async () => {
      sandbox.admin.pagerduty.settings({ failNext: { status: 429, count: 1, retryAfterSeconds: 2 } });
      const first = await trigger('inc-6/s');
      expect(first.status).toBe(429);
      expect(first.headers.get('retry-after')).toBe('2');
      expect(first.body).toMatchObject({ status: 'throttle event' });
      expect(sandbox.admin.pagerduty.alertList()).toEqual([]);
      expect((await trigger('inc-6/s')).status).toBe(202);
      expect(log().map((e) => [e.status, e.outcome])).toEqual([
        [429, 'rate_limited'],
        [202, 'accepted'],
      ]);
    });

    it('failNext by route and a list of rules, each in turn', async () => {
      sandbox.admin.pagerduty.settings({ failNext: [{ status: 503, count: 1, route: 'POST /v2/change/enqueue' }, { status: 500, count: 2, route: 'POST /v2/enqueue' }] });
      expect((await trigger('a')).status).toBe(500);
      expect((await post('/v2/change/enqueue', { routing_key: key, payload: { summary: 's' } })).status).toBe(503);
      expect((await trigger('a')).status).toBe(500);
      expect((await trigger('a')).status).toBe(202);
      expect(log().map((e) => e.outcome)).toEqual(['failed', 'failed', 'failed', 'accepted']);
    });

    it('the per-routing-key rate limit answers 429 once the minute is full, and not for another key', async () => {
      sandbox.admin.pagerduty.settings({ rateLimitPerMinute: 2 });
      expect((await trigger('a')).status).toBe(202);
      expect((await trigger('a')).status).toBe(202);
      expect((await trigger('a')).status).toBe(429);
      expect((await enqueue({ routing_key: otherKey, event_action: 'resolve', dedup_key: 'a' })).status).toBe(202);
      expect(sandbox.admin.pagerduty.alertList('a')[0]?.triggers).toBe(2);
    });

    it('the route keys take the sandbox-wide per-route faults (latency, 503) and count in the audit', async () => {
      sandbox.admin.setFaults({ routes: { 'POST /v2/enqueue': { errorRates: { '503': 1 } } } });
      expect((await trigger('a')).status).toBe(503);
      sandbox.admin.setFaults({});
      expect((await trigger('a')).status).toBe(202);
      expect(sandbox.admin.auditEntries({ route: 'POST /v2/enqueue' }).map((e) => e.status).slice(-2)).toEqual([503, 202]);
    });
  });

  describe('admin API over HTTP', () => {
    it('GET shows keys, alerts, change events and the log; PUT replaces routing keys and validates; DELETE resets', async () => {
      const admin = new SandboxAdminClient(sandbox.url);
      await trigger('inc-7/s');
      const view = await admin.pagerduty();
      expect(view).toMatchObject({ routingKeys: [key, otherKey], rateLimitPerMinute: 120, alerts: [expect.objectContaining({ dedupKey: 'inc-7/s' })], log: [expect.objectContaining({ outcome: 'accepted' })] });
      const fresh = newRoutingKey();
      expect((await admin.setPagerDuty({ routingKeys: [fresh] })).routingKeys).toEqual([fresh]);
      expect(sandbox.pagerduty.routingKeys).toEqual([fresh]);
      expect((await trigger('inc-7/s')).body).toMatchObject({ errors: ['Invalid routing key'] });
      await expect(admin.setPagerDuty({ routingKeys: ['short'] })).rejects.toMatchObject({ status: 400, body: { error: 'invalid_request', field: 'routingKeys.0' } });
      await expect(admin.setPagerDuty({ failNext: { status: 404, count: 1 } } as never)).rejects.toMatchObject({ status: 400 });
      const reset = await admin.resetPagerDuty();
      expect(reset).toMatchObject({ routingKeys: [fresh], alerts: [], changeEvents: [], log: [], failNext: [] });
    });

    it('startSandbox takes the routing keys to emulate', async () => {
      const keys = [newRoutingKey()];
      const other = await startSandbox({ users: 1, rateLimit: 'off', pagerdutyRoutingKeys: keys });
      try {
        expect(other.pagerduty.routingKeys).toEqual(keys);
      } finally {
        await other.close();
      }
    });
  });
});
