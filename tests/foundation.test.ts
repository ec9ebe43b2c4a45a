/** The whole path on a real Temporal dev server: client → server → worker → activity → result (against the Clerk sandbox). */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IncidentStatusKey } from '../src/shared';
import { confirmStep, getIncidentState, incidentWorkflow } from '../src/workflows';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { sandboxDeps, waitForState } from './helpers/incident';
import { startStatusPage } from './helpers/status-page';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';

let temporal: TemporalTestContext;
let sandbox: RunningSandbox;

beforeAll(async () => {
  temporal = await connectTemporal();
  sandbox = await startSandbox({ users: 20, seed: 'foundation' });
});
afterAll(async () => {
  await sandbox?.close();
  await temporal?.close();
});

// A category whose playbook has no approval gate: the incident runs from report to close alone.
const validInput = { reporter: 'alice', summary: 'user.created events missing in our store', category: 'webhook_backlog' } as const;

describe('incidentWorkflow on a real dev server', () => {
  it('runs triage through a real activity, returns the result and answers a query', async () => {
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox));
    await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [validInput],
      });
      // The reconciliation is done by hand: nothing ends before a person confirms it.
      await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'));
      await handle.executeUpdate(confirmStep, { args: [{ step: 'reconcile_webhooks', confirmedBy: 'alice', note: 'replayed from the Svix portal' }] });
      const result = await handle.result();
      expect(result.status).toBe('resolved');
      expect(result.category).toBe('webhook_backlog');
      // No CHAT_WEBHOOK_URL here: the notice reached the worker's console, and the step says so.
      expect(result.steps.find((s) => s.step === 'incident_notice')?.note).toBe(
        "post the incident notice: delivered to the worker's console only (no CHAT_WEBHOOK_URL, no Slack app), not to a channel",
      );
      expect(result.severity).toBe('low');
      const steps = result.timeline.map((e) => e.step);
      expect(steps[0]).toBe('report');
      expect(steps[1]).toBe('triage');
      expect(steps.slice(-2)).toEqual(['close', 'review']); // closed, then the review written from the history
      expect(result.triage?.probes[0]).toContain('All Systems Operational');
      expect(result.triage?.probes[1]).toMatch(/^backend api\s+ok/);

      const queried = await handle.query(getIncidentState);
      expect(queried.incidentId).toBe(handle.workflowId);
      expect(queried.timeline).toHaveLength(result.timeline.length);

      const description = await handle.describe();
      expect(description.typedSearchAttributes.get(IncidentStatusKey)).toBe('resolved');
    });
  });

  it.each([
    [{ ...validInput, category: 'aliens' }, 'input.category'],
    [{ summary: 'x' }, 'input.reporter'],
    [{ ...validInput, reporter: 42 }, 'input.reporter'],
    [{ ...validInput, severity: 'high' }, 'input.severity: unknown field'],
    [{ ...validInput, timeouts: { escalateAfter: 'soon' } }, 'input.timeouts.escalateAfter: must be a duration'],
    [{ ...validInput, approvers: ['bob', ''] }, 'input.approvers.1'],
    ['not an object', 'input'],
  ])('fails at once, without retrying, on invalid input %j', async (input, field) => {
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, sandboxDeps(sandbox));
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
      page.stallNext(1); // the first status page probe hangs: the workflow is mid-activity when worker 1 stops
      const first = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: page.url, sandbox: true }, 'worker-1');
      const handle = await temporal.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: uniqueWorkflowId(),
        args: [{ ...validInput, timeouts: { probe: '30s' } }], // the stall outlasts the shutdown
      });
      const firstRun = first.run();
      await expect.poll(async () => (await handle.query(getIncidentState)).timeline.length, { timeout: 10_000 }).toBe(1);
      await expect.poll(() => page.stalled, { timeout: 10_000 }).toBe(1); // the probe is at the status page, held
      expect(page.hits).toBe(0);
      first.shutdown();
      await firstRun;
      page.release();

      const second = await testWorker(temporal.nativeConnection, taskQueue, { statusPageUrl: page.url, sandbox: true }, 'worker-2');
      const result = await second.runUntil(async () => {
        await waitForState(handle, getIncidentState, (s) => s.manualSteps.some((m) => m.step === 'reconcile_webhooks'));
        await handle.executeUpdate(confirmStep, { args: [{ step: 'reconcile_webhooks', confirmedBy: 'alice', note: 'replayed by hand' }] });
        return handle.result();
      });
      expect(result.status).toBe('resolved');
      expect(page.hits).toBe(1);

      // The triage activity's final attempt was completed by the replacement worker.
      const history = await handle.fetchHistory();
      const triage = history.events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTriageProbes');
      const started = history.events?.find(
        (e) => e.activityTaskStartedEventAttributes && String(e.activityTaskStartedEventAttributes.scheduledEventId) === String(triage?.eventId),
      );
      expect(started?.activityTaskStartedEventAttributes?.identity).toBe('worker-2');
      expect(started?.activityTaskStartedEventAttributes?.attempt).toBeGreaterThanOrEqual(2);
    } finally {
      await page.close();
    }
  });
});
