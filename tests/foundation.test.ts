/** The whole path on a real Temporal dev server: client → server → worker → activity → result. */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStatusKey } from '../src/shared';
import { getIncidentState, incidentWorkflow } from '../src/workflows';
import { startStatusPage, type FakeStatusPage } from './helpers/status-page';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let statusPage: FakeStatusPage;

beforeAll(async () => {
  temporal = await connectTemporal();
  statusPage = await startStatusPage('none');
});
afterAll(async () => {
  await statusPage?.close();
  await temporal?.close();
});

const validInput = { reporter: 'alice', summary: 'sign-in returns 500', category: 'middleware_failure' } as const;

describe('incidentWorkflow on a real dev server', () => {
  it('runs triage through a real activity, returns the result and answers a query', async () => {
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: statusPage.url, sandbox: true });
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [validInput],
      });
      const result = await handle.result();
      expect(result.status).toBe('resolved');
      expect(result.category).toBe('middleware_failure');
      expect(result.severity).toBe('high');
      expect(result.timeline.map((e) => e.step)).toEqual(['report', 'triage', 'close']);
      expect(result.timeline[1]?.description).toContain('All Systems Operational');

      const queried = await handle.query(getIncidentState);
      expect(queried.incidentId).toBe(handle.workflowId);
      expect(queried.timeline).toHaveLength(3);

      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(IncidentStatusKey)).toBe('resolved');
    });
  });

  it.each([
    [{ ...validInput, category: 'aliens' }, 'input.category'],
    [{ summary: 'x' }, 'input.reporter'],
    [{ ...validInput, reporter: 42 }, 'input.reporter'],
    [{ ...validInput, severity: 'high' }, 'input.severity: unknown field'],
    ['not an object', 'input'],
  ])('fails at once, without retrying, on invalid input %j', async (input, field) => {
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: statusPage.url, sandbox: true });
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start('incidentWorkflow', {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [input],
      });
      const error = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const cause = (error as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe('InvalidIncidentInput');
      expect((cause as ApplicationFailure).nonRetryable).toBe(true);
      expect(cause?.message).toContain(field);
      // Nothing ran: no activity was scheduled for an input that was refused.
      const history = await handle.fetchHistory();
      const scheduled = history.events?.filter((e) => e.activityTaskScheduledEventAttributes) ?? [];
      expect(scheduled).toHaveLength(0);
    });
  });

  it('completes when its worker is stopped mid-workflow and replaced by a new one', async () => {
    const taskQueue = uniqueTaskQueue();
    const page = await startStatusPage('none');
    try {
      page.stallNext(1); // the first probe hangs: the workflow is mid-activity when worker 1 stops
      const first = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: page.url, sandbox: true }, 'worker-1');
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [validInput],
      });
      const firstRun = first.run();
      await expect.poll(async () => (await handle.query(getIncidentState)).timeline.length, { timeout: 10_000 }).toBe(1);
      expect(page.hits).toBe(0);
      first.shutdown();
      await firstRun;
      page.release();

      const second = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: page.url, sandbox: true }, 'worker-2');
      const result = await second.runUntil(handle.result());
      expect(result.status).toBe('resolved');
      expect(page.hits).toBe(1);

      // The activity's final attempt was completed by the replacement worker.
      const history = await handle.fetchHistory();
      const started = history.events?.filter((e) => e.activityTaskStartedEventAttributes) ?? [];
      expect(started.at(-1)?.activityTaskStartedEventAttributes?.identity).toBe('worker-2');
    } finally {
      await page.close();
    }
  });
});
