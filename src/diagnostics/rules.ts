/**
 * Diagnostics for `middleware_failure` and `session_issues`: what the checks gathered, and the
 * rule table that turns it into verdicts (ok / warn / fail / skipped), each with its evidence
 * and the fix in one sentence, plus a summary naming the most likely cause.
 * Pure (no I/O, no Node APIs): imported by the workflow, the diagnostics activity and
 * `npm run diagnose`. Evidence never holds a key or a token: hosts, ids, versions, times only.
 */
import type SemVer from 'semver/classes/semver';
import parseSemver from 'semver/functions/parse';
import { formatDuration } from '../domain';

export const DIAGNOSTIC_KINDS = ['middleware_failure', 'session_issues'] as const;
export type DiagnosticKind = (typeof DIAGNOSTIC_KINDS)[number];

export const CHECK_IDS = ['clock_skew', 'keys_match', 'domains_origins', 'authorized_parties', 'session_lifetime', 'middleware_sdk'] as const;
export type CheckId = (typeof CHECK_IDS)[number];
/**
 * The checks of what a deployment carries (its code and its environment: the middleware, the SDK,
 * the keys and authorized parties it was built with): a rollback can fix these. The instance's
 * settings (origins, session lifetime) and the hosts' clocks it cannot; their remedies do.
 */
export const DEPLOYED_CHECKS: readonly CheckId[] = ['keys_match', 'authorized_parties', 'middleware_sdk'];

export type Verdict = 'ok' | 'warn' | 'fail' | 'skipped';

export interface Check {
  id: CheckId;
  title: string;
  verdict: Verdict;
  evidence: string;
  /** One sentence; empty when there is nothing to fix. */
  fix: string;
  /** What the runbook does about a `warn` or `fail` (the rule table's remedy column); absent otherwise. */
  remedy?: Remedy;
}

/**
 * A check's remedy: what it changes, where, and how it is verified. `allowed_origins` is applied
 * through the Backend API (`PATCH /v1/instance`), `session_lifetime` through the Platform API's
 * instance config when a token is configured (else by hand, naming the Dashboard setting),
 * `targeted_revocation` ends the affected users' sessions (only when the sessions themselves are
 * bad), `deployed_publishable_key` sets the app's publishable key env var through the deploy adapter
 * and redeploys (when the app names another instance and the worker's own key names this one), `by_hand` is a person's step confirmed with `confirmStep`. Every one is verified by running
 * its check again (on sessions created after it, for the session checks) and the triage probes.
 */
export type RemedyPlan =
  | { kind: 'allowed_origins'; add: string; current: string[] }
  | { kind: 'session_lifetime'; maxLifetimeMs: number; inactivityTimeoutMs: number | null; grantedMs: number | null }
  | { kind: 'targeted_revocation'; userIds: string[] }
  /** The deployed app's publishable key set to the worker's (CLERK_PUBLISHABLE_KEY, which names `host`), then a redeploy. */
  | { kind: 'deployed_publishable_key'; env: string; host: string; wrongHost: string | null }
  | { kind: 'by_hand'; instructions: string };

export type Remedy = RemedyPlan & {
  check: CheckId;
  /** One line: what changes (the approval request, the chat, the review). */
  changes: string;
  /** Needs an approval before the runbook applies it (by-hand remedies are confirmed instead). */
  gated: boolean;
  /** One line: how the runbook checks it worked. */
  verifiedBy: string;
}

/** One piece of evidence as gathered: a value, a failure (a timeout among them), or nothing to gather. */
export type Gathered<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'error'; message: string; timedOut: boolean }
  | { kind: 'skipped'; reason: string };

/** A clock compared with the worker's from an answer's `Date` header (whole seconds). */
export interface ClockReading {
  /** The other clock minus the worker's, ms (positive: it runs ahead). */
  skewMs: number;
  /** How far off the reading may be: half a second of `Date` rounding plus half the round trip. */
  uncertaintyMs: number;
}

export interface DomainInfo {
  name: string;
  isSatellite: boolean;
  frontendApiUrl: string;
  developmentOrigin: string;
}

export interface InstanceEvidence {
  instanceId: string;
  environmentType: string;
  allowedOrigins: string[];
  domains: DomainInfo[];
}

/** What the app's health route reports (fields it does not report are absent). */
export interface HealthEvidence {
  url: string;
  status: number;
  middleware?: string;
  sdk?: { name: string; version: string };
  origin?: string;
  cookieDomain?: string;
  /** The Frontend API host the app's publishable key encodes; null when it reports a key that does not decode. */
  publishableKeyHost?: string | null;
  /** The health route's own clock, from its `Date` header. */
  clock?: ClockReading;
}

export interface RouteEvidence {
  url: string;
  /** null: no answer (timeout, network error). */
  status: number | null;
  error?: string;
}

/** A pasted session token, verified against the instance's JWKS (the token itself is not kept). */
export interface TokenEvidence {
  azp: string | null;
  sessionId: string | null;
  kid: string | null;
  signature: 'valid' | 'invalid' | 'no_matching_key' | 'malformed';
  /** Seconds past `exp` at the time of the check (negative: still valid). */
  expiredForSeconds: number | null;
}

export interface SessionEvidence {
  id: string;
  status: string;
  createdAt: number;
  updatedAt: number;
  lastActiveAt: number;
  expireAt: number;
}

export interface UserSessionsEvidence {
  userId: string;
  /** Newest first, as Clerk lists them (the most recent page only). */
  sessions: SessionEvidence[];
}

export interface DiagnosticsSettings {
  /** The origins the app accepts as `azp` (CLERK_AUTHORIZED_PARTIES). */
  authorizedParties: string[];
  /** Oldest acceptable Clerk SDK version (CLERK_MIN_SDK_VERSION). */
  minSdkVersion?: string;
  /** The instance's session settings as the team believes they are (CLERK_SESSION_MAX_LIFETIME / _INACTIVITY_TIMEOUT). */
  maxSessionLifetimeMs: number;
  inactivityTimeoutMs?: number;
  /** Where the app is served (APP_URL); else what its health route reports. */
  appUrl?: string;
  /** The Frontend API host the configured publishable key (CLERK_PUBLISHABLE_KEY) encodes; null: it does not decode. */
  configuredKeyHost?: string | null;
  /** The env var the deployed app reads its publishable key from (APP_PUBLISHABLE_KEY_ENV). */
  publishableKeyEnv?: string;
}

export interface DiagnosticsEvidence {
  kind: DiagnosticKind;
  settings: DiagnosticsSettings;
  /** Clerk's clock, from the `Date` header of a Backend API answer. */
  clerkClock: Gathered<ClockReading>;
  instance: Gathered<InstanceEvidence>;
  health: Gathered<HealthEvidence>;
  routes: Gathered<RouteEvidence[]>;
  token: Gathered<TokenEvidence>;
  sessions: Gathered<UserSessionsEvidence[]>;
}

// ---------------------------------------------------------------------------------------------
// Thresholds

/** Clerk's session tokens live about 60 s and SDKs accept 5 s of skew: a few seconds already matter. */
export const CLOCK_SKEW_WARN_MS = 2000;
export const CLOCK_SKEW_FAIL_MS = 5000;
/** An `expired` session that lasted less than this share of the expected lifetime ended early. */
export const SHORT_SESSION_SHARE = 0.5;
/** Short `expired` sessions per user from which the lifetime is the likely cause (fewer: warn). */
export const SHORT_SESSIONS_FAIL = 3;

// ---------------------------------------------------------------------------------------------
// Helpers (pure)

const seconds = (ms: number) => `${ms >= 0 ? '+' : '−'}${(Math.abs(ms) / 1000).toFixed(1)} s`;

function hostOf(url: string): string | null {
  try {
    return new URL(url).host;
  } catch {
    return null;
  }
}

function originOf(url: string): string | null {
  try {
    const o = new URL(url).origin;
    return o === 'null' ? null : o;
  } catch {
    return null;
  }
}

/** A version (`1.2.3`, `v1.2.3`, `3.0.0-beta.1`) parsed by semver; null when it is not one (`latest`). */
function parseVersion(v: string): SemVer | null {
  return parseSemver(v.trim());
}

/** `version` is older than `minimum`, by major.minor.patch only (3.0.0-beta counts as 3.0.0); null when either is not a version. */
export function versionBelow(version: string, minimum: string): boolean | null {
  const a = parseVersion(version);
  const b = parseVersion(minimum);
  if (!a || !b) return null;
  return a.compareMain(b) < 0;
}

/** A cookie set on `domain` is sent to `hostname` (RFC 6265 domain-match, leading dot ignored). */
export function cookieCovers(domain: string, hostname: string): boolean {
  const d = domain.replace(/^\./, '').toLowerCase();
  const h = hostname.toLowerCase();
  return h === d || h.endsWith(`.${d}`);
}

/** How an origin belongs to the instance: its primary domain, a satellite, an allowed origin, or not at all. */
export function originMembership(origin: string, instance: InstanceEvidence): { kind: 'primary' | 'satellite' | 'allowed_origin'; name: string } | null {
  const o = originOf(origin);
  if (!o) return null;
  const url = new URL(o);
  for (const d of instance.domains) {
    // Development domains carry their port (`localhost:3000`); production ones are bare host names.
    const matches = d.name.includes(':') ? url.host === d.name : cookieCovers(d.name, url.hostname);
    if (matches || (d.developmentOrigin && originOf(d.developmentOrigin) === o)) return { kind: d.isSatellite ? 'satellite' : 'primary', name: d.name };
  }
  const allowed = instance.allowedOrigins.find((a) => originOf(a) === o);
  return allowed ? { kind: 'allowed_origin', name: allowed } : null;
}

function unavailable(what: string, g: { kind: 'error'; message: string; timedOut: boolean }): { verdict: Verdict; evidence: string } {
  return { verdict: 'warn', evidence: g.timedOut ? `${what}: ${g.message} (cut at its timeout), so this could not be checked` : `${what} failed: ${g.message}, so this could not be checked` };
}

// ---------------------------------------------------------------------------------------------
// The rule table: one row per check

interface Rule {
  id: CheckId;
  title: string;
  evaluate: (e: DiagnosticsEvidence) => Omit<Check, 'id' | 'title' | 'remedy'>;
  /** The remedy of a warn or fail; without one (or when it returns undefined), the check's fix done by hand. */
  remedy?: (e: DiagnosticsEvidence, check: Omit<Check, 'remedy'>) => RemedyPlan | undefined;
}

const clockSkew: Rule = {
  id: 'clock_skew',
  title: 'Clock skew',
  evaluate: (e) => {
    const readings: { who: string; r: ClockReading }[] = [];
    const notes: string[] = [];
    if (e.clerkClock.kind === 'ok') readings.push({ who: "Clerk's clock", r: e.clerkClock.value });
    else notes.push(e.clerkClock.kind === 'error' ? `Clerk's Date header unreadable (${e.clerkClock.message})` : e.clerkClock.reason);
    if (e.health.kind === 'ok' && e.health.value.clock) readings.push({ who: "the app's clock", r: e.health.value.clock });
    if (readings.length === 0) {
      if (e.clerkClock.kind === 'error') return { ...unavailable("Reading Clerk's Date header", e.clerkClock), fix: 'Compare the worker clock with Clerk by hand: `curl -sI https://api.clerk.com/v1/jwks | grep -i date`.' };
      return { verdict: 'skipped', evidence: notes.join('; ') || 'no clock to compare with', fix: '' };
    }
    // The app verifies Clerk's tokens, so Clerk vs app matters most; each vs the worker shows which one is off.
    const clerk = readings.find((x) => x.who === "Clerk's clock")?.r;
    const app = readings.find((x) => x.who === "the app's clock")?.r;
    const between = clerk && app ? Math.abs(clerk.skewMs - app.skewMs) : 0;
    const worst = Math.max(between, ...readings.map((x) => Math.abs(x.r.skewMs)));
    const parts = readings.map((x) => `${x.who} ${seconds(x.r.skewMs)} from the worker's (±${(x.r.uncertaintyMs / 1000).toFixed(1)} s)`);
    const evidence = `${parts.join('; ')}; session tokens live about 60 s and are accepted with 5 s of skew`;
    if (worst < CLOCK_SKEW_WARN_MS) return { verdict: 'ok', evidence, fix: '' };
    // Clerk keeps NTP time: if the app disagrees with Clerk, the app is off; if both disagree with the worker, the worker is.
    const host = between >= CLOCK_SKEW_WARN_MS || (!clerk && app) ? "the app's servers" : app ? 'the worker (Clerk and the app agree with each other)' : 'the worker and the app servers';
    return {
      verdict: worst >= CLOCK_SKEW_FAIL_MS ? 'fail' : 'warn',
      evidence: `${evidence}: a skew of ${(worst / 1000).toFixed(1)} s makes fresh tokens "not yet valid" or already expired, signing users out at random`,
      fix: `Synchronise the clock of ${host} with NTP (chrony or systemd-timesyncd), taking Clerk's clock as the reference.`,
    };
  },
};

/** The Frontend API hosts of the instance's domains (what a publishable key of this instance names). */
const frontendApiHosts = (inst: InstanceEvidence): string[] => inst.domains.map((d) => hostOf(d.frontendApiUrl)).filter((h): h is string => h !== null);

const keysMatch: Rule = {
  id: 'keys_match',
  title: 'Keys match the instance',
  evaluate: (e) => {
    const keys: { who: string; host: string | null }[] = [];
    if (e.settings.configuredKeyHost !== undefined) keys.push({ who: 'the configured publishable key (CLERK_PUBLISHABLE_KEY)', host: e.settings.configuredKeyHost });
    if (e.health.kind === 'ok' && e.health.value.publishableKeyHost !== undefined) keys.push({ who: "the app's publishable key (health route)", host: e.health.value.publishableKeyHost });
    if (keys.length === 0) return { verdict: 'skipped', evidence: 'no publishable key configured (CLERK_PUBLISHABLE_KEY) nor reported by the health route', fix: '' };
    if (e.instance.kind === 'error') return { ...unavailable('Reading the instance (GET /v1/instance, /v1/domains)', e.instance), fix: 'Retry the diagnostics once the Backend API answers.' };
    if (e.instance.kind === 'skipped') return { verdict: 'skipped', evidence: e.instance.reason, fix: '' };
    const inst = e.instance.value;
    const fapiHosts = frontendApiHosts(inst);
    const wrong = keys.filter((k) => k.host === null || !fapiHosts.includes(k.host));
    const said = keys.map((k) => `${k.who} names ${k.host ?? '(not a valid publishable key)'}`).join('; ');
    const evidence = `${said}; the secret key's instance ${inst.instanceId} serves ${fapiHosts.join(', ') || 'no Frontend API'}`;
    if (wrong.length === 0) return { verdict: 'ok', evidence, fix: '' };
    return {
      verdict: 'fail',
      evidence: `${evidence}: the publishable and secret keys belong to different instances, so every request's session fails to verify`,
      fix: `Deploy the app with the publishable key and the secret key of the same Clerk instance (Dashboard → API keys of ${inst.instanceId}) and redeploy.`,
    };
  },
  // The app names another instance, and the worker's own publishable key names this one: that key, deployed.
  remedy: (e) => {
    const app = e.health.kind === 'ok' ? e.health.value.publishableKeyHost : undefined;
    const own = e.settings.configuredKeyHost;
    if (e.instance.kind !== 'ok' || app === undefined || !own || !e.settings.publishableKeyEnv) return undefined;
    const hosts = frontendApiHosts(e.instance.value);
    if (!hosts.includes(own) || (app !== null && hosts.includes(app))) return undefined;
    return { kind: 'deployed_publishable_key', env: e.settings.publishableKeyEnv, host: own, wrongHost: app };
  },
};

/** Where the app is served: APP_URL, else what its health route reports. */
function appOrigin(e: DiagnosticsEvidence): string | null {
  const health = e.health.kind === 'ok' ? e.health.value : undefined;
  return e.settings.appUrl ? originOf(e.settings.appUrl) : health?.origin ? originOf(health.origin) : null;
}

const domainsOrigins: Rule = {
  id: 'domains_origins',
  title: 'Domains and origins',
  evaluate: (e) => {
    const health = e.health.kind === 'ok' ? e.health.value : undefined;
    const origin = appOrigin(e);
    if (!origin) return { verdict: 'skipped', evidence: "the app's URL is unknown (set APP_URL, or let the health route report `origin`)", fix: '' };
    if (e.instance.kind === 'error') return { ...unavailable('Reading the domains (GET /v1/domains)', e.instance), fix: 'Retry the diagnostics once the Backend API answers.' };
    if (e.instance.kind === 'skipped') return { verdict: 'skipped', evidence: e.instance.reason, fix: '' };
    const inst = e.instance.value;
    const member = originMembership(origin, inst);
    const names = inst.domains.map((d) => `${d.name}${d.isSatellite ? ' (satellite)' : ''}`).join(', ');
    const problems: string[] = [];
    const facts: string[] = [member ? `${origin} is the instance's ${member.kind.replace('_', ' ')} ${member.name}` : `${origin} is none of the instance's domains (${names}) nor in allowed_origins (${inst.allowedOrigins.join(', ') || 'none'})`];
    if (!member) problems.push('origin');
    const cookieDomain = health?.cookieDomain;
    if (cookieDomain !== undefined) {
      const covers = cookieCovers(cookieDomain, new URL(origin).hostname);
      facts.push(`the session cookie's domain ${cookieDomain} ${covers ? 'covers' : 'does not cover'} ${new URL(origin).hostname}`);
      if (!covers) problems.push('cookie');
    }
    const evidence = facts.join('; ');
    if (problems.length === 0) return { verdict: 'ok', evidence, fix: '' };
    const fix = problems.includes('origin')
      ? `Serve the app from the instance's domain, or add ${origin} as a satellite domain (Dashboard → Domains) or to allowed_origins (PATCH /v1/instance).`
      : `Set the session cookie on a domain covering ${new URL(origin).hostname} (the app's domain, not another), so the browser sends it back.`;
    return { verdict: 'fail', evidence: `${evidence}: the browser does not send Clerk's session cookie back, so users look signed out`, fix };
  },
  // A missing origin is one Backend API change; a cookie on the wrong domain is the app's own setting (by hand).
  remedy: (e) => {
    const origin = appOrigin(e);
    if (!origin || e.instance.kind !== 'ok' || originMembership(origin, e.instance.value)) return undefined;
    // With the cookie on another domain too, adding the origin alone would not make the check pass: by hand.
    const cookieDomain = e.health.kind === 'ok' ? e.health.value.cookieDomain : undefined;
    if (cookieDomain !== undefined && !cookieCovers(cookieDomain, new URL(origin).hostname)) return undefined;
    return { kind: 'allowed_origins', add: origin, current: [...e.instance.value.allowedOrigins] };
  },
};

const authorizedParties: Rule = {
  id: 'authorized_parties',
  title: 'Authorized parties',
  evaluate: (e) => {
    if (e.token.kind === 'skipped') return { verdict: 'skipped', evidence: e.token.reason, fix: '' };
    if (e.token.kind === 'error') return { ...unavailable('Verifying the token against the JWKS (GET /v1/jwks)', e.token), fix: 'Retry with a fresh token once the Backend API answers.' };
    const t = e.token.value;
    const parties = e.settings.authorizedParties;
    const age = t.expiredForSeconds === null ? '' : t.expiredForSeconds > 0 ? ` (expired ${t.expiredForSeconds} s ago, which is expected for a pasted token)` : ' (still valid)';
    if (t.signature !== 'valid') {
      const why = { invalid: 'its signature does not verify with the key it names', no_matching_key: `no key of the instance's JWKS has its kid ${t.kid ?? '(none)'}`, malformed: 'it is not a JWT' }[t.signature];
      return { verdict: 'fail', evidence: `the pasted token is not this instance's: ${why}`, fix: 'Paste a session token issued by the same instance as the secret key (another instance signs with other keys).' };
    }
    const evidence = `the token (session ${t.sessionId ?? '?'}) is signed by the instance's key ${t.kid}${age}; azp ${t.azp ?? '(none)'}; authorized parties: ${parties.join(', ') || '(none configured)'}`;
    if (t.azp === null) return { verdict: 'warn', evidence: `${evidence}: a token without azp cannot be tied to an origin`, fix: 'Mint tokens from the browser (Clerk sets azp to the page\'s origin), not from a server.' };
    if (parties.length === 0) return { verdict: 'warn', evidence: `${evidence}: azp is not checked at all`, fix: `Set authorizedParties (CLERK_AUTHORIZED_PARTIES) to the app's origins, e.g. ${t.azp}, to protect against subdomain cookie leaks.` };
    if (!parties.some((p) => originOf(p) === originOf(t.azp!) || p === t.azp)) {
      return { verdict: 'fail', evidence: `${evidence}: the app rejects this token, so the user looks signed out`, fix: `Add ${t.azp} to the app's authorizedParties (CLERK_AUTHORIZED_PARTIES), or serve the app from one of the configured origins.` };
    }
    return { verdict: 'ok', evidence, fix: '' };
  },
};

interface UserLifetime {
  userId: string;
  total: number;
  byStatus: Record<string, number>;
  shortExpired: number;
  /** Median `expire_at − created_at`: the lifetime the instance actually gives its sessions. */
  grantedMs: number | null;
  medianExpiredMs: number | null;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The per-user picture of session lifetimes (exported for the CLI's detail lines and tests). */
export function sessionLifetimes(users: UserSessionsEvidence[], settings: DiagnosticsSettings): UserLifetime[] {
  const expected = Math.min(settings.maxSessionLifetimeMs, settings.inactivityTimeoutMs ?? Number.POSITIVE_INFINITY);
  return users.map((u) => {
    const byStatus: Record<string, number> = {};
    for (const s of u.sessions) byStatus[s.status] = (byStatus[s.status] ?? 0) + 1;
    const expired = u.sessions.filter((s) => s.status === 'expired');
    const lasted = (s: SessionEvidence) => s.updatedAt - s.createdAt;
    // Early: ended well before the lifetime, and not explained by the user being idle past the inactivity timeout.
    const short = expired.filter((s) => lasted(s) < expected * SHORT_SESSION_SHARE && !(settings.inactivityTimeoutMs !== undefined && s.updatedAt - s.lastActiveAt >= settings.inactivityTimeoutMs * SHORT_SESSION_SHARE));
    return {
      userId: u.userId,
      total: u.sessions.length,
      byStatus,
      shortExpired: short.length,
      grantedMs: median(u.sessions.map((s) => s.expireAt - s.createdAt)),
      medianExpiredMs: median(expired.map(lasted)),
    };
  });
}

const sessionLifetime: Rule = {
  id: 'session_lifetime',
  title: 'Session lifetime',
  evaluate: (e) => {
    if (e.sessions.kind === 'skipped') return { verdict: 'skipped', evidence: e.sessions.reason, fix: '' };
    if (e.sessions.kind === 'error') return { ...unavailable('Listing the users\' sessions (GET /v1/sessions)', e.sessions), fix: 'Retry the diagnostics once the Backend API answers.' };
    const s = e.settings;
    const expected = `max lifetime ${formatDuration(s.maxSessionLifetimeMs)}${s.inactivityTimeoutMs !== undefined ? `, inactivity timeout ${formatDuration(s.inactivityTimeoutMs)}` : ''}`;
    const users = sessionLifetimes(e.sessions.value, s);
    // No session to judge by (e.g. none created since a remedy): neither ok nor failing.
    if (users.every((u) => u.total === 0)) return { verdict: 'skipped', evidence: `${users.map((u) => u.userId).join(', ')}: no sessions to judge by; configured ${expected}`, fix: '' };
    const lines = users.map((u) => {
      const statuses = Object.entries(u.byStatus).map(([k, n]) => `${n} ${k}`).join(', ') || 'no sessions';
      const expired = u.medianExpiredMs !== null ? `; expired after median ${formatDuration(u.medianExpiredMs)}` : '';
      const granted = u.grantedMs !== null ? `; granted ${formatDuration(u.grantedMs)}` : '';
      return `${u.userId}: ${u.total} sessions (${statuses})${expired}${granted}`;
    });
    const evidence = `${lines.join('; ')}; configured ${expected}`;
    const worst = Math.max(0, ...users.map((u) => u.shortExpired));
    if (worst === 0) return { verdict: 'ok', evidence, fix: '' };
    const hit = users.filter((u) => u.shortExpired > 0);
    const affected = hit.map((u) => u.userId);
    const granted = median(hit.map((u) => u.grantedMs).filter((g): g is number => g !== null));
    const actual = granted !== null && granted < s.maxSessionLifetimeMs * SHORT_SESSION_SHARE ? ` (the instance grants ${formatDuration(granted)})` : '';
    return {
      verdict: worst >= SHORT_SESSIONS_FAIL ? 'fail' : 'warn',
      evidence: `${evidence}: ${affected.join(', ')} had sessions expire well before the configured lifetime`,
      fix: `Set the instance's maximum session lifetime and inactivity timeout (Dashboard → Sessions) back to ${expected}${actual}; if they already are, look at clock skew.`,
    };
  },
  // The instance grants too short a lifetime: its setting is the fault. It grants the right one and sessions still end early: the sessions are (revoke them).
  remedy: (e) => {
    if (e.sessions.kind !== 'ok') return undefined;
    const s = e.settings;
    const hit = sessionLifetimes(e.sessions.value, s).filter((u) => u.shortExpired > 0);
    if (hit.length === 0) return undefined;
    const granted = median(hit.map((u) => u.grantedMs).filter((g): g is number => g !== null));
    if (granted !== null && granted < s.maxSessionLifetimeMs * SHORT_SESSION_SHARE) {
      return { kind: 'session_lifetime', maxLifetimeMs: s.maxSessionLifetimeMs, inactivityTimeoutMs: s.inactivityTimeoutMs ?? null, grantedMs: granted };
    }
    return { kind: 'targeted_revocation', userIds: hit.map((u) => u.userId) };
  },
};

const middlewareSdk: Rule = {
  id: 'middleware_sdk',
  title: 'Middleware and SDK',
  evaluate: (e) => {
    const routes = e.routes.kind === 'ok' ? e.routes.value : [];
    const r500 = routes.filter((r) => r.status !== null && r.status >= 500);
    const routeLine = routes.length ? `app routes: ${routes.map((r) => `${r.url} ${r.status ?? r.error ?? 'no answer'}`).join(', ')}` : e.routes.kind === 'skipped' ? e.routes.reason : e.routes.kind === 'error' ? `app routes not probed: ${e.routes.message}` : 'no app routes';
    if (e.health.kind === 'skipped' && routes.length === 0) return { verdict: 'skipped', evidence: `${e.health.reason}; ${routeLine}`, fix: '' };
    const facts: string[] = [];
    let verdict: Verdict = 'ok';
    let fix = '';
    const raise = (v: Verdict, f: string) => {
      if (v === 'fail' && verdict !== 'fail') [verdict, fix] = [v, f];
      else if (v === 'warn' && verdict === 'ok') [verdict, fix] = [v, f];
    };
    if (e.health.kind === 'error') {
      facts.push(`health route: ${e.health.message}${e.health.timedOut ? ' (cut at its timeout)' : ''}`);
      raise('warn', "Check that the app is up and its health route answers; its logs name the middleware's error.");
    } else if (e.health.kind === 'ok') {
      const h = e.health.value;
      facts.push(`health route ${h.status}, middleware ${h.middleware ?? 'not reported'}, SDK ${h.sdk ? `${h.sdk.name} ${h.sdk.version}` : 'not reported'}`);
      if (h.middleware !== undefined && h.middleware !== 'ok') raise('fail', "Fix clerkMiddleware(): read the app's error log for the throw (a bad matcher, a missing key in the environment, an SDK mismatch) and redeploy.");
      const min = e.settings.minSdkVersion;
      if (h.sdk && min) {
        const below = versionBelow(h.sdk.version, min);
        if (below) {
          facts.push(`${h.sdk.version} is older than the minimum ${min}`);
          raise('warn', `Upgrade ${h.sdk.name} from ${h.sdk.version} to ${min} or later (npm install ${h.sdk.name}@^${parseVersion(min)!.major}) and redeploy.`);
        }
      }
    }
    facts.push(routeLine);
    if (routes.length > 0 && r500.length === routes.length) {
      facts.push(`all ${routes.length} app routes answer 5xx: the middleware that runs on every route throws`);
      raise('fail', "Fix clerkMiddleware(): every route fails, so check the middleware file and the keys it reads, then redeploy (or switch on the emergency bypass).");
    } else if (r500.length > 0) {
      facts.push(`${r500.length} of ${routes.length} app routes answer 5xx: those pages fail, not the middleware`);
      raise('warn', `Look at the failing pages' own errors (${r500.map((r) => r.url).join(', ')}); the middleware passes the others.`);
    }
    return { verdict, evidence: facts.join('; '), fix };
  },
};

/** The checks, in the order they are printed. */
export const DIAGNOSTIC_RULES: readonly Rule[] = [clockSkew, keysMatch, domainsOrigins, authorizedParties, sessionLifetime, middlewareSdk];

/** The remedy column: what the runbook does about a check that warns or fails, in words the approval and the review use. */
export function describeRemedy(check: Pick<Check, 'id' | 'title' | 'fix'>, plan: RemedyPlan): Remedy {
  const base = { check: check.id };
  const again = `runs ${check.id} again`;
  switch (plan.kind) {
    case 'allowed_origins':
      return { ...base, ...plan, gated: true, changes: `add ${plan.add} to the instance's allowed_origins (PATCH /v1/instance; now ${plan.current.join(', ') || 'none'}; the previous list is the undo)`, verifiedBy: `reads allowed_origins back and ${again}` };
    case 'session_lifetime': {
      const to = `${formatDuration(plan.maxLifetimeMs)}${plan.inactivityTimeoutMs !== null ? `, inactivity timeout ${formatDuration(plan.inactivityTimeoutMs)}` : ''}`;
      const from = plan.grantedMs !== null ? ` (the instance grants ${formatDuration(plan.grantedMs)})` : '';
      return { ...base, ...plan, gated: true, changes: `set the instance's maximum session lifetime to ${to}${from}`, verifiedBy: `reads the instance's session settings back and ${again} on sessions created after the change` };
    }
    case 'deployed_publishable_key':
      return {
        ...base,
        ...plan,
        gated: true,
        changes: `set the app's ${plan.env} to the worker's CLERK_PUBLISHABLE_KEY (names ${plan.host}; the app's names ${plan.wrongHost ?? 'nothing valid'}) through the deploy adapter, and redeploy`,
        verifiedBy: `waits for the new build, then ${again}`,
      };
    case 'targeted_revocation':
      return { ...base, ...plan, gated: true, changes: `end the sessions of ${plan.userIds.join(', ')}: the instance grants the right lifetime, so their sessions themselves are bad`, verifiedBy: `${again} on sessions created after the revocation` };
    case 'by_hand':
      return { ...base, ...plan, gated: false, changes: `by hand: ${plan.instructions}`, verifiedBy: `a person confirms it, then the runbook ${again}` };
  }
}

export function evaluateChecks(e: DiagnosticsEvidence): Check[] {
  return DIAGNOSTIC_RULES.map((rule) => {
    try {
      const check = { id: rule.id, title: rule.title, ...rule.evaluate(e) };
      if (check.verdict !== 'warn' && check.verdict !== 'fail') return check;
      const plan = rule.remedy?.(e, check) ?? (check.fix ? { kind: 'by_hand' as const, instructions: check.fix } : undefined);
      return plan ? { ...check, remedy: describeRemedy(check, plan) } : check;
    } catch (err) {
      // A rule's own bug must not hide the other checks.
      return { id: rule.id, title: rule.title, verdict: 'warn' as const, evidence: `the rule failed: ${err instanceof Error ? err.message : String(err)}`, fix: 'Report this diagnostics bug; check by hand meanwhile.' };
    }
  });
}

/** Which cause to name first when several checks fail: the runbook's order for the kind. */
const CAUSE_ORDER: Record<DiagnosticKind, CheckId[]> = {
  middleware_failure: ['keys_match', 'middleware_sdk', 'domains_origins', 'clock_skew', 'authorized_parties', 'session_lifetime'],
  session_issues: ['clock_skew', 'session_lifetime', 'domains_origins', 'authorized_parties', 'keys_match', 'middleware_sdk'],
};

export interface DiagnosticsSummary {
  /** The worst verdict (skipped counts as ok). */
  verdict: 'ok' | 'warn' | 'fail';
  /** The most likely cause, or null when no check warns or fails. */
  cause: CheckId | null;
  /** One sentence: the cause and its fix. */
  text: string;
}

export function summarize(kind: DiagnosticKind, checks: Check[]): DiagnosticsSummary {
  const rank = (c: Check) => CAUSE_ORDER[kind].indexOf(c.id);
  for (const level of ['fail', 'warn'] as const) {
    const hits = checks.filter((c) => c.verdict === level).sort((a, b) => rank(a) - rank(b));
    const top = hits[0];
    if (top) {
      const others = hits.length > 1 ? ` (${hits.length - 1} more ${level === 'fail' ? 'failing' : 'warning'}: ${hits.slice(1).map((c) => c.id).join(', ')})` : '';
      return { verdict: level, cause: top.id, text: `Most likely cause: ${top.title.toLowerCase()}${others}. ${top.fix}` };
    }
  }
  const ran = checks.filter((c) => c.verdict === 'ok').length;
  return { verdict: 'ok', cause: null, text: `No cause found: ${ran} check${ran === 1 ? '' : 's'} ok, ${checks.length - ran} skipped.` };
}

/** One check on one line (`fail clock_skew: … → fix`), for the incident's timeline and channel. */
export const checkLine = (c: Check) => `${c.verdict} ${c.id}: ${c.evidence}${c.fix ? ` → ${c.fix}` : ''}`;

/** The checks as `npm run diagnose` prints them: a line each, the fix under a warn or fail. */
export function formatChecks(checks: Check[]): string[] {
  const mark: Record<Verdict, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skipped: 'skip' };
  return checks.flatMap((c) => [`${mark[c.verdict]} ${c.title} (${c.id}): ${c.evidence}`, ...(c.fix ? [`     fix: ${c.fix}`] : [])]);
}
