/**
 * How the sandbox holds users and sessions: typed-array columns (a million users fit in well
 * under 1 GB), and the fixed vocabularies a row's small integers index into.
 */
import { toBase62 } from './ids';

export const DAY_MS = 86_400_000;
/** Clerk's default maximum session lifetime: a user inactive for longer has no active session. */
export const MAX_SESSION_LIFETIME_MS = 7 * DAY_MS;
export const INACTIVITY_TIMEOUT_MS = 30 * DAY_MS;

export const SESSION_STATUSES = [
  'active',
  'revoked',
  'ended',
  'expired',
  'removed',
  'abandoned',
  'replaced',
  'pending',
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];
export const STATUS_CODE: Record<SessionStatus, number> = {
  active: 0,
  revoked: 1,
  ended: 2,
  expired: 3,
  removed: 4,
  abandoned: 5,
  replaced: 6,
  pending: 7,
};

/** Fields `order_by` accepts (Clerk's list; those the sandbox has no data for sort as null). */
export const USER_ORDER_FIELDS = [
  'created_at',
  'updated_at',
  'email_address',
  'web3wallet',
  'first_name',
  'last_name',
  'phone_number',
  'username',
  'last_active_at',
  'last_sign_in_at',
] as const;
export type UserOrderField = (typeof USER_ORDER_FIELDS)[number];

// Sorted, so that a name's index orders like the name itself.
export const FIRST_NAMES = [
  'Ada', 'Alan', 'Amara', 'Barbara', 'Chen', 'Dara', 'Edsger', 'Emma', 'Farah', 'Grace', 'Hedy',
  'Ines', 'Ivan', 'Jun', 'Katherine', 'Kofi', 'Leila', 'Linus', 'Margaret', 'Mateo', 'Noor',
  'Olga', 'Priya', 'Radia', 'Sofia', 'Tariq', 'Tim', 'Ursula', 'Vint', 'Wei', 'Yara', 'Zoe',
] as const;
export const LAST_NAMES = [
  'Abe', 'Berners', 'Cerf', 'Dijkstra', 'Eich', 'Fischer', 'Garcia', 'Hamilton', 'Hopper', 'Ito',
  'Johnson', 'Kahn', 'Kay', 'Lamarr', 'Liskov', 'Lovelace', 'Mensah', 'Nakamura', 'Okafor',
  'Perlman', 'Quinn', 'Ritchie', 'Silva', 'Thompson', 'Turing', 'Ueda', 'Van Rossum', 'Wirth',
  'Xu', 'Yilmaz', 'Zhang', 'Zuse',
] as const;
export const BROWSERS = ['Chrome', 'Safari', 'Firefox', 'Edge'] as const;

// Growable typed-array columns

type TypedArray = Float64Array | Uint32Array | Uint16Array | Uint8Array;
type TypedArrayCtor<T extends TypedArray> = new (length: number) => T;

function grow<T extends TypedArray>(arr: T, ctor: TypedArrayCtor<T>, capacity: number): T {
  if (arr.length >= capacity) return arr;
  const next = new ctor(capacity);
  next.set(arr);
  return next;
}

export class UserColumns {
  count = 0;
  createdAt = new Float64Array(0);
  updatedAt = new Float64Array(0);
  lastActiveAt = new Float64Array(0); // NaN = null
  lastSignInAt = new Float64Array(0); // NaN = null
  firstName = new Uint16Array(0);
  lastName = new Uint16Array(0);
  flags = new Uint8Array(0); // FLAG_*
  sessionStart = new Uint32Array(0);
  sessionCount = new Uint8Array(0);

  reserve(n: number): void {
    const cap = this.createdAt.length;
    if (n <= cap) return;
    const next = Math.max(n, Math.ceil(cap * 1.5), 16);
    this.createdAt = grow(this.createdAt, Float64Array, next);
    this.updatedAt = grow(this.updatedAt, Float64Array, next);
    this.lastActiveAt = grow(this.lastActiveAt, Float64Array, next);
    this.lastSignInAt = grow(this.lastSignInAt, Float64Array, next);
    this.firstName = grow(this.firstName, Uint16Array, next);
    this.lastName = grow(this.lastName, Uint16Array, next);
    this.flags = grow(this.flags, Uint8Array, next);
    this.sessionStart = grow(this.sessionStart, Uint32Array, next);
    this.sessionCount = grow(this.sessionCount, Uint8Array, next);
  }
}

export class SessionColumns {
  count = 0;
  user = new Uint32Array(0);
  createdAt = new Float64Array(0);
  updatedAt = new Float64Array(0);
  lastActiveAt = new Float64Array(0);
  expireAt = new Float64Array(0);
  status = new Uint8Array(0);
  browser = new Uint8Array(0);

  reserve(n: number): void {
    const cap = this.user.length;
    if (n <= cap) return;
    const next = Math.max(n, Math.ceil(cap * 1.5), 16);
    this.user = grow(this.user, Uint32Array, next);
    this.createdAt = grow(this.createdAt, Float64Array, next);
    this.updatedAt = grow(this.updatedAt, Float64Array, next);
    this.lastActiveAt = grow(this.lastActiveAt, Float64Array, next);
    this.expireAt = grow(this.expireAt, Float64Array, next);
    this.status = grow(this.status, Uint8Array, next);
    this.browser = grow(this.browser, Uint8Array, next);
  }
}

export const FLAG_DELETED = 1;
export const FLAG_BANNED = 2;

export function isBanned(u: UserColumns, i: number): boolean {
  return (u.flags[i]! & FLAG_BANNED) !== 0;
}

/** A user's email, derived from their name and row (so it can be resolved back to the row). */
export function userEmail(u: UserColumns, i: number): string {
  const first = FIRST_NAMES[u.firstName[i]!]!.toLowerCase();
  const last = LAST_NAMES[u.lastName[i]!]!.toLowerCase().replace(/\s+/g, '');
  return `${first}.${last}+${toBase62(i, 1)}@example.com`;
}

export function userName(u: UserColumns, i: number): string {
  return `${FIRST_NAMES[u.firstName[i]!]} ${LAST_NAMES[u.lastName[i]!]}`;
}
