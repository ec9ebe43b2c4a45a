/**
 * The instance's secret keys. Several can be active at once (rotation: add the new key,
 * redeploy, verify, delete the old one); a deleted key is remembered so the audit can tell
 * "used after deletion" from "never existed".
 */
import { randomBase62 } from './ids';

export interface SecretKeyInfo {
  id: string;
  label: string | null;
  /** First characters of the key, enough to recognise it in logs. */
  prefix: string;
  createdAt: string;
  deletedAt: string | null;
  /** Set by a Platform API rotation with a delay: the key stops working then (counts as deleted). */
  expiresAt?: string | null;
}

interface KeyRecord extends SecretKeyInfo {
  secret: string;
}

export type KeyLookup =
  | { state: 'active'; id: string }
  | { state: 'deleted'; id: string }
  | { state: 'unknown'; id: null }
  | { state: 'missing'; id: null };

export function generateSecretKey(): string {
  return `sk_test_${randomBase62(40)}`;
}

export class KeyRing {
  private readonly bySecret = new Map<string, KeyRecord>();
  private readonly byId = new Map<string, KeyRecord>();
  private counter = 0;

  add(secret = generateSecretKey(), label: string | null = null): SecretKeyInfo & { secretKey: string } {
    const existing = this.bySecret.get(secret);
    if (existing && existing.deletedAt === null) return { ...info(existing), secretKey: secret };
    const rec: KeyRecord = {
      id: `key_${(++this.counter).toString().padStart(3, '0')}_${randomBase62(8)}`,
      label,
      prefix: `${secret.slice(0, 12)}…`,
      createdAt: new Date().toISOString(),
      deletedAt: null,
      secret,
    };
    this.bySecret.set(secret, rec);
    this.byId.set(rec.id, rec);
    return { ...info(rec), secretKey: secret };
  }

  /** Deletes a key; false if there is no such key or it was already deleted. */
  delete(id: string): boolean {
    const rec = this.byId.get(id);
    if (!rec || rec.deletedAt !== null) return false;
    rec.deletedAt = new Date().toISOString();
    return true;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** The key stops working at `at` (ms since epoch): a rotation's delayed expiry. */
  expireAt(id: string, at: number): void {
    const rec = this.byId.get(id);
    if (!rec || rec.deletedAt !== null) return;
    rec.expiresAt = new Date(at).toISOString();
    this.expire(rec);
  }

  private expire(rec: KeyRecord): void {
    if (rec.deletedAt === null && rec.expiresAt && Date.parse(rec.expiresAt) <= Date.now()) rec.deletedAt = rec.expiresAt;
  }

  /** Resolves an `Authorization` header value. */
  lookup(authorization: string | undefined): KeyLookup {
    if (!authorization) return { state: 'missing', id: null };
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m?.[1]) return { state: 'missing', id: null };
    const rec = this.bySecret.get(m[1]);
    if (!rec) return { state: 'unknown', id: null };
    this.expire(rec);
    return rec.deletedAt === null ? { state: 'active', id: rec.id } : { state: 'deleted', id: rec.id };
  }

  list(): SecretKeyInfo[] {
    for (const rec of this.byId.values()) this.expire(rec);
    return [...this.byId.values()].map(info);
  }

  /** The secret of the oldest active key, if any. */
  firstActiveSecret(): string | null {
    for (const rec of this.byId.values()) if (rec.deletedAt === null) return rec.secret;
    return null;
  }
}

function info(rec: KeyRecord): SecretKeyInfo {
  return { id: rec.id, label: rec.label, prefix: rec.prefix, createdAt: rec.createdAt, deletedAt: rec.deletedAt, ...(rec.expiresAt ? { expiresAt: rec.expiresAt } : {}) };
}
