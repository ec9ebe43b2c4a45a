/**
 * The app's copy of its Clerk users, as the reconciliation reads it and the example receiver
 * writes it: one row per user, keyed by Clerk's user id, with the fields the app keeps. Two
 * adapters (`./sqlite.ts`, the embedded default; `./postgres.ts`) behind one interface; the table
 * and column names are configurable (default: the runbook's `users.clerk_id`).
 */
import { z } from 'zod';

/** What the app keeps of a Clerk user. `updatedAt` is Clerk's `updated_at` (ms) of the copy. */
export interface StoredUser {
  id: string;
  email: string | null;
  firstName: string | null;
  lastName: string | null;
  updatedAt: number | null;
}

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain SQL identifier (letters, digits, _)');

/**
 * Where the users are: table and columns. A kept field mapped to null is not in the app's table
 * (so never compared nor written). `messagesTable` is where the receiver remembers `svix-id`s.
 */
export const storeMappingSchema = z.strictObject({
  table: identifier.default('users'),
  id: identifier.default('clerk_id'),
  email: identifier.nullable().default('email'),
  firstName: identifier.nullable().default('first_name'),
  lastName: identifier.nullable().default('last_name'),
  updatedAt: identifier.nullable().default('clerk_updated_at'),
  messagesTable: identifier.default('clerk_webhook_messages'),
});
export type StoreMapping = z.output<typeof storeMappingSchema>;
export const DEFAULT_MAPPING: StoreMapping = storeMappingSchema.parse({});

/** A change to apply: what a `user.created`/`user.updated` or `user.deleted` event says. */
export type StoreChange = { type: 'upsert'; user: StoredUser } | { type: 'delete'; id: string };

export interface UserStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Creates the users and messages tables when missing (the default layout; an app's own table is left as it is). */
  ensureSchema(): Promise<void>;
  /** The stored users among `ids`. */
  getMany(ids: readonly string[]): Promise<Map<string, StoredUser>>;
  /** Up to `limit` user ids after `after`, in the store's own order of ids. */
  idsAfter(after: string | null, limit: number): Promise<string[]>;
  count(): Promise<number>;
  /** Every stored user (tests, small stores only). */
  all(): Promise<StoredUser[]>;
  /**
   * Applies a change once per message: false (and nothing changes) when `messageId` was applied
   * before. An upsert never replaces a copy with a newer `updatedAt` (events may arrive out of order).
   */
  apply(change: StoreChange, messageId?: string): Promise<boolean>;
  /** Upserts many users in one transaction (an initial copy, e.g. sandbox mode's start). */
  load(users: readonly StoredUser[]): Promise<void>;
  close(): Promise<void>;
}

/** Typed failure of a store (connection, SQL): retryable unless the configuration is wrong. */
export class UserStoreError extends Error {
  override readonly name = 'UserStoreError' as const;
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The fields a Clerk user JSON (`users.getUser`, a webhook's `data`) gives the store. */
export function storedUserFromClerk(data: {
  id: string;
  primary_email_address_id?: string | null;
  email_addresses?: { id: string; email_address: string }[];
  first_name?: string | null;
  last_name?: string | null;
  updated_at?: number | null;
}): StoredUser {
  const primary = data.email_addresses?.find((e) => e.id === data.primary_email_address_id) ?? data.email_addresses?.[0];
  return {
    id: data.id,
    email: primary?.email_address ?? null,
    firstName: data.first_name ?? null,
    lastName: data.last_name ?? null,
    updatedAt: data.updated_at ?? null,
  };
}

/** The kept fields (as mapped) in which the store's copy differs from Clerk's, plus `updatedAt` when Clerk's is newer. */
export function staleFields(clerk: StoredUser, stored: StoredUser, mapping: StoreMapping): string[] {
  const out: string[] = [];
  if (mapping.email && clerk.email !== stored.email) out.push('email');
  if (mapping.firstName && clerk.firstName !== stored.firstName) out.push('firstName');
  if (mapping.lastName && clerk.lastName !== stored.lastName) out.push('lastName');
  if (mapping.updatedAt && clerk.updatedAt !== null && (stored.updatedAt === null || clerk.updatedAt > stored.updatedAt)) out.push('updatedAt');
  return out;
}

/** The mapped columns in a fixed order, for the adapters' SQL. */
export function keptColumns(m: StoreMapping): { field: keyof Omit<StoredUser, 'id'>; column: string }[] {
  const fields = ['email', 'firstName', 'lastName', 'updatedAt'] as const;
  return fields.flatMap((field) => (m[field] ? [{ field, column: m[field] }] : []));
}

export function rowToUser(row: Record<string, unknown>, m: StoreMapping): StoredUser {
  const text = (c: string | null) => (c && row[c] != null ? String(row[c]) : null);
  return {
    id: String(row[m.id]),
    email: text(m.email),
    firstName: text(m.firstName),
    lastName: text(m.lastName),
    updatedAt: m.updatedAt && row[m.updatedAt] != null ? Number(row[m.updatedAt]) : null,
  };
}
