/** Update refusals in tests (apart from incident.ts, which child worker processes import without vitest). */
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
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
