/**
 * State of two systems a key rotation talks to besides Clerk's Backend API: a HashiCorp Vault
 * KV v2 engine (where teams keep the key; routes/vault.ts) and Clerk's Platform API, which can
 * rotate an instance's secret keys (routes/clerk-platform.ts). Secrets stay in here; the admin
 * views show key ids, versions and fingerprints only.
 */
import { createHash } from 'node:crypto';
import { randomBase62 } from './ids';

export interface VaultVersion {
  version: number;
  createdTime: string;
  data: Record<string, unknown>;
}

/** KV v2 as Vault keeps it: every write is a new version of the secret at a path (per mount). */
export class VaultSandbox {
  readonly token = `hvs.${randomBase62(24)}`;
  private readonly secrets = new Map<string, VaultVersion[]>();
  reads = 0;
  writes = 0;

  read(mount: string, path: string, version?: number): VaultVersion | undefined {
    this.reads++;
    const versions = this.secrets.get(`${mount}/${path}`);
    if (!versions?.length) return undefined;
    return version !== undefined ? versions.find((v) => v.version === version) : versions[versions.length - 1];
  }

  write(mount: string, path: string, data: Record<string, unknown>): VaultVersion {
    this.writes++;
    const key = `${mount}/${path}`;
    const versions = this.secrets.get(key) ?? [];
    const v: VaultVersion = { version: versions.length + 1, createdTime: new Date().toISOString(), data: { ...data } };
    versions.push(v);
    this.secrets.set(key, versions);
    return v;
  }

  /** Paths and versions, with each string field as a fingerprint (never the value). */
  overview(): { path: string; versions: { version: number; fields: Record<string, string> }[] }[] {
    const fp = (v: unknown) => (typeof v === 'string' ? createHash('sha256').update(v).digest('hex').slice(0, 8) : typeof v);
    return [...this.secrets].map(([path, versions]) => ({
      path,
      versions: versions.map((v) => ({ version: v.version, fields: Object.fromEntries(Object.entries(v.data).map(([k, val]) => [k, fp(val)])) })),
    }));
  }
}

/** Clerk's Platform API (private beta) as far as rotation goes: one application, its bearer token, a log of rotations. */
export class ClerkPlatformSandbox {
  readonly token = `ak_sandbox_${randomBase62(24)}`;
  readonly applicationId = 'app_sandbox';
  readonly rotations: { time: string; instance: string; newKeyId: string; expiring: { id: string; expiresAt: string }[]; delayHours: number }[] = [];
}
