/**
 * The sandbox's record of every request it answered (Clerk API, status page, example app):
 * a bounded log of entries plus counters that are never truncated, so tests can prove what a
 * run did (each session revoked once, no request with a deleted key, ...).
 */
import type { ParsedAuditQuery, RouteKey } from './schemas';

export type KeyState = 'active' | 'deleted' | 'unknown' | 'missing';
/** `rejected`: a 4xx injected by `rejectSessions` (the handler ran, the session did not change). */
export type AuditFault = 'latency' | 'error' | 'hang' | 'rate_limited' | 'outage' | 'rejected';

export interface AuditEntry {
  seq: number;
  /** ISO time the request arrived. */
  time: string;
  method: string;
  path: string;
  route: RouteKey | null;
  /** Sandbox id of the secret key presented (never the key itself). */
  keyId: string | null;
  keyState: KeyState | null;
  /** HTTP status sent; 0 when no answer was sent (hang, client gave up). */
  status: number;
  durationMs: number;
  fault: AuditFault | null;
}

export interface RouteCounters {
  count: number;
  byStatus: Record<string, number>;
}

export interface AuditSummary {
  total: number;
  entriesKept: number;
  entriesDropped: number;
  byRoute: Record<string, RouteCounters>;
  byStatus: Record<string, number>;
  byKey: Record<string, { count: number; whileDeleted: number }>;
  /** Requests that presented a key after it was deleted. */
  requestsWithDeletedKey: number;
  requestsWithUnknownKey: number;
  requestsWithoutKey: number;
  faults: Record<AuditFault, number>;
  revokes: {
    calls: number;
    /** Distinct sessions a revoke was called for. */
    sessions: number;
    /** Sessions that went from active to revoked. */
    sessionsRevoked: number;
    /** Sessions with more than one revoke call (retries, duplicates). */
    sessionsWithRepeatCalls: number;
  };
}

export interface RevokeRecord {
  calls: number;
  /** Calls that actually changed the session to revoked (at most 1). */
  revoked: number;
  /** Calls answered with a `rejectSessions` 4xx (counted in `calls` too). */
  rejected: number;
}

export class AuditLog {
  private entries: AuditEntry[] = [];
  private head = 0;
  private seq = 0;
  private dropped = 0;
  private byRoute = new Map<string, RouteCounters>();
  private byStatus = new Map<string, number>();
  private byKey = new Map<string, { count: number; whileDeleted: number }>();
  private deletedKeyRequests = 0;
  private unknownKeyRequests = 0;
  private missingKeyRequests = 0;
  private faults: Record<AuditFault, number> = { latency: 0, error: 0, hang: 0, rate_limited: 0, outage: 0, rejected: 0 };
  private revokeCalls = new Map<string, RevokeRecord>();

  constructor(private readonly capacity: number) {}

  record(entry: Omit<AuditEntry, 'seq'>): AuditEntry {
    const full: AuditEntry = { seq: ++this.seq, ...entry };
    if (this.entries.length < this.capacity) {
      this.entries.push(full);
    } else {
      this.entries[this.head] = full;
      this.head = (this.head + 1) % this.capacity;
      this.dropped++;
    }
    const routeKey = entry.route ?? `${entry.method} (unmatched)`;
    let rc = this.byRoute.get(routeKey);
    if (!rc) this.byRoute.set(routeKey, (rc = { count: 0, byStatus: {} }));
    rc.count++;
    const st = String(entry.status);
    rc.byStatus[st] = (rc.byStatus[st] ?? 0) + 1;
    this.byStatus.set(st, (this.byStatus.get(st) ?? 0) + 1);
    if (entry.keyId) {
      let kc = this.byKey.get(entry.keyId);
      if (!kc) this.byKey.set(entry.keyId, (kc = { count: 0, whileDeleted: 0 }));
      kc.count++;
      if (entry.keyState === 'deleted') kc.whileDeleted++;
    }
    if (entry.keyState === 'deleted') this.deletedKeyRequests++;
    else if (entry.keyState === 'unknown') this.unknownKeyRequests++;
    else if (entry.keyState === 'missing') this.missingKeyRequests++;
    if (entry.fault) this.faults[entry.fault]++;
    return full;
  }

  /** Counts a revoke call that reached the handler (after auth, limits and faults), rejected ones included. */
  recordRevoke(sessionId: string, outcome: 'revoked' | 'unchanged' | 'rejected'): void {
    let r = this.revokeCalls.get(sessionId);
    if (!r) this.revokeCalls.set(sessionId, (r = { calls: 0, revoked: 0, rejected: 0 }));
    r.calls++;
    if (outcome === 'revoked') r.revoked++;
    if (outcome === 'rejected') r.rejected++;
  }

  revokes(): Record<string, RevokeRecord> {
    return Object.fromEntries([...this.revokeCalls].map(([id, r]) => [id, { ...r }]));
  }

  /** Entries in arrival order, filtered. */
  query(q: ParsedAuditQuery): AuditEntry[] {
    const ordered = this.head === 0 ? this.entries : [...this.entries.slice(this.head), ...this.entries.slice(0, this.head)];
    const out: AuditEntry[] = [];
    for (const e of ordered) {
      if (q.sinceSeq !== undefined && e.seq <= q.sinceSeq) continue;
      if (q.route !== undefined && e.route !== q.route) continue;
      if (q.path !== undefined && !e.path.startsWith(q.path)) continue;
      if (q.keyId !== undefined && e.keyId !== q.keyId) continue;
      if (q.status !== undefined && e.status !== q.status) continue;
      out.push(e);
      if (out.length >= q.limit) break;
    }
    return out;
  }

  summary(): AuditSummary {
    let repeat = 0;
    let revoked = 0;
    let calls = 0;
    for (const r of this.revokeCalls.values()) {
      calls += r.calls;
      if (r.calls > 1) repeat++;
      if (r.revoked > 0) revoked++;
    }
    return {
      total: this.seq,
      entriesKept: this.entries.length,
      entriesDropped: this.dropped,
      byRoute: Object.fromEntries([...this.byRoute].map(([k, v]) => [k, { count: v.count, byStatus: { ...v.byStatus } }])),
      byStatus: Object.fromEntries(this.byStatus),
      byKey: Object.fromEntries([...this.byKey].map(([k, v]) => [k, { ...v }])),
      requestsWithDeletedKey: this.deletedKeyRequests,
      requestsWithUnknownKey: this.unknownKeyRequests,
      requestsWithoutKey: this.missingKeyRequests,
      faults: { ...this.faults },
      revokes: { calls, sessions: this.revokeCalls.size, sessionsRevoked: revoked, sessionsWithRepeatCalls: repeat },
    };
  }

  reset(): void {
    this.entries = [];
    this.head = 0;
    this.dropped = 0;
    this.seq = 0;
    this.byRoute.clear();
    this.byStatus.clear();
    this.byKey.clear();
    this.deletedKeyRequests = 0;
    this.unknownKeyRequests = 0;
    this.missingKeyRequests = 0;
    this.faults = { latency: 0, error: 0, hang: 0, rate_limited: 0, outage: 0, rejected: 0 };
    this.revokeCalls.clear();
  }
}
