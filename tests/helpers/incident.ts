/** Incident tests: activity dependencies pointing at a Clerk sandbox, and waiting on a workflow's state. */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { ActivityDeps } from '../../src/activities';
import { createClerkGateway } from '../../src/activities/clerk';
import { diagnosticsConfig, loadEnv } from '../../src/config';
import type { RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { IncidentInput } from '../../src/domain';
import { incidentWorkflow, type getIncidentState, type IncidentState } from '../../src/workflows/incident';
import { uniqueWorkflowId } from './ids';

/** What the worker would get in sandbox mode (src/main.ts), plus an optional chat webhook. */
export function sandboxDeps(sandbox: Pick<RunningSandbox, 'url' | 'secretKey' | 'publishableKey'>, chatWebhookUrl?: string): ActivityDeps {
  return {
    statusPageUrl: sandbox.url,
    sandbox: true,
    // One attempt per call: triage wants the first answer, and tests want them fast.
    clerk: createClerkGateway({ secretKey: sandbox.secretKey, apiUrl: sandbox.url, retry: { maxUnavailableAttempts: 1 }, requestTimeoutMs: 3000 }),
    appHealthUrl: `${sandbox.url}/api/clerk-health`,
    appRoutes: [`${sandbox.url}/app/dashboard`, `${sandbox.url}/app/profile`],
    // As npm start configures it in sandbox mode: the sandbox's publishable key and origin.
    diagnostics: diagnosticsConfig(loadEnv({}), { url: sandbox.url, publishableKey: sandbox.publishableKey }),
    ...(chatWebhookUrl ? { chatWebhookUrl } : {}),
    temporalUiUrl: 'http://localhost:8233',
    namespace: 'default',
  };
}

type QueryDef = typeof getIncidentState;

/**
 * Poll until `check` returns something truthy (no `expect.poll`: it is not allowed in concurrent
 * tests). Throws with the last value seen when it never does.
 */
export async function eventually<T>(check: () => Promise<T>, timeout = 15_000, interval = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  for (;;) {
    last = await check();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeout} ms (last: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** Poll the incident's state until `ready` says so; returns that state. */
export async function waitForState(
  handle: WorkflowHandle,
  query: QueryDef,
  ready: (s: IncidentState) => boolean,
  timeout = 15_000,
): Promise<IncidentState> {
  let last: IncidentState | undefined;
  try {
    return await eventually(async () => {
      last = await handle.query(query);
      return ready(last) ? last : undefined;
    }, timeout);
  } catch {
    throw new Error(`incident state not reached within ${timeout} ms; last state: ${JSON.stringify(last, null, 1)}`);
  }
}

export const pendingStep = (step: string) => (s: IncidentState) => s.pendingApprovals.some((p) => p.step === step);

export type IncidentHandle = WorkflowHandle<typeof incidentWorkflow>;
export type StartIncident = (input: IncidentInput, id?: string) => Promise<IncidentHandle>;

/**
 * Run `worker` while `body` starts incidents on its queue; whatever `body` started is cancelled
 * (and waited for) before the worker stops, so nothing is left running on a queue nobody polls.
 */
export async function withIncidents<T>(
  client: Client,
  worker: Worker,
  taskQueue: string,
  body: (start: StartIncident) => Promise<T>,
  opts: { idPrefix?: string; staticSummary?: (input: IncidentInput) => string } = {},
): Promise<T> {
  const started: IncidentHandle[] = [];
  return worker.runUntil(async () => {
    try {
      return await body(async (input, id) => {
        const handle = await client.workflow.start(incidentWorkflow, {
          taskQueue,
          workflowId: id ?? uniqueWorkflowId(opts.idPrefix),
          args: [input],
          ...(opts.staticSummary ? { staticSummary: opts.staticSummary(input) } : {}),
        });
        started.push(handle);
        return handle;
      });
    } finally {
      for (const h of started) {
        await h.cancel().catch(() => undefined);
        await h.result().catch(() => undefined);
      }
    }
  });
}
