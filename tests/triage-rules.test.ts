/** The triage rule table, row by row, and how triage combines with the reporter's category. */
import { describe, expect, it } from 'vitest';
import { classify, reconcile, TRIAGE_RULES, type BackendApiProbe, type HttpProbe, type ProbeReport } from '../src/triage/rules';

const okApi: BackendApiProbe = { kind: 'ok', status: 200, code: null, retryAfterSeconds: null, traceId: null, message: '100 user(s)', latencyMs: 5 };
const api = (kind: Exclude<BackendApiProbe['kind'], 'skipped'>, status: number | null, extra: Partial<BackendApiProbe> = {}): BackendApiProbe =>
  ({ ...okApi, kind, status, message: kind, ...extra }) as BackendApiProbe;
const page = (url: string, status: number, body: unknown = null): HttpProbe => ({ kind: status < 400 ? 'ok' : 'http_error', url, status, body, latencyMs: 3 });

/** Everything healthy: the baseline each row changes one thing of. */
function healthy(over: Partial<ProbeReport> = {}): ProbeReport {
  return {
    at: '2026-11-26T10:00:00.000Z',
    timeoutMs: 5000,
    statusPage: { kind: 'ok', url: 'https://status.clerk.com/api/v2/summary.json', indicator: 'none', description: 'All Systems Operational', degradedComponents: [], latencyMs: 20 },
    backendApi: okApi,
    health: page('http://app/api/clerk-health', 200, { status: 'ok', middleware: 'ok' }),
    routes: [page('http://app/app/dashboard', 200), page('http://app/app/profile', 200)],
    ...over,
  };
}
const statusPage = (indicator: 'minor' | 'major' | 'critical'): ProbeReport['statusPage'] => ({
  kind: 'ok',
  url: 'https://status.clerk.com/api/v2/summary.json',
  indicator,
  description: 'Partial System Outage',
  degradedComponents: [{ name: 'Backend API', status: 'major_outage' }],
  latencyMs: 20,
});

describe('TRIAGE_RULES, row by row (first match wins)', () => {
  const rows: Array<[rule: string, report: ProbeReport, category: string | undefined, severity: string]> = [
    ['status_page_outage', healthy({ statusPage: statusPage('major') }), 'clerk_outage', 'critical'],
    ['status_page_outage', healthy({ statusPage: statusPage('critical'), backendApi: api('server_error', 503) }), 'clerk_outage', 'critical'],
    ['backend_api_unavailable', healthy({ backendApi: api('server_error', 502) }), 'clerk_outage', 'critical'],
    ['backend_api_unavailable', healthy({ backendApi: api('network_error', null) }), 'clerk_outage', 'critical'],
    ['backend_api_unavailable', healthy({ backendApi: api('timeout', null) }), 'clerk_outage', 'critical'],
    ['secret_key_rejected', healthy({ backendApi: api('unauthorized', 401, { code: 'clerk_key_invalid' }) }), 'middleware_failure', 'high'],
    ['app_routes_500', healthy({ routes: [page('http://app/app/dashboard', 500), page('http://app/app/profile', 500)] }), 'middleware_failure', 'high'],
    ['health_route_fails', healthy({ health: page('http://app/api/clerk-health', 503, { status: 'error' }) }), 'middleware_failure', 'high'],
    ['health_route_fails', healthy({ health: { kind: 'timeout', url: 'http://app/api/clerk-health', status: null, message: 'no answer', latencyMs: 5000 } }), 'middleware_failure', 'high'],
    ['health_reports_middleware_failing', healthy({ health: page('http://app/api/clerk-health', 200, { status: 'ok', middleware: 'failing' }) }), 'middleware_failure', 'high'],
    ['backend_api_rate_limited', healthy({ backendApi: api('rate_limited', 429, { retryAfterSeconds: 7 }) }), 'middleware_failure', 'high'],
    ['status_page_minor', healthy({ statusPage: statusPage('minor') }), 'clerk_outage', 'high'],
    ['all_clear', healthy(), undefined, 'low'],
    ['all_clear', healthy({ routes: [page('http://app/app/dashboard', 500), page('http://app/app/profile', 200)] }), undefined, 'low'],
    ['all_clear', healthy({ statusPage: { kind: 'skipped', reason: 'none' }, backendApi: { kind: 'skipped', reason: 'no key' }, health: { kind: 'skipped', reason: 'unset' }, routes: [] }), undefined, 'low'],
  ];

  it.each(rows)('%s: %#', (rule, report, category, severity) => {
    const c = classify(report);
    expect(c.rule).toBe(rule);
    expect(c.category).toBe(category);
    expect(c.severity).toBe(severity);
    expect(c.reason.length).toBeGreaterThan(10);
  });

  it('has a test row for every rule', () => {
    expect(new Set(rows.map(([rule]) => rule))).toEqual(new Set(TRIAGE_RULES.map((r) => r.id)));
  });

  it('puts Clerk down before our own configuration: an outage also breaks the health route', () => {
    const c = classify(healthy({ statusPage: statusPage('major'), health: page('http://app/api/clerk-health', 503), routes: [page('http://app/x', 500)] }));
    expect(c.category).toBe('clerk_outage');
  });

  it('explains the app\'s symptoms by the Backend API answer that causes them', () => {
    const health503 = page('http://app/api/clerk-health', 503, { status: 'error' });
    expect(classify(healthy({ backendApi: api('rate_limited', 429, { retryAfterSeconds: 7 }), health: health503 })).rule).toBe('backend_api_rate_limited');
    expect(classify(healthy({ backendApi: api('unauthorized', 401), health: health503 })).rule).toBe('secret_key_rejected');
  });

  it('quotes the Retry-After of a 429 and the Clerk error code of a 401', () => {
    expect(classify(healthy({ backendApi: api('rate_limited', 429, { retryAfterSeconds: 7 }) })).reason).toContain('Retry-After 7s');
    expect(classify(healthy({ backendApi: api('unauthorized', 401, { code: 'clerk_key_invalid' }) })).reason).toContain('clerk_key_invalid');
  });
});

describe('reconcile: the reporter named a category, or not', () => {
  const outage = classify(healthy({ statusPage: statusPage('major') }));
  const clear = classify(healthy());
  const middleware = classify(healthy({ routes: [page('http://app/x', 500)] }));

  it('classifies when the reporter named nothing', () => {
    expect(reconcile(undefined, outage)).toMatchObject({ category: 'clerk_outage', severity: 'critical', agreement: 'classified' });
    expect(reconcile(undefined, clear)).toMatchObject({ severity: 'low', agreement: 'unclassified' });
    expect(reconcile(undefined, clear).category).toBeUndefined();
  });

  it('confirms a category the probes also see', () => {
    expect(reconcile('clerk_outage', outage)).toMatchObject({ category: 'clerk_outage', severity: 'critical', agreement: 'confirmed' });
    expect(reconcile('middleware_failure', middleware)).toMatchObject({ agreement: 'confirmed', severity: 'high' });
  });

  it.each(['key_compromise', 'session_issues', 'webhook_backlog'] as const)('lets the reporter\'s word stand for %s, which nobody can see from outside', (named) => {
    const v = reconcile(named, clear);
    expect(v).toMatchObject({ category: named, agreement: 'not_visible' });
    expect(v.note).toContain("reporter's word stands");
  });

  it('records a disagreement, keeps the reporter\'s category and raises the severity to what the probes saw', () => {
    const v = reconcile('session_issues', outage);
    expect(v).toMatchObject({ category: 'session_issues', severity: 'critical', agreement: 'disagreed' });
    expect(v.note).toContain('triage sees clerk_outage');
    const key = reconcile('key_compromise', outage);
    expect(key).toMatchObject({ category: 'key_compromise', agreement: 'disagreed' });
  });

  it('records a disagreement when the reporter names a visible category the probes do not see', () => {
    expect(reconcile('clerk_outage', clear)).toMatchObject({ category: 'clerk_outage', severity: 'critical', agreement: 'disagreed' });
    expect(reconcile('clerk_outage', clear).note).toContain('the probes see nothing wrong');
  });
});
