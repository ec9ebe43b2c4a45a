/**
 * An update sent as a person sends it, under one update id, and sent again when the call ends
 * without an answer (a busy server's `context deadline exceeded`, a worker or server restarting):
 * Temporal applies an update id once and returns its first answer, so a resend never counts twice.
 * A refusal by the workflow (`WorkflowUpdateFailedError`) or a workflow that does not exist is final.
 */
import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';

export interface ResendOptions {
  /** Calls at most (default 3). */
  attempts?: number;
  /** No new call after this time (epoch ms). */
  deadline?: number;
  /** Wait before call `attempt + 1` (default 500 ms). */
  delayMs?: (attempt: number) => number;
  /** Told of each failed call that will be made again. */
  onResend?: (err: unknown, attempt: number) => void;
}

export async function sendUpdate<T>(call: (updateId: string) => Promise<T>, updateId: string, opts: ResendOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 3;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(updateId);
    } catch (err) {
      const final = err instanceof WorkflowUpdateFailedError || err instanceof WorkflowNotFoundError;
      if (final || attempt >= attempts || (opts.deadline !== undefined && Date.now() > opts.deadline)) throw err;
      opts.onResend?.(err, attempt);
      await new Promise((r) => setTimeout(r, opts.delayMs?.(attempt) ?? 500));
    }
  }
}
