/**
 * `revokeSessionsWorkflow`: revoke the active sessions of every user in a scope, at Clerk's rate
 * limit, for any number of users. A child of the incident (key compromise, session issues) or
 * started on its own. Work goes in batch activities that heartbeat their cursor; the workflow
 * carries the cursor and the totals, and continues as new before its history grows large.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { describeIssues, type TimelineEvent } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import {
  activityWindow,
  addTotals,
  DAY_MS,
  describeScope,
  emptyTotals,
  formatCount,
  HOUR_MS,
  MAX_FAILURES_KEPT,
  progressDetails,
  revokeSessionsInputSchema,
  type RevocationBatchInput,
  type RevocationBatchResult,
  type RevocationCheckpoint,
  type RevocationProgress,
  type RevokeSessionsInput,
  type RevokeSessionsResult,
  type ValidRevokeSessionsInput,
} from '../revocation';

export type { RevokeSessionsInput, RevokeSessionsResult, RevocationProgress } from '../revocation';

export const getRevocationProgress = defineQuery<RevocationProgress>('getRevocationProgress');

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

  // Activity options, once: batches heartbeat their cursor; a silent batch is retried elsewhere
  // from it. Clerk's non-retryable answers arrive as non-retryable failures and stop the retries.
  const clerk = proxyActivities<Activities>({
    startToCloseTimeout: `${Math.max(600, 3 * tuning.batchTimeBudgetSeconds)} seconds`,
    heartbeatTimeout: `${tuning.heartbeatTimeoutSeconds} seconds`,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 100,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
    },
  });

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
      failuresKept: state.failures.length,
      failuresDropped: state.failuresDropped,
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
  const stopOnFailure = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const cause = err.cause;
      const type = cause instanceof ApplicationFailure && cause.type ? cause.type : 'RevocationActivityFailed';
      const message = cause?.message ?? err.message;
      record(state.lastBatchFinishedAt ?? state.startedAt, `session revocation stopped: ${message}`, { type, totals: state.totals });
      publish();
      throw ApplicationFailure.create({
        type,
        message: `session revocation stopped after ${formatCount(state.totals.usersScanned)} users: ${message}`,
        nonRetryable: true,
        details: [progress(), state.timeline],
        cause: err,
      });
    }
  };

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
  let batchesThisRun = 0;
  let interruptions = 0;
  let afterInterruption = false;
  for (;;) {
    const batchInput = nextBatch(input, state, idsInScope, info.workflowId, afterInterruption);
    if (!batchInput) break;
    const first = state.totals.usersScanned + state.totals.usersNotFound + 1;
    const result: RevocationBatchResult = await stopOnFailure(() =>
      clerk.revokeSessionsBatch.executeWithOptions(
        { summary: `revocation batch ${state.batches + 1}: users from #${formatCount(first)}${input.dryRun ? ' (dry run)' : ''}` },
        [batchInput],
      ),
    );
    mergeBatch(state, result);
    batchesThisRun++;
    if (result.usersMatching !== null && input.scope.type !== 'users') state.usersInScope = result.usersMatching;
    const finished =
      input.scope.type === 'users' ? state.cursor.type === 'ids' && state.cursor.index >= idsInScope.length : result.done;
    publish();
    if (finished) break;
    afterInterruption = result.interrupted !== null;
    if (result.interrupted) {
      // Clerk is down or throttling beyond the gateway's retries: wait on a durable timer, then go on
      // from the exact cursor the batch stopped at.
      interruptions++;
      if (interruptions === 1) {
        record(result.finishedAt, `Clerk unavailable (${result.interrupted.type}); revocation waits and resumes from its cursor`, {
          error: result.interrupted.message,
        });
      }
      if (interruptions > MAX_INTERRUPTIONS_IN_A_ROW) {
        throw ApplicationFailure.create({
          type: result.interrupted.type,
          message: `Clerk stayed unavailable for ${interruptions} batches in a row: ${result.interrupted.message}`,
          nonRetryable: true,
          details: [progress()],
        });
      }
      const waitMs = result.interrupted.retryAfterMs ?? Math.min(60_000, 1000 * 2 ** Math.min(6, interruptions - 1));
      await sleep(waitMs, { summary: `revocation: waiting ${Math.round(waitMs / 1000)} s for Clerk (${result.interrupted.type})` });
    } else {
      interruptions = 0;
    }
    if (batchesThisRun >= tuning.batchesPerRun || workflowInfo().continueAsNewSuggested) {
      state.runs++;
      record(result.finishedAt, `checkpoint: ${formatCount(state.totals.usersScanned)} users scanned; continuing as new (run ${state.runs})`, {
        cursor: state.cursor,
        batches: state.batches,
      });
      await continueAsNew<typeof revokeSessionsWorkflow>({ ...input, checkpoint: state });
    }
  }

  phase = 'completed';
  const finishedAt = state.lastBatchFinishedAt ?? state.startedAt;
  const t = state.totals;
  record(
    finishedAt,
    input.dryRun
      ? `dry run complete: ${formatCount(t.sessionsFound)} active session(s) of ${formatCount(t.usersScanned - t.usersExcluded)} user(s) would be revoked; nothing was revoked`
      : `session revocation complete: ${formatCount(t.sessionsRevoked)} revoked, ${formatCount(t.sessionsAlreadyRevoked)} already revoked, ${formatCount(t.failures)} failure(s)`,
    { ...t, failedIds: state.failures.slice(0, 50).map((f) => f.sessionId ?? f.userId) },
  );
  publish();
  const p = progress();
  return {
    workflowId: info.workflowId,
    dryRun: input.dryRun,
    scope: scopeText,
    totals: state.totals,
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
    cursor: input.scope.type === 'users' ? { type: 'ids', index: 0 } : { type: 'created', afterUserId: null, afterCreatedAt: null },
    totals: emptyTotals(),
    failures: [],
    failuresDropped: 0,
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
  state.batches++;
  state.lastBatchFinishedAt = result.finishedAt;
}
