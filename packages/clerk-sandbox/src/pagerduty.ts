/**
 * The sandbox's PagerDuty Events API v2 (routes/pagerduty.ts): which routing keys (integration
 * keys) exist, one alert per routing key and `dedup_key` (triggered → acknowledged → resolved),
 * change events, and a log of every event accepted or refused, so a drill judges who was paged
 * from the service's own records. Validation follows PagerDuty's developer docs (Send an Alert
 * Event, Send a Change Event, Response Codes); the error wording is the sandbox's.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { PAGERDUTY_ROUTES } from './schemas';

export const PAGERDUTY_ACTIONS = ['trigger', 'acknowledge', 'resolve'] as const;
export type PagerDutyAction = (typeof PAGERDUTY_ACTIONS)[number];
export const PAGERDUTY_SEVERITIES = ['critical', 'error', 'warning', 'info'] as const;
export type PagerDutySeverity = (typeof PAGERDUTY_SEVERITIES)[number];
export type AlertStatus = 'triggered' | 'acknowledged' | 'resolved';
export type PagerDutyEndpoint = 'enqueue' | 'change';

/** PagerDuty's documented limits. */
export const PAGERDUTY_LIMITS = { routingKeyLength: 32, dedupKeyMax: 255, summaryMax: 1024, eventsPerMinute: 120 } as const;

export interface PagerDutyLink {
  href: string;
  text?: string;
}

/** An alert as PagerDuty keeps it: opened by a trigger, closed by a resolve; a trigger after that opens a new one. */
export interface SandboxAlert {
  id: string;
  routingKey: string;
  dedupKey: string;
  status: AlertStatus;
  summary: string;
  severity: PagerDutySeverity;
  source: string;
  createdAt: string;
  updatedAt: string;
  /** Trigger events applied to it (the first one included). */
  triggers: number;
  /** Each event applied, in order. */
  history: { time: string; action: PagerDutyAction }[];
  links: PagerDutyLink[];
  customDetails?: unknown;
}

export interface PagerDutyLogEntry {
  seq: number;
  time: string;
  endpoint: PagerDutyEndpoint;
  /** The HTTP status answered: 202 accepted, 400 invalid, 429 rate limited, 5xx injected. */
  status: number;
  outcome: 'accepted' | 'invalid' | 'rate_limited' | 'failed';
  /** What an accepted event did: an alert opened, a trigger added to the open one, a state change, or nothing (no open alert). */
  effect?: 'opened' | 'retriggered' | 'acknowledged' | 'resolved' | 'dropped' | 'recorded';
  routingKey: string | null;
  eventAction?: PagerDutyAction;
  dedupKey?: string;
  summary?: string;
  severity?: PagerDutySeverity;
  errors?: string[];
  /** The event as received (so a drill can read its links and details). */
  event: unknown;
}

export interface ChangeEventRecord {
  time: string;
  routingKey: string;
  summary: string;
  source?: string;
  timestamp?: string;
  customDetails?: unknown;
  links: PagerDutyLink[];
}

export const PAGERDUTY_FAIL_STATUSES = [429, 500, 502, 503] as const;

const routingKeyString = z.string().regex(/^[A-Za-z0-9]{32}$/, 'must be 32 letters or digits (an Events API v2 integration key)');
const failRule = z
  .object({
    status: z.literal(PAGERDUTY_FAIL_STATUSES),
    count: z.number().int().min(1).max(1000),
    route: z.enum(PAGERDUTY_ROUTES).optional(),
    /** Sent as `Retry-After` (seconds); PagerDuty does not document one, so none unless set. */
    retryAfterSeconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict();
type FailRule = z.output<typeof failRule>;

export const pagerDutySettingsSchema = z
  .object({
    /** The integration keys that exist (replaces the list); any other well-formed key is refused as PagerDuty refuses it. */
    routingKeys: z.array(routingKeyString).max(100).optional(),
    /** The next `count` events (of `route`, or any) answer `status` and are not ingested; a list applies each rule in turn. */
    failNext: z.union([failRule, z.array(failRule).max(20)]).nullable().optional(),
    /** Events accepted per routing key per 60 s before 429 (PagerDuty: about 120); null: no limit. */
    rateLimitPerMinute: z.number().int().min(1).max(100_000).nullable().optional(),
  })
  .strict();
export type PagerDutySettings = z.input<typeof pagerDutySettingsSchema>;

/** A new integration key: 32 letters and digits, as PagerDuty's are. */
export function newRoutingKey(): string {
  let key = '';
  while (key.length < PAGERDUTY_LIMITS.routingKeyLength) key += randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, '');
  return key.slice(0, PAGERDUTY_LIMITS.routingKeyLength);
}

// -- validation -------------------------------------------------------------------------------

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const blank = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

function checkRoutingKey(v: unknown, errors: string[]): void {
  if (blank(v)) return void errors.push("'routing_key' is missing or blank");
  if (typeof v !== 'string') return void errors.push("'routing_key' must be a string");
  if (v.length !== PAGERDUTY_LIMITS.routingKeyLength) errors.push(`Length of 'routing_key' is incorrect (should be ${PAGERDUTY_LIMITS.routingKeyLength} characters)`);
  if (!/^[A-Za-z0-9]*$/.test(v)) errors.push("'routing_key' cannot contain non-alphanumeric characters.");
}

function checkString(obj: Record<string, unknown>, field: string, path: string, errors: string[], opts: { required?: boolean; max?: number } = {}): void {
  const v = obj[field];
  if (blank(v)) {
    if (opts.required) errors.push(`'${path}' is missing or blank`);
    return;
  }
  if (typeof v !== 'string') return void errors.push(`'${path}' must be a string`);
  if (opts.max !== undefined && v.length > opts.max) errors.push(`'${path}' is too long (maximum is ${opts.max} characters)`);
}

function checkTimestamp(payload: Record<string, unknown>, path: string, errors: string[]): void {
  const v = payload.timestamp;
  if (v === undefined || v === null) return;
  if (typeof v !== 'string' || !ISO_8601.test(v) || Number.isNaN(Date.parse(v))) errors.push(`'${path}' is invalid (must be an ISO 8601 timestamp)`);
}

function checkLinks(body: Record<string, unknown>, errors: string[]): void {
  const links = body.links;
  if (links === undefined || links === null) return;
  if (!Array.isArray(links)) return void errors.push("'links' must be an array");
  links.forEach((l, i) => {
    if (!isObject(l) || typeof l.href !== 'string' || l.href.trim() === '') errors.push(`'links[${i}].href' is missing or blank`);
    else if (l.text !== undefined && typeof l.text !== 'string') errors.push(`'links[${i}].text' must be a string`);
  });
}

function checkImages(body: Record<string, unknown>, errors: string[]): void {
  const images = body.images;
  if (images === undefined || images === null) return;
  if (!Array.isArray(images)) return void errors.push("'images' must be an array");
  images.forEach((img, i) => {
    if (!isObject(img) || typeof img.src !== 'string' || img.src.trim() === '') errors.push(`'images[${i}].src' is missing or blank`);
    else if (!img.src.startsWith('https://')) errors.push(`'images[${i}].src' must be served over HTTPS`);
  });
}

/** Every problem of an alert event (`POST /v2/enqueue`), as PagerDuty lists them in `errors`; empty when valid. */
export function alertEventErrors(body: unknown): string[] {
  if (!isObject(body)) return ['Event object is invalid: the body must be a JSON object'];
  const errors: string[] = [];
  checkRoutingKey(body.routing_key, errors);
  const action = body.event_action;
  if (blank(action)) errors.push("'event_action' is missing or blank");
  else if (!(PAGERDUTY_ACTIONS as readonly unknown[]).includes(action)) errors.push(`'event_action' is invalid (must be one of: ${PAGERDUTY_ACTIONS.join(', ')})`);
  checkString(body, 'dedup_key', 'dedup_key', errors, { required: action === 'acknowledge' || action === 'resolve', max: PAGERDUTY_LIMITS.dedupKeyMax });
  if (action === 'trigger') {
    const payload = body.payload;
    if (!isObject(payload)) {
      errors.push("'payload' is missing or blank");
    } else {
      checkString(payload, 'summary', 'payload.summary', errors, { required: true, max: PAGERDUTY_LIMITS.summaryMax });
      checkString(payload, 'source', 'payload.source', errors, { required: true });
      if (blank(payload.severity)) errors.push("'payload.severity' is missing or blank");
      else if (!(PAGERDUTY_SEVERITIES as readonly unknown[]).includes(payload.severity)) errors.push(`'payload.severity' is invalid (must be one of: ${PAGERDUTY_SEVERITIES.join(', ')})`);
      checkTimestamp(payload, 'payload.timestamp', errors);
      for (const field of ['component', 'group', 'class']) checkString(payload, field, `payload.${field}`, errors);
    }
    checkImages(body, errors);
    checkLinks(body, errors);
    checkString(body, 'client', 'client', errors);
    checkString(body, 'client_url', 'client_url', errors);
  }
  return errors;
}

/** Every problem of a change event (`POST /v2/change/enqueue`); empty when valid. */
export function changeEventErrors(body: unknown): string[] {
  if (!isObject(body)) return ['Event object is invalid: the body must be a JSON object'];
  const errors: string[] = [];
  checkRoutingKey(body.routing_key, errors);
  const payload = body.payload;
  if (!isObject(payload)) {
    errors.push("'payload' is missing or blank");
  } else {
    checkString(payload, 'summary', 'payload.summary', errors, { required: true, max: PAGERDUTY_LIMITS.summaryMax });
    checkString(payload, 'source', 'payload.source', errors);
    checkTimestamp(payload, 'payload.timestamp', errors);
  }
  checkLinks(body, errors);
  return errors;
}

// -- state ------------------------------------------------------------------------------------

export type PagerDutyAnswer =
  | { status: 202; body: { status: 'success'; message: string; dedup_key?: string } }
  | { status: 400; body: { status: 'invalid event'; message: string; errors: string[] } }
  | { status: 429; body: { status: 'throttle event'; message: string }; retryAfterSeconds?: number }
  | { status: 500 | 502 | 503; body: { status: 'error'; message: string } };

export class PagerDutySandbox {
  readonly routingKeys = new Set<string>();
  rateLimitPerMinute: number | null = PAGERDUTY_LIMITS.eventsPerMinute;
  failNext: FailRule[] = [];
  private alerts: SandboxAlert[] = [];
  private changes: ChangeEventRecord[] = [];
  private log: PagerDutyLogEntry[] = [];
  private seq = 0;
  /** Accepted-or-throttled event times per routing key, for the 60 s window. */
  private readonly recent = new Map<string, number[]>();

  constructor(routingKeys: readonly string[] = [newRoutingKey(), newRoutingKey()]) {
    for (const k of routingKeys) this.routingKeys.add(k);
  }

  /** Empty log, no alerts or change events, no injected failures; the routing keys and rate limit stay. */
  reset(): void {
    this.alerts = [];
    this.changes = [];
    this.log = [];
    this.failNext = [];
    this.recent.clear();
  }

  settings(body: z.output<typeof pagerDutySettingsSchema>): void {
    if (body.routingKeys !== undefined) {
      this.routingKeys.clear();
      for (const k of body.routingKeys) this.routingKeys.add(k);
    }
    if (body.failNext !== undefined) this.failNext = body.failNext === null ? [] : (Array.isArray(body.failNext) ? body.failNext : [body.failNext]).map((r) => ({ ...r }));
    if (body.rateLimitPerMinute !== undefined) this.rateLimitPerMinute = body.rateLimitPerMinute;
  }

  /** Handles one event as the Events API would, and logs it. */
  receive(endpoint: PagerDutyEndpoint, body: unknown, now = Date.now()): PagerDutyAnswer {
    const route = endpoint === 'enqueue' ? 'POST /v2/enqueue' : 'POST /v2/change/enqueue';
    const event = isObject(body) ? body : {};
    const routingKey = typeof event.routing_key === 'string' ? event.routing_key : null;
    const base = { endpoint, routingKey, event: body ?? null, ...this.describe(event) };

    const injected = this.takeFailure(route);
    if (injected) {
      const answer: PagerDutyAnswer =
        injected.status === 429
          ? { status: 429, body: { status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later. (sandbox failNext)' }, ...(injected.retryAfterSeconds !== undefined ? { retryAfterSeconds: injected.retryAfterSeconds } : {}) }
          : { status: injected.status, body: { status: 'error', message: `PagerDuty could not process the event (sandbox failNext ${injected.status})` } };
      this.record({ ...base, status: injected.status, outcome: injected.status === 429 ? 'rate_limited' : 'failed' }, now);
      return answer;
    }

    const errors = endpoint === 'enqueue' ? alertEventErrors(body) : changeEventErrors(body);
    // A well-formed key that belongs to no Events API v2 integration is refused, not accepted and dropped.
    if (!errors.length && routingKey && !this.routingKeys.has(routingKey)) errors.push('Invalid routing key');
    if (errors.length) {
      this.record({ ...base, status: 400, outcome: 'invalid', errors }, now);
      return { status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } };
    }

    if (this.throttled(routingKey as string, now)) {
      this.record({ ...base, status: 429, outcome: 'rate_limited' }, now);
      return { status: 429, body: { status: 'throttle event', message: 'Requests for this service are arriving too quickly. Please retry later.' } };
    }

    if (endpoint === 'change') {
      this.recordChange(event as Record<string, unknown> & { payload: Record<string, unknown> }, routingKey as string, now);
      this.record({ ...base, status: 202, outcome: 'accepted', effect: 'recorded' }, now);
      return { status: 202, body: { status: 'success', message: 'Change event processed' } };
    }
    const dedupKey = typeof event.dedup_key === 'string' && event.dedup_key !== '' ? event.dedup_key : randomUUID().replace(/-/g, '');
    const effect = this.apply(event, routingKey as string, dedupKey, now);
    this.record({ ...base, dedupKey, status: 202, outcome: 'accepted', effect }, now);
    return { status: 202, body: { status: 'success', message: 'Event processed', dedup_key: dedupKey } };
  }

  /** A request refused before it is an event (a body that is not JSON): logged like any invalid event. */
  refuse(endpoint: PagerDutyEndpoint, errors: string[], now = Date.now()): PagerDutyAnswer {
    this.record({ endpoint, routingKey: null, event: null, status: 400, outcome: 'invalid', errors }, now);
    return { status: 400, body: { status: 'invalid event', message: 'Event object is invalid', errors } };
  }

  private describe(event: Record<string, unknown>): Pick<PagerDutyLogEntry, 'eventAction' | 'dedupKey' | 'summary' | 'severity'> {
    const payload = isObject(event.payload) ? event.payload : {};
    return {
      ...((PAGERDUTY_ACTIONS as readonly unknown[]).includes(event.event_action) ? { eventAction: event.event_action as PagerDutyAction } : {}),
      ...(typeof event.dedup_key === 'string' ? { dedupKey: event.dedup_key } : {}),
      ...(typeof payload.summary === 'string' ? { summary: payload.summary } : {}),
      ...((PAGERDUTY_SEVERITIES as readonly unknown[]).includes(payload.severity) ? { severity: payload.severity as PagerDutySeverity } : {}),
    };
  }

  private takeFailure(route: string): FailRule | null {
    const f = this.failNext.find((r) => !r.route || r.route === route);
    if (!f) return null;
    f.count -= 1;
    if (f.count <= 0) this.failNext.splice(this.failNext.indexOf(f), 1);
    return f;
  }

  private throttled(routingKey: string, now: number): boolean {
    if (this.rateLimitPerMinute === null) return false;
    const times = (this.recent.get(routingKey) ?? []).filter((t) => t > now - 60_000);
    this.recent.set(routingKey, times);
    if (times.length >= this.rateLimitPerMinute) return true;
    times.push(now);
    return false;
  }

  /** Applies an accepted alert event to the open alert of (routing key, dedup key), if any. */
  private apply(event: Record<string, unknown>, routingKey: string, dedupKey: string, now: number): NonNullable<PagerDutyLogEntry['effect']> {
    const time = new Date(now).toISOString();
    const action = event.event_action as PagerDutyAction;
    const open = this.alerts.find((a) => a.routingKey === routingKey && a.dedupKey === dedupKey && a.status !== 'resolved');
    if (action === 'trigger') {
      const payload = event.payload as Record<string, unknown>;
      if (open) {
        open.triggers += 1;
        open.updatedAt = time;
        open.history.push({ time, action });
        return 'retriggered';
      }
      this.alerts.push({
        id: `Q${randomBytes(9).toString('hex').toUpperCase().slice(0, 13)}`,
        routingKey,
        dedupKey,
        status: 'triggered',
        summary: payload.summary as string,
        severity: payload.severity as PagerDutySeverity,
        source: payload.source as string,
        createdAt: time,
        updatedAt: time,
        triggers: 1,
        history: [{ time, action }],
        links: Array.isArray(event.links) ? (event.links as PagerDutyLink[]) : [],
        ...(payload.custom_details !== undefined ? { customDetails: payload.custom_details } : {}),
      });
      return 'opened';
    }
    // Acknowledge or resolve with no open alert (never triggered, resolved, or another routing key): dropped.
    if (!open) return 'dropped';
    open.history.push({ time, action });
    open.updatedAt = time;
    if (action === 'resolve') {
      open.status = 'resolved';
      return 'resolved';
    }
    // Acknowledging an acknowledged alert changes nothing but is still applied.
    open.status = 'acknowledged';
    return 'acknowledged';
  }

  private recordChange(event: Record<string, unknown> & { payload: Record<string, unknown> }, routingKey: string, now: number): void {
    const p = event.payload;
    this.changes.push({
      time: new Date(now).toISOString(),
      routingKey,
      summary: p.summary as string,
      ...(typeof p.source === 'string' ? { source: p.source } : {}),
      ...(typeof p.timestamp === 'string' ? { timestamp: p.timestamp } : {}),
      ...(p.custom_details !== undefined ? { customDetails: p.custom_details } : {}),
      links: Array.isArray(event.links) ? (event.links as PagerDutyLink[]) : [],
    });
    if (this.changes.length > 1000) this.changes.shift();
  }

  private record(entry: Omit<PagerDutyLogEntry, 'seq' | 'time'>, now: number): void {
    this.seq += 1;
    this.log.push({ seq: this.seq, time: new Date(now).toISOString(), ...entry });
    if (this.log.length > 1000) this.log.shift();
  }

  entries(): PagerDutyLogEntry[] {
    return [...this.log];
  }

  /** The alerts, oldest first; `dedupKey` narrows to one key (several alerts when it was resolved and triggered again). */
  alertList(dedupKey?: string): SandboxAlert[] {
    return this.alerts.filter((a) => dedupKey === undefined || a.dedupKey === dedupKey).map((a) => ({ ...a, history: [...a.history] }));
  }

  changeEvents(): ChangeEventRecord[] {
    return [...this.changes];
  }

  /** What `GET /__sandbox/pagerduty` shows. */
  overview(): PagerDutyOverview {
    return {
      routingKeys: [...this.routingKeys],
      rateLimitPerMinute: this.rateLimitPerMinute,
      failNext: this.failNext.map((r) => ({ ...r })),
      alerts: this.alertList(),
      changeEvents: this.changeEvents(),
      log: this.entries(),
    };
  }
}

export interface PagerDutyOverview {
  routingKeys: string[];
  rateLimitPerMinute: number | null;
  failNext: FailRule[];
  alerts: SandboxAlert[];
  changeEvents: ChangeEventRecord[];
  log: PagerDutyLogEntry[];
}
