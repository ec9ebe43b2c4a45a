/**
 * The emergency auth bypass end to end: a real Temporal server, the sandbox over HTTP (Clerk, its
 * status page, the example app and the emulated Vercel), the real deploy adapters. Each outcome is
 * checked in the incident's state and in the sandbox's own records (Vercel log, audit, app pages).
 */
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../src/activities';
import { BYPASS_DEFAULTS, type BypassConfig } from '../src/activities/bypass';
import { sandboxDeployAdapter } from '../src/activities/deploy';
import type { IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { IncidentStatusKey } from '../src/shared';
import { approveStep, extendBypass, getIncidentState, incidentWorkflow, type IncidentState } from '../src/workflows/incident';
import { startChatReceiver, type ChatReceiver } from './helpers/chat-receiver';
import { findSecrets } from './helpers/history-scan';
import { eventually, pendingStep, sandboxDeps, waitForState } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';
import { cancelAndWait } from './helpers/refusal';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

const outage: IncidentInput = {
  category: 'clerk_outage',
  reporter: 'alice',
  approvers: ['alice', 'bob', 'carol'],
  summary: 'users cannot sign in: Clerk is down',
  timeouts: { escalateAfter: '20s', decideWithin: '40s', probe: '2s', recoveryCheckEvery: '1s', recoveryWatchFor: '30s', resolveWithin: '5s' },
  bypass: { verifyWithin: '6s' },
};

interface Run {
  sandbox: RunningSandbox;
  chat: ChatReceiver;
  handle: WorkflowHandle<typeof incidentWorkflow>;
}

async function withBypass<T>(
  opts: { input?: Partial<IncidentInput>; adapter?: 'vercel' | 'vercel-edge-config'; bypass?: Partial<BypassConfig>; setup?: (s: RunningSandbox) => void },
  body: (run: Run) => Promise<T>,
): Promise<T> {
  const sandbox = await startSandbox({ users: 10, seed: 'bypass-test' });
  const chat = await startChatReceiver();
  try {
    sandbox.admin.vercel.buildMs = 300;
    sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const deps: ActivityDeps = {
      ...sandboxDeps(sandbox, chat.url),
      deploy: sandboxDeployAdapter(sandbox.vercel, opts.adapter ?? 'vercel'),
      bypass: { ...BYPASS_DEFAULTS, recoveryProbes: 2, ...opts.bypass },
    };
    opts.setup?.(sandbox);
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
    return await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('bypass'), args: [{ ...outage, ...opts.input }] });
      const result = await body({ sandbox, chat, handle });
      const history = await handle.fetchHistory();
      // No token, no key in the history (the sandbox's Vercel token named explicitly).
      expect(findSecrets(history, [sandbox.vercel.token, sandbox.secretKey])).toEqual([]);
      return result;
    });
  } finally {
    await chat.close();
    await sandbox.close();
  }
}

async function approveTwice(handle: WorkflowHandle<typeof incidentWorkflow>): Promise<void> {
  await waitForState(handle, getIncidentState, pendingStep('emergency_bypass'));
  await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'bob' }] });
  await handle.executeUpdate(approveStep, { args: [{ step: 'emergency_bypass', approver: 'carol' }] });
}

const outcome = (s: IncidentState, step: string) => s.steps.filter((x) => x.step === step).at(-1)?.outcome;
const page = async (sandbox: RunningSandbox, path = '/app/dashboard') => {
  const res = await fetch(`${sandbox.url}${path}`);
  return { status: res.status, bypass: res.headers.get('x-auth-bypass') };
};

describe('emergency bypass on Vercel project env + redeploy', () => {
  it('on after two approvals, verified on the app, off by itself when Clerk recovers; the timeline and the platform record both', async () => {
    await withBypass({}, async ({ sandbox, handle, chat }) => {
      expect(await page(sandbox)).toEqual({ status: 500, bypass: null });
      await approveTwice(handle);
      const on = await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 30_000);
      expect(on.bypass).toMatchObject({ state: 'on', adapter: 'vercel', flagKey: 'CLERK_AUTH_BYPASS', deployment: { id: expect.stringMatching(/^dpl_/) } });
      expect(on.bypass?.verified.join('\n')).toContain('GET /app/dashboard 200 X-Auth-Bypass: true');
      expect(on.timeline.some((e) => e.step === 'emergency_bypass' && /deployment dpl_\w+ \(.*vercel\.app\) READY/.test(e.description))).toBe(true);
      // The app, as a user sees it: pages answer again with the header; protected ones stay closed.
      expect(await page(sandbox)).toEqual({ status: 200, bypass: 'true' });
      expect((await page(sandbox, '/app/billing')).status).toBe(503);
      const health = (await (await fetch(`${sandbox.url}/api/clerk-health`)).json()) as { bypass: { active: boolean; source: string } };
      expect(health.bypass).toMatchObject({ active: true, source: 'deployment-env' });
      await eventually(async () => (await handle.describe()).typedSearchAttributes.get(IncidentStatusKey) === 'bypass_active');
      expect(chat.texts().join('\n')).toContain('Emergency auth bypass is ON');

      sandbox.admin.setOutage({ active: false });
      const done = await waitForState(handle, getIncidentState, (s) => s.status === 'resolved', 40_000);
      expect(outcome(done, 'recovery_watch')).toBe('succeeded');
      expect(outcome(done, 'bypass_off')).toBe('succeeded');
      expect(done.bypass).toMatchObject({ state: 'off', offReason: 'Clerk recovered' });
      expect(done.bypass?.bypassedForMs).toBeGreaterThan(0);
      expect(done.steps.find((x) => x.step === 'bypass_off')?.note).toMatch(/auth was bypassed for \d/);
      expect(await page(sandbox)).toEqual({ status: 200, bypass: null });
      // The platform's own record: set, deployed, ready, removed, deployed, ready.
      const actions = sandbox.admin.vercel.entries().map((e) => e.action);
      expect(actions.filter((a) => a === 'env.upsert')).toHaveLength(1);
      expect(actions.filter((a) => a === 'env.delete')).toHaveLength(1);
      expect(actions.filter((a) => a === 'deployment.create')).toHaveLength(2);
      expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeUndefined();
      const reviewed = await waitForState(handle, getIncidentState, (x) => x.review !== undefined, 20_000);
      expect(reviewed.review).toMatch(/minutes of auth bypass: 1 \(on .*, off .*\)/);
    });
  });

  it('a platform 503 and 429 are retried; a 403 fails the step at once, naming the adapter and the fix, and nothing needs undoing', async () => {
    const failNext = [
      { status: 503 as const, count: 2, route: 'POST /v10/projects/{idOrName}/env' },
      { status: 429 as const, count: 1, route: 'POST /v13/deployments' },
    ];
    await withBypass({ setup: (s) => s.admin.vercel.settings({ failNext }) }, async ({ sandbox, handle }) => {
      await approveTwice(handle);
      await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 30_000);
      expect(sandbox.admin.auditEntries({ route: 'POST /v10/projects/{idOrName}/env' }).map((e) => e.status)).toEqual([503, 503, 201]);
      expect(sandbox.admin.auditEntries({ route: 'POST /v13/deployments' }).map((e) => e.status)).toEqual([429, 200]);
      await cancelAndWait(handle);
    });
    await withBypass({ setup: (s) => s.admin.vercel.settings({ token: 'rotated-elsewhere-token' }) }, async ({ sandbox, handle }) => {
      await approveTwice(handle);
      const failed = await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'failed', 30_000);
      const note = failed.steps.find((x) => x.step === 'emergency_bypass' && x.outcome === 'failed')?.note ?? '';
      // The first call, the look for an earlier write of this bypass (a retried set), is refused.
      expect(note).toContain('vercel: GET /v10/projects/{idOrName}/env answered 403');
      expect(note).toContain('Fix: set VERCEL_TOKEN');
      expect(failed.bypass).toBeUndefined();
      // Not retried: one request, and nothing written.
      expect(sandbox.admin.auditEntries({ route: 'GET /v10/projects/{idOrName}/env' })).toHaveLength(1);
      expect(sandbox.admin.auditEntries({ route: 'POST /v10/projects/{idOrName}/env' })).toHaveLength(0);
      await cancelAndWait(handle);
    });
  });
});

describe('emergency bypass on Vercel Edge Config', () => {
  it('on at once (no redeploy); extensions are bounded and move the flag; cancelling while on turns it off', async () => {
    await withBypass({ adapter: 'vercel-edge-config', bypass: { maxDurationMs: 5 * 60_000 }, input: { bypass: { duration: '2m', verifyWithin: '6s' } } }, async ({ sandbox, handle }) => {
      await approveTwice(handle);
      const on = await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 20_000);
      expect(on.bypass?.deployment).toBeUndefined();
      expect(sandbox.admin.vercel.deployments).toHaveLength(1);
      expect(await page(sandbox)).toEqual({ status: 200, bypass: 'true' });

      const refused = async (req: unknown) => {
        const err = await handle.executeUpdate(extendBypass, { args: [req as never] }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WorkflowUpdateFailedError);
        expect(((err as WorkflowUpdateFailedError).cause as ApplicationFailure).type).toBe('UpdateRefused');
        return (err as WorkflowUpdateFailedError).cause?.message ?? '';
      };
      expect(await refused({ approver: 'mallory', extendBy: '10m', reason: 'x' })).toContain('update.approver: mallory is not on the approver list');
      expect(await refused({ approver: 'bob', extendBy: '10m', reason: 'longer' })).toContain('at most 5m (BYPASS_MAX_DURATION)');
      expect(await refused({ approver: 'bob', extendBy: 'soon', reason: 'x' })).toContain('update.extendBy');

      const answer = await handle.executeUpdate(extendBypass, { args: [{ approver: 'bob', extendBy: '1m', reason: 'Clerk says 20 more minutes' }] });
      expect(Date.parse(answer.expiresAt) - Date.parse(on.bypass?.expiresAt ?? '')).toBe(60_000);
      const extended = await waitForState(handle, getIncidentState, (s) => (s.bypass?.extensions.length ?? 0) === 1);
      expect(extended.bypass?.expiresAt).toBe(answer.expiresAt);
      const item = sandbox.admin.vercel.edgeConfig.get('CLERK_AUTH_BYPASS');
      expect(JSON.parse(String(item))).toMatchObject({ until: answer.expiresAt, incident: handle.workflowId });

      await cancelAndWait(handle);
      const after = await handle.query(getIncidentState);
      expect(after.bypass).toMatchObject({ state: 'off', offReason: 'incident cancelled' });
      expect(outcome(after, 'bypass_off')).toBe('succeeded');
      expect(outcome(after, 'emergency_bypass')).toBe('compensated');
      expect(sandbox.admin.vercel.edgeConfig.has('CLERK_AUTH_BYPASS')).toBe(false);
      expect(await page(sandbox)).toEqual({ status: 500, bypass: null });
    });
  });

  it('expiry with nobody extending: the approvers are asked, then it goes off by itself and the watch goes on', async () => {
    await withBypass({ adapter: 'vercel-edge-config', input: { bypass: { duration: '12s', verifyWithin: '6s' } } }, async ({ sandbox, handle, chat }) => {
      await approveTwice(handle);
      await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 20_000);
      const off = await waitForState(handle, getIncidentState, (s) => outcome(s, 'bypass_off') === 'succeeded', 40_000);
      expect(off.bypass?.offReason).toMatch(/expired at .* and nobody extended it/);
      expect(chat.texts().join('\n')).toContain('Emergency bypass expires soon');
      expect(outcome(off, 'recovery_watch')).toBeUndefined();
      expect(await page(sandbox)).toEqual({ status: 500, bypass: null });
      await cancelAndWait(handle);
    });
  });

  it('verification failing (the app never shows the header): the step fails clearly and off still runs', async () => {
    // The app reads another key: the flag is set, but the app never sees it.
    await withBypass({ adapter: 'vercel-edge-config', input: { bypass: { verifyWithin: '3s' } }, setup: (s) => void (s.admin.vercel.flagKey = 'SOMETHING_ELSE') }, async ({ sandbox, handle }) => {
      await approveTwice(handle);
      const s = await waitForState(handle, getIncidentState, (x) => outcome(x, 'bypass_off') === 'succeeded', 30_000);
      const failed = s.steps.find((x) => x.step === 'emergency_bypass' && x.outcome === 'failed');
      expect(failed?.note).toMatch(/the app does not show X-Auth-Bypass: true within 3s: GET \/app\/dashboard 500/);
      expect(s.attention.join('\n')).toContain('emergency_bypass failed');
      expect(s.bypass?.state).toBe('off');
      expect(sandbox.admin.vercel.entries().map((e) => e.action)).toEqual(['edge-config.upsert', 'edge-config.delete']);
      await cancelAndWait(handle);
    });
  });
});

describe('turning the bypass off', () => {
  it('a failed off is escalated (chat + needs attention) and retried until it works', async () => {
    await withBypass({}, async ({ sandbox, handle, chat }) => {
      await approveTwice(handle);
      await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 30_000);
      sandbox.admin.vercel.settings({ failNext: { status: 403, count: 1, route: 'DELETE /v9/projects/{idOrName}/env/{id}' } });
      sandbox.admin.setOutage({ active: false });
      const failing = await waitForState(handle, getIncidentState, (s) => s.attention.some((a) => a.startsWith('bypass_off failing')), 30_000);
      expect(failing.bypass?.state).toBe('on');
      expect(failing.timeline.some((e) => e.step === 'bypass_off' && /attempt 1\): .*vercel: DELETE .* answered 403/.test(e.description))).toBe(true);
      await eventually(async () => chat.texts().some((t) => t.includes('Emergency bypass could NOT be turned off (retrying)')));
      const off = await waitForState(handle, getIncidentState, (s) => outcome(s, 'bypass_off') === 'succeeded', 40_000);
      expect(off.bypass?.state).toBe('off');
      expect(sandbox.admin.auditEntries({ route: 'DELETE /v9/projects/{idOrName}/env/{id}' }).map((e) => e.status)).toEqual([403, 200]);
      expect(await page(sandbox)).toEqual({ status: 200, bypass: null });
      await cancelAndWait(handle);
    });
  });

  it('BYPASS_OFF_NEEDS_APPROVAL: after recovery, off waits for one approver', async () => {
    await withBypass({ adapter: 'vercel-edge-config', bypass: { offNeedsApproval: true } }, async ({ sandbox, handle }) => {
      await approveTwice(handle);
      await waitForState(handle, getIncidentState, (s) => outcome(s, 'emergency_bypass') === 'succeeded', 20_000);
      sandbox.admin.setOutage({ active: false });
      await waitForState(handle, getIncidentState, pendingStep('bypass_off'), 30_000);
      expect(await page(sandbox)).toEqual({ status: 200, bypass: 'true' });
      await handle.executeUpdate(approveStep, { args: [{ step: 'bypass_off', approver: 'bob' }] });
      const off = await waitForState(handle, getIncidentState, (s) => outcome(s, 'bypass_off') === 'succeeded', 20_000);
      expect(off.bypass?.offReason).toBe('Clerk recovered');
      expect(await page(sandbox)).toEqual({ status: 200, bypass: null });
      await handle.result();
    });
  });
});
