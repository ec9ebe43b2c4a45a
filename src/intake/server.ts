/**
 * The alert intake (docs/alert-intake.md): `POST /alerts/alertmanager` and `POST /alerts/grafana`
 * take the webhook of Prometheus Alertmanager (payload version 4) and of Grafana alerting, behind
 * a bearer token. Each alert is mapped by the rules (src/intake/rules.ts) to a category; firing
 * alerts open or join that category's incident, resolved ones are reported to it, through an
 * injected `IncidentOpener` (src/intake/temporal-opener.ts in production). Alerts no rule maps
 * are answered 202 and logged as `alert_unmapped`, never dropped silently.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { IncidentCategory, Severity } from '../domain';
import { SEVERITIES } from '../domain';
import { isZeroTime, payloadSchemas, type Alert, type AlertPayload, type AlertSource } from './payloads';
import { mapAlert, type AlertRule } from './rules';
import { redactSecrets } from '../secret-patterns';

// -- what the intake asks of the incident side ----------------------------------------------------

export type DetectedBy = `alert:${string}` | 'watch';

export interface OpenOrJoinRequest {
  category: IncidentCategory;
  severity: Severity;
  /** `<groupKey>|<category>`: the same for every notification of one Alertmanager group. */
  dedupKey: string;
  detectedBy: DetectedBy;
  /** The earliest `startsAt` of the group's firing alerts: the detection time for MTTD. */
  startsAt: string;
  /** One line per alert (at most MAX_EVIDENCE), plain text, each at most MAX_EVIDENCE_CHARS. */
  evidence: string[];
}

export interface OpenOrJoinResult {
  incidentId: string;
  /** True when an incident of this category was already open and the alert joined it. */
  joined: boolean;
  /** Whether the incident's timeline says so: false when the same source had already reported it (counted only). */
  recorded?: boolean;
  /** The incident's run the alert opened or joined. */
  runId?: string;
}

export interface AlertResolvedNotice {
  category: IncidentCategory;
  dedupKey: string;
  detectedBy: DetectedBy;
  /** The latest `endsAt` of the group's resolved alerts. */
  endsAt: string;
  evidence: string[];
}

export interface AlertResolvedResult {
  /** The open incident of that category, if there is one. */
  incidentId?: string;
  /** Whether the incident's timeline now says so. */
  recorded: boolean;
}

export interface IncidentOpener {
  openOrJoin(req: OpenOrJoinRequest): Promise<OpenOrJoinResult>;
  alertResolved(notice: AlertResolvedNotice): Promise<AlertResolvedResult>;
}

// -- evidence: input-derived text, so one line and bounded ----------------------------------------

export const MAX_EVIDENCE = 20;
export const MAX_EVIDENCE_CHARS = 300;

// eslint-disable-next-line no-control-regex -- removing control characters (and line separators) is the point
const NOT_PLAIN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|\p{Cs}/gu;

/** Control characters (newlines, escapes) become spaces, runs of space one, and the result is cut at `max`. */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(NOT_PLAIN, ' ').replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** One line per alert; a secret pasted into an annotation is redacted (the incident's input refuses secrets, which would refuse the alert). */
function evidenceLine(alert: Alert): string {
  const name = alert.labels.alertname ?? '(no alertname)';
  const what = alert.annotations.summary ?? alert.annotations.description ?? '';
  const since = alert.status === 'firing' ? `since ${alert.startsAt}` : `ended ${isZeroTime(alert.endsAt) ? 'now' : alert.endsAt}`;
  return oneLine(redactSecrets(`${alert.status} ${name} [${alert.fingerprint}] ${since}${what ? `: ${what}` : ''}${alert.generatorURL ? ` (${alert.generatorURL})` : ''}`), MAX_EVIDENCE_CHARS);
}

const evidenceOf = (alerts: Alert[], truncated: number): string[] => {
  const total = alerts.length + truncated;
  if (total <= MAX_EVIDENCE) return alerts.map(evidenceLine);
  const shown = alerts.slice(0, MAX_EVIDENCE - 1).map(evidenceLine);
  return [...shown, `and ${total - shown.length} more alerts of this group`];
};

// -- the server ------------------------------------------------------------------------------------

/** One structured log line (JSON): `alert_unmapped`, `alert_opened`, `alert_resolved`, `alert_dispatch_failed`. */
export type IntakeLog = (entry: { event: string } & Record<string, unknown>) => void;
export const jsonLineLog: IntakeLog = (entry) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);

export interface AlertIntakeOptions {
  token: string;
  rules: readonly AlertRule[];
  opener: IncidentOpener;
  bodyLimit?: number;
  log?: IntakeLog;
}

/** What a 202 answers, so the sender's logs (and the tests) see what became of each alert. */
export interface IntakeAnswer {
  received: number;
  unmapped: number;
  incidents: { category: IncidentCategory; incidentId: string; joined: boolean }[];
  resolved: { category: IncidentCategory; incidentId?: string; recorded: boolean }[];
}

/** Constant-time: both sides hashed to the same length first, so neither length nor content leaks through timing. */
const sameSecret = (given: string, expected: string) =>
  timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(expected).digest());

const severityRank = (s: Severity) => SEVERITIES.indexOf(s);
const earliest = (times: string[]) => times.reduce((a, b) => (Date.parse(b) < Date.parse(a) ? b : a));
const latest = (times: string[]) => times.reduce((a, b) => (Date.parse(b) > Date.parse(a) ? b : a));

interface Group {
  severity: Severity;
  alerts: Alert[];
}

export function createAlertIntakeServer(opts: AlertIntakeOptions): FastifyInstance {
  const log = opts.log ?? jsonLineLog;
  const expected = `Bearer ${opts.token}`;
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit ?? 2 * 1024 * 1024 });

  // Before the body is read: an unauthenticated sender costs no parsing.
  app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/alerts/')) return;
    if (!sameSecret(request.headers.authorization ?? '', expected)) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'missing or wrong bearer token (Authorization: Bearer <ALERT_INTAKE_TOKEN>)' });
    }
  });

  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: `body: larger than the limit of ${opts.bodyLimit ?? 2 * 1024 * 1024} bytes` });
    if (status === 415) return reply.code(415).send({ error: 'body: send Content-Type: application/json' });
    if (status === 400) return reply.code(400).send({ error: `body: ${error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'not valid JSON' : oneLine(error.message, 300)}` });
    log({ event: 'alert_intake_error', error: oneLine(error.message, 500) });
    return reply.code(500).send({ error: 'internal error' });
  });

  app.get('/healthz', async () => ({ ok: true }));

  const handle = (source: AlertSource) => async (request: FastifyRequest, reply: FastifyReply) => {
    const parsed = payloadSchemas[source].safeParse(request.body);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.') || 'body', message: i.message }));
      return reply.code(400).send({ error: issues.map((i) => `${i.path}: ${i.message}`).join('; '), issues });
    }
    try {
      return reply.code(202).send(await dispatch(source, parsed.data));
    } catch (e) {
      // 5xx either way: Alertmanager and Grafana retry the notification, and opening is idempotent, so a retry is safe.
      const error = oneLine(e instanceof Error ? e.message : String(e), 500);
      log({ event: 'alert_dispatch_failed', source, groupKey: oneLine(parsed.data.groupKey, 500), error });
      if (e instanceof Error && e.name === 'AlertIncidentInputInvalid') return reply.code(500).send({ error: `the incident could not be opened: ${error}` });
      return reply.code(503).send({ error: 'the incident side is not reachable; retry later' });
    }
  };
  app.post('/alerts/alertmanager', handle('alertmanager'));
  app.post('/alerts/grafana', handle('grafana'));

  async function dispatch(source: AlertSource, payload: AlertPayload): Promise<IntakeAnswer> {
    const receiver = oneLine(payload.receiver, 100);
    const detectedBy: DetectedBy = `alert:${receiver}`;
    const groupKey = oneLine(payload.groupKey, 1000);
    const firing = new Map<IncidentCategory, Group>();
    const resolved = new Map<IncidentCategory, Group>();
    let unmapped = 0;
    for (const alert of payload.alerts) {
      const mapping = mapAlert(alert.labels, opts.rules);
      if (!mapping) {
        unmapped++;
        log({
          event: 'alert_unmapped',
          source,
          receiver,
          groupKey,
          status: alert.status,
          alertname: oneLine(alert.labels.alertname ?? '', 200),
          fingerprint: oneLine(alert.fingerprint, 200),
          labels: Object.fromEntries(Object.entries(alert.labels).slice(0, 30).map(([k, v]) => [oneLine(k, 100), oneLine(v, 200)])),
        });
        continue;
      }
      const groups = alert.status === 'firing' ? firing : resolved;
      const group = groups.get(mapping.category);
      if (!group) groups.set(mapping.category, { severity: mapping.severity, alerts: [alert] });
      else {
        group.alerts.push(alert);
        if (severityRank(mapping.severity) < severityRank(group.severity)) group.severity = mapping.severity;
      }
    }

    const truncated = payload.truncatedAlerts;
    const opened = Promise.all(
      [...firing].map(async ([category, group]) => {
        const req: OpenOrJoinRequest = {
          category,
          severity: group.severity,
          dedupKey: `${groupKey}|${category}`,
          detectedBy,
          startsAt: earliest(group.alerts.map((a) => a.startsAt)),
          evidence: evidenceOf(group.alerts, truncated),
        };
        const result = await opts.opener.openOrJoin(req);
        log({ event: 'alert_opened', source, receiver, groupKey, category, severity: group.severity, alerts: group.alerts.length, ...result });
        return { category, ...result };
      }),
    );
    const cleared = Promise.all(
      [...resolved].map(async ([category, group]) => {
        const ends = group.alerts.map((a) => (isZeroTime(a.endsAt) ? new Date().toISOString() : (a.endsAt as string)));
        const result = await opts.opener.alertResolved({ category, dedupKey: `${groupKey}|${category}`, detectedBy, endsAt: latest(ends), evidence: evidenceOf(group.alerts, 0) });
        log({ event: 'alert_resolved', source, receiver, groupKey, category, alerts: group.alerts.length, ...result });
        return { category, ...result };
      }),
    );
    const [incidents, resolvedAnswers] = await Promise.all([opened, cleared]);
    return { received: payload.alerts.length, unmapped, incidents, resolved: resolvedAnswers };
  }

  return app;
}
