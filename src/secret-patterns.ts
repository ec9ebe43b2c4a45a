/**
 * What known secrets look like. Free text in inputs, signals and updates refuses them
 * (`refuseSecrets`, through `freeText` in ./domain.ts); the worker's log and activity failures
 * redact them as a last line (`redactSecrets`); key references never name the worker's own
 * secrets or the kernel's files (`isWorkerSecretEnv`, `inForbiddenDir`, used by src/keys/ref.ts
 * and the configuration). Pure, no Node APIs: workflow code imports it.
 * Publishable keys (`pk_…`) are public and pass.
 */
import type { z } from 'zod';

interface SecretShape {
  /** What it is, for the refusal: "looks like <kind>". */
  kind: string;
  pattern: RegExp;
}

// Each pattern starts at a word edge so that `risk_test_plan` or `desk_live_…` are not keys.
const EDGE = '(?<![A-Za-z0-9])';

const SECRET_SHAPES: readonly SecretShape[] = [
  { kind: 'a Clerk secret key (sk_live_/sk_test_)', pattern: new RegExp(`${EDGE}(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}`) },
  { kind: 'a webhook signing secret (whsec_, Clerk/Svix)', pattern: new RegExp(`${EDGE}whsec_[A-Za-z0-9+/=]{16,}`) },
  { kind: 'an API secret key (sk_…, Svix/Stripe style)', pattern: new RegExp(`${EDGE}(?:test)?sk_[A-Za-z0-9]{24,}`) },
  { kind: 'a Vercel token', pattern: new RegExp(`${EDGE}vc[pikar]_[A-Za-z0-9]{20,}`) },
  { kind: 'a GitHub token', pattern: new RegExp(`${EDGE}(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})`) },
  { kind: 'an AWS access key id', pattern: /(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])/ },
  { kind: 'a Slack token or webhook', pattern: new RegExp(`${EDGE}(?:xox[abposr]-[A-Za-z0-9-]{10,}|hooks\\.slack\\.com/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]{12,})`) },
  { kind: 'a HashiCorp Vault token', pattern: new RegExp(`${EDGE}hv[sbr]\\.[A-Za-z0-9_-]{20,}`) },
  { kind: 'an npm, Google or LLM API key', pattern: new RegExp(`${EDGE}(?:npm_[A-Za-z0-9]{36}|AIza[0-9A-Za-z_-]{35}|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,})`) },
  { kind: 'a bearer token', pattern: /\bBearer\s+[A-Za-z0-9._~+/-]{16,}=*/i },
  { kind: 'a JWT', pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/ },
  { kind: 'a private key (PEM)', pattern: /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----/ },
  { kind: 'a 32-byte base64 key (payload encryption)', pattern: /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])/ },
  // `VERCEL_TOKEN=…`, `DB_PASSWORD: …`: a secret-named variable given a value (mentioning the name is fine).
  { kind: 'a secret assigned to a variable (…TOKEN=, …SECRET=, …PASSWORD=)', pattern: /\b[A-Z][A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|ACCESS_KEY|API_KEY|PRIVATE_KEY)[A-Z0-9_]*\s*[=:]\s*["']?(?!(?:env|file|vault):)[^\s"']{12,}/ },
];

/** What the first secret-shaped part of `text` looks like, or undefined when there is none. */
export function secretKind(text: string): string | undefined {
  return SECRET_SHAPES.find((s) => s.pattern.test(text))?.kind;
}

/** `text` with every secret-shaped part replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const s of SECRET_SHAPES) out = out.replace(new RegExp(s.pattern.source, `${s.pattern.flags.replace('g', '')}g`), '[redacted]');
  return out;
}

/** The refusal of a secret in free text; the path (`update.note`) names the field, the text is never quoted. */
const secretRefusal = (kind: string) =>
  `looks like ${kind}; free text goes to the history, chat and the review, so it never carries a secret: name where it is stored (a key reference) or its fingerprint instead`;

/** Refuses a value that contains a known secret shape, naming what it looks like (never quoting it). */
export const refuseSecrets = <T extends z.ZodString>(schema: T): T =>
  schema.superRefine((s, ctx) => {
    const kind = secretKind(s);
    if (kind) ctx.addIssue({ code: 'custom', message: secretRefusal(kind) });
  }) as T;

/** The worker's own secrets by name: never a reference an incident may send (the deployment token, the key, tokens, codec keys). */
const WORKER_SECRET_ENV = new Set(['CLERK_SECRET_KEY', 'CLERK_SECRET_KEY_REF', 'CLERK_WEBHOOK_SIGNING_SECRET', 'CLERK_PLATFORM_API_TOKEN', 'VERCEL_TOKEN', 'VAULT_TOKEN', 'PAYLOAD_KEY', 'PAYLOAD_KEYS_FILE', 'CODEC_SERVER_TOKEN', 'DEPLOY_WEBHOOK_SECRET', 'TEMPORAL_API_KEY', 'USER_STORE_URL']);
const SECRET_NAME = /TOKEN|PASSWORD|PASSWD|API_KEY|PRIVATE|WEBHOOK|CODEC|PAYLOAD|TLS|VAULT|SESSION|COOKIE|DATABASE|CREDENTIAL|^AWS_|^GITHUB_|^NPM_/;

/** True for a variable that holds (or may hold) one of the worker's own secrets. */
export function isWorkerSecretEnv(name: string): boolean {
  return WORKER_SECRET_ENV.has(name) || SECRET_NAME.test(name);
}

/** Directories no key reference may point into: the kernel's views of processes and devices. */
export const FORBIDDEN_DIRS = ['/proc', '/sys', '/dev'] as const;
export const inForbiddenDir = (path: string): boolean => FORBIDDEN_DIRS.some((d) => path === d || path.startsWith(`${d}/`));
