/**
 * The emergency auth bypass, decided: pure (no I/O, no framework), so the Next.js middleware next
 * to it, the runbook's sandbox example app and the unit tests all run the very same code.
 *
 * The flag is a JSON string (an env var or an Edge Config item) that carries its own expiry:
 * `{"until":"2026-11-27T08:00:00.000Z","incident":"inc-42"}`. It is honoured only while it is set,
 * well-formed and unexpired, and never for routes that must stay closed (admin, billing, API keys).
 */

/** Response header on every request let through by the bypass. */
export const BYPASS_HEADER = 'X-Auth-Bypass';

/** Routes that stay closed while auth is bypassed (prefix match). */
export const DEFAULT_PROTECTED_PREFIXES: readonly string[] = ['/admin', '/billing', '/api-keys', '/api/keys', '/app/admin', '/app/billing', '/app/api-keys'];

/** A flag further ahead than this is refused as malformed: nobody means to bypass auth for days. */
export const MAX_FLAG_HORIZON_MS = 24 * 3_600_000;

export interface BypassFlag {
  until: string;
  incident?: string;
}

export type BypassDecision =
  /** Authenticate as usual (`clerkMiddleware()`); `reason` says why the flag does not apply. */
  | { action: 'authenticate'; reason: 'flag_missing' | 'flag_expired' | 'flag_malformed'; detail: string }
  /** Let the request through unauthenticated and mark it with `X-Auth-Bypass: true`. */
  | { action: 'bypass'; until: string; incident?: string }
  /** The bypass is on but this route stays closed: answer 503 with `message`. */
  | { action: 'closed'; until: string; message: string };

export interface DecideInput {
  /** The raw flag: a JSON string, an already parsed object (Edge Config), or nothing. */
  flag: unknown;
  /** The request's path, e.g. `/app/dashboard`. */
  path: string;
  /** Milliseconds since the epoch. */
  now: number;
  protectedPrefixes?: readonly string[];
}

/** The flag, or why it is unusable. Accepts a JSON string or an object. */
export function parseBypassFlag(raw: unknown, now: number): { flag: BypassFlag; untilMs: number } | { error: string } {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return { error: 'the flag is not JSON like {"until":"<ISO time>"}' };
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { error: 'the flag is not an object with "until"' };
  const { until, incident } = value as { until?: unknown; incident?: unknown };
  if (typeof until !== 'string') return { error: 'the flag has no "until" string' };
  const untilMs = Date.parse(until);
  if (Number.isNaN(untilMs) || !/^\d{4}-\d{2}-\d{2}T/.test(until)) return { error: `"until" is not an ISO time: ${until.slice(0, 40)}` };
  if (untilMs - now > MAX_FLAG_HORIZON_MS) return { error: `"until" is more than ${MAX_FLAG_HORIZON_MS / 3_600_000} hours ahead` };
  return { flag: { until: new Date(untilMs).toISOString(), ...(typeof incident === 'string' ? { incident } : {}) }, untilMs };
}

export function isProtectedPath(path: string, prefixes: readonly string[] = DEFAULT_PROTECTED_PREFIXES): boolean {
  const clean = path.split('?')[0]?.replace(/\/+$/, '') || '/';
  return prefixes.some((p) => clean === p || clean.startsWith(`${p}/`));
}

export function decideBypass(input: DecideInput): BypassDecision {
  const { flag, path, now } = input;
  if (flag === undefined || flag === null || flag === '') return { action: 'authenticate', reason: 'flag_missing', detail: 'no bypass flag is set' };
  const parsed = parseBypassFlag(flag, now);
  if ('error' in parsed) return { action: 'authenticate', reason: 'flag_malformed', detail: parsed.error };
  const { until } = parsed.flag;
  if (parsed.untilMs <= now) return { action: 'authenticate', reason: 'flag_expired', detail: `the bypass expired at ${until}` };
  if (isProtectedPath(path, input.protectedPrefixes)) {
    return { action: 'closed', until, message: `This page stays closed while sign-in is unavailable (emergency auth bypass until ${until}). Please try again later.` };
  }
  return { action: 'bypass', until, ...(parsed.flag.incident ? { incident: parsed.flag.incident } : {}) };
}
