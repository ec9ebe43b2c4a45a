/**
 * `reconcileUsersWorkflow`: bring the app's user store back in line with Clerk after webhook
 * deliveries were lost. It pages through Clerk's users (all, or created / active in a window) and
 * compares each page with the store (missing, stale), then sweeps the store's ids for users deleted
 * in Clerk; every difference is fixed by a synthesized, Svix-signed `user.*` event to the app's
 * endpoint (or a direct write). The batches, cursor, heartbeats and continue-as-new are the
 * revocation's (`./checkpointed-batches.ts`, `src/activities/user-paging.ts`).
 *
 * A real run plans first (a dry pass) and waits for an approval (`decideReconcile`) when it would
 * deliver more than `approvalAbove` events. A child of the `webhook_backlog` incident or on its own.
 * Its input schemas are in `./reconcile-input.ts`.
 */
import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReconcileActivities } from '../activities';
import { describeIssues, formatDuration, type TimelineEvent } from '../domain';
import {
  addReconcileTotals,
  differencesLeft,
  emptyReconcileTotals,
  emptySamples,
  MAX_RECONCILE_FAILURES_KEPT,
  mergeSamples,
  reconcileDetails,
  reconcileOutcome,
  totalsLine,
  type ReconcileApproval,
  type ReconcileBatchInput,
  type ReconcileBatchResult,
  type ReconcileProgress,
  type ReconcileStage,
  type ReconcileUsersResult,
} from '../reconcile';
import { formatCount } from '../revoke-sessions';
import { firstCursor, type BatchInterruption } from '../user-paging';
import { batchActivityOptions, FORGED_CHECKPOINT, forgedCheckpoint, runCheckpointedBatches, stopOnActivityFailure } from './checkpointed-batches';
import {
  reconcileDecisionSchema,
  reconcileUsersInputSchema,
  type ReconcileCheckpoint,
  type ReconcileDecision,
  type ReconcileScope,
  type ReconcileUsersInput,
  type ValidReconcileUsersInput,
} from './reconcile-input';

export * from './reconcile-input';

export type { ReconcileUsersResult, ReconcileProgress } from '../reconcile';

export const getReconcileProgress = defineQuery<ReconcileProgress>('getReconcileProgress');
/** Approve or reject a run that waits for approval (`stage: approval`); the approver may not be the requester. */
export const decideReconcile = defineUpdate<ReconcileApproval, [ReconcileDecision]>('decideReconcile');

const ACTOR = 'reconcileUsersWorkflow';
const STEP = 'reconcile_webhooks';

export async function reconcileUsersWorkflow(rawInput: ReconcileUsersInput): Promise<ReconcileUsersResult> {
  const parsed = reconcileUsersInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: 'InvalidReconcileInput', message: describeIssues(parsed.error), nonRetryable: true });
  }
  const input: ValidReconcileUsersInput = parsed.data;
  const { tuning } = input;
  const info = workflowInfo();
  if (forgedCheckpoint(input.checkpoint, info.continuedFromExecutionRunId)) {
    throw ApplicationFailure.create({ type: 'InvalidReconcileInput', message: FORGED_CHECKPOINT, nonRetryable: true });
  }
  const activities = proxyActivities<ReconcileActivities>(batchActivityOptions(tuning, ['ReconcileNotConfigured', 'UserStoreMisconfigured']));

  const scopeText = describeReconcileScope(input.scope);
  const state: ReconcileCheckpoint = input.checkpoint
    ? (JSON.parse(JSON.stringify(input.checkpoint)) as ReconcileCheckpoint)
    : firstCheckpoint(info.runStartTime.getTime());
  let approvalRequest: ReconcileApproval | null = null;

  const progress = (): ReconcileProgress => {
    const seconds = Math.max(0, (state.lastBatchFinishedAt ?? state.startedAt) - state.startedAt) / 1000;
    // Totals of a plan count what would be delivered: judged as a dry run's.
    const dry = input.dryRun || state.stage.startsWith('plan') || state.stage === 'approval';
    return {
      workflowId: info.workflowId,
      stage: state.stage,
      dryRun: input.dryRun,
      scope: scopeText,
      requestedBy: input.requestedBy,
      reason: input.reason,
      incidentId: input.incidentId ?? null,
      delivery: state.delivery,
      planned: state.planned,
      totals: state.totals,
      left: differencesLeft(state.totals),
      usersInScope: state.usersInScope,
      storeRows: state.storeRows,
      samples: state.samples,
      failures: state.failures,
      failuresDropped: state.failuresDropped,
      approval: state.approval,
      svixPortalUrl: state.svixPortalUrl,
      batches: state.batches,
      runs: state.runs,
      startedAt: new Date(state.startedAt).toISOString(),
      elapsedSeconds: Math.round(seconds),
      usersPerSecond: seconds > 0 ? (state.totals.usersScanned + state.totals.storeRowsScanned) / seconds : 0,
      eventsPerSecond: seconds > 0 ? state.totals.applied / seconds : 0,
      outcome: notApproved(state.approval) ? 'failed' : reconcileOutcome(state.totals, dry),
      lastError: state.lastError,
    };
  };
  setHandler(getReconcileProgress, progress);
  setHandler(
    decideReconcile,
    (req) => {
      const r = reconcileDecisionSchema.parse(req);
      approvalRequest = { decision: r.decision === 'approve' ? 'approved' : 'rejected', by: r.approver, reason: r.reason ?? null, at: new Date().toISOString() };
      return approvalRequest;
    },
    {
      validator: (req) => {
        const r = reconcileDecisionSchema.safeParse(req);
        if (!r.success) throw new Error(describeIssues(r.error, 'update'));
        if (state.stage !== 'approval') throw new Error(`update.decision: the reconciliation is not waiting for an approval (stage ${state.stage})`);
        if (r.data.approver === input.requestedBy) throw new Error(`update.approver: ${r.data.approver} requested this reconciliation and cannot approve it`);
      },
    },
  );
  const publish = () => setCurrentDetails(reconcileDetails(progress()));
  const record = (time: number, description: string, details?: Record<string, unknown>) => {
    state.timeline.push({ time: new Date(time).toISOString(), step: STEP, actor: ACTOR, description, ...(details ? { details } : {}) });
  };

  /** An activity that failed for good stops the run with its failure type, the totals so far and a timeline line. */
  const stopOnFailure = stopOnActivityFailure('ReconcileActivityFailed', (type, message, failure) => {
    record(state.lastBatchFinishedAt ?? state.startedAt, `user reconciliation stopped: ${message}`, { type, totals: state.totals });
    publish();
    return ApplicationFailure.create({ type, message: `user reconciliation stopped: ${message}`, nonRetryable: true, details: [progress(), state.timeline], cause: failure });
  });

  if (!input.checkpoint) {
    record(state.startedAt, `${input.dryRun ? 'dry run of ' : ''}user reconciliation started by ${input.requestedBy} for ${scopeText}: ${input.reason}`, {
      scope: input.scope,
      dryRun: input.dryRun,
      approvalAbove: input.approvalAbove,
      ...(input.incidentId ? { incidentId: input.incidentId } : {}),
    });
    publish();
    const prep = await stopOnFailure(() => activities.prepareReconcile.executeWithOptions({ summary: 'reconcile: store size, delivery mode, Svix portal link' }, []));
    state.delivery = prep.delivery;
    state.storeRows = prep.storeRows;
    state.svixPortalUrl = prep.svixPortalUrl;
    record(
      Date.now(),
      prep.svixPortalUrl
        ? `Clerk's Svix portal (missed deliveries can be retried there too): ${prep.svixPortalUrl}`
        : `no Svix portal link from Clerk: ${prep.portalError ?? 'unknown error'}`,
      { delivery: prep.delivery, storeRows: prep.storeRows },
    );
    state.stage = input.dryRun || input.approvalAbove !== null ? 'plan_clerk' : 'apply_clerk';
    publish();
  }

  while (state.stage !== 'done') {
    if (state.stage === 'approval') {
      await awaitApproval();
      continue;
    }
    const pass: ReconcileBatchInput['pass'] = state.stage.endsWith('store') ? 'store' : 'clerk';
    const dryRun = input.dryRun || state.stage.startsWith('plan');
    await runCheckpointedBatches<ReconcileBatchResult>({
      label: `reconcile ${pass}`,
      batchesPerRun: tuning.batchesPerRun,
      maxInterruptionsInARow: input.maxInterruptionsInARow,
      interruptionsInARow: state.lastError?.interruptionsInARow ?? 0,
      next: (afterInterruption) => {
        const batchInput = nextBatch(input, state, pass, dryRun, info.workflowId, afterInterruption);
        const from = pass === 'clerk' ? `users from #${formatCount(state.totals.usersScanned + 1)}` : `store rows from #${formatCount(state.totals.storeRowsScanned + 1)}`;
        return stopOnFailure(() =>
          activities.reconcileUsersBatch.executeWithOptions({ summary: `reconcile ${pass} batch ${state.batches + 1}: ${from}${dryRun ? ' (dry)' : ''}` }, [batchInput]),
        );
      },
      merge: (result) => {
        if (!result.interrupted && state.lastError) {
          record(result.finishedAt, `${state.lastError.type.replace(/Unavailable$/, '')} answered again after ${state.lastError.interruptionsInARow} interrupted batch(es)`, { lastError: state.lastError });
          state.lastError = null;
        }
        mergeBatch(state, result);
        if (pass === 'clerk' && result.usersMatching !== null) state.usersInScope = result.usersMatching;
        publish();
        return result.done;
      },
      onInterrupted: (result, inARow) => {
        const { type, message } = result.interrupted;
        state.lastError = { type, message, at: new Date(result.finishedAt).toISOString(), interruptionsInARow: inARow };
        publish();
        if (inARow === 1) record(result.finishedAt, `${waitingFor(result.interrupted)} unavailable (${type}); reconciliation waits and resumes from its cursor`, { error: message });
      },
      waitingFor,
      failureDetails: () => [progress()],
      checkpoint: (result) => {
        state.runs++;
        record(result.finishedAt, `checkpoint: ${totalsLine(state.totals, dryRun)}; continuing as new (run ${state.runs})`, { cursor: state.cursor, batches: state.batches });
        return continueAsNew<typeof reconcileUsersWorkflow>({ ...input, checkpoint: state });
      },
    });
    advance();
    publish();
  }

  const finishedAt = state.lastBatchFinishedAt ?? Date.now();
  const p = progress();
  const t = state.totals;
  if (!notApproved(state.approval)) {
    record(
      finishedAt,
      input.dryRun
        ? `dry run complete: ${totalsLine(t, true)}`
        : `user reconciliation complete (${state.delivery ?? 'webhook'} delivery): ${totalsLine(t, false)}`,
      { ...t, outcome: p.outcome, left: p.left, samples: state.samples, refusedUserIds: state.failures.slice(0, 50).map((f) => f.userId) },
    );
  }
  publish();
  return {
    workflowId: info.workflowId,
    dryRun: input.dryRun,
    scope: scopeText,
    outcome: p.outcome,
    approval: state.approval,
    delivery: state.delivery,
    planned: state.planned,
    totals: t,
    left: p.left,
    samples: state.samples,
    failures: state.failures,
    failuresDropped: state.failuresDropped,
    svixPortalUrl: state.svixPortalUrl,
    startedAt: p.startedAt,
    finishedAt: new Date(finishedAt).toISOString(),
    elapsedSeconds: p.elapsedSeconds,
    batches: state.batches,
    runs: state.runs,
    timeline: state.timeline as TimelineEvent[],
  };

  /** The next stage once a pass is done; the plan's totals decide whether an approval is needed. */
  function advance(): void {
    const next: Partial<Record<ReconcileStage, ReconcileStage>> = {
      plan_clerk: input.sweepStore ? 'plan_store' : 'approval',
      plan_store: 'approval',
      apply_clerk: input.sweepStore ? 'apply_store' : 'done',
      apply_store: 'done',
    };
    let stage = next[state.stage] ?? 'done';
    state.cursor = firstCursor(stage.endsWith('store') ? 'own' : 'listing');
    if (stage === 'approval') {
      const events = state.totals.missing + state.totals.stale + state.totals.deleted;
      const at = state.lastBatchFinishedAt ?? Date.now();
      if (input.dryRun) stage = 'done';
      else {
        state.planned = state.totals;
        state.totals = { ...emptyReconcileTotals(), requests: state.planned.requests, rateLimited: state.planned.rateLimited, retries: state.planned.retries };
        state.samples = emptySamples();
        if (events === 0) {
          record(at, `plan: the store is in sync with Clerk (${formatCount(state.planned.usersScanned)} users, ${formatCount(state.planned.storeRowsScanned)} rows); nothing to deliver`);
          stage = 'done';
        } else if (input.approvalAbove !== null && events > input.approvalAbove) {
          record(at, `plan: ${totalsLine(state.planned, true)}; more than ${formatCount(input.approvalAbove)}, so an approver decides (decideReconcile)`, { planned: state.planned });
        } else {
          record(at, `plan: ${totalsLine(state.planned, true)}; no approval needed (at most ${formatCount(input.approvalAbove ?? 0)})`);
          stage = 'apply_clerk';
        }
      }
    }
    state.stage = stage;
  }

  async function awaitApproval(): Promise<void> {
    publish();
    const decided = await condition(() => approvalRequest !== null, input.approvalTimeoutSeconds * 1000);
    const decision: ReconcileApproval = decided && approvalRequest
      ? approvalRequest
      : { decision: 'timed_out', by: null, reason: null, at: new Date().toISOString() };
    state.approval = decision;
    const at = Date.parse(decision.at);
    if (decision.decision === 'approved') {
      record(at, `approved by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''}; delivering`, { approval: decision });
      state.stage = 'apply_clerk';
    } else {
      const why = decision.decision === 'rejected' ? `rejected by ${decision.by}${decision.reason ? `: ${decision.reason}` : ''}` : `no decision within ${formatDuration(input.approvalTimeoutSeconds * 1000)}`;
      record(at, `reconciliation not approved (${why}); nothing was delivered, ${formatCount(differencesLeft(state.planned ?? emptyReconcileTotals()))} difference(s) left`, { approval: decision });
      state.totals = state.planned ?? state.totals;
      state.stage = 'done';
    }
    publish();
  }
}

function notApproved(a: ReconcileApproval | null): boolean {
  return a !== null && a.decision !== 'approved';
}

function waitingFor(i: BatchInterruption): string {
  if (i.type === 'WebhookEndpointUnavailable') return "the app's webhook endpoint";
  if (i.type === 'UserStoreUnavailable') return "the app's user store";
  return 'Clerk';
}

function firstCheckpoint(startedAt: number): ReconcileCheckpoint {
  return {
    startedAt,
    stage: 'plan_clerk',
    cursor: firstCursor('listing'),
    delivery: null,
    storeRows: null,
    usersInScope: null,
    planned: null,
    totals: emptyReconcileTotals(),
    samples: emptySamples(),
    failures: [],
    failuresDropped: 0,
    approval: null,
    svixPortalUrl: null,
    lastError: null,
    batches: 0,
    runs: 1,
    lastBatchFinishedAt: null,
    timeline: [],
  };
}

function nextBatch(
  input: ValidReconcileUsersInput,
  state: ReconcileCheckpoint,
  pass: ReconcileBatchInput['pass'],
  dryRun: boolean,
  ref: string,
  afterInterruption: boolean,
): ReconcileBatchInput {
  const { tuning, scope } = input;
  let source: ReconcileBatchInput['source'] = { type: 'listing' };
  if (pass === 'store') source = { type: 'own' };
  else if (scope.type !== 'all') {
    const from = Date.parse(scope.from);
    const to = scope.to === undefined ? undefined : Date.parse(scope.to);
    source =
      scope.type === 'createdBetween'
        ? { type: 'listing', createdAtAfter: from, ...(to !== undefined ? { createdAtBefore: to } : {}) }
        : { type: 'listing', lastActiveAtAfter: from, lastActiveAtBefore: to ?? null };
  }
  return {
    ref,
    pass,
    dryRun,
    source,
    cursor: state.cursor,
    pageSize: tuning.pageSize,
    maxUsers: tuning.batchMaxUsers,
    timeBudgetMs: tuning.batchTimeBudgetSeconds * 1000,
    usersInFlight: tuning.usersInFlight,
    afterInterruption,
  };
}

function mergeBatch(state: ReconcileCheckpoint, result: ReconcileBatchResult): void {
  state.cursor = result.cursor;
  state.totals = addReconcileTotals(state.totals, result.totals);
  state.delivery = result.delivery;
  for (const f of result.failures) {
    if (state.failures.length < MAX_RECONCILE_FAILURES_KEPT) state.failures.push(f);
    else state.failuresDropped++;
  }
  state.failuresDropped += result.failuresDropped;
  mergeSamples(state.samples, result.samples);
  state.batches++;
  state.lastBatchFinishedAt = result.finishedAt;
}

export function describeReconcileScope(scope: ReconcileScope): string {
  if (scope.type === 'all') return 'all users';
  const what = scope.type === 'createdBetween' ? 'created' : 'active';
  return `users ${what} between ${scope.from} and ${scope.to ?? 'now'}`;
}
