/** The bypass decision shared by the Next.js example middleware and the sandbox's example app. */
import { describe, expect, it } from 'vitest';
import { decideBypass, isProtectedPath, MAX_FLAG_HORIZON_MS, parseBypassFlag } from '../examples/nextjs-bypass/bypass-decision';

const now = Date.parse('2026-11-27T06:00:00.000Z');
const flag = (until: string, extra: Record<string, unknown> = {}) => JSON.stringify({ until, ...extra });

describe('decideBypass', () => {
  it('flag missing: authenticate as usual', () => {
    for (const missing of [undefined, null, '']) {
      expect(decideBypass({ flag: missing, path: '/app/dashboard', now })).toEqual({ action: 'authenticate', reason: 'flag_missing', detail: 'no bypass flag is set' });
    }
  });

  it('flag expired (or expiring this very millisecond): authenticate', () => {
    expect(decideBypass({ flag: flag('2026-11-27T05:59:59.000Z'), path: '/app/dashboard', now })).toMatchObject({ action: 'authenticate', reason: 'flag_expired', detail: 'the bypass expired at 2026-11-27T05:59:59.000Z' });
    expect(decideBypass({ flag: flag('2026-11-27T06:00:00.000Z'), path: '/', now })).toMatchObject({ reason: 'flag_expired' });
  });

  it.each([
    ['not JSON', 'on please', 'not JSON'],
    ['the old "true" switch, with no expiry', 'true', 'not an object'],
    ['no until', '{"on":true}', 'no "until"'],
    ['until not ISO', flag('tomorrow'), 'not an ISO time'],
    ['until a number', '{"until":1798000000000}', 'no "until" string'],
    ['an array', '[1]', 'not an object'],
    ['too far ahead', flag(new Date(now + MAX_FLAG_HORIZON_MS + 1000).toISOString()), 'more than 24 hours ahead'],
  ])('flag malformed (%s): authenticate, never bypass', (_name, raw, detail) => {
    const d = decideBypass({ flag: raw, path: '/app/dashboard', now });
    expect(d).toMatchObject({ action: 'authenticate', reason: 'flag_malformed' });
    expect(d.action === 'authenticate' && d.detail).toContain(detail);
  });

  it('public route under a valid flag: bypass until the flag says', () => {
    expect(decideBypass({ flag: flag('2026-11-27T07:00:00Z', { incident: 'inc-1' }), path: '/app/dashboard', now })).toEqual({ action: 'bypass', until: '2026-11-27T07:00:00.000Z', incident: 'inc-1' });
    // Edge Config hands over an object, not a string.
    expect(decideBypass({ flag: { until: '2026-11-27T07:00:00Z' }, path: '/', now })).toMatchObject({ action: 'bypass' });
  });

  it('protected route under a valid flag: closed with a message, not bypassed', () => {
    for (const path of ['/admin', '/admin/users', '/billing/', '/api-keys', '/api/keys/123', '/app/billing?tab=1']) {
      const d = decideBypass({ flag: flag('2026-11-27T07:00:00Z'), path, now });
      expect(d.action, path).toBe('closed');
      expect(d.action === 'closed' && d.message).toContain('stays closed');
    }
    expect(isProtectedPath('/administrator')).toBe(false);
    expect(decideBypass({ flag: flag('2026-11-27T07:00:00Z'), path: '/internal', now, protectedPrefixes: ['/internal'] }).action).toBe('closed');
  });

  it('parseBypassFlag normalises the time', () => {
    expect(parseBypassFlag(flag('2026-11-27T07:00:00+01:00'), now)).toEqual({ flag: { until: '2026-11-27T06:00:00.000Z' }, untilMs: Date.parse('2026-11-27T06:00:00.000Z') });
  });
});
