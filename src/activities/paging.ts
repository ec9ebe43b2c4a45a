/**
 * Paging the on-call through PagerDuty's Events API v2 (docs/paging.md): an alert per incident
 * step (`trigger`, `acknowledge`, `resolve` on `dedup_key` = incident + step) and change events
 * for mitigations (`POST /v2/change/enqueue`). Checked against PagerDuty's developer docs
 * (2026-12): 202 accepted, 400 invalid event (not retried), 429 and 5xx retried later.
 *
 * The workflow names a paging **target** (a rotation or a person's paging target); the worker
 * resolves it to a routing key from its configuration, so the key never enters an activity's
 * input, result, failure or the history. Failures are typed on the shared HTTP-failure base.
 */
import { recordedRoster, rosterRoutingKey, type RosterDeps } from './roster';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Severity } from '../domain';
import type { PagingErrorName } from '../shared';
import { failureKind, HttpFailure, retryAfterMs, type HttpFailureInit } from './http-errors';

export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com';
export const PAGERDUTY_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type PagerDutySeverity = (typeof PAGERDUTY_SEVERITIES)[number];
/** The documented limits of an event's fields. */
const LIMITS = { dedupKey: 255, summary: 1024 } as const;


/** What the worker knows to page: where the Events API is, and each target's routing key. */
export interface PagingDeps {
  /** Base URL, default https://events.pagerduty.com; the sandbox's URL in sandbox mode. */
  eventsUrl: string;
  /** The routing key (Events API v2 integration key) of a target, or undefined when it has none. */
  routingKeyFor: (target: string) => string | undefined;
  /** The targets that have a key, for the message that names an unknown one. */
  targets: () => string[];
  /** `payload.source` of every alert (PAGERDUTY_SOURCE). */
  source: string;
  /** The Temporal UI and namespace: each alert links the incident's page. */
  uiUrl?: string;
  namespace?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

// -- failures ---------------------------------------------------------------------------------

interface PagingErrorInit extends HttpFailureInit {
  target: string;
  /** PagerDuty's `errors` of a 400 (routing keys scrubbed). */
  errors?: string[];
}

export abstract class PagingError extends HttpFailure {
  abstract override readonly name: PagingErrorName;
  readonly target: string;
  readonly errors: string[];

  constructor(message: string, init: PagingErrorInit) {
    const { target, errors, ...http } = init;
    super(message, http);
    this.target = target;
    this.errors = errors ?? [];
  }

  toDetails(): { operation: string; target: string; status: number | null; errors: string[] } {
    return { operation: this.operation, target: this.target, status: this.status ?? null, errors: this.errors };
  }
}

/** 5xx, a network error or a timeout: retried. */
export class PagingUnavailable extends PagingError {
  override readonly name = 'PagingUnavailable' as const;
  readonly retryable = true;
}
/** 429: retried after `Retry-After` when sent, else by the retry policy's backoff. */
export class PagingRateLimited extends PagingError {
  override readonly name = 'PagingRateLimited' as const;
  readonly retryable = true;
}
/** 400 "invalid event" (an unknown routing key included) or another 4xx: the event or the key is wrong. */
export class PagingEventRejected extends PagingError {
  override readonly name = 'PagingEventRejected' as const;
  readonly retryable = false;
}
/** The worker has no routing key for this target: a configuration mistake. */
export class PagingTargetUnknown extends PagingError {
  override readonly name = 'PagingTargetUnknown' as const;
  readonly retryable = false;
}

// -- what an event says -----------------------------------------------------------------------

// eslint-disable-next-line no-control-regex -- stripping control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * One line of at most `max` characters: control and bidi characters become spaces, runs of
 * blanks one space, and a longer text ends with "…". Summaries come from incident input; this is
 * a local stand-in until the shared rendering helpers exist.
 */
export function oneLine(text: string, max: number = LIMITS.summary): string {
  const flat = text.replace(CONTROL, ' ').replace(/\p{Cs}/gu, '\uFFFD').replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  let cut = flat.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** `<incident>/<step>`, at most 255 characters: a longer one keeps its start and a hash of the whole. */
export function dedupKeyFor(incidentId: string, step: string): string {
  const key = `${incidentId}/${step}`;
  if (key.length <= LIMITS.dedupKey) return key;
  return `${key.slice(0, LIMITS.dedupKey - 17)}~${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/** The incident's severity as PagerDuty's: critical → critical, high → error, medium → warning, low → info. */
export function pagerDutySeverity(severity: Severity): PagerDutySeverity {
  return ({ critical: 'critical', high: 'error', medium: 'warning', low: 'info' } as const)[severity];
}

const target = z.string().trim().min(1).max(200).regex(/^[^\p{Cc}]*$/u, 'must be one line');
const incidentId = z.string().min(1).max(1000);
const link = z.object({ href: z.url({ protocol: /^https?$/ }), text: z.string().max(1000).optional() }).strict();

export const pageTriggerInput = z
  .object({
    incidentId,
    step: z.string().min(1).max(100),
    target,
    summary: z.string().min(1).max(100_000),
    severity: z.enum(PAGERDUTY_SEVERITIES),
    /** Links besides the incident's page in the Temporal UI (added when the worker knows the UI). */
    links: z.array(link).max(10).optional(),
    /** The exact commands that decide or confirm the step, shown in the alert's details. */
    commands: z.array(z.string().max(2000)).max(10).optional(),
    /** `payload.group`, e.g. the incident category. */
    group: z.string().max(200).optional(),
    details: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type PageTriggerInput = z.input<typeof pageTriggerInput>;

export const pageUpdateInput = z.object({ incidentId, step: z.string().min(1).max(100), target }).strict();
export type PageUpdateInput = z.input<typeof pageUpdateInput>;

export const pageChangeInput = z
  .object({ incidentId, target, summary: z.string().min(1).max(100_000), links: z.array(link).max(10).optional(), details: z.record(z.string(), z.unknown()).optional() })
  .strict();
export type PageChangeInput = z.input<typeof pageChangeInput>;

/** What a paging activity returns: never the routing key. `not_configured`: the worker pages nobody (no PagerDuty configured). */
export type PageResult =
  | { delivered: 'pagerduty'; target: string; action: 'trigger' | 'acknowledge' | 'resolve' | 'change'; dedupKey?: string }
  | { delivered: 'not_configured'; target: string; action: 'trigger' | 'acknowledge' | 'resolve' | 'change'; dedupKey?: string };

// -- the client -------------------------------------------------------------------------------

interface EventCall {
  operation: 'POST /v2/enqueue' | 'POST /v2/change/enqueue';
  target: string;
  body: Record<string, unknown>;
}

const scrub = (text: string, secret: string) => (secret ? text.split(secret).join('<routing key>') : text);

/** PagerDuty's error body `{status, message, errors}`, or the start of whatever else came back. */
function answerErrors(text: string): { message?: string; errors: string[] } {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object') {
      const { message, errors } = parsed as { message?: unknown; errors?: unknown };
      return { ...(typeof message === 'string' ? { message } : {}), errors: Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string').slice(0, 20) : [] };
    }
  } catch {
    // not JSON: fall through
  }
  const start = text.trim().slice(0, 200);
  return start ? { message: start, errors: [] } : { errors: [] };
}

function resolveKey(deps: PagingDeps, name: string, operation: string): string {
  const key = deps.routingKeyFor(name);
  if (key) return key;
  const known = deps.targets();
  throw new PagingTargetUnknown(`paging: no routing key for target "${name}" (configured: ${known.length ? known.join(', ') : 'none'}); add it to PAGERDUTY_ROUTING_KEYS (docs/paging.md)`, { operation, target: name });
}

/** POSTs one event; resolves on 202, throws a `PagingError` otherwise. The routing key is in the body only and scrubbed from every message. */
async function sendEvent(deps: PagingDeps, call: EventCall): Promise<void> {
  const routingKey = resolveKey(deps, call.target, call.operation);
  const url = `${deps.eventsUrl.replace(/\/+$/, '')}${call.operation.slice(5)}`;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const init = { operation: call.operation, target: call.target };
  let res: Response;
  try {
    res = await (deps.fetch ?? fetch)(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ routing_key: routingKey, ...call.body }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (err) {
    const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
    const why = timedOut ? `no answer within ${timeoutMs} ms` : err instanceof Error ? err.message : String(err);
    throw new PagingUnavailable(`paging ${call.target}: ${call.operation} failed: ${scrub(why, routingKey)}`, init);
  }
  const text = await res.text().catch(() => '');
  if (res.ok) return;
  const said = answerErrors(scrub(text, routingKey));
  const detail = said.errors.length ? `: ${said.errors.join('; ')}` : said.message ? `: ${said.message}` : '';
  const wait = retryAfterMs(res.headers);
  const http = { ...init, status: res.status, errors: said.errors, ...(wait !== undefined ? { retryAfterMs: wait } : {}) };
  switch (failureKind(res.status, [])) {
    case 'rate_limited':
      throw new PagingRateLimited(`paging ${call.target}: PagerDuty rate limited the event (429)${detail}`, http);
    case 'unavailable':
      throw new PagingUnavailable(`paging ${call.target}: PagerDuty answered ${res.status}${detail}`, http);
    default:
      throw new PagingEventRejected(`paging ${call.target}: PagerDuty refused the event (${res.status})${detail}; check the target's routing key in PAGERDUTY_ROUTING_KEYS if it says so`, http);
  }
}

function incidentLink(deps: PagingDeps, id: string): { href: string; text: string }[] {
  if (!deps.uiUrl) return [];
  return [{ href: `${deps.uiUrl.replace(/\/+$/, '')}/namespaces/${deps.namespace ?? 'default'}/workflows/${encodeURIComponent(id)}`, text: 'Incident in the Temporal UI' }];
}

const links = (ls: { href: string; text?: string | undefined }[]) => ls.map((l) => (l.text === undefined ? { href: l.href } : { href: l.href, text: oneLine(l.text, 200) }));

/** The activity's input, parsed; bad input leaves as a non-retryable PagingEventRejected failure naming the field. */
function parse<S extends z.ZodType>(schema: S, input: unknown, operation: string): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue ? `${['input', ...issue.path.map(String)].join('.')}: ${issue.message}` : 'invalid input';
  const name = typeof input === 'object' && input !== null && 'target' in input ? String((input as { target: unknown }).target).slice(0, 200) : '(none)';
  throw new PagingEventRejected(`paging: ${operation}: ${where}`, { operation, target: name }).toApplicationFailure();
}

/**
 * The paging activities. Without PagerDuty configured they page nobody and say so
 * (`delivered: 'not_configured'`), so an incident never waits on paging it does not have.
 */
export function createPagingActivities(paging: () => PagingDeps | undefined) {
  const run = async (operation: string, targetName: string, action: PageResult['action'], dedupKey: string | undefined, send: (deps: PagingDeps) => Promise<void>): Promise<PageResult> => {
    const base = { target: targetName, action, ...(dedupKey !== undefined ? { dedupKey } : {}) };
    const deps = paging();
    if (!deps) return { delivered: 'not_configured', ...base };
    try {
      await send(deps);
    } catch (err) {
      if (err instanceof PagingError) throw err.toApplicationFailure();
      throw err;
    }
    return { delivered: 'pagerduty', ...base };
  };

  const update = (action: 'acknowledge' | 'resolve') => async (input: PageUpdateInput) => {
    const i = parse(pageUpdateInput, input, `page${action === 'acknowledge' ? 'Acknowledge' : 'Resolve'}`);
    const dedupKey = dedupKeyFor(i.incidentId, i.step);
    return run('POST /v2/enqueue', i.target, action, dedupKey, (deps) => sendEvent(deps, { operation: 'POST /v2/enqueue', target: i.target, body: { event_action: action, dedup_key: dedupKey } }));
  };

  return {
    /** Pages `target` for a step that needs someone: one alert per incident and step (a second trigger joins it). */
    async pageTrigger(input: PageTriggerInput): Promise<PageResult> {
      const i = parse(pageTriggerInput, input, 'pageTrigger');
      const dedupKey = dedupKeyFor(i.incidentId, i.step);
      return run('POST /v2/enqueue', i.target, 'trigger', dedupKey, (deps) => {
        const ui = incidentLink(deps, i.incidentId);
        return sendEvent(deps, {
          operation: 'POST /v2/enqueue',
          target: i.target,
          body: {
            event_action: 'trigger',
            dedup_key: dedupKey,
            payload: {
              summary: oneLine(i.summary),
              source: deps.source,
              severity: i.severity,
              timestamp: new Date().toISOString(),
              component: 'clerk',
              class: oneLine(i.step, 100),
              ...(i.group ? { group: oneLine(i.group, 200) } : {}),
              custom_details: { ...i.details, incident_id: i.incidentId, step: i.step, ...(i.commands ? { commands: i.commands.map((c) => oneLine(c, 2000)) } : {}) },
            },
            links: [...ui, ...links(i.links ?? [])],
            client: 'clerk-incident-runbook',
            ...(ui[0] ? { client_url: ui[0].href } : {}),
          },
        });
      });
    },

    /** Someone decided: the step's alert at `target` stops notifying. */
    pageAcknowledge: update('acknowledge'),

    /** The step or the incident is over: the step's alert at `target` closes. */
    pageResolve: update('resolve'),

    /** Records a mitigation applied (bypass on, key rotated, rollback) as a change event on `target`'s service. */
    async pageChange(input: PageChangeInput): Promise<PageResult> {
      const i = parse(pageChangeInput, input, 'pageChange');
      return run('POST /v2/change/enqueue', i.target, 'change', undefined, (deps) =>
        sendEvent(deps, {
          operation: 'POST /v2/change/enqueue',
          target: i.target,
          body: {
            payload: { summary: oneLine(i.summary), source: deps.source, timestamp: new Date().toISOString(), custom_details: { ...i.details, incident_id: i.incidentId } },
            links: [...incidentLink(deps, i.incidentId), ...links(i.links ?? [])],
          },
        }),
      );
    },
  };
}


// -- configuration ----------------------------------------------------------------------------

/** The paging settings of `Env` (src/config.ts validates them). */
export interface PagingEnv {
  PAGERDUTY_EVENTS_URL?: string | undefined;
  PAGERDUTY_ROUTING_KEYS?: Record<string, string> | undefined;
  PAGERDUTY_SOURCE: string;
}

/**
 * The worker's paging from its environment; undefined (page nobody) without routing keys. In
 * sandbox mode with none configured, the sandbox's two keys are targets `primary` and `secondary`
 * and events go to the sandbox.
 */
export function pagingFromEnv(
  env: PagingEnv,
  opts: { sandbox?: { url: string; routingKeys: string[] }; uiUrl?: string; namespace?: string; roster?: RosterDeps } = {},
): PagingDeps | undefined {
  const sandboxKeys = opts.sandbox ? Object.fromEntries(opts.sandbox.routingKeys.slice(0, 2).map((k, i) => [i === 0 ? 'primary' : 'secondary', k])) : undefined;
  const keys = env.PAGERDUTY_ROUTING_KEYS ?? sandboxKeys ?? {};
  const roster = opts.roster;
  if (!Object.keys(keys).length && !roster) return undefined;
  const map = new Map(Object.entries(keys));
  // A roster's targets (`person:alice`, `rotation:auth-oncall`) take their keys from the roster in force.
  const fromRoster = (t: string) => (roster ? rosterRoutingKey(roster.current(), t) : undefined);
  const rosterTargets = () => (roster ? recordedRoster(roster.current()).pageable : []);
  return {
    eventsUrl: env.PAGERDUTY_EVENTS_URL ?? (env.PAGERDUTY_ROUTING_KEYS ? undefined : opts.sandbox?.url) ?? PAGERDUTY_EVENTS_URL,
    routingKeyFor: (t) => map.get(t) ?? fromRoster(t),
    targets: () => [...map.keys(), ...rosterTargets()],
    source: env.PAGERDUTY_SOURCE,
    ...(opts.uiUrl ? { uiUrl: opts.uiUrl } : {}),
    ...(opts.namespace ? { namespace: opts.namespace } : {}),
  };
}
