/**
 * User reconciliation (webhook backlog): what its workflow (`src/workflows/reconcile-users.ts`,
 * with the input schema), its activities (`src/activities/reconcile-users.ts`) and its CLI
 * (`src/cli/reconcile.ts`) pass between them: totals, failures, samples, batches, progress and the
 * result. Imported by workflow code, so: no Node APIs, no I/O.
 */
import { z } from 'zod';
import { formatDuration, type TimelineEvent } from './domain';
import { formatCount, lastClerkErrorSchema, type LastClerkError } from './revoke-sessions';
import type { BatchInterruption, UserCursor, UserPagingBatch } from './user-paging';

/** Failures kept with their ids in the result; beyond that they are only counted. */
export const MAX_RECONCILE_FAILURES_KEPT = 1_000;
/** Ids kept per kind of difference as samples (a dry run's "for example"). */
export const SAMPLES_KEPT = 10;

const count = z.number().int().min(0);
export const reconcileTotalsSchema = z.strictObject({
  /** Clerk users listed and compared with the store. */
  usersScanned: count,
  /** Store rows checked against Clerk for users deleted there. */
  storeRowsScanned: count,
  /** Clerk users whose stored copy matched. */
  inSync: count,
  /** Differences found: users missing from the store, stale copies, users deleted in Clerk but still stored. */
  missing: count,
  stale: count,
  deleted: count,
  /** Differences fixed: an event the endpoint accepted (2xx), or a direct write to the store. */
  applied: count,
  /** Events the endpoint refused with a 4xx (listed in `failures`): still to do. */
  rejected: count,
  /** Deliveries sent again after a 5xx, 429, timeout or network error. */
  deliveryRetries: count,
  /** Clerk: HTTP requests, 429 answers, calls retried. */
  requests: count,
  rateLimited: count,
  retries: count,
});
export type ReconcileTotals = z.infer<typeof reconcileTotalsSchema>;

export function emptyReconcileTotals(): ReconcileTotals {
  return { usersScanned: 0, storeRowsScanned: 0, inSync: 0, missing: 0, stale: 0, deleted: 0, applied: 0, rejected: 0, deliveryRetries: 0, requests: 0, rateLimited: 0, retries: 0 };
}

export function addReconcileTotals(a: ReconcileTotals, b: Partial<ReconcileTotals>): ReconcileTotals {
  const out = { ...a };
  for (const key of Object.keys(out) as (keyof ReconcileTotals)[]) out[key] += b[key] ?? 0;
  return out;
}

/** Differences found and not fixed (in a dry run: all of them). */
export function differencesLeft(t: ReconcileTotals): number {
  return Math.max(0, t.missing + t.stale + t.deleted - t.applied);
}

export type ReconcileOutcome = 'succeeded' | 'partial' | 'failed';

/**
 * `succeeded`: every difference found was fixed (or, in a dry run, the plan is complete);
 * `partial`: some fixed, some left (refused by the endpoint); `failed`: differences left, none fixed.
 */
export function reconcileOutcome(t: ReconcileTotals, dryRun: boolean): ReconcileOutcome {
  if (dryRun || differencesLeft(t) === 0) return 'succeeded';
  return t.applied > 0 ? 'partial' : 'failed';
}

export const reconcileFailureSchema = z.strictObject({
  userId: z.string(),
  type: z.enum(['user.created', 'user.updated', 'user.deleted']),
  svixId: z.string(),
  status: z.number().nullable(),
  /** The start of the endpoint's answer. */
  answer: z.string(),
});
export type ReconcileFailure = z.infer<typeof reconcileFailureSchema>;

export const reconcileSamplesSchema = z.strictObject({
  missing: z.array(z.string()).max(SAMPLES_KEPT),
  stale: z.array(z.strictObject({ userId: z.string(), fields: z.array(z.string()) })).max(SAMPLES_KEPT),
  deleted: z.array(z.string()).max(SAMPLES_KEPT),
});
export type ReconcileSamples = z.infer<typeof reconcileSamplesSchema>;

export function emptySamples(): ReconcileSamples {
  return { missing: [], stale: [], deleted: [] };
}

export function mergeSamples(into: ReconcileSamples, from: ReconcileSamples): void {
  for (const id of from.missing) if (into.missing.length < SAMPLES_KEPT) into.missing.push(id);
  for (const s of from.stale) if (into.stale.length < SAMPLES_KEPT) into.stale.push(s);
  for (const id of from.deleted) if (into.deleted.length < SAMPLES_KEPT) into.deleted.push(id);
}

/** Where the run stands: plan (count only, before an approval) → approval → apply; each pass lists Clerk, then sweeps the store. */
export const RECONCILE_STAGES = ['plan_clerk', 'plan_store', 'approval', 'apply_clerk', 'apply_store', 'done'] as const;
export type ReconcileStage = (typeof RECONCILE_STAGES)[number];

// ---------------------------------------------------------------------------------------------
// Batches (workflow → activity)

export interface ReconcileBatchInput extends UserPagingBatch {
  /** `clerk`: list Clerk's users and compare (missing, stale); `store`: sweep the store's ids for users deleted in Clerk. */
  pass: 'clerk' | 'store';
  /** Count and sample; deliver and write nothing. */
  dryRun: boolean;
}

export interface ReconcileBatchResult {
  cursor: UserCursor;
  done: boolean;
  totals: ReconcileTotals;
  failures: ReconcileFailure[];
  failuresDropped: number;
  samples: ReconcileSamples;
  usersMatching: number | null;
  /** How the worker fixes differences: `webhook` (signed events to the app's endpoint) or `store` (direct writes). */
  delivery: 'webhook' | 'store';
  startedAt: number;
  finishedAt: number;
  attempt: number;
  resumed: boolean;
  interrupted: BatchInterruption | null;
}

/** What a batch heartbeats. */
export interface ReconcileHeartbeat {
  cursor: UserCursor;
  totals: ReconcileTotals;
  failures: ReconcileFailure[];
  failuresDropped: number;
  samples: ReconcileSamples;
  usersMatching: number | null;
}

// ---------------------------------------------------------------------------------------------
// Progress (query, current details, CLI) and result

export interface ReconcileProgress {
  workflowId: string;
  stage: ReconcileStage;
  dryRun: boolean;
  scope: string;
  requestedBy: string;
  reason: string;
  incidentId: string | null;
  delivery: 'webhook' | 'store' | null;
  /** The plan's totals (a real run plans first when an approval may be needed); null when it did not plan. */
  planned: ReconcileTotals | null;
  /** The pass in progress (or the last one). */
  totals: ReconcileTotals;
  /** Differences found and not fixed so far. */
  left: number;
  usersInScope: number | null;
  storeRows: number | null;
  samples: ReconcileSamples;
  failures: ReconcileFailure[];
  failuresDropped: number;
  approval: ReconcileApproval | null;
  svixPortalUrl: string | null;
  batches: number;
  runs: number;
  startedAt: string;
  elapsedSeconds: number;
  usersPerSecond: number;
  eventsPerSecond: number;
  outcome: ReconcileOutcome;
  lastError: LastClerkError | null;
}

export const reconcileApprovalSchema = z.strictObject({
  decision: z.enum(['approved', 'rejected', 'timed_out']),
  by: z.string().nullable(),
  reason: z.string().nullable(),
  at: z.string(),
});
export type ReconcileApproval = z.infer<typeof reconcileApprovalSchema>;
export { lastClerkErrorSchema };

export interface ReconcileUsersResult {
  workflowId: string;
  dryRun: boolean;
  scope: string;
  outcome: ReconcileOutcome;
  /** Null when the run was not approved (nothing was delivered). */
  approval: ReconcileApproval | null;
  delivery: 'webhook' | 'store' | null;
  planned: ReconcileTotals | null;
  totals: ReconcileTotals;
  left: number;
  samples: ReconcileSamples;
  failures: ReconcileFailure[];
  failuresDropped: number;
  svixPortalUrl: string | null;
  startedAt: string;
  finishedAt: string;
  elapsedSeconds: number;
  batches: number;
  runs: number;
  timeline: TimelineEvent[];
}

/** One line of totals: `12 missing, 3 stale, 2 deleted; 17 fixed, 0 refused, 0 left`. */
export function totalsLine(t: ReconcileTotals, dryRun: boolean): string {
  const found = `${formatCount(t.missing)} missing, ${formatCount(t.stale)} stale, ${formatCount(t.deleted)} deleted`;
  return dryRun
    ? `${found}: ${formatCount(t.missing + t.stale + t.deleted)} event(s) would be delivered; nothing was changed`
    : `${found}; ${formatCount(t.applied)} fixed, ${formatCount(t.rejected)} refused, ${formatCount(differencesLeft(t))} left`;
}

/** The Markdown the workflow shows as current details in the Temporal UI. */
export function reconcileDetails(p: ReconcileProgress): string {
  const t = p.totals;
  const lines = [
    `**User reconciliation${p.dryRun ? ' — DRY RUN, nothing is delivered' : ''}:** ${p.stage.replace('_', ' ')}`,
    `**Scope:** ${p.scope}; delivery: ${p.delivery ?? 'not known yet'}`,
    `**Clerk users compared:** ${formatCount(t.usersScanned)}${p.usersInScope !== null ? ` of ${formatCount(p.usersInScope)}` : ''}; store rows swept: ${formatCount(t.storeRowsScanned)}`,
    `**Differences:** ${totalsLine(t, p.dryRun || p.stage.startsWith('plan'))}`,
    ...(p.planned ? [`**Plan:** ${totalsLine(p.planned, true)}`] : []),
    ...(p.approval ? [`**Approval:** ${p.approval.decision}${p.approval.by ? ` by ${p.approval.by}` : ''}`] : []),
    `**Outcome${p.stage === 'done' ? '' : ' so far'}:** ${p.outcome}`,
    ...(p.lastError ? [`**Waiting:** ${p.lastError.interruptionsInARow} batch(es) interrupted in a row: ${p.lastError.type}: ${p.lastError.message}`] : []),
    `**Rate:** ${p.usersPerSecond.toFixed(1)} users/s, ${p.eventsPerSecond.toFixed(1)} events/s; Clerk requests ${formatCount(t.requests)}, 429s ${formatCount(t.rateLimited)}; elapsed ${formatDuration(p.elapsedSeconds * 1000)}`,
    ...(p.svixPortalUrl ? [`**Svix portal:** ${p.svixPortalUrl}`] : []),
  ];
  return lines.join('\n\n');
}
