/**
 * The emergency auth bypass, decided: pure (no I/O, no framework), so the Next.js proxy next to it,
 * the runbook's sandbox example app and the unit tests all run the very same code.
 *
 * The flag is a JSON string (an env var or an Edge Config item) that carries its own expiry:
 * `{"until":"2026-11-27T08:00:00.000Z","incident":"inc-42"}`. It is honoured only while it is set,
 * well-formed, unexpired and no further ahead than this app's own maximum, and then only for an
 * ALLOWLIST of routes that are safe without identity: every other route keeps its normal protection.
 */

/** Response header on every request let through by the bypass. */
export const BYPASS_HEADER = 'X-Auth-Bypass';

/**
 * The routes the bypass opens (exact paths, lower case; an entry ending in `/**` opens its whole
 * subtree). Everything else stays closed while the bypass is on. Edit for your app.
 */
export const DEFAULT_BYPASS_ALLOWLIST: readonly string[] = ['/', '/app/dashboard', '/app/profile'];

/**
 * The app's own maximum: a flag whose `until` is further ahead is refused. Matches the runbook
 * worker's default BYPASS_MAX_DURATION (4 h, extensions included); raise both together.
 */
export const MAX_BYPASS_HORIZON_MS = 4 * 3_600_000;
/** Tolerated clock difference between the worker that wrote `until` and this app. */
export const CLOCK_SKEW_MS = 60_000;

export interface BypassFlag {
  until: string;
  incident?: string;
}

export type RefusedReason = 'flag_expired' | 'flag_malformed' | 'flag_beyond_max';

export type BypassDecision =
  /** Authenticate as usual (`clerkMiddleware()`); `reason` says why the flag does not apply. `log`: the one line to log (a flag was set but refused). */
  | { action: 'authenticate'; reason: 'flag_missing'; detail: string }
  | { action: 'authenticate'; reason: RefusedReason; detail: string; log: string }
  /** An allowlisted route: let the request through unauthenticated and mark it `X-Auth-Bypass: true`. */
  | { action: 'bypass'; until: string; incident?: string; route: string }
  /** The bypass is on but this route is not allowlisted: it keeps its normal protection. */
  | { action: 'closed'; until: string; message: string; route: string | null };

export interface DecideInput {
  /** The raw flag: a JSON string, an already parsed object (Edge Config), or nothing. */
  flag: unknown;
  /** The request's path as received (raw, may carry a query), e.g. `/app/dashboard?tab=1`. */
  path: string;
  /** Milliseconds since the epoch. */
  now: number;
  allow?: readonly string[];
  maxHorizonMs?: number;
}

/** The flag, or why it is unusable. Accepts a JSON string or an object. */
export function parseBypassFlag(
  raw: unknown,
  now: number,
  maxHorizonMs: number = MAX_BYPASS_HORIZON_MS,
): { flag: BypassFlag; untilMs: number } | { error: string; reason: 'flag_malformed' | 'flag_beyond_max' } {
  let value: unknown = raw;
  const malformed = (error: string) => ({ error, reason: 'flag_malformed' as const });
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return malformed('the flag is not JSON like {"until":"<ISO time>"}');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return malformed('the flag is not an object with "until"');
  const { until, incident } = value as { until?: unknown; incident?: unknown };
  if (typeof until !== 'string') return malformed('the flag has no "until" string');
  const untilMs = Date.parse(until);
  if (Number.isNaN(untilMs) || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(until)) {
    return malformed(`"until" is not an ISO time with a zone: ${JSON.stringify(until.slice(0, 40))}`);
  }
  if (untilMs - now > maxHorizonMs + CLOCK_SKEW_MS) {
    return { error: `"until" ${new Date(untilMs).toISOString()} is more than ${formatHours(maxHorizonMs)} ahead (this app's maximum)`, reason: 'flag_beyond_max' };
  }
  const incidentOk = typeof incident === 'string' && /^[\w.:-]{1,100}$/.test(incident);
  return { flag: { until: new Date(untilMs).toISOString(), ...(incidentOk ? { incident } : {}) }, untilMs };
}

const formatHours = (ms: number) => `${Math.round((ms / 3_600_000) * 100) / 100} h`;

/** Characters a route the bypass may open can be spelled with once decoded; anything else is never opened. */
const PLAIN_PATH = /^[A-Za-z0-9\-._~/]*$/;
const MAX_DECODE_ROUNDS = 3;

/** Control, zero-width and bidi characters: a path carrying one is never read as a route. */
const isInvisible = (c: string): boolean => {
  const n = c.codePointAt(0) ?? 0;
  return n < 0x20 || (n >= 0x7f && n <= 0x9f) || (n >= 0x200b && n <= 0x200f) || (n >= 0x2028 && n <= 0x202e) || (n >= 0x2060 && n <= 0x2064) || n === 0xfeff;
};

/**
 * The route a path names, as forgivingly as any framework or proxy in front of it might read it:
 * query and fragment cut, percent-decoding repeated (double encoding, encoded `/` `\` `.`),
 * Unicode folded (NFKC: full-width letters, ligatures), backslashes as slashes, case folded,
 * duplicate slashes collapsed, dot segments resolved, trailing `/ . ; space` and `;params` cut.
 * `null` when the path cannot be read with certainty (bad encoding, still encoded after several
 * rounds, control characters): such a path is never opened.
 */
export function normaliseRoutePath(raw: string): string | null {
  let p = raw.split(/[?#]/)[0] ?? '';
  for (let round = 0; /%[0-9a-f]{2}/i.test(p); round++) {
    if (round === MAX_DECODE_ROUNDS) return null;
    try {
      p = decodeURIComponent(p);
    } catch {
      return null;
    }
    p = p.split(/[?#]/)[0] ?? '';
  }
  if (p.includes('%')) return null;
  p = p.normalize('NFKC');
  if ([...p].some(isInvisible)) return null;
  p = p.replace(/\\/g, '/').toLowerCase();
  const out: string[] = [];
  for (const seg of p.split('/')) {
    // A segment's matrix parameters (`;jsessionid=…`) and trailing dots or spaces do not change the route it names.
    const s = seg.split(';')[0]!.trim();
    if (s === '..') out.pop();
    else if (s.replace(/[.\s]+$/, '') !== '') out.push(s.replace(/[.\s]+$/, ''));
  }
  return `/${out.join('/')}`;
}

/**
 * Whether the bypass opens this path: only when it is spelled plainly (after decoding, nothing but
 * letters, digits, `-._~/`) and its route is on the allowlist. A path that merely normalises to an
 * allowed route through tricks (`;`, `\`, Unicode, undecodable bytes) stays closed.
 */
export function isBypassAllowed(rawPath: string, allow: readonly string[] = DEFAULT_BYPASS_ALLOWLIST): { allowed: boolean; route: string | null } {
  const route = normaliseRoutePath(rawPath);
  if (route === null) return { allowed: false, route };
  let decoded = rawPath.split(/[?#]/)[0] ?? '';
  try {
    for (let round = 0; round < MAX_DECODE_ROUNDS && decoded.includes('%'); round++) decoded = decodeURIComponent(decoded);
  } catch {
    return { allowed: false, route };
  }
  if (!PLAIN_PATH.test(decoded)) return { allowed: false, route };
  const allowed = allow.some((entry) => {
    const e = entry.toLowerCase();
    if (e.endsWith('/**')) {
      const base = e.slice(0, -3);
      return route === (base || '/') || route.startsWith(`${base}/`);
    }
    return route === e;
  });
  return { allowed, route };
}

export function decideBypass(input: DecideInput): BypassDecision {
  const { flag, path, now } = input;
  if (flag === undefined || flag === null || flag === '') return { action: 'authenticate', reason: 'flag_missing', detail: 'no bypass flag is set' };
  const parsed = parseBypassFlag(flag, now, input.maxHorizonMs);
  const refuse = (reason: RefusedReason, detail: string): BypassDecision => ({
    action: 'authenticate',
    reason,
    detail,
    log: JSON.stringify({ msg: 'auth bypass flag refused: normal protection applies', reason, detail }),
  });
  if ('error' in parsed) return refuse(parsed.reason, parsed.error);
  const { until } = parsed.flag;
  if (parsed.untilMs <= now) return refuse('flag_expired', `the bypass expired at ${until}`);
  const { allowed, route } = isBypassAllowed(path, input.allow);
  if (!allowed) {
    return { action: 'closed', until, route, message: `This page stays closed while sign-in is unavailable (emergency auth bypass until ${until}). Please try again later.` };
  }
  return { action: 'bypass', until, route: route ?? '/', ...(parsed.flag.incident ? { incident: parsed.flag.incident } : {}) };
}
