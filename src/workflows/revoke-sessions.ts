/**
 * `revokeSessionsWorkflow`: revoke the active sessions of every user in a scope, at Clerk's rate
 * limit, for any number of users. A child of the incident (key compromise, session issues) or
 * started on its own. Work goes in batch activities that heartbeat their cursor; the workflow
 * carries the cursor and the totals, and continues as new before its history grows large
 * (`./checkpointed-batches.ts`). Its input schema is here, beside it; what its activities and
 * CLI share with it is in `src/revoke-sessions.ts`.
 */
import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { z } from 'zod';
import type { RevocationActivities } from '../activities';
import { clerkUserIdSchema, describeIssues, freeText, personSchema, plainLine, type TimelineEvent } from '../domain';
import {
  addTotals,
  emptyTotals,
  formatCount,
  lastClerkErrorSchema,
  MAX_FAILURES_KEPT,
  MAX_NOT_FOUND_KEPT,
  progressDetails,
  revocationFailureSchema,
  revocationOutcome,
  revocationTotalsSchema,
  type RevocationBatchInput,
  type RevocationBatchResult,
  type RevocationProgress,
  type RevokeSessionsResult,
} from '../revoke-sessions';
import { firstCursor, userCursorSchema } from '../user-paging';
import { batchActivityOptions, FORGED_CHECKPOINT, forgedCheckpoint, runCheckpointedBatches, stopOnActivityFailure, timelineEventSchema } from './checkpointed-batches';

export type { RevokeSessionsResult, RevocationProgress } from '../revoke-sessions';

export const getRevocationProgress = defineQuery<RevocationProgress>('getRevocationProgress');

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Largest explicit user list a scope takes (it rides along every continue-as-new). */
const MAX_SCOPE_USER_IDS = 10_000;
const MAX_EXCLUDED_USERS = 1_000;
/** Clerk's `limit` maximum for user lists. */
const MAX_PAGE_SIZE = 500;

const isoTimeSchema = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time like "2026-11-26T10:00:00Z"' });
const count = z.number().int().min(0);

/**
 * Whose sessions to revoke: everyone, a list of users, or users active in a time window. Users
 * inactive for longer than the maximum session lifetime are skipped in every scope.
 */
export const revocationScopeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('all') }),
  z.strictObject({ type: z.literal('users'), userIds: z.array(clerkUserIdSchema).min(1).max(MAX_SCOPE_USER_IDS) }),
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


/** What a run hands the next one on continue-as-new. Internal: starters leave it out. */
export const revocationCheckpointSchema = z.strictObject({
  startedAt: z.number(),
  lastActiveAtAfter: z.number().nullable(),
  lastActiveAtBefore: z.number().nullable(),
  usersInInstance: z.number().nullable(),
  usersInScope: z.number().nullable(),
  cursor: userCursorSchema,
  totals: revocationTotalsSchema,
  failures: z.array(revocationFailureSchema).max(MAX_FAILURES_KEPT),
  failuresDropped: count,
  /** Defaults for checkpoints of runs that started before these were kept. */
  notFoundUserIds: z.array(z.string()).max(MAX_NOT_FOUND_KEPT).default([]),
  lastClerkError: lastClerkErrorSchema.nullable().default(null),
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
  excludeUserIds: z.array(clerkUserIdSchema).max(MAX_EXCLUDED_USERS).default([]),
  /** Count what would be revoked; revoke nothing. */
  dryRun: z.boolean().default(false),
  requestedBy: personSchema,
  reason: freeText(z.string().trim().min(1).max(2_000)),
  /** The incident this runs for, when started by `incidentWorkflow`. */
  incidentId: plainLine(z.string().trim().min(1).max(200)).optional(),
  /** The instance's maximum session lifetime (Clerk's default: 7 days). */
  maxSessionLifetimeDays: z.number().positive().max(3_650).default(7),
  /** Safety margin added to the lifetime before a user counts as inactive. */
  marginHours: z.number().min(0).max(24 * 30).default(24),
  tuning: revocationTuningSchema.prefault({}),
  checkpoint: revocationCheckpointSchema.optional(),
});
export type RevokeSessionsInput = z.input<typeof revokeSessionsInputSchema>;
export type ValidRevokeSessionsInput = z.output<typeof revokeSessionsInputSchema>;

const ACTOR = 'revokeSessionsWorkflow';
/** Batches in a row that Clerk interrupts before the revocation gives up (about an hour of backoff). */
const MAX_INTERRUPTIONS_IN_A_ROW = 60;

export async function revokeSessionsWorkflow(rawInput: RevokeSessionsInput): Promise<RevokeSessionsResult> {
  const parsed = revokeSessionsInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'InvalidRevocationInput',
      message: describeIssues(parsed.error),
      nonRetryable: true,
    });
  }
  const input: ValidRevokeSessionsInput = parsed.data;
  const { tuning } = input;
  const info = workflowInfo();
  if (forgedCheckpoint(input.checkpoint, info.continuedFromExecutionRunId)) {
    throw ApplicationFailure.create({ type: 'InvalidRevocationInput', message: FORGED_CHECKPOINT, nonRetryable: true });
  }

  const clerk = proxyActivities<RevocationActivities>(batchActivityOptions(tuning));

  const excluded = new Set(input.excludeUserIds);
  const scopeText = describeScope(input.scope, excluded.size);
  const checkpoint: RevocationCheckpoint =
    input.checkpoint ?? firstCheckpoint(input, info.runStartTime.getTime());
  const state: RevocationCheckpoint = JSON.parse(JSON.stringify(checkpoint)) as RevocationCheckpoint;
  let phase: RevocationProgress['phase'] = input.checkpoint ? 'revoking' : 'counting';

  const progress = (): RevocationProgress => {
    const elapsedMs = Math.max(0, (state.lastBatchFinishedAt ?? state.startedAt) - state.startedAt);
    const seconds = elapsedMs / 1000;
    const handled = state.totals.usersScanned + state.totals.usersNotFound;
    const usersPerSecond = seconds > 0 ? handled / seconds : 0;
    const remaining = state.usersInScope === null ? null : Math.max(0, state.usersInScope - handled);
    return {
      workflowId: info.workflowId,
      phase,
      dryRun: input.dryRun,
      scope: scopeText,
      requestedBy: input.requestedBy,
      reason: input.reason,
      incidentId: input.incidentId ?? null,
      lastActiveAtAfter: state.lastActiveAtAfter === null ? null : new Date(state.lastActiveAtAfter).toISOString(),
      lastActiveAtBefore: state.lastActiveAtBefore === null ? null : new Date(state.lastActiveAtBefore).toISOString(),
      usersInInstance: state.usersInInstance,
      usersInScope: state.usersInScope,
      totals: state.totals,
      batches: state.batches,
      runs: state.runs,
      startedAt: new Date(state.startedAt).toISOString(),
      elapsedSeconds: Math.round(seconds),
      requestsPerSecond: seconds > 0 ? state.totals.requests / seconds : 0,
      usersPerSecond,
      etaSeconds: phase === 'completed' ? 0 : remaining !== null && usersPerSecond > 0 ? remaining / usersPerSecond : null,
      outcome: revocationOutcome(state.totals),
      notFoundUserIds: state.notFoundUserIds,
      failures: state.failures,
      failuresKept: state.failures.length,
      failuresDropped: state.failuresDropped,
      lastClerkError: state.lastClerkError,
    };
  };
  setHandler(getRevocationProgress, progress);
  const publish = () => setCurrentDetails(progressDetails(progress()));
  const record = (time: number, description: string, details?: Record<string, unknown>) => {
    state.timeline.push({ time: new Date(time).toISOString(), step: 'revoke_sessions', actor: ACTOR, description, ...(details ? { details } : {}) });
  };

  /**
   * An activity that failed for good (key refused, a bug, retries exhausted): the revocation stops
   * with the same failure type, the totals so far in its details and a line in the timeline.
   */
  const stopOnFailure = stopOnActivityFailure('RevocationActivityFailed', (type, message, failure) => {
    record(state.lastBatchFinishedAt ?? state.startedAt, `session revocation stopped: ${message}`, { type, totals: state.totals });
    publish();
    return ApplicationFailure.create({
      type,
      message: `session revocation stopped after ${formatCount(state.totals.usersScanned)} users: ${message}`,
      nonRetryable: true,
      details: [progress(), state.timeline],
      cause: failure,
    });
  });

  if (!input.checkpoint) {
    record(
      state.startedAt,
      `${input.dryRun ? 'dry run of ' : ''}session revocation started by ${input.requestedBy} for ${scopeText}: ${input.reason}`,
      {
        scope: input.scope.type,
        excluded: input.excludeUserIds,
        dryRun: input.dryRun,
        lastActiveAtAfter: progress().lastActiveAtAfter,
        ...(input.incidentId ? { incidentId: input.incidentId } : {}),
      },
    );
    publish();
    if (input.scope.type === 'users') {
      state.usersInScope = input.scope.userIds.filter((id) => !excluded.has(id)).length;
      state.totals.usersExcluded = input.scope.userIds.length - state.usersInScope;
    } else {
      const counted = await stopOnFailure(() =>
        clerk.countRevocationScope.executeWithOptions({ summary: 'revocation: count users in the instance and in scope' }, [
          { lastActiveAtAfter: state.lastActiveAtAfter!, lastActiveAtBefore: state.lastActiveAtBefore },
        ]),
      );
      state.usersInInstance = counted.usersInInstance;
      state.totals.requests += counted.requests;
      state.usersInScope = counted.usersInScope;
      // Users outside the activity window are never listed: the filter skips them without a call.
      state.totals.usersSkippedByFilter = Math.max(0, counted.usersInInstance - counted.usersInScope);
    }
    phase = 'revoking';
    publish();
  }

  const idsInScope = input.scope.type === 'users' ? input.scope.userIds.filter((id) => !excluded.has(id)) : [];
  await runCheckpointedBatches<RevocationBatchResult>({
    label: 'revocation',
    batchesPerRun: tuning.batchesPerRun,
    maxInterruptionsInARow: MAX_INTERRUPTIONS_IN_A_ROW,
    // A series of interruptions goes on across continue-as-new.
    interruptionsInARow: state.lastClerkError?.interruptionsInARow ?? 0,
    next: (afterInterruption) => {
      const batchInput = nextBatch(input, state, idsInScope, info.workflowId, afterInterruption);
      if (!batchInput) return null;
      const first = state.totals.usersScanned + state.totals.usersNotFound + 1;
      return stopOnFailure(() =>
        clerk.revokeSessionsBatch.executeWithOptions(
          { summary: `revocation batch ${state.batches + 1}: users from #${formatCount(first)}${input.dryRun ? ' (dry run)' : ''}` },
          [batchInput],
        ),
      );
    },
    merge: (result) => {
      if (!result.interrupted && state.lastClerkError) {
        record(result.finishedAt, `Clerk answered again after ${state.lastClerkError.interruptionsInARow} interrupted batch(es)`, {
          lastError: state.lastClerkError,
        });
        state.lastClerkError = null;
      }
      mergeBatch(state, result);
      if (result.usersMatching !== null && input.scope.type !== 'users') state.usersInScope = result.usersMatching;
      publish();
      return input.scope.type === 'users' ? state.cursor.type === 'ids' && state.cursor.index >= idsInScope.length : result.done;
    },
    onInterrupted: (result, interruptionsInARow) => {
      const { type, message } = result.interrupted;
      state.lastClerkError = { type, message, at: new Date(result.finishedAt).toISOString(), interruptionsInARow };
      publish();
      if (interruptionsInARow === 1) {
        record(result.finishedAt, `Clerk unavailable (${type}); revocation waits and resumes from its cursor`, { error: message });
      }
    },
    failureDetails: () => [progress()],
    checkpoint: (result) => {
      state.runs++;
      record(result.finishedAt, `checkpoint: ${formatCount(state.totals.usersScanned)} users scanned; continuing as new (run ${state.runs})`, {
        cursor: state.cursor,
        batches: state.batches,
      });
      return continueAsNew<typeof revokeSessionsWorkflow>({ ...input, checkpoint: state });
    },
  });

  phase = 'completed';
  const finishedAt = state.lastBatchFinishedAt ?? state.startedAt;
  const t = state.totals;
  record(
    finishedAt,
    input.dryRun
      ? `dry run complete: ${formatCount(t.sessionsFound)} active session(s) of ${formatCount(t.usersScanned - t.usersExcluded)} user(s) would be revoked; nothing was revoked`
      : `session revocation complete: ${formatCount(t.sessionsRevoked)} revoked, ${formatCount(t.sessionsAlreadyRevoked)} already revoked, ${formatCount(t.failures)} failure(s)`,
    {
      ...t,
      outcome: revocationOutcome(t),
      failedIds: state.failures.slice(0, 50).map((f) => f.sessionId ?? f.userId),
      notFoundUserIds: state.notFoundUserIds.slice(0, 50),
    },
  );
  if (t.usersNotFound > 0) {
    record(
      finishedAt,
      `${formatCount(t.usersNotFound)} listed user(s) not found in Clerk: ${state.notFoundUserIds.slice(0, 20).join(', ')}${t.usersNotFound > 20 ? ', …' : ''}`,
    );
  }
  publish();
  const p = progress();
  return {
    workflowId: info.workflowId,
    dryRun: input.dryRun,
    scope: scopeText,
    outcome: p.outcome,
    totals: state.totals,
    notFoundUserIds: state.notFoundUserIds,
    usersInInstance: state.usersInInstance,
    usersInScope: state.usersInScope,
    failures: state.failures,
    failuresDropped: state.failuresDropped,
    startedAt: p.startedAt,
    finishedAt: new Date(finishedAt).toISOString(),
    elapsedSeconds: p.elapsedSeconds,
    requestsPerSecond: p.requestsPerSecond,
    batches: state.batches,
    runs: state.runs,
    timeline: state.timeline as TimelineEvent[],
  };
}

function firstCheckpoint(input: ValidRevokeSessionsInput, startedAt: number): RevocationCheckpoint {
  // Users idle for longer than the session lifetime (plus a margin) cannot hold an active session.
  const cutoff = startedAt - input.maxSessionLifetimeDays * DAY_MS - input.marginHours * HOUR_MS;
  const window = activityWindow(input.scope, cutoff);
  return {
    startedAt,
    lastActiveAtAfter: window.lastActiveAtAfter,
    lastActiveAtBefore: window.lastActiveAtBefore,
    usersInInstance: null,
    usersInScope: null,
    cursor: firstCursor(input.scope.type === 'users' ? 'ids' : 'listing'),
    totals: emptyTotals(),
    failures: [],
    failuresDropped: 0,
    notFoundUserIds: [],
    lastClerkError: null,
    batches: 0,
    runs: 1,
    lastBatchFinishedAt: null,
    timeline: [],
  };
}

/** The next batch's input, or null when there is nothing left (e.g. an empty window). */
function nextBatch(
  input: ValidRevokeSessionsInput,
  state: RevocationCheckpoint,
  idsInScope: string[],
  ref: string,
  afterInterruption: boolean,
): RevocationBatchInput | null {
  const { tuning } = input;
  const common = {
    ref,
    excludeUserIds: input.excludeUserIds,
    cursor: state.cursor,
    dryRun: input.dryRun,
    startedAt: state.startedAt,
    pageSize: tuning.pageSize,
    maxUsers: tuning.batchMaxUsers,
    timeBudgetMs: tuning.batchTimeBudgetSeconds * 1000,
    usersInFlight: tuning.usersInFlight,
    afterInterruption,
  };
  if (state.cursor.type === 'ids') {
    const from = state.cursor.index;
    if (from >= idsInScope.length) return null;
    // Only this batch's slice travels: the full list would bloat every scheduled event.
    const userIds = idsInScope.slice(from, from + tuning.batchMaxUsers);
    return { ...common, source: { type: 'ids', userIds, lastActiveAtAfter: state.lastActiveAtAfter! } };
  }
  if (state.lastActiveAtBefore !== null && state.lastActiveAtBefore <= (state.lastActiveAtAfter ?? 0)) return null;
  return {
    ...common,
    source: { type: 'listing', lastActiveAtAfter: state.lastActiveAtAfter!, lastActiveAtBefore: state.lastActiveAtBefore },
  };
}

function mergeBatch(state: RevocationCheckpoint, result: RevocationBatchResult): void {
  state.cursor = result.cursor;
  state.totals = addTotals(state.totals, result.totals);
  for (const f of result.failures) {
    if (state.failures.length < MAX_FAILURES_KEPT) state.failures.push(f);
    else state.failuresDropped++;
  }
  state.failuresDropped += result.failuresDropped;
  // Beyond the bound, ids are only counted (`totals.usersNotFound`).
  for (const id of result.notFoundUserIds ?? []) if (state.notFoundUserIds.length < MAX_NOT_FOUND_KEPT) state.notFoundUserIds.push(id);
  state.batches++;
  state.lastBatchFinishedAt = result.finishedAt;
}

/** The last-activity window a scope lists, given the inactivity cutoff. */
function activityWindow(
  scope: RevocationScope,
  cutoff: number,
): { lastActiveAtAfter: number; lastActiveAtBefore: number | null } {
  if (scope.type !== 'activeBetween') return { lastActiveAtAfter: cutoff, lastActiveAtBefore: null };
  const from = Date.parse(scope.from);
  return { lastActiveAtAfter: Math.max(from, cutoff), lastActiveAtBefore: scope.to === undefined ? null : Date.parse(scope.to) };
}

export function describeScope(scope: RevocationScope, excluded = 0): string {
  const base =
    scope.type === 'all'
      ? 'all users'
      : scope.type === 'users'
        ? `${scope.userIds.length} listed user(s)`
        : `users active between ${scope.from} and ${scope.to ?? 'now'}`;
  return excluded > 0 ? `${base}, excluding ${excluded}` : base;
}
