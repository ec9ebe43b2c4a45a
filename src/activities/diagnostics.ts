/**
 * Diagnostics for `middleware_failure` and `session_issues`: gathers the evidence the rule table
 * (src/diagnostics/rules.ts) judges, every piece in parallel and each bounded by its own timeout,
 * so a hanging or failing source is reported as such and never hides the others.
 *
 * Clerk is called through the gateway (its secret key, pacing, retries): `instance.get`,
 * `domains.list`, `jwks.getJwks`, `sessions.getSessionList`. The one raw request is the clock
 * reading: the SDK does not expose response headers, so Clerk's `Date` is read from a plain GET
 * of `/v1/jwks` without credentials (any answer, a 401 included, carries the header).
 *
 * A pasted session token is verified only when `gatherDiagnostics` is called with one (the CLI);
 * the activity takes none, so no token reaches a workflow's input or history. Reports hold
 * hosts, ids, versions and times, never a key or a token.
 */
import { Context } from '@temporalio/activity';
import { decodeJwt, hasValidSignature } from '@clerk/backend/jwt';
import { z } from 'zod';
import {
  evaluateChecks,
  summarize,
  type Check,
  type ClockReading,
  type DiagnosticKind,
  type DiagnosticsEvidence,
  type DiagnosticsSettings,
  type DiagnosticsSummary,
  type Gathered,
  type HealthEvidence,
  type InstanceEvidence,
  type RouteEvidence,
  type TokenEvidence,
  type UserSessionsEvidence,
} from '../diagnostics/rules';
import type { ClerkGateway } from './clerk';

/** What diagnostics need from the worker's configuration (src/config.ts; docs/diagnostics.md). */
export interface DiagnosticsDeps {
  /** The Clerk gateway (holds the secret key); Clerk's checks are skipped without it. */
  clerk?: ClerkGateway;
  /** Backend API base URL, for the clock reading (CLERK_API_URL; default Clerk's). */
  clerkApiUrl?: string;
  /** The app's health route (APP_HEALTH_URL). */
  appHealthUrl?: string;
  /** App pages (APP_ROUTES): all 5xx means the middleware throws. */
  appRoutes?: string[];
  /** Where the app is served (APP_URL); else the origin its health route reports. */
  appUrl?: string;
  /** CLERK_PUBLISHABLE_KEY (public, but reports carry only the host it encodes). */
  publishableKey?: string;
  /** APP_PUBLISHABLE_KEY_ENV: where the deployed app reads its publishable key (the keys remedy's env var). */
  publishableKeyEnv?: string;
  /** CLERK_AUTHORIZED_PARTIES. */
  authorizedParties?: string[];
  /** CLERK_MIN_SDK_VERSION. */
  minSdkVersion?: string;
  /** CLERK_SESSION_MAX_LIFETIME / CLERK_SESSION_INACTIVITY_TIMEOUT, in ms. */
  maxSessionLifetimeMs: number;
  inactivityTimeoutMs?: number;
}

export interface RunDiagnosticsInput {
  kind: DiagnosticKind;
  /** Users whose sessions to look at (session_issues); at most 100. */
  userIds?: string[];
  /** Only their sessions created at or after this time (ms): a remedy's verification judges what came after it. */
  sessionsCreatedAfter?: number;
  /** Each check's own timeout. */
  timeoutMs: number;
}

export interface DiagnosticsReport {
  at: string;
  kind: DiagnosticKind;
  timeoutMs: number;
  checks: Check[];
  summary: DiagnosticsSummary;
}

const CLERK_API = 'https://api.clerk.com';
/** Sessions looked at per user: the most recent page. */
const SESSIONS_PER_USER = 100;
const MAX_USERS = 100;

// ---------------------------------------------------------------------------------------------
// Bounding each source

class GatherTimeout extends Error {
  override readonly name = 'GatherTimeout';
}

/**
 * Runs one source with its own timeout: its signal aborts at the deadline (and on cancellation),
 * and the result is cut there even if the source ignores the signal (an SDK call does).
 */
async function bounded<T>(timeoutMs: number, cancel: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<Gathered<T>> {
  const controller = new AbortController();
  const onCancel = () => controller.abort(cancel?.reason);
  cancel?.addEventListener('abort', onCancel, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new GatherTimeout(`no answer within ${timeoutMs} ms`);
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return { kind: 'ok', value: await Promise.race([fn(controller.signal), deadline]) };
  } catch (err) {
    const timedOut = err instanceof GatherTimeout || (controller.signal.reason instanceof GatherTimeout && err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError'));
    return { kind: 'error', timedOut, message: timedOut ? `no answer within ${timeoutMs} ms` : errorMessage(err) };
  } finally {
    clearTimeout(timer);
    cancel?.removeEventListener('abort', onCancel);
  }
}

function errorMessage(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error && err.message === 'fetch failed' ? `${err.message}: ${cause.message}` : err.message;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** The Frontend API host a publishable key encodes (`pk_test_` + base64 of `<host>$`), or null. */
export function publishableKeyHost(key: string): string | null {
  const m = /^pk_(test|live)_([A-Za-z0-9+/=_-]+)$/.exec(key.trim());
  if (!m) return null;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  return /^[a-z0-9.-]+(:\d+)?\$$/i.test(decoded) ? decoded.slice(0, -1) : null;
}

/**
 * A clock from a response's `Date` header, against the worker's when the headers arrived: the
 * header is stamped as the answer leaves, after any slow work of the handler (a health route
 * calls Clerk first), so the arrival is closer than the middle of the round trip.
 */
function clockReading(res: Response, sentAt: number, answeredAt: number): ClockReading | undefined {
  const date = Date.parse(res.headers.get('date') ?? '');
  if (!Number.isFinite(date)) return undefined;
  // `Date` has whole seconds, truncated: the other clock read between date and date + 1 s.
  return { skewMs: Math.round(date + 500 - answeredAt), uncertaintyMs: Math.round(500 + (answeredAt - sentAt) / 2) };
}

async function readClerkClock(apiUrl: string, signal: AbortSignal): Promise<ClockReading> {
  const sentAt = Date.now();
  const res = await fetch(new URL('/v1/jwks', apiUrl), { signal });
  const answeredAt = Date.now();
  await res.body?.cancel();
  const reading = clockReading(res, sentAt, answeredAt);
  if (!reading) throw new Error(`${apiUrl} answered ${res.status} without a Date header`);
  return reading;
}

async function readInstance(clerk: ClerkGateway): Promise<InstanceEvidence> {
  const [instance, domains] = await Promise.all([
    clerk.call('instance.get', (c) => c.instance.get()),
    clerk.call('domains.list', (c) => c.domains.list()),
  ]);
  return {
    instanceId: instance.id,
    environmentType: instance.environmentType,
    allowedOrigins: instance.allowedOrigins ?? [],
    domains: domains.data.map((d) => ({ name: d.name, isSatellite: d.isSatellite, frontendApiUrl: d.frontendApiUrl, developmentOrigin: d.developmentOrigin })),
  };
}

const healthBody = z.looseObject({
  middleware: z.string().optional(),
  sdk: z.object({ name: z.string(), version: z.string() }).optional(),
  origin: z.string().optional(),
  url: z.string().optional(),
  cookieDomain: z.string().optional(),
  publishableKey: z.string().optional(),
});

async function readHealth(url: string, signal: AbortSignal): Promise<HealthEvidence> {
  const sentAt = Date.now();
  const res = await fetch(url, { signal, redirect: 'manual' });
  const answeredAt = Date.now();
  const json: unknown = await res.json().catch(() => null);
  const body = healthBody.safeParse(json);
  const b = body.success ? body.data : {};
  const clock = clockReading(res, sentAt, answeredAt);
  const origin = b.origin ?? (b.url ? new URL(b.url).origin : undefined);
  return {
    url,
    status: res.status,
    ...(b.middleware !== undefined ? { middleware: b.middleware } : {}),
    ...(b.sdk ? { sdk: b.sdk } : {}),
    ...(origin ? { origin } : {}),
    ...(b.cookieDomain !== undefined ? { cookieDomain: b.cookieDomain } : {}),
    ...(b.publishableKey !== undefined ? { publishableKeyHost: publishableKeyHost(b.publishableKey) } : {}),
    ...(clock ? { clock } : {}),
  };
}

async function readRoutes(urls: string[], timeoutMs: number, signal: AbortSignal): Promise<RouteEvidence[]> {
  return Promise.all(
    urls.map(async (url): Promise<RouteEvidence> => {
      try {
        const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]), redirect: 'manual' });
        await res.body?.cancel();
        return { url, status: res.status };
      } catch (err) {
        const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
        return { url, status: null, error: timedOut ? 'timeout' : errorMessage(err) };
      }
    }),
  );
}

async function verifyToken(clerk: ClerkGateway, token: string): Promise<TokenEvidence> {
  let jwt: ReturnType<typeof decodeJwt>;
  try {
    jwt = decodeJwt(token.trim());
  } catch {
    return { azp: null, sessionId: null, kid: null, signature: 'malformed', expiredForSeconds: null };
  }
  const claims = jwt.payload as { azp?: unknown; sid?: unknown; exp?: unknown };
  const kid = typeof jwt.header.kid === 'string' ? jwt.header.kid : null;
  const jwks = await clerk.call('jwks.getJwks', (c) => c.jwks.getJwks());
  const key = (jwks.keys ?? []).find((k) => k.kid === kid);
  const signature = !key ? 'no_matching_key' : (await hasValidSignature(jwt, key as unknown as Parameters<typeof hasValidSignature>[1]).catch(() => false)) ? 'valid' : 'invalid';
  return {
    azp: typeof claims.azp === 'string' ? claims.azp : null,
    sessionId: typeof claims.sid === 'string' ? claims.sid : null,
    kid,
    signature,
    expiredForSeconds: typeof claims.exp === 'number' ? Math.floor(Date.now() / 1000) - claims.exp : null,
  };
}

/** Signed in since: a setting's remedy shows in anyone's new session, not only the affected users' (a few, newest first). */
const RECENT_SIGN_INS = 5;

async function withRecentSignIns(clerk: ClerkGateway, userIds: string[], since: number | undefined): Promise<string[]> {
  if (since === undefined) return userIds;
  const recent = await clerk.call('users.getUserList', (c) => c.users.getUserList({ lastSignInAtAfter: since, orderBy: '-last_sign_in_at', limit: RECENT_SIGN_INS }));
  return [...new Set([...userIds, ...recent.data.map((u) => u.id)])].slice(0, MAX_USERS);
}

async function readSessions(clerk: ClerkGateway, userIds: string[], createdAfter = 0): Promise<UserSessionsEvidence[]> {
  return Promise.all(
    userIds.map(async (userId) => {
      const page = await clerk.call('sessions.getSessionList', (c) => c.sessions.getSessionList({ userId, limit: SESSIONS_PER_USER }));
      return {
        userId,
        sessions: page.data.filter((s) => s.createdAt >= createdAfter).map((s) => ({ id: s.id, status: s.status, createdAt: s.createdAt, updatedAt: s.updatedAt, lastActiveAt: s.lastActiveAt, expireAt: s.expireAt })),
      };
    }),
  );
}

// ---------------------------------------------------------------------------------------------

const skipped = (reason: string) => ({ kind: 'skipped', reason }) as const;

/**
 * Gathers every piece of evidence in parallel, each within `timeoutMs`. `token` (the CLI's
 * `--token`) is verified against the instance's JWKS and then dropped.
 */
export async function gatherDiagnostics(
  deps: DiagnosticsDeps,
  input: RunDiagnosticsInput,
  opts: { token?: string; cancel?: AbortSignal } = {},
): Promise<DiagnosticsEvidence> {
  const { timeoutMs } = input;
  const { clerk } = deps;
  const within = <T>(fn: (signal: AbortSignal) => Promise<T>) => bounded(timeoutMs, opts.cancel, fn);
  const noClerk = skipped('no Clerk secret key configured (CLERK_SECRET_KEY)');
  const userIds = [...new Set(input.userIds ?? [])].slice(0, MAX_USERS);
  const routes = deps.appRoutes ?? [];
  const [clerkClock, instance, health, routeEvidence, token, sessions] = await Promise.all([
    clerk ? within((signal) => readClerkClock(deps.clerkApiUrl ?? CLERK_API, signal)) : Promise.resolve(noClerk),
    clerk ? within(() => readInstance(clerk)) : Promise.resolve(noClerk),
    deps.appHealthUrl ? within((signal) => readHealth(deps.appHealthUrl!, signal)) : Promise.resolve(skipped('no health route configured (APP_HEALTH_URL)')),
    routes.length ? within((signal) => readRoutes(routes, timeoutMs, signal)) : Promise.resolve(skipped('no app routes configured (APP_ROUTES)')),
    !opts.token
      ? Promise.resolve(skipped('no session token given (paste one with `npm run diagnose -- --token <jwt>`)'))
      : clerk
        ? within(() => verifyToken(clerk, opts.token!))
        : Promise.resolve(noClerk),
    userIds.length === 0
      ? Promise.resolve(skipped('no user ids given (the affected users, e.g. `--user user_…`)'))
      : clerk
        ? within(async () => readSessions(clerk, await withRecentSignIns(clerk, userIds, input.sessionsCreatedAfter), input.sessionsCreatedAfter))
        : Promise.resolve(noClerk),
  ]);
  const settings: DiagnosticsSettings = {
    authorizedParties: deps.authorizedParties ?? [],
    maxSessionLifetimeMs: deps.maxSessionLifetimeMs,
    ...(deps.minSdkVersion ? { minSdkVersion: deps.minSdkVersion } : {}),
    ...(deps.inactivityTimeoutMs !== undefined ? { inactivityTimeoutMs: deps.inactivityTimeoutMs } : {}),
    ...(deps.appUrl ? { appUrl: deps.appUrl } : {}),
    ...(deps.publishableKey ? { configuredKeyHost: publishableKeyHost(deps.publishableKey) } : {}),
    ...(deps.publishableKeyEnv ? { publishableKeyEnv: deps.publishableKeyEnv } : {}),
  };
  return { kind: input.kind, settings, clerkClock, instance, health, routes: routeEvidence, token, sessions };
}

/** Gathers and judges: every check's verdict and the summary (the CLI passes `token`; the activity never does). */
export async function runDiagnostics(deps: DiagnosticsDeps, input: RunDiagnosticsInput, opts: { token?: string; cancel?: AbortSignal } = {}): Promise<DiagnosticsReport> {
  const at = new Date().toISOString();
  const evidence = await gatherDiagnostics(deps, input, opts);
  const checks = evaluateChecks(evidence);
  return { at, kind: input.kind, timeoutMs: input.timeoutMs, checks, summary: summarize(input.kind, checks) };
}

function activityCancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined; // called as a plain function, outside an activity
  }
}

/**
 * The activity: `runDiagnostics({ kind, userIds?, timeoutMs })`. It never throws for what it
 * finds (a failing source is a verdict), so the workflow needs no retry policy beyond the default.
 */
export function createDiagnosticsActivities(deps: DiagnosticsDeps | (() => DiagnosticsDeps)) {
  const resolve = typeof deps === 'function' ? deps : () => deps;
  return {
    async runDiagnostics(input: RunDiagnosticsInput): Promise<DiagnosticsReport> {
      const cancel = activityCancellation();
      return runDiagnostics(
        resolve(),
        { kind: input.kind, timeoutMs: input.timeoutMs, ...(input.userIds ? { userIds: input.userIds } : {}), ...(input.sessionsCreatedAfter !== undefined ? { sessionsCreatedAfter: input.sessionsCreatedAfter } : {}) },
        cancel ? { cancel } : {},
      );
    },
  };
}
