/** Read-only probes of the systems around an incident. Each is bounded by its own timeout. */
import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import { STATUS_INDICATORS, type StatusIndicator } from '../domain';
import type { BackendApiProbe, HttpProbe, ProbeReport, ProbeSkipped, StatusPageProbe } from '../triage/rules';
import type { ClerkGateway } from './clerk';
import { classifyClerkError, ClerkCallTimeout, ClerkError, ClerkRateLimited, withTimeout } from './clerk-errors';

const statusSchema = z.object({
  status: z.object({ indicator: z.enum(STATUS_INDICATORS), description: z.string() }),
});
const summarySchema = statusSchema.extend({
  components: z.array(z.object({ name: z.string(), status: z.string() })).default([]),
});

export interface StatusPageResult {
  url: string;
  indicator: StatusIndicator;
  description: string;
  latencyMs: number;
}

const bounded = (timeoutMs: number, cancel?: AbortSignal) =>
  cancel ? AbortSignal.any([AbortSignal.timeout(timeoutMs), cancel]) : AbortSignal.timeout(timeoutMs);

const isTimeout = (err: unknown) => err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');

/**
 * Fetch a Statuspage v2 `status.json`. A timeout, a network error or a 5xx is retryable (the
 * status page itself can be flaky during an outage); a malformed body is not.
 */
export async function fetchStatusPage(baseUrl: string, timeoutMs: number): Promise<StatusPageResult> {
  const url = new URL('/api/v2/status.json', baseUrl).toString();
  const started = performance.now();
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const timedOut = isTimeout(err);
    throw ApplicationFailure.create({
      type: timedOut ? 'StatusPageTimeout' : 'StatusPageUnreachable',
      message: timedOut ? `${url} did not answer within ${timeoutMs} ms` : `${url} unreachable: ${String(err)}`,
    });
  }
  if (!response.ok) {
    throw ApplicationFailure.create({
      type: 'StatusPageHttpError',
      message: `${url} answered HTTP ${response.status}`,
      nonRetryable: response.status < 500,
    });
  }
  const parsed = statusSchema.safeParse(await response.json().catch(() => undefined));
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'StatusPageMalformed',
      message: `${url} did not return Statuspage v2 JSON`,
      nonRetryable: true,
    });
  }
  return {
    url,
    indicator: parsed.data.status.indicator,
    description: parsed.data.status.description,
    latencyMs: Math.round(performance.now() - started),
  };
}

/**
 * Triage's view of the status page (`summary.json`: indicator and component statuses). Never
 * throws: a status page that does not answer is evidence too.
 */
export async function probeStatusPage(baseUrl: string, timeoutMs: number, cancel?: AbortSignal): Promise<StatusPageProbe> {
  const url = new URL('/api/v2/summary.json', baseUrl).toString();
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, { signal: bounded(timeoutMs, cancel) });
    if (!response.ok) {
      await response.body?.cancel();
      return { kind: 'error', url, error: 'http_error', status: response.status, message: `HTTP ${response.status}`, latencyMs: latency() };
    }
    const parsed = summarySchema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success) return { kind: 'error', url, error: 'malformed', message: 'not Statuspage v2 JSON', latencyMs: latency() };
    return {
      kind: 'ok',
      url,
      indicator: parsed.data.status.indicator,
      description: parsed.data.status.description,
      degradedComponents: parsed.data.components.filter((c) => c.status !== 'operational').map((c) => ({ name: c.name, status: c.status })),
      latencyMs: latency(),
    };
  } catch (err) {
    return isTimeout(err)
      ? { kind: 'error', url, error: 'timeout', message: `no answer within ${timeoutMs} ms`, latencyMs: latency() }
      : { kind: 'error', url, error: 'network_error', message: errorMessage(err), latencyMs: latency() };
  }
}

/** GET one of the app's URLs; the JSON body is kept when there is one (health routes report details). */
export async function probeHttp(url: string, timeoutMs: number, cancel?: AbortSignal): Promise<HttpProbe> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, { signal: bounded(timeoutMs, cancel), redirect: 'manual' });
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {
      body = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    }
    return { kind: response.ok ? 'ok' : 'http_error', url, status: response.status, body, latencyMs: latency() };
  } catch (err) {
    return isTimeout(err)
      ? { kind: 'timeout', url, status: null, message: `no answer within ${timeoutMs} ms`, latencyMs: latency() }
      : { kind: 'network_error', url, status: null, message: errorMessage(err), latencyMs: latency() };
  }
}

/**
 * `users` with limit 1 with the Clerk adapter's client and error classification, sent once: triage
 * wants to see the 429 or the 5xx, not to wait it out. It skips the adapter's pacing queue on
 * purpose: behind a running mass revocation the queue is seconds long, and a probe stuck in our
 * own queue would look like Clerk timing out (two requests fit in the limiter's headroom).
 */
export async function probeBackendApi(clerk: Pick<ClerkGateway, 'client'>, timeoutMs: number): Promise<BackendApiProbe> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  try {
    const answer = await withTimeout(clerk.client.users.getUserList({ limit: 1 }), timeoutMs);
    return { kind: 'ok', status: 200, code: null, retryAfterSeconds: null, traceId: null, message: `${answer.totalCount} user(s)`, latencyMs: latency() };
  } catch (raw) {
    if (raw instanceof ClerkCallTimeout) {
      return { kind: 'timeout', status: null, code: null, retryAfterSeconds: null, traceId: null, message: `no answer within ${timeoutMs} ms`, latencyMs: latency() };
    }
    const err = classifyClerkError(raw, 'users.getUserList');
    if (!(err instanceof ClerkError)) {
      return { kind: 'network_error', status: null, code: null, retryAfterSeconds: null, traceId: null, message: errorMessage(err), latencyMs: latency() };
    }
    const base = { status: err.status ?? null, code: err.code ?? null, traceId: err.clerkTraceId ?? null, message: err.toDetails().message, latencyMs: latency() };
    switch (err.name) {
      case 'ClerkRateLimited':
        return { kind: 'rate_limited', ...base, retryAfterSeconds: Math.round((err as ClerkRateLimited).retryAfterMs / 1000) };
      case 'ClerkKeyInvalid':
        return { kind: 'unauthorized', ...base, retryAfterSeconds: null };
      case 'ClerkUnavailable':
        return { kind: err.status === undefined ? 'network_error' : 'server_error', ...base, retryAfterSeconds: null };
      case 'ClerkRequestRejected':
        return { kind: 'client_error', ...base, retryAfterSeconds: null };
    }
  }
}

export interface ProbeTargets {
  statusPageUrl?: string;
  appHealthUrl?: string;
  appRoutes?: string[];
  /** The Backend API probe (`users` with limit 1), given by the Clerk adapter. */
  backendApi?: (timeoutMs: number) => Promise<BackendApiProbe>;
}

const skipped = (reason: string): ProbeSkipped => ({ kind: 'skipped', reason });

/**
 * Every triage probe in parallel, each bounded by `timeoutMs`. Never throws for a failing probe;
 * `cancel` (the activity's cancellation) aborts them all and then rethrows its reason.
 */
export async function runProbes(targets: ProbeTargets, timeoutMs: number, cancel?: AbortSignal): Promise<ProbeReport> {
  const at = new Date().toISOString();
  const [statusPage, backendApi, health, routes] = await Promise.all([
    targets.statusPageUrl ? probeStatusPage(targets.statusPageUrl, timeoutMs, cancel) : Promise.resolve(skipped('no status page URL configured')),
    targets.backendApi ? targets.backendApi(timeoutMs) : Promise.resolve(skipped('no Clerk secret key configured')),
    targets.appHealthUrl ? probeHttp(targets.appHealthUrl, timeoutMs, cancel) : Promise.resolve(skipped('APP_HEALTH_URL not set')),
    Promise.all((targets.appRoutes ?? []).map((url) => probeHttp(url, timeoutMs, cancel))),
  ]);
  if (cancel?.aborted) throw cancel.reason;
  return { at, timeoutMs, statusPage, backendApi, health, routes };
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}

/** The health route's fields the workflow's triage reads (src/triage/rules.ts: `middleware`), each at most this long. */
const HEALTH_FIELDS_FOR_HISTORY = ['status', 'middleware'] as const;
const MAX_FIELD_CHARS = 64;

/**
 * The report as it may enter workflow history: the app's own answers reduced to what triage reads.
 * A health route or page answers whatever the app puts in it (an echoed env, a megabyte of JSON):
 * only the health route's `status` and `middleware` (short strings) are kept, page bodies not at all.
 */
export function reportForHistory(report: ProbeReport): ProbeReport {
  const health = report.health;
  const keep = (body: unknown): unknown => {
    if (typeof body === 'string') return body.slice(0, 200);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
    const fields = Object.fromEntries(
      HEALTH_FIELDS_FOR_HISTORY.flatMap((k) => {
        const v = (body as Record<string, unknown>)[k];
        return typeof v === 'string' ? [[k, v.slice(0, MAX_FIELD_CHARS)]] : [];
      }),
    );
    return fields;
  };
  return {
    ...report,
    health: health.kind === 'ok' || health.kind === 'http_error' ? { ...health, body: keep(health.body) } : health,
    routes: report.routes.map((p) => (p.kind === 'ok' || p.kind === 'http_error' ? { ...p, body: null } : p)),
  };
}
