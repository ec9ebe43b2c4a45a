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

const allSkipped = healthy({
  statusPage: { kind: 'skipped', reason: 'no status page URL configured' },
  backendApi: { kind: 'skipped', reason: 'no Clerk secret key configured' },
  health: { kind: 'skipped', reason: 'APP_HEALTH_URL not set' },
  routes: [],
});
const statusPageDown: ProbeReport['statusPage'] = {
  kind: 'error',
  url: 'https://status.clerk.com/api/v2/summary.json',
  error: 'network_error',
  message: 'fetch failed: getaddrinfo ENOTFOUND status.clerk.com',
  latencyMs: 12,
};

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
    ['inconclusive', allSkipped, undefined, 'low'],
    ['inconclusive', healthy({ statusPage: statusPageDown }), undefined, 'low'],
    ['inconclusive', healthy({ routes: [page('http://app/app/dashboard', 500), page('http://app/app/profile', 200)] }), undefined, 'low'],
    ['inconclusive', healthy({ backendApi: api('client_error', 404, { code: 'resource_not_found' }) }), undefined, 'low'],
    ['all_clear', healthy(), undefined, 'low'],
    // App routes are optional: none configured is no gap when everything else ran.
    ['all_clear', healthy({ routes: [] }), undefined, 'low'],
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

describe('inconclusive: a probe that was skipped or could not run is no all clear', () => {
  it('names every probe it could not check, and why', () => {
    expect(classify(allSkipped).reason).toBe(
      'could not check: status page (skipped: no status page URL configured), Backend API (skipped: no Clerk secret key configured), ' +
        'health route (skipped: APP_HEALTH_URL not set), app routes (none configured)',
    );
  });

  it('names only the status page when it alone did not answer', () => {
    const c = classify(healthy({ statusPage: statusPageDown }));
    expect(c.reason).toBe('could not check: status page (network_error: fetch failed: getaddrinfo ENOTFOUND status.clerk.com)');
  });

  it('lists unconfigured app routes only beside another gap', () => {
    expect(classify(healthy({ statusPage: statusPageDown, routes: [] })).reason).toContain('app routes (none configured)');
    expect(classify(healthy({ routes: [] })).rule).toBe('all_clear');
  });

  it('names a failure no rule explains apart from what it could not check', () => {
    const c = classify(healthy({ routes: [page('http://app/app/dashboard', 500), { kind: 'timeout', url: 'http://app/app/profile', status: null, message: 'no answer within 5000 ms', latencyMs: 5000 }] }));
    expect(c.reason).toBe('could not check: app route /app/profile (timeout: no answer within 5000 ms); failing, no rule explains it: app route /app/dashboard (HTTP 500)');
  });

  it('keeps the signals earlier rules classify: a Backend API that does not answer is still an outage', () => {
    const skippedRest = { statusPage: allSkipped.statusPage, health: allSkipped.health, routes: [] };
    expect(classify(healthy({ ...skippedRest, backendApi: api('network_error', null) }))).toMatchObject({ rule: 'backend_api_unavailable', category: 'clerk_outage' });
    expect(classify(healthy({ statusPage: statusPageDown, backendApi: api('timeout', null) }))).toMatchObject({ rule: 'backend_api_unavailable', category: 'clerk_outage' });
    expect(classify(healthy({ statusPage: statusPageDown, health: page('http://app/api/clerk-health', 503) }))).toMatchObject({ rule: 'health_route_fails', category: 'middleware_failure' });
    expect(classify(healthy({ statusPage: statusPageDown, routes: [page('http://app/x', 500)] }))).toMatchObject({ rule: 'app_routes_500' });
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

  it('says inconclusive, not "could not classify", when the reporter named nothing and a probe could not run', () => {
    const v = reconcile(undefined, classify(allSkipped));
    expect(v).toMatchObject({ severity: 'low', agreement: 'unclassified' });
    expect(v.category).toBeUndefined();
    expect(v.note).toMatch(/^inconclusive: could not check: status page \(skipped: .*\), Backend API \(skipped: .*\), health route/);
    expect(reconcile(undefined, clear).note).not.toContain('inconclusive');
  });

  it('lets the reporter\'s word stand for an invisible category even when triage is inconclusive', () => {
    const v = reconcile('key_compromise', classify(healthy({ statusPage: statusPageDown })));
    expect(v).toMatchObject({ category: 'key_compromise', severity: 'critical', agreement: 'not_visible' });
    expect(v.note).toContain('could not check: status page');
  });

  it('does not claim the probes see nothing wrong when they could not check', () => {
    const v = reconcile('clerk_outage', classify(allSkipped));
    expect(v).toMatchObject({ category: 'clerk_outage', severity: 'critical', agreement: 'disagreed' });
    expect(v.note).toContain('triage could not confirm it (inconclusive: could not check:');
    expect(v.note).not.toContain('see nothing wrong');
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
