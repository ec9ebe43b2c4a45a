/** The bypass decision shared by the Next.js example's proxy and the sandbox's example app. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLOCK_SKEW_MS,
  decideBypass,
  DEFAULT_BYPASS_ALLOWLIST,
  isBypassAllowed,
  MAX_BYPASS_HORIZON_MS,
  normaliseRoutePath,
  parseBypassFlag,
} from '../examples/nextjs-bypass/bypass-decision';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { ALLOWED_ROUTES, HOSTILE_ROWS, PROTECTED_ROUTES, rawGet } from './helpers/bypass-spellings';

const now = Date.parse('2026-11-27T06:00:00.000Z');
const flag = (until: string, extra: Record<string, unknown> = {}) => JSON.stringify({ until, ...extra });
const valid = flag('2026-11-27T07:00:00Z');

describe('decideBypass', () => {
  it('flag missing: authenticate as usual, nothing to log', () => {
    for (const missing of [undefined, null, '']) {
      expect(decideBypass({ flag: missing, path: '/app/dashboard', now })).toEqual({ action: 'authenticate', reason: 'flag_missing', detail: 'no bypass flag is set' });
    }
  });

  it('flag expired (or expiring this very millisecond): authenticate, one log line', () => {
    const d = decideBypass({ flag: flag('2026-11-27T05:59:59.000Z'), path: '/app/dashboard', now });
    expect(d).toMatchObject({ action: 'authenticate', reason: 'flag_expired', detail: 'the bypass expired at 2026-11-27T05:59:59.000Z' });
    expect(d.action === 'authenticate' && d.reason !== 'flag_missing' && JSON.parse(d.log)).toMatchObject({ reason: 'flag_expired' });
    expect(decideBypass({ flag: flag('2026-11-27T06:00:00.000Z'), path: '/', now })).toMatchObject({ reason: 'flag_expired' });
  });

  it.each([
    ['not JSON', 'on please', 'not JSON'],
    ['the old "true" switch, with no expiry', 'true', 'not an object'],
    ['no until', '{"on":true}', 'no "until"'],
    ['until not ISO', flag('tomorrow'), 'not an ISO time'],
    ['until without a zone', flag('2026-11-27T07:00:00'), 'not an ISO time'],
    ['until a date only', flag('2026-11-27'), 'not an ISO time'],
    ['until a number', '{"until":1798000000000}', 'no "until" string'],
    ['an array', '[1]', 'not an object'],
    ['JSON null', 'null', 'not an object'],
  ])('flag malformed (%s): authenticate, never bypass, one log line', (_name, raw, detail) => {
    const d = decideBypass({ flag: raw, path: '/app/dashboard', now });
    expect(d).toMatchObject({ action: 'authenticate', reason: 'flag_malformed' });
    expect(d.action === 'authenticate' && d.detail).toContain(detail);
    expect(d.action === 'authenticate' && d.reason !== 'flag_missing' && d.log.split('\n')).toHaveLength(1);
  });

  it("refuses a flag whose until is beyond the app's own maximum (the worker's default BYPASS_MAX_DURATION, 4 h)", () => {
    expect(MAX_BYPASS_HORIZON_MS).toBe(4 * 3_600_000);
    for (const ahead of [MAX_BYPASS_HORIZON_MS + CLOCK_SKEW_MS + 1000, 24 * 3_600_000, 7 * 86_400_000]) {
      const d = decideBypass({ flag: flag(new Date(now + ahead).toISOString()), path: '/app/dashboard', now });
      expect(d).toMatchObject({ action: 'authenticate', reason: 'flag_beyond_max' });
      expect(d.action === 'authenticate' && d.detail).toContain("more than 4 h ahead (this app's maximum)");
    }
    expect(decideBypass({ flag: flag(new Date(now + MAX_BYPASS_HORIZON_MS).toISOString()), path: '/app/dashboard', now }).action).toBe('bypass');
    expect(decideBypass({ flag: flag(new Date(now + 3_600_000).toISOString()), path: '/app/dashboard', now, maxHorizonMs: 1_800_000 })).toMatchObject({ reason: 'flag_beyond_max' });
  });

  it('allowlisted route under a valid flag: bypass until the flag says', () => {
    expect(decideBypass({ flag: flag('2026-11-27T07:00:00Z', { incident: 'inc-1' }), path: '/app/dashboard', now })).toEqual({
      action: 'bypass',
      until: '2026-11-27T07:00:00.000Z',
      incident: 'inc-1',
      route: '/app/dashboard',
    });
    // Edge Config hands over an object, not a string.
    expect(decideBypass({ flag: { until: '2026-11-27T07:00:00Z' }, path: '/', now })).toMatchObject({ action: 'bypass' });
    for (const path of ['/app/dashboard/', '/app/dashboard?tab=1', '/app/profile', '/']) expect(decideBypass({ flag: valid, path, now }).action, path).toBe('bypass');
  });

  it('every route off the allowlist stays closed under a valid flag, not only admin, billing and API keys', () => {
    for (const path of ['/admin', '/admin/users', '/billing/', '/api-keys', '/api/keys/123', '/app/billing?tab=1', '/app/settings', '/api/users', '/app', '/app/dashboard/export', '/app/dashboards']) {
      const d = decideBypass({ flag: valid, path, now });
      expect(d.action, path).toBe('closed');
      expect(d.action === 'closed' && d.message).toContain('stays closed');
    }
    expect(decideBypass({ flag: valid, path: '/internal', now, allow: ['/internal'] }).action).toBe('bypass');
    expect(decideBypass({ flag: valid, path: '/docs/a/b', now, allow: ['/docs/**'] }).action).toBe('bypass');
    expect(decideBypass({ flag: valid, path: '/docs/..%2fapp%2fadmin', now, allow: ['/docs/**'] }).action).toBe('closed');
    expect(decideBypass({ flag: valid, path: '/docsx', now, allow: ['/docs/**'] }).action).toBe('closed');
  });

  it('parseBypassFlag normalises the time', () => {
    expect(parseBypassFlag(flag('2026-11-27T07:00:00+01:00'), now)).toEqual({ flag: { until: '2026-11-27T06:00:00.000Z' }, untilMs: Date.parse('2026-11-27T06:00:00.000Z') });
  });
});

describe('the path as a framework routes it', () => {
  it.each(HOSTILE_ROWS)('%s spelled %j: never opened by the bypass', (route, raw) => {
    const d = decideBypass({ flag: valid, path: raw, now });
    expect(d.action).toBe('closed');
    // Where the spelling can be read at all, it is read as the protected route itself.
    const normal = normaliseRoutePath(raw);
    if (normal !== null && !/%c0|%cc/i.test(raw) && raw.startsWith('/')) expect(normal).toBe(route);
  });

  it('the table is bigger than the issue: every protected route, more than 40 spellings each', () => {
    expect(HOSTILE_ROWS.length).toBeGreaterThan(PROTECTED_ROUTES.length * 40);
  });

  it('an allowed route opens only when spelled plainly', () => {
    for (const raw of ['/app/dashboard', '/app/dashboard/', '//app//dashboard', '/app/./dashboard', '/app/admin/../dashboard', '/APP/Dashboard']) expect(isBypassAllowed(raw).allowed, raw).toBe(true);
    for (const raw of ['/app/dashboard;', '/app\\dashboard', '/app/dashboard%00', '/app/%64ashboard%3b', '/app/dashboard%E2%80%8B', '/app/ｄashboard', '/app/dashboard%ZZ', '/app/%2525252564ashboard']) {
      expect(isBypassAllowed(raw).allowed, raw).toBe(false);
    }
    expect(DEFAULT_BYPASS_ALLOWLIST).toEqual(['/', '/app/dashboard', '/app/profile']);
  });
});

describe("the sandbox's example app (Fastify routes the same spellings)", () => {
  let sandbox: RunningSandbox;
  beforeAll(async () => {
    sandbox = await startSandbox({ users: 2, seed: 'bypass-decision' });
    sandbox.admin.vercel.patchEdgeConfig([{ operation: 'upsert', key: 'CLERK_AUTH_BYPASS', value: JSON.stringify({ until: new Date(Date.now() + 3_600_000).toISOString() }) }]);
  });
  afterAll(async () => sandbox?.close());

  it('allowed routes answer 200 with X-Auth-Bypass: true', async () => {
    for (const route of ALLOWED_ROUTES) {
      const res = await rawGet(sandbox.url, route);
      expect(res.status, route).toBe(200);
      expect(res.headers['x-auth-bypass']).toBe('true');
    }
  });

  it('no hostile spelling of a protected route answers with its page', async () => {
    const opened: string[] = [];
    for (const [route, raw] of HOSTILE_ROWS) {
      const res = await rawGet(sandbox.url, raw).catch((e: unknown) => ({ status: -1, body: String(e), headers: {} }));
      if (res.status >= 200 && res.status < 300) opened.push(`${route} via ${raw}: ${res.status}`);
    }
    expect(opened).toEqual([]);
  });
});
