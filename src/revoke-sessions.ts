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
/** Ids of users not found kept in the result; beyond that they are only counted (`totals.usersNotFound`). */
export const MAX_NOT_FOUND_KEPT = 1_000;

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
  /**
   * Users handled without any failure: their sessions listed and (unless a dry run) every active one
   * revoked or found already revoked; in a `users` scope, idle users skipped without a call too
   * (they were looked up). What the outcome calls "done or checked". Defaults to 0 for checkpoints
   * of runs that started before it was counted.
   */
  usersChecked: count.default(0),
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
    usersChecked: 0,
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

export type RevocationOutcome = 'succeeded' | 'partial' | 'failed';

/**
 * The honest one-word outcome of a revocation (so far, or final once completed), from its totals:
 * - `succeeded`: no user was not found and nothing failed (also when nothing was in scope, e.g.
 *   every user idle or excluded);
 * - `failed`: users were not found or failed, and nothing else was done or checked: no session
 *   revoked (or found already revoked) and no user handled without a failure (`usersChecked`);
 * - `partial`: users were not found or failed, but something else was done or checked.
 * A dry run follows the same rule with "checked" for "done": a clean dry run is `succeeded` (its
 * plan is the result), one that met unknown ids or refusals is `partial` or `failed`.
 */
export function revocationOutcome(totals: RevocationTotals): RevocationOutcome {
  const problems = totals.usersNotFound + totals.failures;
  if (problems === 0) return 'succeeded';
  const sessionsDone = totals.sessionsRevoked + totals.sessionsAlreadyRevoked;
  return sessionsDone > 0 || totals.usersChecked > 0 ? 'partial' : 'failed';
}

/** Who Clerk kept interrupting, as the progress shows it: the latest error of a series of interrupted batches. */
export const lastClerkErrorSchema = z.strictObject({
  /** The error's type (`ClerkUnavailable`, `ClerkRateLimited`). */
  type: z.string(),
  message: z.string(),
  /** When the interrupted batch stopped (ISO time). */
  at: z.string(),
  /** Batches interrupted in a row so far (the revocation fails after 60). */
  interruptionsInARow: z.number().int().min(1),
});
export type LastClerkError = z.infer<typeof lastClerkErrorSchema>;

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
  /**
   * Ids of a `users` scope that Clerk does not know (the first `MAX_NOT_FOUND_KEPT` of the batch).
   * Absent from the results of workers that predate it.
   */
  notFoundUserIds?: string[];
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
  /** Absent from heartbeats of workers that predate it. */
  notFoundUserIds?: string[];
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
  /** The outcome so far (final once `phase` is `completed`): see `revocationOutcome`. */
  outcome: RevocationOutcome;
  /** Ids of listed users Clerk does not know (the first `MAX_NOT_FOUND_KEPT`; `totals.usersNotFound` counts all). */
  notFoundUserIds: string[];
  /** Failures with ids (the first `MAX_FAILURES_KEPT`). */
  failures: RevocationFailure[];
  failuresKept: number;
  failuresDropped: number;
  /**
   * Clerk's latest error while batches are being interrupted (Clerk down or throttling past the
   * gateway's retries); null once a batch gets through again (the series stays in the timeline).
   * Retries of an activity by Temporal (e.g. the count at the start) are not seen by the workflow:
   * the CLI adds them from the workflow's pending activities.
   */
  lastClerkError: LastClerkError | null;
}

export interface RevokeSessionsResult {
  workflowId: string;
  dryRun: boolean;
  scope: string;
  /** `succeeded`, `partial` or `failed`: see `revocationOutcome`. */
  outcome: RevocationOutcome;
  totals: RevocationTotals;
  /** Ids of listed users Clerk does not know (the first `MAX_NOT_FOUND_KEPT`; `totals.usersNotFound` counts all). */
  notFoundUserIds: string[];
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
    `**Outcome${p.phase === 'completed' ? '' : ' so far'}:** ${p.outcome}${t.usersNotFound > 0 ? `; users not found: ${formatCount(t.usersNotFound)}` : ''}`,
    `**Failures:** ${formatCount(t.failures)}`,
    ...(p.lastClerkError
      ? [`**Clerk:** ${p.lastClerkError.interruptionsInARow} batch(es) interrupted in a row, latest at ${p.lastClerkError.at}: ${p.lastClerkError.type}: ${p.lastClerkError.message}`]
      : []),
    `**Rate:** ${p.requestsPerSecond.toFixed(1)} requests/s, ${p.usersPerSecond.toFixed(1)} users/s; 429s: ${formatCount(t.rateLimited)}`,
    `**ETA:** ${p.phase === 'completed' ? 'done' : p.etaSeconds === null ? 'estimating' : formatDuration(p.etaSeconds * 1000)}`,
  ];
  return lines.join('\n\n');
}
