/**
 * `GET /v1/users` queries over the user columns: which rows a filter matches, in which order.
 * Pure functions of the columns; the store caches their results.
 */
import { FLAG_DELETED, isBanned, userEmail, userName, type UserColumns, type UserOrderField } from './columns';
import type { IdCodec } from './ids';

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

/** Matching rows in row (= created_at ascending) order. */
export function filterUserRows(u: UserColumns, userIds: IdCodec, f: UserFilter): Uint32Array {
  const out: number[] = [];
  if (!f.matchNone) {
    const test = (i: number): boolean => {
      if (u.flags[i]! & FLAG_DELETED || f.exclude.has(i)) return false;
      if (f.banned !== undefined && isBanned(u, i) !== f.banned) return false;
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
        if (t.fields.includes('email')) hay.push(userEmail(u, i));
        if (t.fields.includes('name')) hay.push(userName(u, i));
        if (t.fields.includes('id')) hay.push(userIds.encode(i));
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
  return Uint32Array.from(out);
}

/** The matched rows in the requested order; null values sort last in both directions. */
export function sortUserRows(u: UserColumns, matched: Uint32Array, order: UserOrder): Uint32Array {
  const dir = order.descending ? -1 : 1;
  if (order.field === 'created_at') {
    return order.descending ? matched.slice().reverse() : matched;
  }
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
