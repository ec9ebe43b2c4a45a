/**
 * The loop of a long job done in batch activities (session revocation, user reconciliation): run
 * batch after batch, wait on a durable timer when Clerk interrupted one, give up after too many
 * interruptions in a row, and continue as new every `batchesPerRun` batches or when Temporal
 * suggests it. The job keeps its own state and totals; `checkpoint` carries them to the next run.
 */
import { ActivityFailure, ApplicationFailure, sleep, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import { z } from 'zod';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';
import type { BatchInterruption } from '../user-paging';

/**
 * Options of a job's batch activities: batches heartbeat their cursor, so a silent one is retried
 * elsewhere from it; Clerk's non-retryable answers (and the job's own `nonRetryable` types) stop the retries.
 */
export function batchActivityOptions(tuning: { batchTimeBudgetSeconds: number; heartbeatTimeoutSeconds: number }, nonRetryable: readonly string[] = []): ActivityOptions {
  return {
    startToCloseTimeout: `${Math.max(600, 3 * tuning.batchTimeBudgetSeconds)} seconds`,
    heartbeatTimeout: `${tuning.heartbeatTimeoutSeconds} seconds`,
    retry: {
      initialInterval: '1 second',
      backoffCoefficient: 2,
      maximumInterval: '1 minute',
      maximumAttempts: 100,
      nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES, ...nonRetryable],
    },
  };
}

/**
 * A checkpoint is what a run hands the next on continue-as-new; in a start it would be a forged
 * cursor and totals (a revocation reported done that revoked nothing), so a start carrying one is refused.
 */
export const FORGED_CHECKPOINT = 'input.checkpoint: only a run continued as new carries one; leave it out of a start';
export const forgedCheckpoint = (checkpoint: unknown, continuedFrom: string | undefined): boolean =>
  checkpoint !== undefined && continuedFrom === undefined;

/** A timeline line as a job's checkpoint carries it across continue-as-new. */
export const timelineEventSchema = z.strictObject({
  time: z.string(),
  step: z.string(),
  actor: z.string(),
  description: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** What the loop reads of every batch's result. */
export interface BatchReport {
  finishedAt: number;
  interrupted: BatchInterruption | null;
}

export interface CheckpointedBatches<R extends BatchReport> {
  /** What the batches do, for timer summaries: `revocation` → "revocation: waiting 4 s for Clerk". */
  label: string;
  batchesPerRun: number;
  /** Interruptions in a row after which the job fails (non-retryable, with Clerk's failure type). */
  maxInterruptionsInARow: number;
  /** Interruptions in a row the previous run ended with (a series goes on across continue-as-new); 0 by default. */
  interruptionsInARow?: number;
  /** Starts the next batch, or returns null when nothing is left. `afterInterruption`: the previous one stopped short. */
  next(afterInterruption: boolean): Promise<R> | null;
  /** Folds a batch into the job's state; true when the job is finished. */
  merge(result: R): boolean;
  /**
   * Every interruption, with how many in a row so far (1: the first of a series, e.g. a line in
   * the timeline). The job sees a good batch again in `merge` (its `interrupted` is null).
   */
  onInterrupted(result: R & { interrupted: BatchInterruption }, interruptionsInARow: number): void;
  /** Details of the failure thrown when Clerk stays unavailable. */
  failureDetails(): unknown[];
  /** Who an interruption waits for, in messages (default `Clerk`; a job may also wait for its own dependencies). */
  waitingFor?(interrupted: BatchInterruption): string;
  /** Continues as new with the state so far (`continueAsNew`, which never returns). */
  checkpoint(result: R): Promise<never>;
}

/** Longest wait between interrupted batches when Clerk sends no `Retry-After`. */
const MAX_BACKOFF_MS = 60_000;

export async function runCheckpointedBatches<R extends BatchReport>(job: CheckpointedBatches<R>): Promise<void> {
  let batchesThisRun = 0;
  let interruptions = job.interruptionsInARow ?? 0;
  let afterInterruption = false;
  for (;;) {
    const batch = job.next(afterInterruption);
    if (!batch) return;
    const result = await batch;
    batchesThisRun++;
    if (job.merge(result)) return;
    const { interrupted } = result;
    afterInterruption = interrupted !== null;
    if (interrupted) {
      // Clerk is down or throttling beyond the gateway's retries: wait on a durable timer, then go on
      // from the exact cursor the batch stopped at.
      interruptions++;
      job.onInterrupted({ ...result, interrupted }, interruptions);
      const who = job.waitingFor?.(interrupted) ?? 'Clerk';
      if (interruptions > job.maxInterruptionsInARow) {
        throw ApplicationFailure.create({
          type: interrupted.type,
          message: `${who} stayed unavailable for ${interruptions} batches in a row: ${interrupted.message}`,
          nonRetryable: true,
          details: job.failureDetails(),
        });
      }
      const waitMs = interrupted.retryAfterMs ?? Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(6, interruptions - 1));
      await sleep(waitMs, { summary: `${job.label}: waiting ${Math.round(waitMs / 1000)} s for ${who} (${interrupted.type})` });
    } else {
      interruptions = 0;
    }
    if (batchesThisRun >= job.batchesPerRun || workflowInfo().continueAsNewSuggested) await job.checkpoint(result);
  }
}

/**
 * Wraps a job's activity calls: one that failed for good (key refused, a bug, retries exhausted)
 * stops the job with `stop(type, message, failure)`, the failure's own type (or `fallbackType`).
 * Other errors (cancellation) pass through.
 */
export function stopOnActivityFailure(fallbackType: string, stop: (type: string, message: string, failure: ActivityFailure) => Error) {
  return async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ActivityFailure)) throw err;
      const cause = err.cause;
      const type = cause instanceof ApplicationFailure && cause.type ? cause.type : fallbackType;
      throw stop(type, cause?.message ?? err.message, err);
    }
  };
}
