/**
 * Mass session revocation, what its workflow (`src/workflows/revoke-sessions.ts`, with the input
 * schema), its activities (`src/activities/revoke-sessions.ts`) and its CLI
 * (`src/cli/revoke-sessions.ts`) pass between them: totals, failures, batches, progress and the
 * result, and the progress formatting. Imported by workflow code, so: no Node APIs, no I/O.
 */
import { z } from 'zod';
import { formatDuration, type TimelineEvent } from './domain';
import type { BatchInterruption, UserCursor, UserPagingBatch } from './user-paging';

/** Failures kept with their ids in the result; beyond that they are only counted. */
export const MAX_FAILURES_KEPT = 1_000;

const count = z.number().int().min(0);
export const revocationTotalsSchema = z.strictObject({
  /** Users listed and looked at (including excluded ones). */
  usersScanned: count,
  /** Users the last-activity filter kept out: they cannot hold an active session, so no call was made for them. */
  usersSkippedByFilter: count,
  /** Users in scope but excluded by the input (break-glass admins...). */
  usersExcluded: count,
  /** Ids of a `users` scope that Clerk does not know. */
  usersNotFound: count,
  /** Active sessions found (in a dry run: the sessions that would be revoked). */
  sessionsFound: count,
  sessionsRevoked: count,
  /** Sessions found active that were no longer active when revoked (someone or an earlier attempt got there first). */
  sessionsAlreadyRevoked: count,
  /** Users or sessions that failed with an answer retrying will not change (listed in `failures`). */
  failures: count,
  /** HTTP requests sent to Clerk, 429 answers, and calls retried after a 429/5xx/network error. */
  requests: count,
  rateLimited: count,
  retries: count,
});
export type RevocationTotals = z.infer<typeof revocationTotalsSchema>;

export function emptyTotals(): RevocationTotals {
  return {
    usersScanned: 0,
    usersSkippedByFilter: 0,
    usersExcluded: 0,
    usersNotFound: 0,
    sessionsFound: 0,
    sessionsRevoked: 0,
    sessionsAlreadyRevoked: 0,
    failures: 0,
    requests: 0,
    rateLimited: 0,
    retries: 0,
  };
}

export function addTotals(a: RevocationTotals, b: Partial<RevocationTotals>): RevocationTotals {
  const out = { ...a };
  for (const key of Object.keys(out) as (keyof RevocationTotals)[]) out[key] += b[key] ?? 0;
  return out;
}

export const revocationFailureSchema = z.strictObject({
  userId: z.string(),
  sessionId: z.string().nullable(),
  operation: z.string(),
  status: z.number().nullable(),
  code: z.string().nullable(),
  clerkTraceId: z.string().nullable(),
  message: z.string(),
});
export type RevocationFailure = z.infer<typeof revocationFailureSchema>;

// ---------------------------------------------------------------------------------------------
// Batches (workflow → activity)

export interface RevocationBatchInput extends UserPagingBatch {
  /**
   * `listing`: page through users by last activity; `ids`: this batch's slice of an explicit list
   * (users inactive since `lastActiveAtAfter` are skipped without a call).
   */
  source:
    | { type: 'listing'; lastActiveAtAfter: number; lastActiveAtBefore: number | null }
    | { type: 'ids'; userIds: string[]; lastActiveAtAfter: number };
  excludeUserIds: string[];
  dryRun: boolean;
  /** When the revocation started (ms): a session revoked since then by an earlier attempt counts as done. */
  startedAt: number;
  /**
   * The previous batch stopped short (Clerk unavailable): it may have revoked sessions past its
   * cursor, so this one lists every status and counts sessions revoked since `startedAt` as done.
   */
  afterInterruption: boolean;
}

export interface RevocationBatchResult {
  cursor: UserCursor;
  /** No user left after `cursor` (listing), or the slice is finished (ids). */
  done: boolean;
  totals: RevocationTotals;
  failures: RevocationFailure[];
  failuresDropped: number;
  /** Users matching the listing's filters, as Clerk counted them on the last page (for the ETA). */
  usersMatching: number | null;
  startedAt: number;
  finishedAt: number;
  attempt: number;
  /** True when this attempt picked up from a cursor an earlier, interrupted attempt heartbeated. */
  resumed: boolean;
  interrupted: BatchInterruption | null;
}

/** What a batch heartbeats: everything it finished, up to the cursor. */
export interface RevocationHeartbeat {
  cursor: UserCursor;
  totals: RevocationTotals;
  failures: RevocationFailure[];
  failuresDropped: number;
  usersMatching: number | null;
}

// ---------------------------------------------------------------------------------------------
// Progress (query, current details, CLI) and result

export type RevocationPhase = 'counting' | 'revoking' | 'completed';

export interface RevocationProgress {
  workflowId: string;
  phase: RevocationPhase;
  dryRun: boolean;
  scope: string;
  requestedBy: string;
  reason: string;
  incidentId: string | null;
  /** Users active after this time are listed; the others are skipped by the filter. */
  lastActiveAtAfter: string | null;
  lastActiveAtBefore: string | null;
  usersInInstance: number | null;
  /** Users the listing will go through (Clerk's count; the list's length for a `users` scope). */
  usersInScope: number | null;
  totals: RevocationTotals;
  batches: number;
  runs: number;
  startedAt: string;
  elapsedSeconds: number;
  requestsPerSecond: number;
  usersPerSecond: number;
  /** Seconds left at the current pace; null until known. */
  etaSeconds: number | null;
  failuresKept: number;
  failuresDropped: number;
}

export interface RevokeSessionsResult {
  workflowId: string;
  dryRun: boolean;
  scope: string;
  totals: RevocationTotals;
  usersInInstance: number | null;
  usersInScope: number | null;
  /** Failures with ids (the first `MAX_FAILURES_KEPT`); `failuresDropped` more were only counted. */
  failures: RevocationFailure[];
  failuresDropped: number;
  startedAt: string;
  finishedAt: string;
  elapsedSeconds: number;
  requestsPerSecond: number;
  batches: number;
  runs: number;
  timeline: TimelineEvent[];
}

/** Thousands separated by commas (`1,234,567`), without Intl (workflow code). */
export function formatCount(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** The Markdown the workflow shows as current details in the Temporal UI. */
export function progressDetails(p: RevocationProgress): string {
  const t = p.totals;
  const inScope = p.usersInScope;
  const pct = inScope ? ` (${Math.min(100, (100 * t.usersScanned) / Math.max(1, inScope)).toFixed(1)} %)` : '';
  const lines = [
    `**Session revocation${p.dryRun ? ' — DRY RUN, nothing is revoked' : ''}:** ${p.phase}`,
    `**Scope:** ${p.scope}${p.lastActiveAtAfter ? `; users active after ${p.lastActiveAtAfter}` : ''}`,
    `**Users scanned:** ${formatCount(t.usersScanned)}${inScope !== null ? ` of ${formatCount(inScope)}` : ''}${pct}; skipped by the activity filter: ${formatCount(t.usersSkippedByFilter)}; excluded: ${formatCount(t.usersExcluded)}`,
    p.dryRun
      ? `**Sessions that would be revoked:** ${formatCount(t.sessionsFound)}`
      : `**Sessions revoked:** ${formatCount(t.sessionsRevoked)}; already revoked: ${formatCount(t.sessionsAlreadyRevoked)}`,
    `**Failures:** ${formatCount(t.failures)}`,
    `**Rate:** ${p.requestsPerSecond.toFixed(1)} requests/s, ${p.usersPerSecond.toFixed(1)} users/s; 429s: ${formatCount(t.rateLimited)}`,
    `**ETA:** ${p.phase === 'completed' ? 'done' : p.etaSeconds === null ? 'estimating' : formatDuration(p.etaSeconds * 1000)}`,
  ];
  return lines.join('\n\n');
}
