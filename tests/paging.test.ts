/**
 * The paging activities against the sandbox's emulated PagerDuty Events API v2 over HTTP, run in
 * a MockActivityEnvironment: what was paged is judged by the sandbox's log and alerts, failures
 * down to their ApplicationFailure type and retry decision, and the routing key never leaves the
 * worker (not in a result, a failure's message or details).
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { newRoutingKey, startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { createPagingActivities, dedupKeyFor, oneLine, pagerDutySeverity, pagingFromEnv, type PagingDeps } from '../src/activities/paging';
import { ConfigError, loadEnv } from '../src/config';
import { sandboxOnly } from '../src/worker/deps';
import { activityFailure } from './helpers/refusal';

let sandbox: RunningSandbox;
let primary: string;
let secondary: string;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, seed: 'paging', rateLimit: 'off' });
  [primary = '', secondary = ''] = sandbox.pagerduty.routingKeys;
});
afterAll(() => sandbox.close());
beforeEach(() => sandbox.admin.pagerduty.reset());

const keys = () => ({ 'auth-oncall': primary, security: secondary });
const deps = (extra: Partial<PagingDeps> = {}, routing: Record<string, string> = keys()): PagingDeps => ({
  eventsUrl: sandbox.pagerduty.url,
  routingKeyFor: (t) => routing[t],
  targets: () => Object.keys(routing),
  source: 'clerk-incident-runbook',
  uiUrl: 'http://localhost:8233',
  namespace: 'default',
  timeoutMs: 2000,
  ...extra,
});
const activities = (d: PagingDeps | undefined = deps()) => createPagingActivities(() => d);
const run = <A extends unknown[], R>(fn: (...args: A) => Promise<R>, ...args: A): Promise<R> => new MockActivityEnvironment().run(fn, ...args);
const log = () => sandbox.admin.pagerduty.entries();

const failure = activityFailure;
/** Everything of a result or failure that would reach the workflow's history. */
const visible = (x: unknown) => (x instanceof ApplicationFailure ? JSON.stringify({ type: x.type, message: x.message, details: x.details, nonRetryable: x.nonRetryable }) : JSON.stringify(x));
const noKeyIn = (x: unknown) => {
  for (const k of [primary, secondary]) expect(visible(x)).not.toContain(k);
};

const trigger = { incidentId: 'inc-42', step: 'emergency_bypass', target: 'auth-oncall', summary: 'Approval needed: emergency_bypass (clerk_outage)', severity: 'critical' as const, commands: ['npm run incident -- approve inc-42 --step emergency_bypass --approver <you>'] };

describe('paging activities against the emulated Events API', () => {
  it('trigger → acknowledge → resolve of one step: one alert at the target, judged by the sandbox log', async () => {
    const a = activities();
    const results = [
      await run(a.pageTrigger, trigger),
      await run(a.pageAcknowledge, { incidentId: 'inc-42', step: 'emergency_bypass', target: 'auth-oncall' }),
      await run(a.pageResolve, { incidentId: 'inc-42', step: 'emergency_bypass', target: 'auth-oncall' }),
    ];
    expect(results).toEqual([
      { delivered: 'pagerduty', target: 'auth-oncall', action: 'trigger', dedupKey: 'inc-42/emergency_bypass' },
      { delivered: 'pagerduty', target: 'auth-oncall', action: 'acknowledge', dedupKey: 'inc-42/emergency_bypass' },
      { delivered: 'pagerduty', target: 'auth-oncall', action: 'resolve', dedupKey: 'inc-42/emergency_bypass' },
    ]);
    for (const r of results) noKeyIn(r);
    expect(log().map((e) => [e.status, e.eventAction, e.effect, e.routingKey, e.dedupKey])).toEqual([
      [202, 'trigger', 'opened', primary, 'inc-42/emergency_bypass'],
      [202, 'acknowledge', 'acknowledged', primary, 'inc-42/emergency_bypass'],
      [202, 'resolve', 'resolved', primary, 'inc-42/emergency_bypass'],
    ]);
    const [alert] = sandbox.admin.pagerduty.alertList('inc-42/emergency_bypass');
    expect(alert).toMatchObject({ status: 'resolved', severity: 'critical', source: 'clerk-incident-runbook', summary: trigger.summary });
    expect(alert?.links[0]).toEqual({ href: 'http://localhost:8233/namespaces/default/workflows/inc-42', text: 'Incident in the Temporal UI' });
    expect(alert?.customDetails).toEqual({ incident_id: 'inc-42', step: 'emergency_bypass', commands: trigger.commands });
  });

  it('escalation to a second target pages its own service: one alert per target for the same step, acknowledged at each', async () => {
    const a = activities();
    await run(a.pageTrigger, trigger);
    await run(a.pageTrigger, { ...trigger, target: 'security', summary: 'Escalation: nobody decided emergency_bypass' });
    for (const target of ['auth-oncall', 'security']) await run(a.pageAcknowledge, { incidentId: 'inc-42', step: 'emergency_bypass', target });
    expect(sandbox.admin.pagerduty.alertList('inc-42/emergency_bypass').map((x) => [x.routingKey, x.status])).toEqual([
      [primary, 'acknowledged'],
      [secondary, 'acknowledged'],
    ]);
  });

  it('a change event records a mitigation on the target service', async () => {
    const result = await run(activities().pageChange, { incidentId: 'inc-42', target: 'auth-oncall', summary: 'Emergency bypass turned on for 60 min', details: { step: 'emergency_bypass' } });
    expect(result).toEqual({ delivered: 'pagerduty', target: 'auth-oncall', action: 'change' });
    expect(sandbox.admin.pagerduty.changeEvents()).toEqual([
      expect.objectContaining({ routingKey: primary, summary: 'Emergency bypass turned on for 60 min', source: 'clerk-incident-runbook', customDetails: { step: 'emergency_bypass', incident_id: 'inc-42' } }),
    ]);
  });

  it('a summary from input reaches PagerDuty as one line of at most 1024 characters', async () => {
    const hostile = `Approval needed\n[ok] fake line\u001b[31m red \u202eevil\u2028${'x'.repeat(5000)}`;
    await run(activities().pageTrigger, { ...trigger, summary: hostile, commands: ['approve\nrm -rf /'] });
    const [entry] = log();
    expect(entry?.status).toBe(202);
    expect(entry?.summary).toMatch(/^Approval needed \[ok\] fake line \[31m red evil x+…$/);
    expect(entry?.summary).toHaveLength(1024);
    expect(sandbox.admin.pagerduty.alertList()[0]?.customDetails).toMatchObject({ commands: ['approve rm -rf /'] });
  });

  it('429 with Retry-After: a retryable PagingRateLimited whose next retry waits as asked; the retry is accepted', async () => {
    sandbox.admin.pagerduty.settings({ failNext: { status: 429, count: 1, retryAfterSeconds: 3 } });
    const a = activities();
    const f = await failure(run(a.pageTrigger, trigger));
    expect(f).toMatchObject({ type: 'PagingRateLimited', nonRetryable: false, nextRetryDelay: 3000 });
    expect(f.details?.[0]).toMatchObject({ operation: 'POST /v2/enqueue', target: 'auth-oncall', status: 429 });
    noKeyIn(f);
    // What Temporal does next: the same activity again, after the delay.
    expect(await run(a.pageTrigger, trigger)).toMatchObject({ delivered: 'pagerduty' });
    expect(log().map((e) => [e.status, e.outcome])).toEqual([
      [429, 'rate_limited'],
      [202, 'accepted'],
    ]);
    expect(sandbox.admin.pagerduty.alertList()).toHaveLength(1);
  });

  it('5xx and an unreachable Events API are retryable PagingUnavailable', async () => {
    sandbox.admin.pagerduty.settings({ failNext: { status: 503, count: 1 } });
    const f = await failure(run(activities().pageResolve, { incidentId: 'inc-42', step: 'emergency_bypass', target: 'security' }));
    expect(f).toMatchObject({ type: 'PagingUnavailable', nonRetryable: false });
    expect(f.message).toMatch(/PagerDuty answered 503/);
    const down = await failure(run(activities(deps({ eventsUrl: 'http://127.0.0.1:1' })).pageTrigger, trigger));
    expect(down).toMatchObject({ type: 'PagingUnavailable', nonRetryable: false });
    for (const x of [f, down]) noKeyIn(x);
  });

  it('an invalid event (a routing key no integration has) is a non-retryable PagingEventRejected with PagerDuty\'s errors, and no key in it', async () => {
    const unknownKey = newRoutingKey();
    const f = await failure(run(activities(deps({}, { 'auth-oncall': unknownKey })).pageTrigger, trigger));
    expect(f).toMatchObject({ type: 'PagingEventRejected', nonRetryable: true });
    expect(f.message).toMatch(/refused the event \(400\): Invalid routing key/);
    expect(f.details?.[0]).toEqual({ operation: 'POST /v2/enqueue', target: 'auth-oncall', status: 400, errors: ['Invalid routing key'] });
    expect(visible(f)).not.toContain(unknownKey);
    expect(log()).toEqual([expect.objectContaining({ status: 400, outcome: 'invalid', routingKey: unknownKey })]);
  });

  it('bad activity input is refused before anything is sent, non-retryable, naming the field', async () => {
    const f = await failure(run(activities().pageTrigger, { ...trigger, links: [{ href: 'javascript:alert(1)' }] }));
    expect(f).toMatchObject({ type: 'PagingEventRejected', nonRetryable: true });
    expect(f.message).toMatch(/^paging: pageTrigger: input\.links\.0\.href: /);
    const g = await failure(run(activities().pageTrigger, { ...trigger, severity: 'high' as never }));
    expect(g.message).toMatch(/input\.severity/);
    expect(log()).toEqual([]);
  });

  it('a target the worker has no key for: non-retryable PagingTargetUnknown naming the configured targets, not their keys', async () => {
    const f = await failure(run(activities().pageTrigger, { ...trigger, target: 'mallory' }));
    expect(f).toMatchObject({ type: 'PagingTargetUnknown', nonRetryable: true });
    expect(f.message).toContain('no routing key for target "mallory" (configured: auth-oncall, security)');
    noKeyIn(f);
    expect(log()).toEqual([]);
  });

  it('without PagerDuty configured nobody is paged, and the result says so', async () => {
    expect(await run(createPagingActivities(() => undefined).pageTrigger, trigger)).toEqual({ delivered: 'not_configured', target: 'auth-oncall', action: 'trigger', dedupKey: 'inc-42/emergency_bypass' });
    expect(await run(createPagingActivities(() => undefined).pageChange, { incidentId: 'i', target: 't', summary: 's' })).toMatchObject({ delivered: 'not_configured' });
    expect(log()).toEqual([]);
  });
});

describe('paging helpers and configuration', () => {
  it('dedup keys are incident/step, at most 255 characters, distinct for distinct long ids', () => {
    expect(dedupKeyFor('inc-1', 'bypass_off')).toBe('inc-1/bypass_off');
    const a = dedupKeyFor(`${'i'.repeat(300)}a`, 'emergency_bypass');
    const b = dedupKeyFor(`${'i'.repeat(300)}b`, 'emergency_bypass');
    expect(a).toHaveLength(255);
    expect(a).not.toBe(b);
    expect(oneLine('a\r\n\tb', 10)).toBe('a b');
    expect(oneLine('😀😀😀', 4)).toBe('😀…');
    expect(['critical', 'high', 'medium', 'low'].map((s) => pagerDutySeverity(s as 'critical'))).toEqual(['critical', 'error', 'warning', 'info']);
  });

  it('PAGERDUTY_ROUTING_KEYS is validated at start-up, naming the target and not echoing the value', () => {
    const bad = 'not-a-key-but-a-secret-ish-value';
    const err = (() => {
      try {
        loadEnv({ PAGERDUTY_ROUTING_KEYS: JSON.stringify({ 'auth-oncall': bad }) });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/PAGERDUTY_ROUTING_KEYS\.auth-oncall: must be a 32-character Events API v2 integration key/);
    expect((err as Error).message).not.toContain(bad);
    expect(() => loadEnv({ PAGERDUTY_ROUTING_KEYS: '{auth-oncall' })).toThrow(/PAGERDUTY_ROUTING_KEYS: must be JSON/);
    expect(() => loadEnv({ PAGERDUTY_EVENTS_URL: 'events.pagerduty.com' })).toThrow(/PAGERDUTY_EVENTS_URL/);
  });

  it('pagingFromEnv: real PagerDuty by default, the sandbox (primary, secondary) in sandbox mode, nobody without keys; drills never page outside', () => {
    const key = newRoutingKey();
    const env = loadEnv({ PAGERDUTY_ROUTING_KEYS: JSON.stringify({ 'auth-oncall': key }) });
    const real = pagingFromEnv(env);
    expect(real).toMatchObject({ eventsUrl: 'https://events.pagerduty.com', source: 'clerk-incident-runbook' });
    expect(real?.routingKeyFor('auth-oncall')).toBe(key);
    expect(real?.targets()).toEqual(['auth-oncall']);
    expect(pagingFromEnv(loadEnv({}))).toBeUndefined();
    const inSandbox = pagingFromEnv(loadEnv({}), { sandbox: sandbox.pagerduty });
    expect(inSandbox?.eventsUrl).toBe(sandbox.url);
    expect(inSandbox?.targets()).toEqual(['primary', 'secondary']);
    expect(inSandbox?.routingKeyFor('secondary')).toBe(secondary);
    const drill = sandboxOnly(loadEnv({ PAGERDUTY_ROUTING_KEYS: JSON.stringify({ x: key }), PAGERDUTY_EVENTS_URL: 'https://events.pagerduty.com' }));
    expect(pagingFromEnv(drill, { sandbox: sandbox.pagerduty })?.eventsUrl).toBe(sandbox.url);
  });
});
