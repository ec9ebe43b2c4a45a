/**
 * Every input the sandbox accepts from outside (start options, CLI flags, admin API bodies),
 * as zod schemas; the TypeScript types are derived from them.
 */
import type { FastifySchemaCompiler } from 'fastify';
import { z } from 'zod';
import { SESSION_STATUSES } from './columns';

/**
 * Route keys, as `METHOD path` with OpenAPI-style `{param}`s. The same keys name per-route
 * fault overrides and the audit log's per-route counters.
 */
export const CLERK_ROUTES = [
  'GET /v1/users',
  'GET /v1/users/count',
  'GET /v1/users/{user_id}',
  'DELETE /v1/users/{user_id}',
  'GET /v1/sessions',
  'GET /v1/sessions/{session_id}',
  'POST /v1/sessions/{session_id}/revoke',
  'POST /v1/webhooks/svix_url',
  'GET /v1/instance',
  'PATCH /v1/instance',
  'GET /v1/domains',
  'GET /v1/jwks',
  'POST /v1/sessions/{session_id}/tokens',
] as const;
export const SIDE_ROUTES = [
  'POST /v1/platform/applications/{app}/instances/{env}/rotate_secret_keys',
  'GET /v1/platform/applications/{app}/instances/{env}/config',
  'PATCH /v1/platform/applications/{app}/instances/{env}/config',
  'GET /api/v2/status.json',
  'GET /api/v2/summary.json',
  'GET /api/clerk-health',
  'GET /app/dashboard',
  'GET /app/profile',
  'GET /app/admin',
  'GET /app/billing',
  'GET /app/api-keys',
] as const;
/** The Vercel REST API endpoints the sandbox emulates (routes/vercel.ts). */
export const VERCEL_ROUTES = [
  'POST /v10/projects/{idOrName}/env',
  'GET /v10/projects/{idOrName}/env',
  'DELETE /v9/projects/{idOrName}/env/{id}',
  'GET /v6/deployments',
  'POST /v13/deployments',
  'GET /v13/deployments/{idOrUrl}',
  'GET /v9/projects/{idOrName}',
  'POST /v1/projects/{projectId}/rollback/{deploymentId}',
  'POST /v9/projects/{projectId}/rollback/{deploymentId}',
  'POST /v10/projects/{projectId}/promote/{deploymentId}',
  'PATCH /v1/edge-config/{edgeConfigId}/items',
  'GET /edge-config/{edgeConfigId}/item/{key}',
  'GET /edge-config/{edgeConfigId}/items',
  'GET /edge-config/{edgeConfigId}/digest',
] as const;
/** PagerDuty's Events API v2 (routes/pagerduty.ts). */
export const PAGERDUTY_ROUTES = ['POST /v2/enqueue', 'POST /v2/change/enqueue'] as const;
/** Slack's Web API and the response URLs it hands out (routes/slack.ts). */
export const SLACK_ROUTES = ['POST /slack/api/{method}', 'POST /slack/response/{id}'] as const;
export const ROUTE_KEYS = [...CLERK_ROUTES, ...SIDE_ROUTES, ...VERCEL_ROUTES, ...PAGERDUTY_ROUTES, ...SLACK_ROUTES] as const;
export type RouteKey = (typeof ROUTE_KEYS)[number];
export function isRouteKey(key: string): key is RouteKey {
  return (ROUTE_KEYS as readonly string[]).includes(key);
}

const rate = z.number().min(0).max(1);
const ms = z.number().int().min(0).max(3_600_000);

const faultRuleFields = {
  latency: z.object({ fixedMs: ms.default(0), jitterMs: ms.default(0) }).strict().optional(),
  /** Probability per request of answering with that status instead of the real answer. */
  errorRates: z.object({ '500': rate.optional(), '502': rate.optional(), '503': rate.optional() }).strict().optional(),
  /** Probability per request of never answering (until the client gives up). */
  hangRate: rate.optional(),
};

/** Error statuses and hangs share out the same requests: their rates add up to at most 1. */
function ratesAddUpToOne(rule: { errorRates?: Partial<Record<'500' | '502' | '503', number>>; hangRate?: number }, ctx: z.RefinementCtx): void {
  const total = (rule.errorRates?.['500'] ?? 0) + (rule.errorRates?.['502'] ?? 0) + (rule.errorRates?.['503'] ?? 0) + (rule.hangRate ?? 0);
  if (total > 1) ctx.addIssue({ code: 'custom', path: ['errorRates'], message: 'error rates and hangRate add up to more than 1' });
}

export const faultRuleSchema = z.object(faultRuleFields).strict().superRefine(ratesAddUpToOne);
export type FaultRule = z.infer<typeof faultRuleSchema>;

/** The 4xx statuses a per-session rejection may answer with (what Clerk sends for an item it refuses). */
export const REJECT_STATUSES = [400, 403, 404, 422] as const;

/**
 * Clerk refuses the revoke of exactly these sessions, every time, with this status and error code:
 * a deterministic "4xx that will not change" (unlike a rate, it hits the same items on every run).
 */
export const rejectSessionsSchema = z
  .object({
    sessionIds: z.array(z.string().regex(/^sess_[A-Za-z0-9]+$/, 'must be a session id (sess_…)')).min(1).max(100_000),
    status: z.literal(REJECT_STATUSES),
    /** Clerk's error code, e.g. `forbidden`; what `ClerkAPIResponseError.errors[0].code` carries. */
    code: z.string().regex(/^[a-z][a-z0-9_]*$/, 'must be a snake_case error code').max(100),
    message: z.string().min(1).max(500).optional(),
  })
  .strict();
export type RejectSessions = z.infer<typeof rejectSessionsSchema>;

export const faultConfigSchema = z
  .object({
    ...faultRuleFields,
    /** `POST /v1/sessions/{session_id}/revoke` of these sessions answers this 4xx (after key and rate limit). */
    rejectSessions: rejectSessionsSchema.optional(),
    /** Overrides per route key (e.g. `"POST /v1/sessions/{session_id}/revoke"`); a field set here replaces the global one. */
    routes: z.record(z.string(), faultRuleSchema).optional(),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    ratesAddUpToOne(cfg, ctx);
    for (const key of Object.keys(cfg.routes ?? {})) {
      if (!isRouteKey(key)) {
        ctx.addIssue({ code: 'custom', path: ['routes', key], message: `unknown route; one of: ${ROUTE_KEYS.join(', ')}` });
      }
    }
  });
export type FaultConfig = z.infer<typeof faultConfigSchema>;

export const rateLimitSchema = z.union([
  z.enum(['production', 'development', 'off']),
  z.object({ requests: z.number().int().min(1).max(10_000_000), windowMs: z.number().int().min(1).max(3_600_000) }).strict(),
]);
export type RateLimitSetting = z.infer<typeof rateLimitSchema>;
export const rateLimitBodySchema = z.object({ rateLimit: rateLimitSchema }).strict();

export const outageIndicatorSchema = z.enum(['minor', 'major', 'critical']);
export type OutageIndicator = z.infer<typeof outageIndicatorSchema>;

export const outageBodySchema = z
  .object({
    /** The manual switch: on until switched off. */
    active: z.boolean().optional(),
    indicator: outageIndicatorSchema.optional(),
    /** Scheduled windows, relative to now; added to those already scheduled. */
    windows: z
      .array(z.object({ startInMs: ms.default(0), durationMs: z.number().int().min(1).max(86_400_000) }).strict())
      .max(100)
      .optional(),
    clearWindows: z.boolean().optional(),
  })
  .strict();
export type OutageBody = z.input<typeof outageBodySchema>;

const secretKeyString = z.string().regex(/^sk_(test|live)_[A-Za-z0-9]{16,}$/, 'must look like sk_test_… (16+ letters/digits)');

export const addKeyBodySchema = z
  .object({
    secretKey: secretKeyString.optional(),
    label: z.string().max(100).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters').optional(),
    /** Also write the key to this file (mode 0600), for `file:` key references. */
    file: z.string().startsWith('/', 'must be an absolute path').max(1000).optional(),
  })
  .strict();
export type AddKeyBody = z.infer<typeof addKeyBodySchema>;

export const seedBodySchema = z
  .object({
    users: z.number().int().min(0).max(5_000_000),
    seed: z.union([z.string().min(1).max(200), z.number().int()]).optional(),
    now: z.number().int().min(0).optional(),
  })
  .strict();
export type SeedBody = z.infer<typeof seedBodySchema>;

export const webhookBodySchema = z
  .object({
    url: z.url().nullable().optional(),
    /** Drop every delivery (recorded as dropped, never sent). */
    drop: z.boolean().optional(),
    /** Drop this fraction of deliveries (seeded, so reproducible). */
    dropRate: rate.optional(),
  })
  .strict();
export type WebhookBody = z.infer<typeof webhookBodySchema>;

export const replayBodySchema = z
  .object({ eventIds: z.array(z.string().min(1).max(100)).max(100_000).optional(), onlyUndelivered: z.boolean().default(true) })
  .strict();
export type ReplayBody = z.input<typeof replayBodySchema>;

export const createUsersBodySchema = z
  .object({
    count: z.number().int().min(1).max(100_000),
    /**
     * Each user also has this many past sessions that ended as `expired` after `lifetimeMs`
     * (their `expire_at` says so): what an instance with a too-short session lifetime leaves.
     */
    expiredSessions: z
      .object({ count: z.number().int().min(1).max(100), lifetimeMs: z.number().int().min(1000).max(30 * 86_400_000) })
      .strict()
      .optional(),
  })
  .strict();

export const appBodySchema = z
  .object({
    /** Example app routes answer 500, as when `clerkMiddleware()` throws. */
    middlewareFailure: z.boolean().optional(),
    /** The secret key the example app is deployed with (rotation changes it). */
    secretKey: z.string().min(1).max(200).optional(),
    /** The publishable key the app reports (another instance's: `pk_test_…`); null: the sandbox instance's own. */
    publishableKey: z.string().regex(/^pk_(test|live)_[A-Za-z0-9+/=]+$/, 'must look like pk_test_… (base64)').nullable().optional(),
    /** The origin the app says it is served from; null: the sandbox's own URL (the instance's primary domain). */
    origin: z.url().nullable().optional(),
    /** The domain the app's session cookie is set on; null: the instance domain's host name. */
    cookieDomain: z.string().min(1).max(253).nullable().optional(),
    /** The Clerk SDK version the health route reports; null: the installed @clerk/backend's. */
    sdkVersion: z.string().regex(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'must be a semver version, e.g. 1.2.3').nullable().optional(),
  })
  .strict();
export type AppBody = z.infer<typeof appBodySchema>;

/** A skewed clock: the `Date` header (and token times) of Clerk's answers and/or the health route's. */
/** `PUT /__sandbox/instance/allowed-origins`: the list as the Backend API would hold it (a drill's cleanup, a test's fault). */
export const allowedOriginsBodySchema = z.object({ origins: z.array(z.string().url()).max(100) }).strict();

export const clockBodySchema = z
  .object({
    skewMs: z.number().int().min(-86_400_000).max(86_400_000),
    applyTo: z.array(z.enum(['clerk', 'app'])).min(1).default(['clerk', 'app']),
  })
  .strict();
export type ClockBody = z.input<typeof clockBodySchema>;

export const auditQuerySchema = z
  .object({
    route: z.string().optional(),
    path: z.string().optional(),
    keyId: z.string().optional(),
    status: z.coerce.number().int().min(0).max(599).optional(),
    sinceSeq: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(100_000).default(1000),
  })
  .strict();
export type AuditQuery = z.input<typeof auditQuerySchema>;
export type ParsedAuditQuery = z.output<typeof auditQuerySchema>;

/** Whole seconds, as Clerk keeps the session settings; from 1 s, below the API's own bounds, so a drill can make them short. */
const sessionDurationMs = z
  .number()
  .int()
  .min(1000)
  .max(10 * 365 * 86_400_000)
  .refine((ms) => ms % 1000 === 0, 'must be whole seconds (a multiple of 1000 ms)');
/** The instance's session settings set from outside (a Dashboard change, a drill); null turns one off. */
export const sessionSettingsBodySchema = z
  .object({ maxLifetimeMs: sessionDurationMs.nullable().optional(), inactivityTimeoutMs: sessionDurationMs.nullable().optional() })
  .strict()
  .refine((b) => b.maxLifetimeMs !== undefined || b.inactivityTimeoutMs !== undefined, 'give maxLifetimeMs and/or inactivityTimeoutMs');
export type SessionSettingsBody = z.input<typeof sessionSettingsBodySchema>;

export const sessionsQuerySchema = z.object({ status: z.enum(SESSION_STATUSES).default('active') }).strict();
export const webhookEventsQuerySchema = z.object({ type: z.string().optional(), status: z.string().optional() }).strict();

export const sandboxOptionsSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(0),
    host: z.string().min(1).default('127.0.0.1'),
    seed: z.union([z.string().min(1), z.number().int()]).default('clerk-sandbox'),
    users: z.number().int().min(0).max(5_000_000).default(100),
    /** Reference time of the seeded timeline; defaults to the start time. */
    now: z.number().int().min(0).optional(),
    rateLimit: rateLimitSchema.default('production'),
    secretKeys: z.array(secretKeyString).max(100).optional(),
    webhookSigningSecret: z.string().regex(/^whsec_[A-Za-z0-9+/=]{16,}$/).optional(),
    faults: faultConfigSchema.optional(),
    webhookUrl: z.url().optional(),
    dropWebhooks: z.boolean().default(false),
    /** How a revoke of a session that is no longer active answers (see the package's README). */
    revokeInactiveSession: z.enum(['error', 'ok']).default('error'),
    /** Audit entries kept (counters are never truncated). */
    auditCapacity: z.number().int().min(100).max(10_000_000).default(200_000),
    /** The emulated PagerDuty's integration keys (32 letters/digits each); default: two random ones. */
    pagerdutyRoutingKeys: z.array(z.string().regex(/^[A-Za-z0-9]{32}$/, 'must be 32 letters or digits')).min(1).max(100).optional(),
    /** Longest a hang fault holds a request before dropping the connection. */
    maxHangMs: z.number().int().min(10).max(3_600_000).default(300_000),
  })
  .strict();
export type SandboxOptions = z.input<typeof sandboxOptionsSchema>;
export type ResolvedSandboxOptions = z.output<typeof sandboxOptionsSchema>;

/** Thrown by the in-process handle for bad input; the HTTP admin API turns it into a 400. */
export class SandboxInputError extends Error {
  override readonly name = 'SandboxInputError';
  constructor(readonly field: string, message: string, readonly issues: { field: string; message: string }[] = []) {
    super(message);
  }
}

/** Parses with a schema, or throws a SandboxInputError naming the first bad field. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, root = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw inputError(result.error, root);
}

function inputError(error: z.ZodError, root = ''): SandboxInputError {
  const issues = error.issues.map((issue) => ({
    field: [root, ...issue.path.map(String)].filter(Boolean).join('.') || root || '(body)',
    message: issue.message,
  }));
  const first = issues[0] ?? { field: root || '(body)', message: 'invalid' };
  return new SandboxInputError(first.field, first.message, issues);
}

/**
 * Lets routes declare zod schemas (`schema: { querystring, body }`): fastify validates before the
 * handler runs and hands it the parsed value; a bad value becomes `toError(issues)`, which the
 * server's error handler answers (`SandboxInputError` by default: 400 naming the field).
 */
export function zodValidatorCompiler(toError: (error: z.ZodError) => Error = inputError): FastifySchemaCompiler<z.ZodType> {
  return ({ schema }) =>
    (data: unknown) => {
      // fastify passes null for a part the request does not have (no body): say "undefined".
      const result = schema.safeParse(data ?? undefined);
      return result.success ? { value: result.data } : { error: toError(result.error) };
    };
}
