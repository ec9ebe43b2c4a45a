/**
 * From an alert's labels to an incident category and severity, and the intake's configuration.
 * A rule is a list of label matchers in Alertmanager's own syntax (`name=value`, `name!=value`,
 * `name=~regex`, `name!~regex`; regexes anchored, as Alertmanager anchors them); the first rule
 * whose matchers all hold decides. No rule matching: the alert is acknowledged and logged.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { incidentCategorySchema, personSchema, SEVERITIES, type IncidentCategory, type Severity } from '../domain';

const MATCHER = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/;

export interface LabelMatcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
  regex?: RegExp;
}

/** `alertname=ClerkAPI5xx` → a matcher; quotes around the value are optional (`env="prod"`). */
const matcherSchema = z.string().max(500).transform((text, ctx): LabelMatcher => {
  const m = MATCHER.exec(text);
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `"${text}" is not a label matcher: write name=value, name!=value, name=~regex or name!~regex` });
    return z.NEVER;
  }
  const [, name = '', op = '=', raw = ''] = m;
  const value = /^".*"$/.test(raw) ? raw.slice(1, -1) : raw;
  if (op === '=~' || op === '!~') {
    try {
      return { name, op, value, regex: new RegExp(`^(?:${value})$`) };
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: `"${text}": not a regular expression (${(e as Error).message})` });
      return z.NEVER;
    }
  }
  return { name, op: op as '=' | '!=', value };
});

export const alertRuleSchema = z.strictObject({
  match: z.array(matcherSchema).min(1).max(20),
  category: incidentCategorySchema,
  /** Without it: the alert's own `severity` label when it is one of ours, else `high`. */
  severity: z.enum(SEVERITIES).optional(),
});
export type AlertRule = z.infer<typeof alertRuleSchema>;
export const alertRulesSchema = z.array(alertRuleSchema).max(200);

/** The documented default (docs/alert-intake.md): the alerts the runbook's own monitoring guide names. */
export const DEFAULT_ALERT_RULES: readonly z.input<typeof alertRuleSchema>[] = [
  { match: ['alertname=ClerkAPI5xx'], category: 'clerk_outage', severity: 'critical' },
  { match: ['alertname=ClerkWebhookBacklog'], category: 'webhook_backlog', severity: 'high' },
  { match: ['alertname=AuthMiddleware5xx'], category: 'middleware_failure', severity: 'critical' },
];

const matches = (m: LabelMatcher, labels: Record<string, string>): boolean => {
  // As in Alertmanager, a missing label is the empty string.
  const v = labels[m.name] ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.regex?.test(v) ?? false;
    case '!~':
      return !(m.regex?.test(v) ?? false);
  }
};

export interface AlertMapping {
  category: IncidentCategory;
  severity: Severity;
}

export function mapAlert(labels: Record<string, string>, rules: readonly AlertRule[]): AlertMapping | undefined {
  const rule = rules.find((r) => r.match.every((m) => matches(m, labels)));
  if (!rule) return undefined;
  const own = (SEVERITIES as readonly string[]).includes(labels.severity ?? '') ? (labels.severity as Severity) : undefined;
  return { category: rule.category, severity: rule.severity ?? own ?? 'high' };
}

// -- configuration -----------------------------------------------------------------------------------

const optional = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

export const intakeEnvSchema = z.object({
  /** Required: Alertmanager and Grafana send it as `Authorization: Bearer <token>`. */
  ALERT_INTAKE_TOKEN: z.string({ error: 'required: the bearer token Alertmanager and Grafana send' }).trim().min(32, 'must be at least 32 characters (e.g. `openssl rand -hex 32`)'),
  ALERT_INTAKE_PORT: z.coerce.number().int().min(0).max(65535).default(9095),
  ALERT_INTAKE_HOST: z.string().trim().min(1).default('127.0.0.1'),
  /** Largest body accepted; Alertmanager's groups of 1000 alerts stay well under it. */
  ALERT_INTAKE_BODY_LIMIT: z.coerce.number().int().min(1024).max(64 * 1024 * 1024).default(2 * 1024 * 1024),
  /** The rules as JSON (an array of `{ match, category, severity? }`); ALERT_RULES_FILE reads them from a file. */
  ALERT_RULES: optional,
  ALERT_RULES_FILE: optional,
  /** What the incidents belong to (one open incident per category and deployment), e.g. `production`. */
  ALERT_DEPLOYMENT: z.string().trim().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, "must be 1-63 letters, digits, '-' or '_'").default('production'),
  /** Comma-separated approvers of the incidents an alert opens. */
  ALERT_APPROVERS: optional.transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [])).pipe(z.array(personSchema).max(50)),
});

export interface IntakeConfig {
  token: string;
  port: number;
  host: string;
  bodyLimit: number;
  rules: AlertRule[];
  deployment: string;
  approvers: string[];
}

export class IntakeConfigError extends Error {
  override readonly name = 'IntakeConfigError' as const;
}

const describe = (e: z.ZodError, prefix: string) => e.issues.map((i) => `${[prefix, ...i.path].join('.')}: ${i.message}`).join('; ');

export function parseAlertRules(json: string, source = 'ALERT_RULES'): AlertRule[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new IntakeConfigError(`${source}: not JSON (${(e as Error).message})`);
  }
  const parsed = alertRulesSchema.safeParse(raw);
  if (!parsed.success) throw new IntakeConfigError(describe(parsed.error, source));
  return parsed.data;
}

export function intakeConfigFromEnv(source: NodeJS.ProcessEnv = process.env): IntakeConfig {
  const parsed = intakeEnvSchema.safeParse(source);
  if (!parsed.success) throw new IntakeConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const env = parsed.data;
  if (env.ALERT_RULES && env.ALERT_RULES_FILE) throw new IntakeConfigError('ALERT_RULES and ALERT_RULES_FILE: set one of them, not both');
  const rules = env.ALERT_RULES
    ? parseAlertRules(env.ALERT_RULES)
    : env.ALERT_RULES_FILE
      ? parseAlertRules(readFileSync(env.ALERT_RULES_FILE, 'utf8'), 'ALERT_RULES_FILE')
      : alertRulesSchema.parse(DEFAULT_ALERT_RULES);
  return {
    token: env.ALERT_INTAKE_TOKEN,
    port: env.ALERT_INTAKE_PORT,
    host: env.ALERT_INTAKE_HOST,
    bodyLimit: env.ALERT_INTAKE_BODY_LIMIT,
    rules,
    deployment: env.ALERT_DEPLOYMENT,
    approvers: env.ALERT_APPROVERS,
  };
}
