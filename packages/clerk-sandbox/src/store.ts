/**
 * The sandbox's Clerk instance data: users and sessions (in the typed-array columns of
 * `columns.ts`), seeded, changed and looked up here; queries in `user-query.ts`, Clerk's JSON
 * shapes in `clerk-json.ts`. Everything is derived from a seed with a seeded PRNG: same seed,
 * count and reference time, same instance.
 */
import { buildSessionJson, buildUserJson, buildUserJsonString, type SessionJson, type UserJson } from './clerk-json';
import {
  BROWSERS,
  DAY_MS,
  FIRST_NAMES,
  FLAG_BANNED,
  FLAG_DELETED,
  LAST_NAMES,
  MAX_SESSION_LIFETIME_MS,
  SESSION_STATUSES,
  STATUS_CODE,
  SessionColumns,
  UserColumns,
  userEmail,
  type SessionStatus,
} from './columns';
import { createRng, fromBase62, instanceIds, type InstanceIds } from './ids';
import { filterUserRows, sortUserRows, type UserFilter, type UserOrder } from './user-query';

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

/** One Clerk instance's users and sessions. */
export class ClerkStore {
  private u = new UserColumns();
  private s = new SessionColumns();
  private ids!: InstanceIds;
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
    this.ids = instanceIds(seed);
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
    const i = this.appendUser(createdAt);
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

  /** Appends a user row with a random name and no sessions yet; returns its row. */
  private appendUser(createdAt: number): number {
    const u = this.u;
    const i = u.count++;
    u.reserve(u.count);
    u.createdAt[i] = createdAt;
    u.firstName[i] = Math.floor(this.rng() * FIRST_NAMES.length);
    u.lastName[i] = Math.floor(this.rng() * LAST_NAMES.length);
    u.sessionStart[i] = this.s.count;
    u.sessionCount[i] = 0;
    u.flags[i] = 0;
    return i;
  }

  private addSession(user: number, createdAt: number, lastActiveAt: number, status: SessionStatus, lifetimeMs = MAX_SESSION_LIFETIME_MS): void {
    const s = this.s;
    const j = s.count++;
    s.reserve(s.count);
    s.user[j] = user;
    s.createdAt[j] = createdAt;
    s.lastActiveAt[j] = Math.max(createdAt, lastActiveAt);
    s.updatedAt[j] = s.lastActiveAt[j]!;
    s.expireAt[j] = createdAt + lifetimeMs;
    s.status[j] = STATUS_CODE[status];
    s.browser[j] = Math.floor(this.rng() * BROWSERS.length);
    this.u.sessionCount[user] = this.u.sessionCount[user]! + 1;
  }

  // -- mutations ------------------------------------------------------------------------------

  /**
   * Adds users as if they had just signed up and signed in (one active session each). With
   * `expired`, each also has that many earlier sessions, back to back, that each ended as
   * `expired` after `lifetimeMs` (newest first, as Clerk lists them: the active one first).
   * `sessionLifetimeMs` is the instance's configured lifetime: the new session's `expire_at`.
   */
  createUsers(count: number, now = Date.now(), expired?: { count: number; lifetimeMs: number }, sessionLifetimeMs = MAX_SESSION_LIFETIME_MS): number[] {
    const created: number[] = [];
    for (let k = 0; k < count; k++) {
      const last = this.u.count > 0 ? this.u.createdAt[this.u.count - 1]! : 0;
      const createdAt = Math.max(now, last + 1);
      const i = this.appendUser(createdAt);
      const u = this.u;
      for (let e = expired?.count ?? 0; e >= 1; e--) {
        const lifetime = expired!.lifetimeMs;
        const start = createdAt - e * lifetime;
        this.addSession(i, start, start + lifetime - 1000, 'expired', lifetime);
        this.s.updatedAt[this.s.count - 1] = start + lifetime;
      }
      this.addSession(i, createdAt, createdAt, 'active', sessionLifetimeMs);
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
    const i = this.ids.user.decode(id);
    if (i < 0 || i >= this.u.count) return -1;
    return opts.includeDeleted || !(this.u.flags[i]! & FLAG_DELETED) ? i : -1;
  }

  findSession(id: string): number {
    const j = this.ids.session.decode(id);
    return j >= 0 && j < this.s.count ? j : -1;
  }

  findSessionByClient(clientId: string): number {
    const j = this.ids.client.decode(clientId);
    return j >= 0 && j < this.s.count ? j : -1;
  }

  private findUserByEmail(email: string): number {
    const m = /\+([0-9A-Za-z]+)@example\.com$/.exec(email);
    if (!m?.[1]) return -1;
    const i = fromBase62(m[1]);
    if (i < 0 || i >= this.u.count) return -1;
    return userEmail(this.u, i).toLowerCase() === email.toLowerCase() ? i : -1;
  }

  userId(i: number): string {
    return this.ids.user.encode(i);
  }

  sessionId(j: number): string {
    return this.ids.session.encode(j);
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
    for (let j = 0; j < this.s.count; j++) if (this.s.status[j] === code) ids.push(this.ids.session.encode(j));
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
    const rows = sortUserRows(this.u, matched, order);
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
    const rows = filterUserRows(this.u, this.ids.user, f);
    this.remember(key, rows);
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

  userJson(i: number): UserJson {
    return buildUserJson(this.u, this.ids, i);
  }

  /** `JSON.stringify(userJson(i))`, built directly for the heaviest answers (list pages). */
  userJsonString(i: number): string {
    return buildUserJsonString(this.u, this.ids, i);
  }

  sessionJson(j: number): SessionJson {
    return buildSessionJson(this.s, this.ids, j);
  }
}
