/** Process configuration from the environment, validated once at start-up. */
import { z } from 'zod';
import { singleKeySchema } from './codec';
import { durationSchema } from './domain';
import { NAMESPACE_DEFAULT, TASK_QUEUE } from './shared';

/** Unset, or a string with surrounding blanks removed ('' counts as unset). */
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .pipe(z.url().optional())
  .optional();

export const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default(NAMESPACE_DEFAULT),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE),
  /** UI port of the dev server that `npm start` runs. */
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  /** Real Clerk when set; otherwise the project's Clerk sandbox. */
  CLERK_SECRET_KEY: z
    .string()
    .regex(/^sk_(test|live)_[A-Za-z0-9]+$/, 'must look like sk_test_… or sk_live_…')
    .optional(),
  CLERK_API_URL: optionalUrl,
  /** Port of the Clerk sandbox that `npm start` runs when no CLERK_SECRET_KEY is set. */
  CLERK_SANDBOX_PORT: z.coerce.number().int().min(0).max(65535).default(8234),
  CLERK_STATUS_PAGE_URL: optionalUrl,
  APP_HEALTH_URL: optionalUrl,
  CHAT_WEBHOOK_URL: optionalUrl,
  /** App pages triage probes, comma-separated; all answering 500 means the auth middleware throws. */
  APP_ROUTES: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((u) => u.trim()).filter(Boolean))
    .pipe(z.array(z.url('must be a comma-separated list of URLs'))),
  /** Base URL of the Temporal UI, for the "how to approve" lines of notifications. */
  TEMPORAL_UI_URL: optionalUrl,
  /** Which rate limit the Clerk instance has (production 1000 / 10 s, development 100 / 10 s); default from the key (sk_live_ → production). */
  CLERK_INSTANCE_TYPE: z.enum(['production', 'development']).optional(),
  /** Fraction of the Clerk rate limit the worker leaves to everything else calling the instance (0.05 = use 95 %). */
  CLERK_RATE_HEADROOM: z.coerce.number().min(0).max(0.9).default(0.05),
  /** Clerk requests one worker has in flight at once. */
  CLERK_CONCURRENCY: z.coerce.number().int().min(1).max(256).default(16),
  /**
   * Who sends updates from which client identity, for the review's "who decided" check:
   * JSON `{"bob@example.com":["bob@laptop"],…}`. Unset: no check.
   */
  APPROVER_IDENTITIES: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v?.trim()) return undefined;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON like {"bob@example.com":["bob@laptop"]}' });
        return z.NEVER;
      }
    })
    .pipe(z.record(z.string().min(1), z.array(z.string().min(1))).optional()),
  // Diagnostics (docs/diagnostics.md): what the app is configured with, compared with the instance.
  /** The publishable key the app is deployed with (public; diagnostics compare its Frontend API host with the instance's). */
  CLERK_PUBLISHABLE_KEY: z
    .string()
    .trim()
    .transform((v) => (v === '' ? undefined : v))
    .pipe(z.string().regex(/^pk_(test|live)_[A-Za-z0-9+/=]+$/, 'must look like pk_test_… or pk_live_…').optional())
    .optional(),
  /** Where the app is served (its origin must be an instance domain, a satellite or an allowed origin). */
  APP_URL: optionalUrl,
  /** Origins the app accepts as a session token's `azp` (its `authorizedParties`), comma-separated. */
  CLERK_AUTHORIZED_PARTIES: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((u) => u.trim()).filter(Boolean))
    .pipe(z.array(z.url('must be a comma-separated list of origins'))),
  /** Oldest Clerk SDK version the app's health route may report before diagnostics warn. */
  CLERK_MIN_SDK_VERSION: z.string().trim().regex(/^\d+\.\d+\.\d+$/, 'must be a version like 3.0.0').default('3.0.0'),
  /** The instance's maximum session lifetime, as configured in the Dashboard (Clerk's default: 7 days). */
  CLERK_SESSION_MAX_LIFETIME: durationSchema(60_000, 3650 * 86_400_000).default(7 * 86_400_000),
  /** The instance's inactivity timeout, if one is set in the Dashboard (off by default). */
  CLERK_SESSION_INACTIVITY_TIMEOUT: durationSchema(60_000, 3650 * 86_400_000).optional(),
  // Payload encryption (docs/payload-encryption.md): off unless one of the two is set.
  /** JSON key ring `{"current":"k2","keys":{"k1":"<base64>","k2":"<base64>"}}`, read (and checked) by src/codec. */
  PAYLOAD_KEYS_FILE: optionalString,
  /** One key, `<id>:<base64 of 32 bytes>`, kept as the string; checked here so a bad one fails at start-up. */
  PAYLOAD_KEY: optionalString.superRefine((v, ctx) => {
    if (v === undefined) return;
    for (const issue of singleKeySchema.safeParse(v).error?.issues ?? []) ctx.addIssue({ code: 'custom', message: issue.message });
  }),
  /** Port of the codec server (`npm start` with a key, `npm run codec-server`); 0 picks a free one. */
  CODEC_SERVER_PORT: z.coerce.number().int().min(0).max(65535).default(8235),
  /** Origins allowed to call the codec server, comma-separated; default the Temporal UI's. */
  CODEC_CORS_ORIGINS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((u) => u.trim()).filter(Boolean))
    .pipe(z.array(z.url('must be a comma-separated list of origins'))),
  /** When set, the codec server requires `Authorization: Bearer <token>`. */
  CODEC_SERVER_TOKEN: optionalString,
  // User reconciliation (docs/reconcile.md): the app's user store and how differences are fixed.
  /** `sqlite:<path>` or `postgres://…`; sandbox mode defaults to `sqlite:.data/users.db`. Unset (real Clerk): reconciliation is by hand. */
  USER_STORE_URL: optionalString,
  /** Table and columns, JSON like {"table":"users","id":"clerk_id","email":"email","firstName":null}; defaults in src/stores. */
  USER_STORE_MAPPING: optionalString,
  /** The app's Clerk webhook endpoint; replayed events go there (unless RECONCILE_DELIVERY=store). */
  RECONCILE_WEBHOOK_URL: optionalUrl,
  /** `webhook` (signed events to RECONCILE_WEBHOOK_URL) or `store` (write the store directly); default: webhook when the URL is set. */
  RECONCILE_DELIVERY: z.enum(['webhook', 'store']).optional(),
  /** The endpoint's signing secret (whsec_…), as the app's verifyWebhook reads it. */
  CLERK_WEBHOOK_SIGNING_SECRET: z
    .string()
    .trim()
    .transform((v) => (v === '' ? undefined : v))
    .pipe(z.string().regex(/^whsec_[A-Za-z0-9+/=]+$/, 'must look like whsec_…').optional())
    .optional(),
});

export type Env = z.infer<typeof envSchema>;

/** Typed error for bad configuration: names every offending variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid environment:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Real Clerk's public status page (Statuspage v2). */
export const CLERK_STATUS_PAGE = 'https://status.clerk.com';

/**
 * What diagnostics compare the instance with, from the environment. `sandbox`: in sandbox mode
 * its own publishable key and origin stand in for what a deployed app would be configured with.
 */
export function diagnosticsConfig(env: Env, sandbox?: { url: string; publishableKey?: string }) {
  const publishableKey = env.CLERK_PUBLISHABLE_KEY ?? sandbox?.publishableKey;
  const clerkApiUrl = sandbox?.url ?? env.CLERK_API_URL;
  return {
    ...(clerkApiUrl ? { clerkApiUrl } : {}),
    ...(env.APP_URL ? { appUrl: env.APP_URL } : {}),
    ...(publishableKey ? { publishableKey } : {}),
    authorizedParties: env.CLERK_AUTHORIZED_PARTIES.length ? env.CLERK_AUTHORIZED_PARTIES : sandbox ? [new URL(sandbox.url).origin] : [],
    minSdkVersion: env.CLERK_MIN_SDK_VERSION,
    maxSessionLifetimeMs: env.CLERK_SESSION_MAX_LIFETIME,
    ...(env.CLERK_SESSION_INACTIVITY_TIMEOUT !== undefined ? { inactivityTimeoutMs: env.CLERK_SESSION_INACTIVITY_TIMEOUT } : {}),
  };
}
