/**
 * Resolving key references to secrets, in activities and the worker only (never in workflow
 * code): environment variables, files (re-read when their mtime or size changes) and HashiCorp
 * Vault KV v2 over its HTTP API (`GET/POST {addr}/v1/{mount}/data/{path}`, `X-Vault-Token`).
 * Errors name the reference, never the value. `fingerprint()` is how keys are named elsewhere.
 */
import { createHash } from 'node:crypto';
import { chmod, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { formatKeyRef, parseKeyRef, type KeyRef } from './ref';

export function fingerprint(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 8);
}

/** A reference that cannot be resolved or written (missing variable, file, Vault secret or field; Vault refused). */
export class KeyRefError extends Error {
  override readonly name = 'KeyRefError' as const;
  constructor(
    readonly ref: string,
    message: string,
    /** Vault unreachable or 5xx: worth retrying. */
    readonly retryable = false,
  ) {
    super(`${ref}: ${message}`);
  }
}

export interface VaultOptions {
  /** e.g. https://vault.example.com:8200 (VAULT_ADDR); a path prefix is kept. */
  addr: string;
  /** VAULT_TOKEN. */
  token: string;
  /** X-Vault-Namespace (Vault Enterprise / HCP), when set. */
  namespace?: string;
}

export interface KeyResolver {
  /** The secret a reference names now. `fresh` skips every cache. */
  resolve(ref: string, opts?: { fresh?: boolean }): Promise<string>;
  /**
   * Writes a secret where a reference points (file: atomically, mode 0600; vault: a new version).
   * Returns the reference that pins what was there before (vault `@version`, or a `.retired` file
   * next to the original), or undefined when nothing was there. env: references cannot be written.
   */
  store(ref: string, secret: string): Promise<{ previous?: string }>;
}

interface FileCache {
  mtimeMs: number;
  size: number;
  secret: string;
}

export function createKeyResolver(opts: { vault?: VaultOptions; env?: NodeJS.ProcessEnv; vaultCacheMs?: number } = {}): KeyResolver {
  const env = opts.env ?? process.env;
  const files = new Map<string, FileCache>();
  const vaultCache = new Map<string, { at: number; secret: string; version: number }>();
  const vaultCacheMs = opts.vaultCacheMs ?? 5000;

  const vaultFetch = async (ref: string, r: Extract<KeyRef, { kind: 'vault' }>, init?: { body: unknown }) => {
    if (!opts.vault) throw new KeyRefError(ref, 'no Vault is configured (VAULT_ADDR, VAULT_TOKEN)');
    // VAULT_ADDR may carry a path prefix (a proxy, the sandbox's /vault): append, do not resolve.
    const url = `${opts.vault.addr.replace(/\/+$/, '')}/v1/${r.mount}/data/${r.path}${!init && r.version !== undefined ? `?version=${r.version}` : ''}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: init ? 'POST' : 'GET',
        headers: {
          'x-vault-token': opts.vault.token,
          ...(opts.vault.namespace ? { 'x-vault-namespace': opts.vault.namespace } : {}),
          ...(init ? { 'content-type': 'application/json' } : {}),
        },
        ...(init ? { body: JSON.stringify(init.body) } : {}),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      // The cause's code only: an HTTP client's message may quote a header value (the token).
      const cause = (err as { cause?: { code?: unknown } }).cause;
      throw new KeyRefError(ref, `Vault did not answer (${typeof cause?.code === 'string' ? cause.code : (err as Error).name})`, true);
    }
    if (res.status === 404) return null;
    if (!res.ok) throw new KeyRefError(ref, `Vault answered ${res.status}`, res.status >= 500 || res.status === 429);
    const body: unknown = await res.json().catch(() => {
      throw new KeyRefError(ref, `Vault answered ${res.status} with a body that is not JSON`, true);
    });
    return body as { data?: { data?: Record<string, unknown> | null; metadata?: { version?: number }; version?: number } };
  };

  const readVault = async (ref: string, r: Extract<KeyRef, { kind: 'vault' }>) => {
    const body = await vaultFetch(ref, r);
    const value = body?.data?.data?.[r.field];
    if (typeof value !== 'string' || !value) throw new KeyRefError(ref, body ? `the secret has no field ${r.field}` : 'no such secret in Vault');
    return { secret: value, version: body?.data?.metadata?.version ?? 0 };
  };

  const resolver: KeyResolver = {
    async resolve(text, o = {}) {
      const ref = parseKeyRef(text);
      const name = formatKeyRef(ref);
      switch (ref.kind) {
        case 'env': {
          const v = env[ref.name]?.trim();
          if (!v) throw new KeyRefError(name, `environment variable ${ref.name} is not set`);
          return v;
        }
        case 'file': {
          let s;
          try {
            s = await stat(ref.path);
          } catch {
            throw new KeyRefError(name, 'no such file');
          }
          const cached = files.get(ref.path);
          if (!o.fresh && cached && cached.mtimeMs === s.mtimeMs && cached.size === s.size) return cached.secret;
          const secret = (await readFile(ref.path, 'utf8')).trim();
          if (!secret) throw new KeyRefError(name, 'the file is empty');
          files.set(ref.path, { mtimeMs: s.mtimeMs, size: s.size, secret });
          return secret;
        }
        case 'vault': {
          const cached = vaultCache.get(name);
          if (!o.fresh && cached && Date.now() - cached.at < vaultCacheMs) return cached.secret;
          const { secret, version } = await readVault(name, ref);
          vaultCache.set(name, { at: Date.now(), secret, version });
          return secret;
        }
      }
    },

    async store(text, secret) {
      const ref = parseKeyRef(text);
      const name = formatKeyRef(ref);
      switch (ref.kind) {
        case 'env':
          throw new KeyRefError(name, 'an environment variable cannot be written by the runbook; use a file: or vault: reference');
        case 'file': {
          let previous: string | undefined;
          const old = await readFile(ref.path, 'utf8').catch(() => '');
          if (old.trim()) {
            await writeFile(`${ref.path}.retired`, old, { mode: 0o600 });
            previous = `file:${ref.path}.retired`;
          }
          const tmp = `${ref.path}.${process.pid}.tmp`;
          await writeFile(tmp, `${secret}\n`, { mode: 0o600 });
          await chmod(tmp, 0o600);
          await rename(tmp, ref.path);
          files.delete(ref.path);
          return previous ? { previous } : {};
        }
        case 'vault': {
          if (ref.version !== undefined) throw new KeyRefError(name, 'a pinned version (@N) cannot be written');
          const current = await vaultFetch(name, ref);
          const fields = { ...(current?.data?.data ?? {}) };
          const before = typeof fields[ref.field] === 'string' ? current?.data?.metadata?.version : undefined;
          fields[ref.field] = secret;
          await vaultFetch(name, ref, { body: { data: fields } });
          vaultCache.delete(name);
          return before !== undefined ? { previous: formatKeyRef({ ...ref, version: before }) } : {};
        }
      }
    },
  };
  return resolver;
}

/**
 * The worker's current Clerk key: a reference resolved per call, cached briefly, re-resolved when
 * Clerk says the key is invalid. Rotating means changing what the reference points to.
 */
export interface KeySource {
  readonly ref: string;
  current(): Promise<string>;
  /** Resolves again, skipping the cache. */
  refresh(): Promise<string>;
  /** The last key resolved (synchronous, for callers that cannot wait), if any. */
  peek(): string | undefined;
  /**
   * Follow another reference from now on, in this process only: how a rotation moves a worker whose
   * own reference cannot be written (env:). A restarted worker reads its configured reference again.
   */
  follow(ref: string): void;
  /** The reference being followed (the configured one unless `follow` moved it). */
  readonly activeRef: string;
}

export function createKeySource(ref: string, resolver: KeyResolver, cacheMs = 2000): KeySource {
  let last: { at: number; secret: string } | undefined;
  let active = ref;
  const load = async (fresh: boolean) => {
    const secret = await resolver.resolve(active, { fresh });
    last = { at: Date.now(), secret };
    return secret;
  };
  return {
    ref,
    get activeRef() {
      return active;
    },
    current: () => (last && Date.now() - last.at < cacheMs ? Promise.resolve(last.secret) : load(false)),
    refresh: () => load(true),
    peek: () => last?.secret,
    follow(next) {
      active = next;
      last = undefined;
    },
  };
}
