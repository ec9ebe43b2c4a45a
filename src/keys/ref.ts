/**
 * Key references: where a Clerk secret key lives, never the key. Workflow-safe (no Node APIs):
 * the workflow validates references in inputs and updates; activities resolve them (./resolve.ts).
 *
 * - `env:CLERK_SECRET_KEY`: an environment variable of the worker;
 * - `file:/run/secrets/clerk`: a file (re-read when its mtime or size changes);
 * - `vault:secret/clerk/prod#secret_key`: a HashiCorp Vault KV v2 secret (mount `secret`, path
 *   `clerk/prod`, field `secret_key`); `@3` pins a version (how a retired key stays reachable).
 * Paths are plain (no `.`/`..` segments, no `%` escapes); a reference an incident sends
 * (`providedKeyRefSchema`) never names the worker's own secrets. What the worker allows beyond
 * that is checked where references are resolved (./allowlist.ts).
 */
import { z } from 'zod';
import { FORBIDDEN_DIRS, inForbiddenDir, isWorkerSecretEnv } from '../secret-patterns';

const ENV = /^env:([A-Za-z_][A-Za-z0-9_]{0,127})$/;
// eslint-disable-next-line no-control-regex -- a path with a newline or an escape in it is refused
const FILE = /^file:(\/[^\u0000-\u001f\u007f]{1,1023})$/;
const VAULT = /^vault:([A-Za-z0-9_-]+)\/([A-Za-z0-9_./-]+)#([A-Za-z0-9_.-]+)(?:@(\d+))?$/;
/** What a raw Clerk key (or any similar secret) looks like: refused wherever a reference is expected. */
export const RAW_SECRET = /(?:^|[^A-Za-z0-9])(?:sk|rk|whsec)_(?:test_|live_)?[A-Za-z0-9]{8,}/;

export type KeyRef =
  | { kind: 'env'; name: string }
  | { kind: 'file'; path: string }
  | { kind: 'vault'; mount: string; path: string; field: string; version?: number };

export const REF_FORMS = 'env:NAME, file:/absolute/path or vault:mount/path#field';

/** A `.` or `..` segment, or an empty one (`a//b`): a path that is not what it says. */
const TRAVERSAL = /(?:^|\/)\.{1,2}(?:\/|$)|\/\//;

/** Parses a reference; throws a one-line error naming the rule. */
export function parseKeyRef(text: string): KeyRef {
  const t = text.trim();
  if (RAW_SECRET.test(t)) throw new Error(`this looks like a raw secret key; send a reference to where it is stored (${REF_FORMS}), never the key itself`);
  let m = ENV.exec(t);
  if (m) return { kind: 'env', name: m[1]! };
  m = FILE.exec(t);
  if (m) {
    if (TRAVERSAL.test(m[1]!)) throw new Error('a file: path must be plain: no "." or ".." segments and no "//"');
    return { kind: 'file', path: m[1]! };
  }
  if (t.startsWith('vault:') && /%|\\/.test(t)) throw new Error('a vault: reference must be plain: no "%" escapes or backslashes');
  m = VAULT.exec(t);
  if (m) {
    if (TRAVERSAL.test(m[2]!) || m[2]!.startsWith('/') || m[2]!.endsWith('/')) throw new Error('a vault: path must be plain: no "." or ".." segments and no empty ones');
    return { kind: 'vault', mount: m[1]!, path: m[2]!, field: m[3]!, ...(m[4] ? { version: Number(m[4]) } : {}) };
  }
  throw new Error(`must be a key reference (${REF_FORMS})`);
}

/**
 * What an incident may not name whatever the worker allows (the syntax half of the check; the
 * worker's allowlist, KEY_REF_ALLOWED_*, is applied where the reference is resolved). Undefined when fine.
 */
export function providedRefProblem(ref: KeyRef): string | undefined {
  if (ref.kind === 'env' && isWorkerSecretEnv(ref.name)) return `${ref.name} is one of the worker's own secrets; a new key is referenced by a variable of its own (e.g. env:CLERK_SECRET_KEY_NEXT), a file or a Vault secret`;
  if (ref.kind === 'file' && inForbiddenDir(ref.path)) return `a key file cannot be under ${FORBIDDEN_DIRS.join(', ')}`;
  return undefined;
}

export function formatKeyRef(ref: KeyRef): string {
  switch (ref.kind) {
    case 'env':
      return `env:${ref.name}`;
    case 'file':
      return `file:${ref.path}`;
    case 'vault':
      return `vault:${ref.mount}/${ref.path}#${ref.field}${ref.version !== undefined ? `@${ref.version}` : ''}`;
  }
}

/** A key reference in an input or update: validated, normalised, never a raw key. */
export const keyRefSchema = z
  .string()
  .trim()
  .min(1, `must be a key reference (${REF_FORMS})`)
  .max(1100)
  .transform((text, ctx) => {
    try {
      return formatKeyRef(parseKeyRef(text));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });

/** A reference an incident sends (`provideNewKey`): a key reference that names none of the worker's own secrets. */
export const providedKeyRefSchema = keyRefSchema.superRefine((text, ctx) => {
  const problem = providedRefProblem(parseKeyRef(text));
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
