/** Process configuration from the environment, validated once at start-up. */
import { z } from 'zod';
import { singleKeySchema } from './codec/key-format';
import { checkTemporalConnectionEnv, temporalConnectionEnvShape } from './connection';
import { durationSchema } from './domain';
import { FORBIDDEN_DIRS, inForbiddenDir, isWorkerSecretEnv } from './secret-patterns';
import { signedStepsSchema } from './signing/policy';
import { NAMESPACE_DEFAULT, TASK_QUEUE } from './shared';

/** Unset, or a string with surrounding blanks removed ('' counts as unset). */
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

/** An optional variable holding JSON (unset or blank: undefined); `example` is what the error shows. */
const optionalJson = (example: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (!v?.trim()) return undefined;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be JSON like ${example}` });
        return z.NEVER;
      }
    });

const optionalUrl = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .pipe(z.url().optional())
  .optional();

/** A comma-separated list, each entry checked by `problem`; unset or empty: undefined (the default applies). */
const commaList = (problem: (entry: string) => string | undefined) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const entries = (v ?? '').split(',').map((e) => e.trim()).filter(Boolean);
      for (const e of entries) {
        const p = problem(e);
        if (p) ctx.addIssue({ code: 'custom', message: p });
      }
      return entries.length ? entries : undefined;
    });

export const envSchema = z.object({
  TEMPORAL_ADDRESS: z.string().min(1).default('localhost:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default(NAMESPACE_DEFAULT),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default(TASK_QUEUE),
  /** Temporal Cloud / secured cluster: API key, mTLS files, CA, server name (src/connection.ts). */
  ...temporalConnectionEnvShape,
  /** Worker Versioning of the production worker (src/worker/versioning.ts): the deployment every build of it belongs to. */
  TEMPORAL_DEPLOYMENT_NAME: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/, "must be 1-100 letters, digits, '-' or '_' (no '.' or ':')")
    .default('clerk-incident-runbook'),
  /** This build's id within the deployment; default: package version and git commit, or the workflow bundle's hash. */
  TEMPORAL_BUILD_ID: optionalString.pipe(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/, "must be 1-100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit").optional()),
  /** UI port of the dev server that `npm start` runs. */
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),
  /** Real Clerk when set; otherwise the project's Clerk sandbox. */
  CLERK_SECRET_KEY: z
    .string()
    .regex(/^sk_(test|live)_[A-Za-z0-9]+$/, 'must look like sk_test_… or sk_live_…')
    .optional(),
  CLERK_API_URL: optionalUrl,
  // Key references and the key rotation (docs/key-rotation.md). References name where a key lives, never the key.
  /** Where the worker's Clerk key lives: env:NAME, file:/path or vault:mount/path#field (default env:CLERK_SECRET_KEY). */
  CLERK_SECRET_KEY_REF: optionalString.pipe(z.string().regex(/^(env|file|vault):/, 'must be a key reference: env:NAME, file:/path or vault:mount/path#field').optional()),
  /** HashiCorp Vault (KV v2) for vault: references. */
  VAULT_ADDR: optionalUrl,
  VAULT_TOKEN: optionalString,
  VAULT_NAMESPACE: optionalString,
  /** Clerk Platform API (private beta): with a token, the rotation makes the new key itself. */
  CLERK_PLATFORM_API_TOKEN: optionalString,
  CLERK_PLATFORM_API_URL: optionalUrl,
  CLERK_APPLICATION_ID: optionalString,
  /** The instance the Platform API rotates: its id (ins_…) or environment. */
  CLERK_INSTANCE: z.string().trim().min(1).default('production'),
  /** Where the Platform API's new key is stored (a file: or vault: reference). */
  CLERK_NEW_KEY_REF: optionalString,
  /** Variables a `provideNewKey` reference may name, comma-separated; `NAME*` is a prefix (default CLERK_SECRET_KEY_NEXT*). Never the worker's own secrets. */
  KEY_REF_ALLOWED_ENV: commaList((v) =>
    !/^[A-Za-z_][A-Za-z0-9_]*\*?$/.test(v) ? 'must be variable names or prefixes like CLERK_SECRET_KEY_NEXT*' : v.replace(/\*$/, '').length < 6 ? `${v}: a prefix needs at least 6 characters` : isWorkerSecretEnv(v.replace(/\*$/, '')) ? `${v} names one of the worker's own secrets` : undefined,
  ),
  /** Directories a `provideNewKey` file: reference may point into (symlinks resolved), comma-separated (default /run/secrets). */
  KEY_REF_ALLOWED_DIRS: commaList((v) =>
    !v.startsWith('/') || /(?:^|\/)\.{1,2}(?:\/|$)/.test(v) ? `${v}: must be an absolute path without "." or ".." segments` : v === '/' || inForbiddenDir(v) ? `${v}: keys cannot be read from / or under ${FORBIDDEN_DIRS.join(', ')}` : undefined,
  ),
  /** Vault `mount` or `mount/path` prefixes a `provideNewKey` vault: reference may name, comma-separated (default secret/clerk). */
  KEY_REF_ALLOWED_VAULT: commaList((v) => (/^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$/.test(v) && !/(?:^|\/)\.{1,2}(?:\/|$)/.test(v) ? undefined : `${v}: must be a mount or mount/path like secret/clerk (no "." or ".." segments, no "%")`)),
  /** Without an `exposedAt`, the exposure audit looks back this far from the key's death (a lookback, not the exposure window). */
  KEY_EXPOSURE_LOOKBACK: durationSchema(60_000, 365 * 86_400_000).default(30 * 86_400_000),
  /** Hours the old key keeps working after a Platform API rotation (0: it dies at once). */
  CLERK_OLD_KEY_EXPIRY_HOURS: z.coerce.number().int().min(0).max(720).default(0),
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
  /** Workers that call the same Clerk instance (one per process, e.g. `--scale worker=3`): each paces to 1/n of its limit. */
  CLERK_WORKERS: z.coerce.number().int().min(1).max(50).default(1),
  /**
   * Who sends updates from which client identity, for the review's "who decided" check:
   * JSON `{"bob@example.com":["bob@laptop"],…}`. Unset: no check.
   */
  APPROVER_IDENTITIES: optionalJson('{"bob@example.com":["bob@laptop"]}')
    .pipe(z.record(z.string().min(1), z.array(z.string().min(1))).optional()),
  // The on-call roster (docs/roster.md): who may decide what, checked on every update. Unset: approvals are unauthenticated.
  /** The roster file (YAML or JSON), watched: an edit applies to the next incident; each incident decides by the version it started with. */
  ROSTER_FILE: optionalString,
  // Signed approvals (docs/signed-approvals.md): off unless APPROVER_ALLOWED_SIGNERS is set.
  /** git's allowed_signers file (`bob@example.com ssh-ed25519 AAAA…`): whose SSH key signs whose decisions; read at each incident's start. */
  APPROVER_ALLOWED_SIGNERS: optionalString,
  /** Which steps need signed decisions when a registry is set: `critical` (default), `all`, `none`, or a comma-separated list of steps. */
  SIGNED_STEPS: signedStepsSchema,
  /** `npm start` in sandbox mode: make demo keys for the sample approvers and require signatures (off by default). */
  SIGNED_APPROVALS_DEMO: z.enum(['0', '1', 'true', 'false', '']).default('0').transform((v) => v === '1' || v === 'true'),
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
  /** The env var the deployed app reads its publishable key from: the keys remedy sets it through the deploy adapter. */
  APP_PUBLISHABLE_KEY_ENV: z.string().trim().regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'must be an env var name like NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY').default('NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY'),
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
  /** `Host` names the codec server answers (`name[:port]`), comma-separated; default 127.0.0.1, localhost, [::1] on its port. */
  CODEC_ALLOWED_HOSTS: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(',').map((h) => h.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, 'must be a comma-separated list of host[:port]'))),
  /** When set, the codec server requires `Authorization: Bearer <token>`. */
  CODEC_SERVER_TOKEN: optionalString,
  // Deployment platform and emergency auth bypass (docs/bypass.md). Tokens stay here, never in inputs or history.
  /** Which adapter changes the deployment: vercel (project env + redeploy), vercel-edge-config, webhook. Unset: the bypass is done by hand (sandbox mode: the sandbox's Vercel). */
  DEPLOY_ADAPTER: z.enum(['vercel', 'vercel-edge-config', 'webhook']).optional(),
  VERCEL_TOKEN: optionalString,
  /** Project id (`prj_…`) or name. */
  VERCEL_PROJECT: optionalString,
  VERCEL_TEAM_ID: optionalString,
  /** Default https://api.vercel.com. */
  VERCEL_API_URL: optionalUrl,
  /** `ecfg_…`, for DEPLOY_ADAPTER=vercel-edge-config. */
  VERCEL_EDGE_CONFIG_ID: optionalString.pipe(z.string().regex(/^ecfg_[A-Za-z0-9_]+$/, 'must look like ecfg_…').optional()),
  DEPLOY_WEBHOOK_URL: optionalUrl,
  /** HMAC-SHA256 key of the signed webhook (at least 32 characters). */
  DEPLOY_WEBHOOK_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  /** Name of the bypass flag (env var or Edge Config key) the app reads. */
  BYPASS_FLAG_KEY: z.string().trim().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an env var name like CLERK_AUTH_BYPASS').default('CLERK_AUTH_BYPASS'),
  /** The longest a bypass may stay on, extensions included (an incident may ask for less; default 60 minutes). */
  BYPASS_MAX_DURATION: durationSchema(60_000, 86_400_000).default(4 * 3_600_000),
  /**
   * The post-incident phase: after `resolved` the incident stays open this long with its review a
   * draft, for the commander's findings (docs/review.md); `off`: the review is final at once.
   */
  REVIEW_PHASE: z.union([z.literal('off'), durationSchema(1_000, 30 * 86_400_000)]).default(7 * 86_400_000),
  /** How often the channel is reminded while the review's findings are missing. */
  REVIEW_REMIND_EVERY: durationSchema(1_000, 7 * 86_400_000).default(86_400_000),
  /** Turning the bypass off after recovery waits for one approver (`bypass_off`). */
  BYPASS_OFF_NEEDS_APPROVAL: z
    .enum(['true', 'false', '1', '0', ''])
    .optional()
    .transform((v) => v === 'true' || v === '1'),
  /** Recovery means the status page says `none` and the Backend API answers 200 this many checks in a row. */
  BYPASS_RECOVERY_PROBES: z.coerce.number().int().min(1).max(20).default(3),
  /** While the bypass is on, Clerk is checked at least this often (an incident's shorter `recoveryCheckEvery` wins). */
  BYPASS_RECOVERY_CHECK_EVERY: durationSchema(5_000, 3_600_000).default(20_000),
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
  // Paging (docs/paging.md): PagerDuty's Events API v2. Routing keys stay here, never in inputs or history.
  /** Base URL of the Events API; default https://events.pagerduty.com (sandbox mode without routing keys: the sandbox). */
  PAGERDUTY_EVENTS_URL: optionalUrl,
  /** Paging targets (a rotation, a roster person's paging target) → their Events API v2 routing key: JSON `{"auth-oncall":"<32 letters/digits>",…}`. Unset: nobody is paged (sandbox mode: the sandbox's keys as `primary`, `secondary`). */
  PAGERDUTY_ROUTING_KEYS: optionalJson('{"auth-oncall":"<32-character routing key>"}')
    .pipe(
      z
        .record(
          z.string().trim().min(1).max(200).regex(/^[^\p{Cc}\s]+$/u, 'a target name is one word without control characters'),
          z.string().regex(/^[A-Za-z0-9]{32}$/, 'must be a 32-character Events API v2 integration key (letters and digits)'),
        )
        .optional(),
    ),
  /** `payload.source` of the alerts the worker sends. */
  PAGERDUTY_SOURCE: z.string().trim().min(1).max(255).regex(/^[^\p{Cc}]+$/u, 'must be one line').default('clerk-incident-runbook'),
}).superRefine(checkTemporalConnectionEnv);

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
  const deployProblems = deployConfigProblems(parsed.data);
  if (deployProblems.length) throw new ConfigError(`Invalid environment:\n${deployProblems.map((p) => `  ${p}`).join('\n')}`);
  return parsed.data;
}

/** The deployment adapter's settings, checked together: each adapter names what it is missing. */
export function deployConfigProblems(env: Env): string[] {
  const need = (vars: (keyof Env)[]) => vars.filter((v) => env[v] === undefined).map((v) => `${v} is required with DEPLOY_ADAPTER=${env.DEPLOY_ADAPTER}`);
  switch (env.DEPLOY_ADAPTER) {
    case 'vercel':
      return need(['VERCEL_TOKEN', 'VERCEL_PROJECT']);
    case 'vercel-edge-config':
      return need(['VERCEL_TOKEN', 'VERCEL_EDGE_CONFIG_ID']);
    case 'webhook':
      return need(['DEPLOY_WEBHOOK_URL', 'DEPLOY_WEBHOOK_SECRET']);
    default:
      return [];
  }
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
    publishableKeyEnv: env.APP_PUBLISHABLE_KEY_ENV,
    authorizedParties: env.CLERK_AUTHORIZED_PARTIES.length ? env.CLERK_AUTHORIZED_PARTIES : sandbox ? [new URL(sandbox.url).origin] : [],
    minSdkVersion: env.CLERK_MIN_SDK_VERSION,
    maxSessionLifetimeMs: env.CLERK_SESSION_MAX_LIFETIME,
    ...(env.CLERK_SESSION_INACTIVITY_TIMEOUT !== undefined ? { inactivityTimeoutMs: env.CLERK_SESSION_INACTIVITY_TIMEOUT } : {}),
  };
}
