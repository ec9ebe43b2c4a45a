/**
 * Key references: where a Clerk secret key lives, never the key. Workflow-safe (no Node APIs):
 * the workflow validates references in inputs and updates; activities resolve them (./resolve.ts).
 *
 * - `env:CLERK_SECRET_KEY`: an environment variable of the worker;
 * - `file:/run/secrets/clerk`: a file (re-read when its mtime or size changes);
 * - `vault:secret/clerk/prod#secret_key`: a HashiCorp Vault KV v2 secret (mount `secret`, path
 *   `clerk/prod`, field `secret_key`); `@3` pins a version (how a retired key stays reachable).
 */
import { z } from 'zod';

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

/** Parses a reference; throws a one-line error naming the rule. */
export function parseKeyRef(text: string): KeyRef {
  const t = text.trim();
  if (RAW_SECRET.test(t)) throw new Error(`this looks like a raw secret key; send a reference to where it is stored (${REF_FORMS}), never the key itself`);
  let m = ENV.exec(t);
  if (m) return { kind: 'env', name: m[1]! };
  m = FILE.exec(t);
  if (m) return { kind: 'file', path: m[1]! };
  m = VAULT.exec(t);
  if (m) return { kind: 'vault', mount: m[1]!, path: m[2]!, field: m[3]!, ...(m[4] ? { version: Number(m[4]) } : {}) };
  throw new Error(`must be a key reference (${REF_FORMS})`);
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
