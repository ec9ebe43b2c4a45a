/**
 * The backstop of the bypass lease: a Temporal Schedule that runs `bypassSweepWorkflow` every
 * minute on the worker's task queue (src/workflows/bypass-lease.ts). Created by the worker at
 * start (`npm start`, the production worker), idempotently: an existing schedule is left as it is.
 */
import { Client, ScheduleAlreadyRunning, ScheduleOverlapPolicy, type ConnectionLike } from '@temporalio/client';
import { BYPASS_SWEEP_SCHEDULE_ID } from '../workflows/bypass-lease-messages';

const BYPASS_SWEEP_EVERY = '1 minute';

/** One schedule per task queue: each worker pool sweeps the target it is configured for. */
export function bypassSweepScheduleId(taskQueue: string): string {
  return `${BYPASS_SWEEP_SCHEDULE_ID}:${taskQueue}`;
}

export async function ensureBypassSweepSchedule(connection: ConnectionLike, namespace: string, taskQueue: string): Promise<'created' | 'exists'> {
  const client = new Client({ connection, namespace });
  const scheduleId = bypassSweepScheduleId(taskQueue);
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: BYPASS_SWEEP_EVERY }] },
      action: { type: 'startWorkflow', workflowType: 'bypassSweepWorkflow', args: [], taskQueue, workflowId: `bypass-sweep:${taskQueue}`, workflowExecutionTimeout: '10 minutes' },
      // A sweep still running (a slow redeploy) is not doubled; a missed minute is not caught up.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
      memo: { purpose: 'removes an auth-bypass flag that no running incident holds (docs/bypass-threat-model.md)' },
    });
    return 'created';
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) return 'exists';
    throw err;
  }
}
