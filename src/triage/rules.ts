/**
 * Triage: what the probes saw, and the rule table that turns it into a category and a severity.
 * Pure (no I/O): imported by the workflow, the triage activity and `npm run triage`.
 */
import { CATEGORIES, categorySeverity, SEVERITIES, type IncidentCategory, type Severity, type StatusIndicator } from '../domain';

/** A probe that could not be run because nothing is configured for it. */
export interface ProbeSkipped {
  kind: 'skipped';
  reason: string;
}

export type StatusPageProbe =
  | ProbeSkipped
  | {
      kind: 'ok';
      url: string;
      indicator: StatusIndicator;
      description: string;
      /** Components not `operational`, e.g. `{ name: 'Backend API', status: 'major_outage' }`. */
      degradedComponents: { name: string; status: string }[];
      latencyMs: number;
    }
  | { kind: 'error'; url: string; error: 'timeout' | 'network_error' | 'http_error' | 'malformed'; status?: number; message: string; latencyMs: number };

/** `GET /v1/users?limit=1` with the configured secret key. */
export type BackendApiProbe =
  | ProbeSkipped
  | {
      kind: 'ok' | 'unauthorized' | 'rate_limited' | 'server_error' | 'client_error' | 'network_error' | 'timeout';
      status: number | null;
      /** Clerk's `errors[0].code`, e.g. `clerk_key_invalid`. */
      code: string | null;
      retryAfterSeconds: number | null;
      traceId: string | null;
      message: string;
      latencyMs: number;
    };

/** An HTTP GET of one of the app's URLs (health route or a page). */
export type HttpProbe =
  | { kind: 'ok' | 'http_error'; url: string; status: number; body: unknown; latencyMs: number }
  | { kind: 'timeout' | 'network_error'; url: string; status: null; message: string; latencyMs: number };

export interface ProbeReport {
  at: string;
  timeoutMs: number;
  statusPage: StatusPageProbe;
  backendApi: BackendApiProbe;
  health: HttpProbe | ProbeSkipped;
  /** Optional app routes; all answering 500 means the auth middleware throws. */
  routes: HttpProbe[];
}

export interface Classification {
  /** Undefined when nothing the probes can see is wrong. */
  category?: IncidentCategory;
  severity: Severity;
  /** Id of the rule that matched (a row of `TRIAGE_RULES`). */
  rule: string;
  reason: string;
}

interface Rule {
  id: string;
  category?: IncidentCategory;
  /** Defaults to the category's severity from the runbook. */
  severity?: Severity;
  when: (r: ProbeReport) => boolean;
  reason: (r: ProbeReport) => string;
}

const healthBody = (r: ProbeReport): Record<string, unknown> | undefined =>
  r.health.kind === 'ok' || r.health.kind === 'http_error'
    ? typeof r.health.body === 'object' && r.health.body !== null
      ? (r.health.body as Record<string, unknown>)
      : undefined
    : undefined;

const apiKind = (r: ProbeReport) => r.backendApi.kind;
const statusIndicator = (r: ProbeReport) => (r.statusPage.kind === 'ok' ? r.statusPage.indicator : undefined);
const allRoutes500 = (r: ProbeReport) => r.routes.length > 0 && r.routes.every((p) => p.status === 500);
const healthFails = (r: ProbeReport) => r.health.kind !== 'skipped' && r.health.kind !== 'ok';

/**
 * Probes that were skipped or could not run (`could not check`), and probes that ran and failed in
 * a way no earlier rule explains (`failing`, e.g. one app route of two answering 500). Empty
 * means every probe ran and passed. App routes are optional: "none configured" alone is no gap.
 */
function gaps(r: ProbeReport): { unchecked: string[]; failing: string[] } {
  const unchecked: string[] = [];
  const failing: string[] = [];
  const sp = r.statusPage;
  if (sp.kind === 'skipped') unchecked.push(`status page (skipped: ${sp.reason})`);
  else if (sp.kind === 'error') unchecked.push(`status page (${sp.error}: ${sp.message})`);
  const api = r.backendApi;
  if (api.kind === 'skipped') unchecked.push(`Backend API (skipped: ${api.reason})`);
  else if (api.kind === 'network_error' || api.kind === 'timeout') unchecked.push(`Backend API (${describeApi(api)}: ${api.message})`);
  else if (api.kind !== 'ok') failing.push(`Backend API (${describeApi(api)}: ${api.message})`);
  if (r.health.kind === 'skipped') unchecked.push(`health route (skipped: ${r.health.reason})`);
  else if (r.health.kind !== 'ok') unchecked.push(`health route (${describeHttp(r.health)})`);
  for (const p of r.routes) {
    if (p.kind === 'http_error') failing.push(`app route ${pathOf(p.url)} (${describeHttp(p)})`);
    else if (p.kind !== 'ok') unchecked.push(`app route ${pathOf(p.url)} (${describeHttp(p)})`);
  }
  if (r.routes.length === 0 && unchecked.length > 0) unchecked.push('app routes (none configured)');
  return { unchecked, failing };
}

const hasGaps = (r: ProbeReport) => {
  const g = gaps(r);
  return g.unchecked.length + g.failing.length > 0;
};

function describeGaps(r: ProbeReport): string {
  const { unchecked, failing } = gaps(r);
  return [
    ...(unchecked.length ? [`could not check: ${unchecked.join(', ')}`] : []),
    ...(failing.length ? [`failing, no rule explains it: ${failing.join(', ')}`] : []),
  ].join('; ');
}

/**
 * The rule table, first match wins. Read it as the runbook's triage section: Clerk down beats
 * our own configuration, which beats Clerk's minor incidents; a Backend API answer (401, 429)
 * comes before the app's symptoms it explains (a health route that calls Clerk fails with it).
 */
export const TRIAGE_RULES: readonly Rule[] = [
  {
    id: 'status_page_outage',
    category: 'clerk_outage',
    when: (r) => statusIndicator(r) === 'major' || statusIndicator(r) === 'critical',
    reason: (r) => `Clerk's status page reports a ${statusIndicator(r)} incident`,
  },
  {
    id: 'backend_api_unavailable',
    category: 'clerk_outage',
    when: (r) => ['server_error', 'network_error', 'timeout'].includes(apiKind(r)),
    reason: (r) => `the Clerk Backend API is unavailable (${describeApi(r.backendApi)})`,
  },
  {
    id: 'secret_key_rejected',
    category: 'middleware_failure',
    when: (r) => apiKind(r) === 'unauthorized',
    reason: (r) =>
      `Clerk rejects the configured secret key (${describeApi(r.backendApi)}): the deployed key was deleted or rotated; ` +
      'if it was revoked because it leaked, restart the incident as key_compromise',
  },
  {
    id: 'backend_api_rate_limited',
    category: 'middleware_failure',
    when: (r) => apiKind(r) === 'rate_limited',
    reason: (r) => `the Clerk Backend API rate-limits this instance (${describeApi(r.backendApi)}): the app's server-side Clerk calls fail`,
  },
  {
    id: 'app_routes_500',
    category: 'middleware_failure',
    when: allRoutes500,
    reason: (r) => `every probed app route answers 500 (${r.routes.map((p) => pathOf(p.url)).join(', ')}): the auth middleware throws`,
  },
  {
    id: 'health_route_fails',
    category: 'middleware_failure',
    when: healthFails,
    reason: (r) => `the app's health route fails (${describeHttp(r.health)})`,
  },
  {
    id: 'health_reports_middleware_failing',
    category: 'middleware_failure',
    when: (r) => healthBody(r)?.middleware === 'failing',
    reason: () => "the app's health route reports its Clerk middleware as failing",
  },
  {
    id: 'status_page_minor',
    category: 'clerk_outage',
    severity: 'high',
    when: (r) => statusIndicator(r) === 'minor',
    reason: () => "Clerk's status page reports a minor incident (degraded performance); our own probes pass",
  },
  {
    // Nothing above matched, but something was not seen: saying "all clear" would be a guess.
    id: 'inconclusive',
    severity: 'low',
    when: hasGaps,
    reason: describeGaps,
  },
  {
    id: 'all_clear',
    severity: 'low',
    when: (r) => !hasGaps(r),
    reason: () => 'every probe ran and passes: nothing wrong is visible from outside',
  },
];

export function classify(report: ProbeReport): Classification {
  for (const rule of TRIAGE_RULES) {
    if (rule.when(report)) {
      const severity = rule.severity ?? (rule.category ? categorySeverity(rule.category) : 'low');
      return { ...(rule.category ? { category: rule.category } : {}), severity, rule: rule.id, reason: rule.reason(report) };
    }
  }
  // Unreachable: the last two rows cover every report.
  return { severity: 'low', rule: 'inconclusive', reason: 'no rule matched' };
}

export interface TriageVerdict {
  category?: IncidentCategory;
  severity: Severity;
  /**
   * `classified`: triage chose the category; `confirmed`: the probes agree with the reporter;
   * `not_visible`: the reporter's category cannot be seen from outside, their word stands;
   * `disagreed`: the probes point elsewhere (recorded; the reporter's category stands);
   * `unclassified`: nothing named, nothing seen (the note says `inconclusive` when a probe could
   * not run or was skipped).
   */
  agreement: 'classified' | 'confirmed' | 'not_visible' | 'disagreed' | 'unclassified';
  note: string;
  classification: Classification;
}

const rank = (s: Severity) => SEVERITIES.length - SEVERITIES.indexOf(s);
export const higherSeverity = (a: Severity, b: Severity): Severity => (rank(a) >= rank(b) ? a : b);

/** Combine what the reporter named with what triage saw. The reporter's category always stands. */
export function reconcile(named: IncidentCategory | undefined, classification: Classification): TriageVerdict {
  const seen = classification.category;
  const inconclusive = classification.rule === 'inconclusive';
  if (!named) {
    return seen
      ? { category: seen, severity: classification.severity, agreement: 'classified', note: `triage classified the incident as ${seen}: ${classification.reason}`, classification }
      : {
          severity: classification.severity,
          agreement: 'unclassified',
          note: inconclusive ? `inconclusive: ${classification.reason}` : `triage could not classify the incident: ${classification.reason}`,
          classification,
        };
  }
  const namedSeverity = categorySeverity(named);
  if (seen === named) {
    return { category: named, severity: higherSeverity(namedSeverity, classification.severity), agreement: 'confirmed', note: `triage confirms ${named}: ${classification.reason}`, classification };
  }
  // Nobody sees these from outside: the reporter's word stands when the probes are clear.
  if (!seen && !CATEGORIES[named].visibleFromOutside) {
    return { category: named, severity: namedSeverity, agreement: 'not_visible', note: `${named} cannot be seen from outside; the reporter's word stands (probes: ${classification.reason})`, classification };
  }
  const severity = seen ? higherSeverity(namedSeverity, classification.severity) : namedSeverity;
  const unseen = inconclusive ? `triage could not confirm it (inconclusive: ${classification.reason})` : `the probes see nothing wrong (${classification.reason})`;
  return {
    category: named,
    severity,
    agreement: 'disagreed',
    note: seen
      ? `reporter named ${named} but triage sees ${seen}: ${classification.reason}. The reporter's category stands; check the evidence`
      : `reporter named ${named} but ${unseen}. The reporter's category stands`,
    classification,
  };
}

/** `http://host:1/app/x?y` → `/app/x` (no `URL`: this module also runs in the workflow sandbox). */
const pathOf = (url: string) => /^[a-z]+:\/\/[^/]+(\/[^?#]*)?/i.exec(url)?.[1] ?? url;

export function describeApi(p: BackendApiProbe): string {
  if (p.kind === 'skipped') return `skipped: ${p.reason}`;
  const bits = [p.status === null ? p.kind.replace('_', ' ') : `HTTP ${p.status}`];
  if (p.code) bits.push(p.code);
  if (p.retryAfterSeconds !== null) bits.push(`Retry-After ${p.retryAfterSeconds}s`);
  return bits.join(', ');
}

export function describeHttp(p: HttpProbe | ProbeSkipped): string {
  if (p.kind === 'skipped') return `skipped: ${p.reason}`;
  return p.status === null ? `${p.kind.replace('_', ' ')}: ${p.message}` : `HTTP ${p.status}`;
}

/** The probe report as the runbook's triage script prints it: one line per probe. */
export function formatProbeReport(r: ProbeReport): string[] {
  const lines: string[] = [];
  const sp = r.statusPage;
  if (sp.kind === 'skipped') lines.push(`status page   skipped (${sp.reason})`);
  else if (sp.kind === 'ok') {
    const comps = sp.degradedComponents.map((c) => `${c.name}: ${c.status}`).join(', ');
    lines.push(`status page   ${sp.indicator.padEnd(12)} "${sp.description}"${comps ? ` [${comps}]` : ''} (${sp.latencyMs} ms)`);
  } else lines.push(`status page   ${sp.error.padEnd(12)} ${sp.message} (${sp.latencyMs} ms)`);
  const api = r.backendApi;
  lines.push(
    api.kind === 'skipped'
      ? `backend api   skipped (${api.reason})`
      : `backend api   ${api.kind.padEnd(12)} ${describeApi(api)}${api.kind === 'ok' ? '' : `: ${api.message}`} (${api.latencyMs} ms)`,
  );
  const h = r.health;
  lines.push(h.kind === 'skipped' ? `health route  skipped (${h.reason})` : `health route  ${h.kind.padEnd(12)} ${h.url} ${describeHttp(h)} (${h.latencyMs} ms)`);
  if (r.routes.length === 0) lines.push('app routes    skipped (none configured)');
  for (const p of r.routes) lines.push(`app route     ${p.kind.padEnd(12)} ${p.url} ${describeHttp(p)} (${p.latencyMs} ms)`);
  return lines;
}
