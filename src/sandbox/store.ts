/**
 * The sandbox's Clerk instance data: users and sessions in typed-array columns, so that a
 * million users fit in well under 1 GB; JSON objects in Clerk's shapes are built only on read.
 * Everything is derived from a seed with a seeded PRNG: same seed, count and reference time,
 * same instance.
 */

export const DAY_MS = 86_400_000;
/** Clerk's default maximum session lifetime: a user inactive for longer has no active session. */
export const MAX_SESSION_LIFETIME_MS = 7 * DAY_MS;
const INACTIVITY_TIMEOUT_MS = 30 * DAY_MS;

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
const STATUS_CODE: Record<SessionStatus, number> = {
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
const FIRST_NAMES = [
  'Ada', 'Alan', 'Amara', 'Barbara', 'Chen', 'Dara', 'Edsger', 'Emma', 'Farah', 'Grace', 'Hedy',
  'Ines', 'Ivan', 'Jun', 'Katherine', 'Kofi', 'Leila', 'Linus', 'Margaret', 'Mateo', 'Noor',
  'Olga', 'Priya', 'Radia', 'Sofia', 'Tariq', 'Tim', 'Ursula', 'Vint', 'Wei', 'Yara', 'Zoe',
] as const;
const LAST_NAMES = [
  'Abe', 'Berners', 'Cerf', 'Dijkstra', 'Eich', 'Fischer', 'Garcia', 'Hamilton', 'Hopper', 'Ito',
  'Johnson', 'Kahn', 'Kay', 'Lamarr', 'Liskov', 'Lovelace', 'Mensah', 'Nakamura', 'Okafor',
  'Perlman', 'Quinn', 'Ritchie', 'Silva', 'Thompson', 'Turing', 'Ueda', 'Van Rossum', 'Wirth',
  'Xu', 'Yilmaz', 'Zhang', 'Zuse',
] as const;
const BROWSERS = ['Chrome', 'Safari', 'Firefox', 'Edge'] as const;

// ---------------------------------------------------------------------------------------------
// Seeded randomness and ids

/** sfc32 seeded through cyrb128: small, fast, good enough for test data; never Math.random. */
export function createRng(seed: string | number): () => number {
  const str = String(seed);
  let h1 = 1779033703, h2 = 3144134277, h3 = 1013904242, h4 = 2773480762;
  for (let i = 0; i < str.length; i++) {
    const k = str.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  let a = (h1 ^ h2 ^ h3 ^ h4) >>> 0, b = (h2 ^ h1) >>> 0, c = (h3 ^ h1) >>> 0, d = (h4 ^ h1) >>> 0;
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    const r = (t + d) | 0;
    c = (c + r) | 0;
    return (r >>> 0) / 4294967296;
  };
}

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const INDEX_WIDTH = 8;

function toBase62(n: number, width: number): string {
  let s = '';
  let v = n;
  do {
    s = B62[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(width, '0');
}

function fromBase62(s: string): number {
  let v = 0;
  for (const ch of s) {
    const d = B62.indexOf(ch);
    if (d < 0) return -1;
    v = v * 62 + d;
  }
  return v;
}

/** Ids look like Clerk's (`user_` + 27 base62 chars): a tag derived from the seed + the row index. */
class IdCodec {
  private readonly head: string;
  constructor(readonly prefix: string, tag: string) {
    this.head = `${prefix}_${tag}`;
  }
  encode(index: number): string {
    return this.head + toBase62(index, INDEX_WIDTH);
  }
  decode(id: string): number {
    if (id.length !== this.head.length + INDEX_WIDTH || !id.startsWith(this.head)) return -1;
    return fromBase62(id.slice(this.head.length));
  }
}

function seedTag(seed: string | number, kind: string): string {
  const rng = createRng(`${seed}:${kind}`);
  let s = '2'; // Clerk ids start with a version digit
  for (let i = 0; i < 27 - INDEX_WIDTH - 1; i++) s += B62[Math.floor(rng() * 62)];
  return s;
}

// ---------------------------------------------------------------------------------------------
// Growable typed-array columns

type TypedArray = Float64Array | Uint32Array | Uint16Array | Uint8Array;
type TypedArrayCtor<T extends TypedArray> = new (length: number) => T;

function grow<T extends TypedArray>(arr: T, ctor: TypedArrayCtor<T>, capacity: number): T {
  if (arr.length >= capacity) return arr;
  const next = new ctor(capacity);
  next.set(arr);
  return next;
}

class UserColumns {
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

class SessionColumns {
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

const FLAG_DELETED = 1;
const FLAG_BANNED = 2;

// ---------------------------------------------------------------------------------------------
// Clerk JSON shapes (the subset of fields the SDK reads plus the spec's required ones)

export interface EmailAddressJson {
  id: string;
  object: 'email_address';
  email_address: string;
  reserved: boolean;
  verification: {
    object: 'verification_otp';
    status: 'verified';
    strategy: 'email_code';
    attempts: number;
    expire_at: number;
  };
  linked_to: never[];
  matches_sso_connection: boolean;
  created_at: number;
  updated_at: number;
}

export interface UserJson {
  id: string;
  object: 'user';
  external_id: string | null;
  primary_email_address_id: string | null;
  primary_phone_number_id: string | null;
  primary_web3_wallet_id: string | null;
  username: string | null;
  first_name: string | null;
  last_name: string | null;
  locale: string | null;
  image_url: string;
  has_image: boolean;
  public_metadata: Record<string, unknown>;
  private_metadata: Record<string, unknown>;
  unsafe_metadata: Record<string, unknown>;
  email_addresses: EmailAddressJson[];
  phone_numbers: never[];
  web3_wallets: never[];
  passkeys: never[];
  password_enabled: boolean;
  two_factor_enabled: boolean;
  totp_enabled: boolean;
  backup_code_enabled: boolean;
  mfa_enabled_at: number | null;
  mfa_disabled_at: number | null;
  password_last_updated_at: number | null;
  external_accounts: never[];
  saml_accounts: never[];
  enterprise_accounts: never[];
  organization_memberships: never[];
  last_sign_in_at: number | null;
  banned: boolean;
  locked: boolean;
  deprovisioned: boolean;
  lockout_expires_in_seconds: number | null;
  verification_attempts_remaining: number | null;
  updated_at: number;
  created_at: number;
  delete_self_enabled: boolean;
  create_organization_enabled: boolean;
  create_organizations_limit: number | null;
  last_active_at: number | null;
  legal_accepted_at: number | null;
  bypass_client_trust: boolean;
}

export interface SessionJson {
  object: 'session';
  id: string;
  user_id: string;
  client_id: string;
  actor: null;
  status: SessionStatus;
  last_active_organization_id: null;
  last_active_at: number;
  latest_activity: {
    object: 'session_activity';
    id: string;
    device_type: string;
    is_mobile: boolean;
    browser_name: string;
    browser_version: string;
    ip_address: string;
    city: string;
    country: string;
  };
  expire_at: number;
  abandon_at: number;
  updated_at: number;
  created_at: number;
  tasks: null;
}

// ---------------------------------------------------------------------------------------------
// Queries

export interface UserFilter {
  /** Include only these rows (from user_id / email_address filters); null = all. */
  include: number[] | null;
  exclude: Set<number>;
  /** A filter on data the sandbox has none of (phone numbers, wallets, orgs...): matches nobody. */
  matchNone: boolean;
  banned?: boolean;
  lastActiveAtAfter?: number;
  lastActiveAtBefore?: number;
  createdAtAfter?: number;
  createdAtBefore?: number;
  lastSignInAtAfter?: number;
  lastSignInAtBefore?: number;
  /** Case-insensitive substring searches: every one must match. */
  text: { needle: string; fields: ('email' | 'name' | 'id')[] }[];
}

export interface UserOrder {
  field: UserOrderField;
  descending: boolean;
}

export function emptyUserFilter(): UserFilter {
  return { include: null, exclude: new Set(), matchNone: false, text: [] };
}

export interface SeedOptions {
  users: number;
  seed: string | number;
  /** Reference time of the seeded timeline (ms since epoch); defaults to now. */
  now?: number;
}

export interface StoreStats {
  users: number;
  deletedUsers: number;
  sessions: number;
  sessionsByStatus: Record<SessionStatus, number>;
  usersWithActiveSession: number;
  seed: string | number;
  seededAt: number;
}

export interface UserChange {
  kind: 'created' | 'deleted';
  user: number;
}

/** One Clerk instance's users and sessions. */
export class ClerkStore {
  private u = new UserColumns();
  private s = new SessionColumns();
  private userIds!: IdCodec;
  private sessionIds!: IdCodec;
  private clientIds!: IdCodec;
  private emailIds!: IdCodec;
  private activityIds!: IdCodec;
  private rng!: () => number;
  private seedValue: string | number = 0;
  private seededAt = 0;
  /** Bumped on every change to user rows; query caches check it. */
  private version = 0;
  private readonly cache = new Map<string, { version: number; rows: Uint32Array }>();

  constructor(options: SeedOptions) {
    this.seed(options);
  }

  get seedInfo(): { seed: string | number; now: number } {
    return { seed: this.seedValue, now: this.seededAt };
  }

  /** Replaces all data with `users` freshly generated users (and their sessions). */
  seed(options: SeedOptions): { users: number; sessions: number; activeSessions: number } {
    const { users, seed } = options;
    const now = options.now ?? Date.now();
    this.seedValue = seed;
    this.seededAt = now;
    this.userIds = new IdCodec('user', seedTag(seed, 'user'));
    this.sessionIds = new IdCodec('sess', seedTag(seed, 'sess'));
    this.clientIds = new IdCodec('client', seedTag(seed, 'client'));
    this.emailIds = new IdCodec('idn', seedTag(seed, 'idn'));
    this.activityIds = new IdCodec('sess_activity', seedTag(seed, 'act'));
    this.rng = createRng(seed);
    this.u = new UserColumns();
    this.s = new SessionColumns();
    this.u.reserve(users);
    this.s.reserve(Math.ceil(users * 1.3) + 16);
    this.cache.clear();
    this.version++;
    const span = 3 * 365 * DAY_MS;
    const start = now - span;
    const step = users > 0 ? span / users : 0;
    let active = 0;
    for (let i = 0; i < users; i++) {
      // Strictly increasing creation times: created_at order is row order.
      const createdAt = Math.floor(start + i * step + this.rng() * step * 0.9);
      active += this.generateUser(createdAt, now);
    }
    return { users, sessions: this.s.count, activeSessions: active };
  }

  /** Appends a user with a spread of sessions; returns the number of active sessions. */
  private generateUser(createdAt: number, now: number): number {
    const u = this.u;
    const rng = this.rng;
    const i = u.count++;
    u.reserve(u.count);
    u.createdAt[i] = createdAt;
    u.firstName[i] = Math.floor(rng() * FIRST_NAMES.length);
    u.lastName[i] = Math.floor(rng() * LAST_NAMES.length);
    u.sessionStart[i] = this.s.count;
    u.sessionCount[i] = 0;
    u.flags[i] = 0;
    const age = now - createdAt;
    const r = rng();
    let lastActive = NaN;
    let active = 0;
    if (r < 0.35 || age < MAX_SESSION_LIFETIME_MS) {
      // Recently active: one or two active sessions, maybe an older ended one.
      const windowStart = Math.max(createdAt, now - MAX_SESSION_LIFETIME_MS + 3_600_000);
      lastActive = Math.floor(now - rng() * Math.max(0, now - windowStart));
      const actives = rng() < 0.25 ? 2 : 1;
      for (let k = 0; k < actives; k++) {
        const la = k === 0 ? lastActive : Math.floor(lastActive - rng() * (lastActive - windowStart));
        const created = Math.floor(la - rng() * (la - windowStart));
        this.addSession(i, created, la, 'active');
        active++;
      }
      if (rng() < 0.3 && lastActive - createdAt > DAY_MS) {
        const created = Math.floor(createdAt + rng() * (lastActive - createdAt - DAY_MS));
        this.addSession(i, created, created + Math.floor(rng() * DAY_MS), rng() < 0.5 ? 'ended' : 'revoked');
      }
    } else if (r < 0.65) {
      // Active 7-90 days ago: sessions have ended or expired since.
      const from = Math.max(createdAt, now - 90 * DAY_MS);
      lastActive = Math.floor(from + rng() * (now - MAX_SESSION_LIFETIME_MS - from));
      const n = 1 + Math.floor(rng() * 2);
      for (let k = 0; k < n; k++) {
        const la = k === 0 ? lastActive : Math.floor(lastActive - rng() * (lastActive - createdAt));
        const created = Math.floor(la - rng() * Math.min(la - createdAt, 6 * DAY_MS));
        const pick = rng();
        const status: SessionStatus = pick < 0.5 ? 'expired' : pick < 0.8 ? 'ended' : pick < 0.9 ? 'removed' : 'abandoned';
        this.addSession(i, created, la, status);
      }
    } else if (r < 0.9) {
      // Dormant: last seen long ago; old sessions are mostly cleaned up.
      lastActive = Math.floor(createdAt + rng() * Math.max(0, now - 90 * DAY_MS - createdAt));
      if (rng() < 0.3) this.addSession(i, Math.max(createdAt, lastActive - DAY_MS), lastActive, 'expired');
      if (rng() < 0.02) u.flags[i] = FLAG_BANNED;
    }
    // else: signed up, never active.
    u.lastActiveAt[i] = lastActive;
    let lastSignIn = NaN;
    for (let k = 0; k < u.sessionCount[i]!; k++) {
      const c = this.s.createdAt[u.sessionStart[i]! + k]!;
      if (!(c <= lastSignIn)) lastSignIn = c;
    }
    u.lastSignInAt[i] = lastSignIn;
    u.updatedAt[i] = Number.isNaN(lastSignIn) ? createdAt : Math.max(createdAt, lastSignIn);
    return active;
  }

  private addSession(user: number, createdAt: number, lastActiveAt: number, status: SessionStatus): void {
    const s = this.s;
    const j = s.count++;
    s.reserve(s.count);
    s.user[j] = user;
    s.createdAt[j] = createdAt;
    s.lastActiveAt[j] = Math.max(createdAt, lastActiveAt);
    s.updatedAt[j] = s.lastActiveAt[j]!;
    s.expireAt[j] = createdAt + MAX_SESSION_LIFETIME_MS;
    s.status[j] = STATUS_CODE[status];
    s.browser[j] = Math.floor(this.rng() * BROWSERS.length);
    this.u.sessionCount[user] = this.u.sessionCount[user]! + 1;
  }

  // -- mutations ------------------------------------------------------------------------------

  /** Adds users as if they had just signed up and signed in (one active session each). */
  createUsers(count: number, now = Date.now()): number[] {
    const created: number[] = [];
    for (let k = 0; k < count; k++) {
      const last = this.u.count > 0 ? this.u.createdAt[this.u.count - 1]! : 0;
      const createdAt = Math.max(now, last + 1);
      const i = this.u.count++;
      const u = this.u;
      u.reserve(u.count);
      u.createdAt[i] = createdAt;
      u.firstName[i] = Math.floor(this.rng() * FIRST_NAMES.length);
      u.lastName[i] = Math.floor(this.rng() * LAST_NAMES.length);
      u.sessionStart[i] = this.s.count;
      u.sessionCount[i] = 0;
      u.flags[i] = 0;
      this.addSession(i, createdAt, createdAt, 'active');
      u.lastActiveAt[i] = createdAt;
      u.lastSignInAt[i] = createdAt;
      u.updatedAt[i] = createdAt;
      created.push(i);
    }
    this.version++;
    return created;
  }

  /** Deletes a user; Clerk ends their sessions with them. Returns the sessions that were removed. */
  deleteUser(user: number, now = Date.now()): number[] {
    this.u.flags[user] = this.u.flags[user]! | FLAG_DELETED;
    this.u.updatedAt[user] = now;
    const ended: number[] = [];
    for (const j of this.sessionRows(user)) {
      if (this.s.status[j] === STATUS_CODE.active) {
        this.s.status[j] = STATUS_CODE.removed;
        this.s.updatedAt[j] = now;
        ended.push(j);
      }
    }
    this.version++;
    return ended;
  }

  /** Marks an active session revoked; false when it was not active (nothing changes then). */
  revokeSession(session: number, now = Date.now()): boolean {
    const st = this.s.status[session]!;
    if (st !== STATUS_CODE.active && st !== STATUS_CODE.pending) return false;
    this.s.status[session] = STATUS_CODE.revoked;
    this.s.updatedAt[session] = now;
    return true;
  }

  // -- lookups --------------------------------------------------------------------------------

  get userRowCount(): number {
    return this.u.count;
  }

  /** The row of a user id, or -1; a deleted user counts only with `includeDeleted` (cursors need its place). */
  findUser(id: string, opts: { includeDeleted?: boolean } = {}): number {
    const i = this.userIds.decode(id);
    if (i < 0 || i >= this.u.count) return -1;
    return opts.includeDeleted || !(this.u.flags[i]! & FLAG_DELETED) ? i : -1;
  }

  findSession(id: string): number {
    const j = this.sessionIds.decode(id);
    return j >= 0 && j < this.s.count ? j : -1;
  }

  findSessionByClient(clientId: string): number {
    const j = this.clientIds.decode(clientId);
    return j >= 0 && j < this.s.count ? j : -1;
  }

  private findUserByEmail(email: string): number {
    const m = /\+([0-9A-Za-z]+)@example\.com$/.exec(email);
    if (!m?.[1]) return -1;
    const i = fromBase62(m[1]);
    if (i < 0 || i >= this.u.count) return -1;
    return this.email(i).toLowerCase() === email.toLowerCase() ? i : -1;
  }

  userId(i: number): string {
    return this.userIds.encode(i);
  }

  sessionId(j: number): string {
    return this.sessionIds.encode(j);
  }

  sessionStatus(j: number): SessionStatus {
    return SESSION_STATUSES[this.s.status[j]!]!;
  }

  sessionUser(j: number): number {
    return this.s.user[j]!;
  }

  isDeleted(i: number): boolean {
    return (this.u.flags[i]! & FLAG_DELETED) !== 0;
  }

  /** Row numbers of a user's sessions, newest first (Clerk's order). */
  sessionRows(user: number, status?: SessionStatus): number[] {
    const start = this.u.sessionStart[user]!;
    const rows: number[] = [];
    for (let k = 0; k < this.u.sessionCount[user]!; k++) {
      const j = start + k;
      if (status === undefined || this.s.status[j] === STATUS_CODE[status]) rows.push(j);
    }
    return rows.sort((a, b) => this.s.createdAt[b]! - this.s.createdAt[a]! || b - a);
  }

  /** Ids of all sessions that are active now (for tests and audits). */
  sessionIdsWithStatus(status: SessionStatus): string[] {
    const ids: string[] = [];
    const code = STATUS_CODE[status];
    for (let j = 0; j < this.s.count; j++) if (this.s.status[j] === code) ids.push(this.sessionIds.encode(j));
    return ids;
  }

  stats(): StoreStats {
    const byStatus = Object.fromEntries(SESSION_STATUSES.map((st) => [st, 0])) as Record<SessionStatus, number>;
    for (let j = 0; j < this.s.count; j++) byStatus[SESSION_STATUSES[this.s.status[j]!]!]++;
    let deleted = 0;
    let withActive = 0;
    for (let i = 0; i < this.u.count; i++) {
      if (this.u.flags[i]! & FLAG_DELETED) {
        deleted++;
        continue;
      }
      const start = this.u.sessionStart[i]!;
      for (let k = 0; k < this.u.sessionCount[i]!; k++) {
        if (this.s.status[start + k] === STATUS_CODE.active) {
          withActive++;
          break;
        }
      }
    }
    return {
      users: this.u.count - deleted,
      deletedUsers: deleted,
      sessions: this.s.count,
      sessionsByStatus: byStatus,
      usersWithActiveSession: withActive,
      seed: this.seedValue,
      seededAt: this.seededAt,
    };
  }

  // -- user queries ---------------------------------------------------------------------------

  /** Rows matching the filter, in the requested order. Cached per query while data is unchanged. */
  queryUsers(filter: UserFilter, order: UserOrder, cacheKey: string): Uint32Array {
    const key = `${cacheKey}|${order.descending ? '-' : '+'}${order.field}`;
    const hit = this.cache.get(key);
    if (hit && hit.version === this.version) return hit.rows;
    const matched = this.filterUsers(filter, cacheKey);
    const rows = this.sortUsers(matched, order);
    this.remember(key, rows);
    return rows;
  }

  countUsers(filter: UserFilter, cacheKey: string): number {
    return this.filterUsers(filter, cacheKey).length;
  }

  private remember(key: string, rows: Uint32Array): void {
    if (this.cache.size >= 16) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, { version: this.version, rows });
  }

  /** Matching rows in row (= created_at ascending) order. */
  private filterUsers(f: UserFilter, cacheKey: string): Uint32Array {
    const key = `filter|${cacheKey}`;
    const hit = this.cache.get(key);
    if (hit && hit.version === this.version) return hit.rows;
    const u = this.u;
    const out: number[] = [];
    if (!f.matchNone) {
      const test = (i: number): boolean => {
        if (u.flags[i]! & FLAG_DELETED || f.exclude.has(i)) return false;
        if (f.banned !== undefined && ((u.flags[i]! & FLAG_BANNED) !== 0) !== f.banned) return false;
        const la = u.lastActiveAt[i]!;
        if (f.lastActiveAtAfter !== undefined && !(la > f.lastActiveAtAfter)) return false;
        if (f.lastActiveAtBefore !== undefined && !(la < f.lastActiveAtBefore)) return false;
        const ca = u.createdAt[i]!;
        if (f.createdAtAfter !== undefined && !(ca > f.createdAtAfter)) return false;
        if (f.createdAtBefore !== undefined && !(ca < f.createdAtBefore)) return false;
        const ls = u.lastSignInAt[i]!;
        if (f.lastSignInAtAfter !== undefined && !(ls > f.lastSignInAtAfter)) return false;
        if (f.lastSignInAtBefore !== undefined && !(ls < f.lastSignInAtBefore)) return false;
        for (const t of f.text) {
          const hay: string[] = [];
          if (t.fields.includes('email')) hay.push(this.email(i));
          if (t.fields.includes('name')) hay.push(`${FIRST_NAMES[u.firstName[i]!]} ${LAST_NAMES[u.lastName[i]!]}`);
          if (t.fields.includes('id')) hay.push(this.userIds.encode(i));
          if (!hay.some((h) => h.toLowerCase().includes(t.needle))) return false;
        }
        return true;
      };
      const rangesOnly = !f.include && f.exclude.size === 0 && f.banned === undefined && f.text.length === 0;
      if (rangesOnly) {
        // The runbook's common query (last_active_at / created_at ranges): a tight column scan.
        const laLo = f.lastActiveAtAfter ?? -Infinity, laHi = f.lastActiveAtBefore ?? Infinity;
        const caLo = f.createdAtAfter ?? -Infinity, caHi = f.createdAtBefore ?? Infinity;
        const lsLo = f.lastSignInAtAfter ?? -Infinity, lsHi = f.lastSignInAtBefore ?? Infinity;
        const laAny = f.lastActiveAtAfter === undefined && f.lastActiveAtBefore === undefined;
        const lsAny = f.lastSignInAtAfter === undefined && f.lastSignInAtBefore === undefined;
        const { flags, lastActiveAt, createdAt, lastSignInAt } = u;
        for (let i = 0; i < u.count; i++) {
          if (flags[i]! & FLAG_DELETED) continue;
          const la = lastActiveAt[i]!;
          if (!laAny && !(la > laLo && la < laHi)) continue;
          const ca = createdAt[i]!;
          if (!(ca > caLo && ca < caHi)) continue;
          const ls = lastSignInAt[i]!;
          if (!lsAny && !(ls > lsLo && ls < lsHi)) continue;
          out.push(i);
        }
      } else if (f.include) {
        for (const i of [...new Set(f.include)].sort((a, b) => a - b)) if (i >= 0 && i < u.count && test(i)) out.push(i);
      } else {
        for (let i = 0; i < u.count; i++) if (test(i)) out.push(i);
      }
    }
    const rows = Uint32Array.from(out);
    this.remember(key, rows);
    return rows;
  }

  private sortUsers(matched: Uint32Array, order: UserOrder): Uint32Array {
    const dir = order.descending ? -1 : 1;
    if (order.field === 'created_at') {
      return order.descending ? matched.slice().reverse() : matched;
    }
    const u = this.u;
    // Numeric sort key per row; NaN (null) sorts last in both directions.
    let keyOf: (i: number) => number;
    switch (order.field) {
      case 'updated_at':
        keyOf = (i) => u.updatedAt[i]!;
        break;
      case 'last_active_at':
        keyOf = (i) => u.lastActiveAt[i]!;
        break;
      case 'last_sign_in_at':
        keyOf = (i) => u.lastSignInAt[i]!;
        break;
      case 'first_name':
      case 'email_address': // emails start with the first name
        keyOf = (i) => u.firstName[i]! * 65536 + u.lastName[i]!;
        break;
      case 'last_name':
        keyOf = (i) => u.lastName[i]! * 65536 + u.firstName[i]!;
        break;
      default: // username, phone_number, web3wallet: all null in the sandbox
        keyOf = () => NaN;
    }
    const keys = new Float64Array(u.count);
    for (const i of matched) keys[i] = keyOf(i);
    const rows = matched.slice();
    rows.sort((a, b) => {
      const ka = keys[a]!, kb = keys[b]!;
      const na = Number.isNaN(ka), nb = Number.isNaN(kb);
      if (na || nb) return na === nb ? dir * (a - b) : na ? 1 : -1;
      return dir * (ka - kb) || dir * (a - b);
    });
    return rows;
  }

  /** Resolves `user_id` / `email_address` filter values to rows (unknown values are ignored). */
  resolveUserIds(ids: string[]): number[] {
    return ids.map((id) => this.findUser(id)).filter((i) => i >= 0);
  }

  resolveEmails(emails: string[]): number[] {
    return emails.map((e) => this.findUserByEmail(e)).filter((i) => i >= 0);
  }

  // -- JSON -----------------------------------------------------------------------------------

  private email(i: number): string {
    const first = FIRST_NAMES[this.u.firstName[i]!]!.toLowerCase();
    const last = LAST_NAMES[this.u.lastName[i]!]!.toLowerCase().replace(/\s+/g, '');
    return `${first}.${last}+${toBase62(i, 1)}@example.com`;
  }

  userJson(i: number): UserJson {
    const u = this.u;
    const createdAt = u.createdAt[i]!;
    const updatedAt = u.updatedAt[i]!;
    const emailId = this.emailIds.encode(i);
    const lastActive = u.lastActiveAt[i]!;
    const lastSignIn = u.lastSignInAt[i]!;
    return {
      id: this.userIds.encode(i),
      object: 'user',
      external_id: null,
      primary_email_address_id: emailId,
      primary_phone_number_id: null,
      primary_web3_wallet_id: null,
      username: null,
      first_name: FIRST_NAMES[u.firstName[i]!]!,
      last_name: LAST_NAMES[u.lastName[i]!]!,
      locale: null,
      image_url: 'https://img.clerk.com/sandbox-default-avatar',
      has_image: false,
      public_metadata: {},
      private_metadata: {},
      unsafe_metadata: {},
      email_addresses: [
        {
          id: emailId,
          object: 'email_address',
          email_address: this.email(i),
          reserved: false,
          verification: {
            object: 'verification_otp',
            status: 'verified',
            strategy: 'email_code',
            attempts: 1,
            expire_at: createdAt + 600_000,
          },
          linked_to: [],
          matches_sso_connection: false,
          created_at: createdAt,
          updated_at: createdAt,
        },
      ],
      phone_numbers: [],
      web3_wallets: [],
      passkeys: [],
      password_enabled: true,
      two_factor_enabled: false,
      totp_enabled: false,
      backup_code_enabled: false,
      mfa_enabled_at: null,
      mfa_disabled_at: null,
      password_last_updated_at: createdAt,
      external_accounts: [],
      saml_accounts: [],
      enterprise_accounts: [],
      organization_memberships: [],
      last_sign_in_at: Number.isNaN(lastSignIn) ? null : lastSignIn,
      banned: (u.flags[i]! & FLAG_BANNED) !== 0,
      locked: false,
      deprovisioned: false,
      lockout_expires_in_seconds: null,
      verification_attempts_remaining: 100,
      updated_at: updatedAt,
      created_at: createdAt,
      delete_self_enabled: true,
      create_organization_enabled: true,
      create_organizations_limit: null,
      last_active_at: Number.isNaN(lastActive) ? null : lastActive,
      legal_accepted_at: null,
      bypass_client_trust: false,
    };
  }

  /**
   * `JSON.stringify(userJson(i))`, built directly: list pages of 500 users are the sandbox's
   * heaviest answers. Every interpolated string is generated (ids, names, emails) and needs no
   * escaping; a test keeps the two in step.
   */
  userJsonString(i: number): string {
    const u = this.u;
    const createdAt = u.createdAt[i]!;
    const emailId = this.emailIds.encode(i);
    const lastActive = u.lastActiveAt[i]!;
    const lastSignIn = u.lastSignInAt[i]!;
    const num = (v: number) => (Number.isNaN(v) ? 'null' : String(v));
    return (
      `{"id":"${this.userIds.encode(i)}","object":"user","external_id":null,"primary_email_address_id":"${emailId}",` +
      `"primary_phone_number_id":null,"primary_web3_wallet_id":null,"username":null,` +
      `"first_name":"${FIRST_NAMES[u.firstName[i]!]}","last_name":"${LAST_NAMES[u.lastName[i]!]}","locale":null,` +
      `"image_url":"https://img.clerk.com/sandbox-default-avatar","has_image":false,"public_metadata":{},"private_metadata":{},"unsafe_metadata":{},` +
      `"email_addresses":[{"id":"${emailId}","object":"email_address","email_address":"${this.email(i)}","reserved":false,` +
      `"verification":{"object":"verification_otp","status":"verified","strategy":"email_code","attempts":1,"expire_at":${createdAt + 600_000}},` +
      `"linked_to":[],"matches_sso_connection":false,"created_at":${createdAt},"updated_at":${createdAt}}],` +
      `"phone_numbers":[],"web3_wallets":[],"passkeys":[],"password_enabled":true,"two_factor_enabled":false,"totp_enabled":false,` +
      `"backup_code_enabled":false,"mfa_enabled_at":null,"mfa_disabled_at":null,"password_last_updated_at":${createdAt},` +
      `"external_accounts":[],"saml_accounts":[],"enterprise_accounts":[],"organization_memberships":[],` +
      `"last_sign_in_at":${num(lastSignIn)},"banned":${(u.flags[i]! & FLAG_BANNED) !== 0},"locked":false,"deprovisioned":false,` +
      `"lockout_expires_in_seconds":null,"verification_attempts_remaining":100,"updated_at":${u.updatedAt[i]!},"created_at":${createdAt},` +
      `"delete_self_enabled":true,"create_organization_enabled":true,"create_organizations_limit":null,` +
      `"last_active_at":${num(lastActive)},"legal_accepted_at":null,"bypass_client_trust":false}`
    );
  }

  sessionJson(j: number): SessionJson {
    const s = this.s;
    const browser = BROWSERS[s.browser[j]!]!;
    return {
      object: 'session',
      id: this.sessionIds.encode(j),
      user_id: this.userIds.encode(s.user[j]!),
      client_id: this.clientIds.encode(j),
      actor: null,
      status: SESSION_STATUSES[s.status[j]!]!,
      last_active_organization_id: null,
      last_active_at: s.lastActiveAt[j]!,
      latest_activity: {
        object: 'session_activity',
        id: this.activityIds.encode(j),
        device_type: 'Macintosh',
        is_mobile: false,
        browser_name: browser,
        browser_version: '131.0.0.0',
        ip_address: `203.0.113.${j % 254 + 1}`,
        city: 'Sandbox City',
        country: 'ZZ',
      },
      expire_at: s.expireAt[j]!,
      abandon_at: s.createdAt[j]! + INACTIVITY_TIMEOUT_MS,
      updated_at: s.updatedAt[j]!,
      created_at: s.createdAt[j]!,
      tasks: null,
    };
  }
}
