/**
 * Mass session revocation: the input schema of `revokeSessionsWorkflow` (one JSON object), the
 * cursor and counters its batches pass around, and the pure helpers both sides use. Imported by
 * workflow code, so: no Node APIs, no I/O.
 */
import { z } from 'zod';
import type { TimelineEvent } from './domain';

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;
/** Largest explicit user list a scope takes (it rides along every continue-as-new). */
export const MAX_SCOPE_USER_IDS = 10_000;
export const MAX_EXCLUDED_USERS = 1_000;
/** Failures kept with their ids in the result; beyond that they are only counted. */
export const MAX_FAILURES_KEPT = 1_000;
/** Clerk's `limit` maximum for user lists. */
export const MAX_PAGE_SIZE = 500;

const userIdSchema = z
  .string()
  .trim()
  .regex(/^user_[A-Za-z0-9]{1,64}$/, 'must be a Clerk user id like "user_2abc…"');
const isoTimeSchema = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time like "2026-11-26T10:00:00Z"' });
const personSchema = z.string().trim().min(1).max(200);

/**
 * Whose sessions to revoke: everyone, a list of users, or users active in a time window. Users
 * inactive for longer than the maximum session lifetime are skipped in every scope.
 */
export const revocationScopeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('all') }),
  z.strictObject({ type: z.literal('users'), userIds: z.array(userIdSchema).min(1).max(MAX_SCOPE_USER_IDS) }),
  z.strictObject({ type: z.literal('activeBetween'), from: isoTimeSchema, to: isoTimeSchema.optional() }),
]);
export type RevocationScope = z.infer<typeof revocationScopeSchema>;

/** Knobs with defaults that suit production; tests turn them down to exercise batches and continue-as-new. */
export const revocationTuningSchema = z.strictObject({
  /** Users per page listed from Clerk (Clerk's maximum is 500). */
  pageSize: z.number().int().min(1).max(MAX_PAGE_SIZE).default(MAX_PAGE_SIZE),
  /** Users one batch activity handles at most (whole pages; the last page may overshoot). */
  batchMaxUsers: z.number().int().min(1).max(100_000).default(5_000),
  /** A batch stops taking new pages after this long, so checkpoints stay frequent. */
  batchTimeBudgetSeconds: z.number().int().min(1).max(3_600).default(15),
  /**
   * How long a batch may go without heartbeating its cursor before another worker resumes it. The
   * SDK sends heartbeats at most every 0.8 × this, so it also bounds the work a crash makes redo.
   */
  heartbeatTimeoutSeconds: z.number().int().min(2).max(600).default(10),
  /** Batches per workflow run before continue-as-new (also when Temporal suggests it). */
  batchesPerRun: z.number().int().min(1).max(2_000).default(100),
  /** Users handled at once by one batch (their requests still share the worker's rate limiter). */
  usersInFlight: z.number().int().min(1).max(512).default(32),
});
export type RevocationTuning = z.output<typeof revocationTuningSchema>;

export const revocationCursorSchema = z.discriminatedUnion('type', [
  /** Users ordered by `+created_at`; `afterUserId` is the last one handled (null: from the start). */
  z.strictObject({ type: z.literal('created'), afterUserId: z.string().nullable(), afterCreatedAt: z.number().nullable() }),
  /** Position in the scope's explicit user list. */
  z.strictObject({ type: z.literal('ids'), index: z.number().int().min(0) }),
]);
export type RevocationCursor = z.infer<typeof revocationCursorSchema>;

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

const timelineEventSchema = z.strictObject({
  time: z.string(),
  step: z.string(),
  actor: z.string(),
  description: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** What a run hands the next one on continue-as-new. Internal: starters leave it out. */
export const revocationCheckpointSchema = z.strictObject({
  startedAt: z.number(),
  lastActiveAtAfter: z.number().nullable(),
  lastActiveAtBefore: z.number().nullable(),
  usersInInstance: z.number().nullable(),
  usersInScope: z.number().nullable(),
  cursor: revocationCursorSchema,
  totals: revocationTotalsSchema,
  failures: z.array(revocationFailureSchema).max(MAX_FAILURES_KEPT),
  failuresDropped: count,
  batches: count,
  runs: z.number().int().min(1),
  lastBatchFinishedAt: z.number().nullable(),
  timeline: z.array(timelineEventSchema).max(1_000),
});
export type RevocationCheckpoint = z.infer<typeof revocationCheckpointSchema>;

/** Input of `revokeSessionsWorkflow`: one JSON object, pasteable into the UI's Start Workflow form. */
export const revokeSessionsInputSchema = z.strictObject({
  scope: revocationScopeSchema,
  /** Users whose sessions are never revoked (e.g. the break-glass admin doing the recovery). */
  excludeUserIds: z.array(userIdSchema).max(MAX_EXCLUDED_USERS).default([]),
  /** Count what would be revoked; revoke nothing. */
  dryRun: z.boolean().default(false),
  requestedBy: personSchema,
  reason: z.string().trim().min(1).max(2_000),
  /** The incident this runs for, when started by `incidentWorkflow`. */
  incidentId: z.string().trim().min(1).max(200).optional(),
  /** The instance's maximum session lifetime (Clerk's default: 7 days). */
  maxSessionLifetimeDays: z.number().positive().max(3_650).default(7),
  /** Safety margin added to the lifetime before a user counts as inactive. */
  marginHours: z.number().min(0).max(24 * 30).default(24),
  tuning: revocationTuningSchema.prefault({}),
  checkpoint: revocationCheckpointSchema.optional(),
});
export type RevokeSessionsInput = z.input<typeof revokeSessionsInputSchema>;
export type ValidRevokeSessionsInput = z.output<typeof revokeSessionsInputSchema>;

/** The last-activity window a scope lists, given the inactivity cutoff. */
export function activityWindow(
  scope: RevocationScope,
  cutoff: number,
): { lastActiveAtAfter: number; lastActiveAtBefore: number | null } {
  if (scope.type !== 'activeBetween') return { lastActiveAtAfter: cutoff, lastActiveAtBefore: null };
  const from = Date.parse(scope.from);
  return { lastActiveAtAfter: Math.max(from, cutoff), lastActiveAtBefore: scope.to === undefined ? null : Date.parse(scope.to) };
}

// ---------------------------------------------------------------------------------------------
// Batches (workflow → activity)

export interface RevocationBatchInput {
  /** The workflow id, for logs. */
  ref: string;
  /** `listing`: page through users by last activity; `ids`: this batch's slice of an explicit list. */
  source:
    | { type: 'listing'; lastActiveAtAfter: number; lastActiveAtBefore: number | null }
    | { type: 'ids'; userIds: string[]; lastActiveAtAfter: number };
  excludeUserIds: string[];
  cursor: RevocationCursor;
  dryRun: boolean;
  /** When the revocation started (ms): a session revoked since then by an earlier attempt counts as done. */
  startedAt: number;
  pageSize: number;
  maxUsers: number;
  timeBudgetMs: number;
  usersInFlight: number;
  /**
   * The previous batch stopped short (Clerk unavailable): it may have revoked sessions past its
   * cursor, so this one lists every status and counts sessions revoked since `startedAt` as done.
   */
  afterInterruption: boolean;
}

export interface RevocationBatchResult {
  cursor: RevocationCursor;
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
  /**
   * Set when Clerk stayed unavailable (5xx, network, 429s) past the gateway's retries: the batch
   * stopped at its exact cursor instead of failing, and the workflow waits before the next one.
   */
  interrupted: { type: string; message: string; retryAfterMs: number | null } | null;
}

/** What a batch heartbeats: everything it finished, up to the cursor. */
export interface RevocationHeartbeat {
  cursor: RevocationCursor;
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

export function describeScope(scope: RevocationScope, excluded: number): string {
  const base =
    scope.type === 'all'
      ? 'all users'
      : scope.type === 'users'
        ? `${scope.userIds.length} listed user(s)`
        : `users active between ${scope.from} and ${scope.to ?? 'now'}`;
  return excluded > 0 ? `${base}, excluding ${excluded}` : base;
}

/** "1 h 02 min", "3 min 05 s", "42 s". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h} h ${String(m).padStart(2, '0')} min`;
  if (m > 0) return `${m} min ${String(r).padStart(2, '0')} s`;
  return `${r} s`;
}

/** Thousands separated by thin spaces, without Intl (workflow code). */
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
    `**ETA:** ${p.phase === 'completed' ? 'done' : p.etaSeconds === null ? 'estimating' : formatDuration(p.etaSeconds)}`,
  ];
  return lines.join('\n\n');
}
