/** Update refusals in tests (apart from incident.ts, which child worker processes import without vitest). */
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { expect } from 'vitest';

/** The message of an update the workflow refused (`UpdateRefused`); fails the test when it was accepted or failed otherwise. */
export async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (err as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).type).toBe('UpdateRefused');
  return cause?.message ?? '';
}

/** The ApplicationFailure an activity threw (fails the test when it resolved or threw something else). */
export async function activityFailure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected the activity to fail with an ApplicationFailure');
}

/** Cancel a workflow and wait for it to end as cancelled (fails the test when it ended otherwise). */
export async function cancelAndWait(handle: WorkflowHandle): Promise<void> {
  await handle.cancel();
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
}
