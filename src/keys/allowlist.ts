/**
 * Which key references an incident may have the worker resolve (KEY_REF_ALLOWED_ENV, _DIRS and
 * _VAULT; docs/key-rotation.md), and what a resolved value must look like before it is sent
 * anywhere. The authority: applied in the activities, where references are resolved (the
 * workflow checks only the syntax, ./ref.ts). Refusals name the reference and the rule, never a value.
 */
import { realpath, stat } from 'node:fs/promises';
import { sep } from 'node:path';
import { inForbiddenDir } from '../secret-patterns';
import { formatKeyRef, parseKeyRef, providedRefProblem } from './ref';

export interface KeyRefPolicy {
  /** Variable names an `env:` reference may name; an entry ending in `*` is a prefix. */
  envNames: readonly string[];
  /** Directories a `file:` reference may point into, once every symlink is resolved. */
  dirs: readonly string[];
  /** `mount` or `mount/path` prefixes (whole segments) a `vault:` reference may name. */
  vault: readonly string[];
}

export const DEFAULT_KEY_REF_POLICY: KeyRefPolicy = { envNames: ['CLERK_SECRET_KEY_NEXT*'], dirs: ['/run/secrets'], vault: ['secret/clerk'] };

/** The worker's configuration refuses this reference (or what it holds): not retried, the operator sends another. */
export class KeyRefRefused extends Error {
  override readonly name = 'KeyRefRefused' as const;
  constructor(
    readonly ref: string,
    reason: string,
  ) {
    super(`${ref}: ${reason}`);
  }
}

const envAllowed = (name: string, allowed: readonly string[]) => allowed.some((a) => (a.endsWith('*') ? name.startsWith(a.slice(0, -1)) : name === a));
const underPrefix = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);

/**
 * The reference to resolve (for `file:`, the file's real path, so a symlink cannot lead out of an
 * allowed directory afterwards), or a `KeyRefRefused` naming the rule.
 */
export async function authorizeKeyRef(text: string, policy: KeyRefPolicy): Promise<string> {
  let ref;
  try {
    ref = parseKeyRef(text);
  } catch (err) {
    throw new KeyRefRefused('the reference', (err as Error).message);
  }
  const name = formatKeyRef(ref);
  const problem = providedRefProblem(ref);
  if (problem) throw new KeyRefRefused(name, problem);
  switch (ref.kind) {
    case 'env':
      if (!envAllowed(ref.name, policy.envNames)) throw new KeyRefRefused(name, `${ref.name} is not among the variables this worker allows for new keys (KEY_REF_ALLOWED_ENV: ${policy.envNames.join(', ') || 'none'})`);
      return name;
    case 'file': {
      const real = await realpath(ref.path).catch(() => undefined);
      if (!real) throw new KeyRefRefused(name, 'no such file');
      const dirs = (await Promise.all(policy.dirs.map((d) => realpath(d).catch(() => undefined)))).filter((d): d is string => d !== undefined);
      const inside = dirs.some((d) => real.startsWith(d.endsWith(sep) ? d : `${d}${sep}`));
      if (inForbiddenDir(real) || !inside) throw new KeyRefRefused(name, `the file is not inside a directory this worker allows for keys (KEY_REF_ALLOWED_DIRS: ${policy.dirs.join(', ') || 'none'}; symlinks are followed before the check)`);
      if (!(await stat(real)).isFile()) throw new KeyRefRefused(name, 'not a regular file');
      return `file:${real}`;
    }
    case 'vault':
      if (!policy.vault.some((p) => underPrefix(`${ref.mount}/${ref.path}`, p) || p === ref.mount)) throw new KeyRefRefused(name, `${ref.mount}/${ref.path} is not under a Vault path this worker allows for keys (KEY_REF_ALLOWED_VAULT: ${policy.vault.join(', ') || 'none'})`);
      return name;
  }
}

/** What a Clerk secret key looks like: one line, `sk_live_` or `sk_test_` and base62. */
const CLERK_SECRET_KEY = /^sk_(?:live|test)_[A-Za-z0-9]{10,200}$/;

/** Throws `KeyRefRefused` (never quoting the value) unless `value` looks like a Clerk secret key. */
export function assertClerkSecretKey(ref: string, value: string): string {
  if (!CLERK_SECRET_KEY.test(value)) throw new KeyRefRefused(ref, `does not hold a Clerk secret key (one line, sk_live_… or sk_test_…); nothing was sent anywhere`);
  return value;
}

/** The policy from the worker's configuration (src/config.ts); each unset list takes its default. */
export function keyRefPolicyFromEnv(env: { KEY_REF_ALLOWED_ENV?: string[]; KEY_REF_ALLOWED_DIRS?: string[]; KEY_REF_ALLOWED_VAULT?: string[] }): KeyRefPolicy {
  return {
    envNames: env.KEY_REF_ALLOWED_ENV ?? DEFAULT_KEY_REF_POLICY.envNames,
    dirs: env.KEY_REF_ALLOWED_DIRS ?? DEFAULT_KEY_REF_POLICY.dirs,
    vault: env.KEY_REF_ALLOWED_VAULT ?? DEFAULT_KEY_REF_POLICY.vault,
  };
}
