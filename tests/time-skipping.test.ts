/** Long durable timers, waited out on the time-skipping test server (provisioned by npm install). */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { inject } from 'vitest';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../src/shared';
import { getIncidentState, incidentWorkflow } from '../src/workflows';
import { startStatusPage, type FakeStatusPage } from './helpers/status-page';
import { quietRuntime, testWorker, uniqueTaskQueue, uniqueWorkflowId } from './helpers/temporal';

let env: TestWorkflowEnvironment;
let statusPage: FakeStatusPage;

beforeAll(async () => {
  quietRuntime();
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: inject('testServerPath') } },
  });
  // The Java test server does not know our search attributes until they are added.
  await env.connection.operatorService.addSearchAttributes({
    namespace: 'default',
    searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((name) => [name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
  });
  statusPage = await startStatusPage('major');
});
afterAll(async () => {
  await statusPage?.close();
  await env?.teardown();
});

it('waits out an hour-long approval gate (escalation at 15 min, safe default at 60) and a 5-minute recovery watch', async () => {
  const taskQueue = uniqueTaskQueue();
  const worker = await testWorker(env.nativeConnection, taskQueue, { statusPageUrl: statusPage.url, sandbox: true });
  await worker.runUntil(async () => {
    // Default timeouts: escalate after 15 minutes, safe default after 1 hour, status checks every 5.
    const handle = await env.client.workflow.start(incidentWorkflow, {
      taskQueue,
      workflowId: uniqueWorkflowId(),
      args: [{ reporter: 'alice', summary: 'nobody can sign in', category: 'clerk_outage', approvers: ['bob', 'carol'] }],
    });
    const before = await env.currentTimeMs();
    // Skip 76 minutes of server time: the gate times out at 60, then three 5-minute checks see the outage.
    await env.sleep('76 minutes');
    expect(statusPage.hits).toBeGreaterThanOrEqual(4);
    statusPage.indicator = 'none';
    const started = performance.now();
    const result = await handle.result();
    const skippedMs = (await env.currentTimeMs()) - before;

    expect(result.status).toBe('resolved');
    const gate = result.gates.find((g) => g.step === 'emergency_bypass');
    expect(gate).toMatchObject({ outcome: 'timed_out', escalated: true, approvals: [] });
    expect(Date.parse(gate?.decideBy ?? '') - Date.parse(gate?.requestedAt ?? '')).toBe(60 * 60_000);
    expect(result.timeline.map((e) => e.description)).toContain('no decision after 15m: escalated');
    const monitoring = result.timeline.find((e) => e.step === 'recovery_watch');
    expect(monitoring?.description).toMatch(/Clerk recovered after \d+ check\(s\)/);
    expect(Number(monitoring?.details?.checks)).toBeGreaterThanOrEqual(3);
    // An hour of gate and at least 3 timers of 5 minutes passed on the server's clock, in a fraction of that on ours.
    expect(skippedMs).toBeGreaterThanOrEqual(75 * 60_000);
    expect(performance.now() - started).toBeLessThan(60_000);
    expect((await handle.query(getIncidentState)).status).toBe('resolved');
  });
});
