/**
 * The two webhook bodies the intake accepts, as zod schemas: Prometheus Alertmanager's webhook
 * payload version 4 (prometheus.io/docs/alerting/latest/configuration/#webhook_config) and Grafana
 * unified alerting's webhook contact point, which is the same group shape plus Grafana's fields
 * (grafana.com/docs/grafana/latest/alerting/configure-notifications/manage-contact-points/integrations/webhook-notifier/).
 * Unknown extra fields are kept out (z.object strips them): senders add fields between versions.
 */
import { z } from 'zod';

/** Labels and annotations: string to string, bounded so one alert cannot carry megabytes. */
const stringMap = z.record(z.string().max(1000), z.string().max(10_000));
/** Alertmanager and Grafana both send RFC 3339 times; `endsAt` of a firing alert is Go's zero time `0001-01-01T00:00:00Z`. */
const time = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 date-time like "2026-11-27T05:00:00Z"' });
const alertStatus = z.enum(['firing', 'resolved']);
const url = z.string().max(4000);

const alertmanagerAlert = z.object({
  status: alertStatus,
  labels: stringMap,
  annotations: stringMap.default({}),
  startsAt: time,
  endsAt: time.optional(),
  generatorURL: url.optional(),
  fingerprint: z.string().min(1).max(200),
});

const groupFields = {
  groupKey: z.string().min(1).max(10_000),
  truncatedAlerts: z.number().int().min(0).default(0),
  status: alertStatus,
  receiver: z.string().min(1).max(200),
  groupLabels: stringMap.default({}),
  commonLabels: stringMap.default({}),
  commonAnnotations: stringMap.default({}),
  externalURL: url.optional(),
};

export const alertmanagerPayloadSchema = z.object({
  version: z.literal('4', { error: 'must be "4" (the Alertmanager webhook payload version this endpoint reads)' }),
  ...groupFields,
  alerts: z.array(alertmanagerAlert).min(1).max(1000),
});

const grafanaAlert = alertmanagerAlert.extend({
  /** The query results that fired it, e.g. `{ "B": 44.2, "C": 1 }` (Grafana 9.1+); null when there are none. */
  values: z.record(z.string(), z.number().nullable()).nullish(),
  valueString: z.string().max(10_000).optional(),
  dashboardURL: url.optional(),
  panelURL: url.optional(),
  silenceURL: url.optional(),
  imageURL: url.optional(),
});

export const grafanaPayloadSchema = z.object({
  /** Grafana sends "1" today; any version string is read with the same shape. */
  version: z.string().max(20).optional(),
  ...groupFields,
  orgId: z.number().int(),
  title: z.string().max(10_000).optional(),
  /** `alerting` or `ok` (older Grafana also sent `pending`, `no_data`…): informative only, `status` decides. */
  state: z.string().max(50).optional(),
  message: z.string().max(100_000).optional(),
  alerts: z.array(grafanaAlert).min(1).max(1000),
});

export type AlertmanagerPayload = z.infer<typeof alertmanagerPayloadSchema>;
export type GrafanaPayload = z.infer<typeof grafanaPayloadSchema>;
export type AlertPayload = AlertmanagerPayload | GrafanaPayload;
export type Alert = AlertPayload['alerts'][number];
export type AlertSource = 'alertmanager' | 'grafana';

export const payloadSchemas = { alertmanager: alertmanagerPayloadSchema, grafana: grafanaPayloadSchema } as const;

/** Go's zero time, which Alertmanager sends as `endsAt` of an alert that has not ended. */
export const isZeroTime = (t: string | undefined): boolean => t === undefined || t.startsWith('0001-01-01');
