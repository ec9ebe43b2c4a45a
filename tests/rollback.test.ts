/**
 * The rollback of `middleware_failure` end to end: a real Temporal server, the sandbox over HTTP
 * (Clerk, the example app, the emulated Vercel) and the real Vercel adapter. A bad build serves
 * production; each outcome is judged by the emulated Vercel's records and the app's pages.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityDeps } from '../src/activities';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sandboxDeployAdapter, vercelEnvAdapter, verifyRunbookWebhook, webhookAdapter } from '../src/activities/deploy';
import type { IncidentInput } from '../src/domain';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { approveStep, getIncidentState, incidentWorkflow, rejectStep, requestStep, type IncidentState } from '../src/workflows/incident';
import { findSecrets } from './helpers/history-scan';
import { cancelAndWait, refusal } from './helpers/refusal';
import { eventually, pendingStep, sandboxDeps, waitForState } from './helpers/incident';
import { connectTemporal, testWorker, uniqueTaskQueue, uniqueWorkflowId, type TemporalTestContext } from './helpers/temporal';
import { vercelAnswering, type ListChange } from './helpers/vercel-proxy';

let temporal: TemporalTestContext;
beforeAll(async () => {
  temporal = await connectTemporal();
});
afterAll(async () => {
  await temporal?.close();
});

const input: IncidentInput = {
  category: 'middleware_failure',
  reporter: 'alice',
  approvers: ['alice', 'bob'],
  summary: '/dashboard answers 500 since the 14:00 deploy',
  // The undo of a verified rollback is offered for 2 s only here (15 min by default).
  timeouts: { escalateAfter: '20s', decideWithin: '40s', probe: '2s', resolveWithin: '3s', steps: { undo_rollback: { escalateAfter: '1s', decideWithin: '2s' } } },
};

interface Run {
  sandbox: RunningSandbox;
  handle: WorkflowHandle<typeof incidentWorkflow>;
  good: string;
  bad: string;
}

/**
 * "Another platform" behind the signed webhook: a receiver that checks each delivery's signature
 * and applies `deployment.rollback` / `deployment.promote` to the emulated Vercel, answering 2xx
 * and nothing more (as the adapter's contract says: the runbook learns nothing back).
 */
async function webhookReceiver(sandbox: RunningSandbox, secret: string): Promise<{ url: string; deliveries: { type: string; deploymentId?: string }[]; close(): Promise<void> }> {
  const deliveries: { type: string; deploymentId?: string }[] = [];
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
    req.on('end', () => {
      const verdict = verifyRunbookWebhook(secret, req.headers, raw, { seen });
      if (!verdict.ok) return void res.writeHead(401).end(verdict.reason);
      const body = JSON.parse(raw) as { type: string; deploymentId?: string };
      deliveries.push({ type: body.type, ...(body.deploymentId ? { deploymentId: body.deploymentId } : {}) });
      try {
        if (body.type === 'deployment.rollback' || body.type === 'deployment.promote') sandbox.admin.vercel.requestAlias(body.type === 'deployment.rollback' ? 'rollback' : 'promote', String(body.deploymentId));
        res.writeHead(202).end();
      } catch (err) {
        res.writeHead((err as { status?: number }).status ?? 500).end((err as Error).message);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/runbook`, deliveries, close: () => new Promise((r) => server.close(() => r())) };
}

/** A sandbox whose production is a bad build (every /app route 500), the good one before it. */
/** `listChange`: the Vercel adapter reads the deployment list through a proxy that changes it (a platform answering malformed). */
async function withBadBuild<T>(
  opts: { adapter?: 'vercel' | 'vercel-edge-config' | 'webhook'; setup?: (s: RunningSandbox) => void; listChange?: ListChange; input?: IncidentInput | ((ids: { good: string; bad: string }) => IncidentInput) },
  body: (run: Run & { hook?: Awaited<ReturnType<typeof webhookReceiver>> }) => Promise<T>,
): Promise<T> {
  const sandbox = await startSandbox({ users: 5, seed: 'rollback-test' });
  const proxy = opts.listChange ? await vercelAnswering(sandbox.url, { current: opts.listChange }) : undefined;
  const hookSecret = 'whsec_rollback_test_0123456789';
  const hook = opts.adapter === 'webhook' ? await webhookReceiver(sandbox, hookSecret) : undefined;
  try {
    const vercel = sandbox.admin.vercel;
    vercel.buildMs = 200;
    vercel.aliasDelayMs = 600;
    const good = vercel.productionId;
    const bad = vercel.createDeployment({ bad: true, meta: { githubCommitMessage: 'Refactor the middleware matcher' } }).id;
    await eventually(async () => vercel.servingBad());
    opts.setup?.(sandbox);
    const deploy = hook
      ? webhookAdapter({ url: hook.url, secret: hookSecret })
      : proxy
        ? vercelEnvAdapter({ token: sandbox.vercel.token, project: sandbox.vercel.projectId, apiUrl: proxy.url, timeoutMs: 5000 })
        : sandboxDeployAdapter(sandbox.vercel, opts.adapter === 'vercel-edge-config' ? 'vercel-edge-config' : 'vercel');
    const deps: ActivityDeps = { ...sandboxDeps(sandbox), deploy };
    const taskQueue = uniqueTaskQueue();
    const worker = await testWorker(temporal.nativeConnection, taskQueue, deps);
    return await worker.runUntil(async () => {
      const handle = await temporal.client.workflow.start(incidentWorkflow, { taskQueue, workflowId: uniqueWorkflowId('rollback'), args: [typeof opts.input === 'function' ? opts.input({ good, bad }) : (opts.input ?? input)] });
      const result = await body({ sandbox, handle, good, bad, ...(hook ? { hook } : {}) });
      expect(findSecrets(await handle.fetchHistory(), [sandbox.vercel.token, sandbox.secretKey])).toEqual([]);
      return result;
    });
  } finally {
    await proxy?.close();
    await hook?.close();
    await sandbox.close();
  }
}

const outcome = (s: IncidentState, step: string) => s.steps.filter((x) => x.step === step).at(-1)?.outcome;
const status = async (sandbox: RunningSandbox, path = '/app/dashboard') => (await fetch(`${sandbox.url}${path}`)).status;

async function approveRollback(handle: WorkflowHandle<typeof incidentWorkflow>): Promise<IncidentState> {
  const asked = await waitForState(handle, getIncidentState, pendingStep('rollback'), 30_000);
  await handle.executeUpdate(approveStep, { args: [{ step: 'rollback', approver: 'bob' }] });
  return asked;
}

describe('middleware_failure rolls back to the last good deployment', () => {
  it('asks with current and candidate, rolls back after one approval, verifies by alias job and probes, resolves', async () => {
    await withBadBuild({}, async ({ sandbox, handle, good, bad }) => {
      expect(await status(sandbox)).toBe(500);
      const asked = await approveRollback(handle);
      const title = asked.pendingApprovals.find((p) => p.step === 'rollback')?.title ?? '';
      expect(title).toContain(`from ${bad} (`);
      expect(title).toContain(`to ${good} (`);
      expect(title).toMatch(/vercel\.app, \d+ min old/);
      expect(title).toContain('chosen because');
      expect(asked.pendingApprovals.find((p) => p.step === 'rollback')?.approvalsNeeded).toBe(1);

      const done = await handle.result();
      expect(done.status).toBe('resolved');
      expect(outcome(done, 'rollback')).toBe('succeeded');
      expect(outcome(done, 'verify_fix')).toBe('succeeded');
      const rolled = done.timeline.find((e) => e.step === 'rollback' && e.details?.outcome === 'succeeded');
      expect(rolled?.details).toMatchObject({ fromDeploymentId: bad, toDeploymentId: good, jobStatus: 'succeeded' });
      expect(done.timeline.find((e) => e.step === 'close')?.description).toMatch(new RegExp(`auto-promote is off.*vercel promote ${good} --scope <team>`));
      // The emulated Vercel's own records, and the app as a user sees it.
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(good);
      expect(v.lastAliasRequest).toMatchObject({ type: 'rollback', fromDeploymentId: bad, toDeploymentId: good, jobStatus: 'succeeded' });
      expect(v.autoAssignCustomDomains).toBe(false);
      expect(await status(sandbox)).toBe(200);
      expect(await status(sandbox, '/app/profile')).toBe(200);
      // The review: the rollback on the timeline, the failure's minutes, the fix-forward action item.
      expect(done.review).toContain(`rollback: production rolled back from ${bad} to ${good}`);
      expect(done.review).toMatch(/the failure lasted about \d+ min/);
      expect(done.review).toContain(`fix forward: fix what broke in ${bad}, deploy it and promote it`);
    });
  });

  it('a check the rollback cannot fix (the app on an origin the instance does not know): after the verified rollback, the diagnosis again; that check\'s remedy approved, applied and verified by it; resolved', async () => {
    const foreign = 'https://app.elsewhere.test';
    await withBadBuild({ setup: (s) => void s.admin.setApp({ origin: foreign, cookieDomain: 'elsewhere.test' }) }, async ({ sandbox, handle, good }) => {
      await approveRollback(handle);
      const asked = await waitForState(handle, getIncidentState, pendingStep('update_allowed_origins'), 60_000);
      expect(outcome(asked, 'verify_fix')).toBe('succeeded');
      expect(asked.timeline.filter((e) => e.step === 'remedy').at(-1)?.description).toMatch(/^domains_origins failed, the most likely cause: remedy allowed_origins/);
      expect(asked.pendingApprovals.find((p) => p.step === 'update_allowed_origins')?.title).toContain(`add ${foreign} to the instance's allowed_origins`);
      await handle.executeUpdate(approveStep, { args: [{ step: 'update_allowed_origins', approver: 'bob' }] });
      const done = await handle.result();
      expect({ status: done.status, open: done.openItems }).toEqual({ status: 'resolved', open: [] });
      expect(outcome(done, 'verify_remedy')).toBe('succeeded');
      expect(sandbox.admin.instance.allowedOrigins).toContain(foreign);
      expect(sandbox.admin.vercel.overview().productionDeploymentId).toBe(good);
    });
  });

  it('after the verified rollback the remedy of a still-failing check is rejected: the rollback stands, and the incident stays open with that check named', async () => {
    await withBadBuild({ setup: (s) => void s.admin.setApp({ origin: 'https://app.elsewhere.test', cookieDomain: 'elsewhere.test' }) }, async ({ handle }) => {
      await approveRollback(handle);
      await waitForState(handle, getIncidentState, pendingStep('update_allowed_origins'), 60_000);
      await handle.executeUpdate(rejectStep, { args: [{ step: 'update_allowed_origins', approver: 'bob', reason: 'we move the app back to the primary domain' }] });
      const done = await handle.result();
      expect(outcome(done, 'rollback')).toBe('succeeded');
      expect(outcome(done, 'verify_remedy')).toBe('not_needed');
      expect(done.status).toBe('needs_human');
      expect(done.openItems.join('; ')).toContain('verify_remedy not done (not_needed)');
    });
  });

  it('an alias job that fails: not resolved, and it says so; production stays', async () => {
    await withBadBuild({ setup: (s) => void (s.admin.vercel.failAliasJobs = 1) }, async ({ sandbox, handle, bad }) => {
      await approveRollback(handle);
      const done = await handle.result();
      expect(done.status).toBe('needs_human');
      expect(outcome(done, 'rollback')).toBe('failed');
      expect(done.steps.find((s) => s.step === 'rollback' && s.outcome === 'failed')?.note).toMatch(/alias job ended failed; production is on dpl_/);
      expect(outcome(done, 'verify_fix')).toBe('skipped');
      expect(done.openItems.join('\n')).toMatch(/rollback failed/);
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(bad);
      expect(await status(sandbox)).toBe(500);
    });
  });

  it('a rollback that does not fix it (the candidate is bad too): the deployment that was live is promoted back, not resolved', async () => {
    let goodToo = '';
    await withBadBuild({ setup: (s) => void s.admin.vercel.badDeployments.add((goodToo = s.admin.vercel.deployments[0]?.id ?? '')) }, async ({ sandbox, handle, bad, good }) => {
      expect(goodToo).toBe(good);
      await approveRollback(handle);
      const done = await handle.result();
      expect(done.status).toBe('needs_human');
      expect(outcome(done, 'verify_fix')).toBe('failed');
      expect(outcome(done, 'rollback')).toBe('compensated');
      expect(done.timeline.find((e) => e.step === 'close')?.description).not.toMatch(/auto-promote is off/);
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(bad);
      expect(v.lastAliasRequest).toMatchObject({ type: 'promote', fromDeploymentId: good, toDeploymentId: bad, jobStatus: 'succeeded' });
      expect(v.autoAssignCustomDomains).toBe(true);
    });
  });

  it('cancelled while the rollback runs: the deployment that was live is promoted back', async () => {
    await withBadBuild({ setup: (s) => void (s.admin.vercel.aliasDelayMs = 4000) }, async ({ sandbox, handle, bad, good }) => {
      await approveRollback(handle);
      await eventually(async () => sandbox.admin.vercel.lastAliasRequest?.type === 'rollback', 20_000);
      await cancelAndWait(handle);
      const state = await handle.query(getIncidentState);
      expect(state.status).toBe('cancelled');
      expect(outcome(state, 'rollback')).toBe('compensated');
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(bad);
      expect(v.lastAliasRequest).toMatchObject({ type: 'promote', fromDeploymentId: good, toDeploymentId: bad, jobStatus: 'succeeded' });
      expect(v.autoAssignCustomDomains).toBe(true);
    });
  });

  it('every earlier build carries the retired key: a rebuild of the good source with today\'s env is proposed, built, put on production and verified', async () => {
    // The key rotation's push (its marker) after the good build: that build carries the dead key, an instant rollback would serve it.
    const rotated = (s: RunningSandbox) => void s.admin.vercel.upsertEnv('CLERK_SECRET_KEY', s.secretKey, 'encrypted', ['production'], 'clerk-incident-runbook key fp_0123456789abcdef');
    await withBadBuild({ setup: rotated }, async ({ sandbox, handle, good, bad }) => {
      const asked = await approveRollback(handle);
      const title = asked.pendingApprovals.find((p) => p.step === 'rollback')?.title ?? '';
      expect(title).toMatch(new RegExp(`^build ${good} \\(.*\\) again from its source with today's env and put it on production in place of ${bad} `));
      expect(title).toMatch(/refused: .*carries the retired key/);

      const done = await handle.result();
      expect(done.status).toBe('resolved');
      expect(outcome(done, 'rollback')).toBe('succeeded');
      expect(outcome(done, 'verify_fix')).toBe('succeeded');
      const moved = done.timeline.find((e) => e.step === 'rollback' && e.details?.outcome === 'succeeded');
      const rebuilt = String(moved?.details?.toDeploymentId);
      expect(moved?.details).toMatchObject({ fromDeploymentId: bad, rebuiltFrom: good, via: 'redeploy' });
      expect(rebuilt).not.toBe(good);
      // The emulated Vercel: a new build of the good source serves production, with the rotated key; no instant rollback, auto-assignment on.
      const v = sandbox.admin.vercel;
      expect(v.overview().productionDeploymentId).toBe(rebuilt);
      expect(v.deployment(rebuilt)?.redeployOf).toBe(good);
      expect(v.entries().some((e) => e.action === 'alias.requested' && e.type === 'rollback')).toBe(false);
      expect(v.overview().autoAssignCustomDomains).toBe(true);
      expect(await status(sandbox)).toBe(200);
      // No auto-promote warning: nothing turned it off. The review says it was a rebuild.
      expect(done.timeline.find((e) => e.step === 'close')?.description).not.toMatch(/auto-promote is off/);
      expect(done.review).toContain(`to ${rebuilt} (a new build of ${good}'s source with today's env)`);
    });
  });

  it('a rebuild on a project that does not auto-assign (rolled back before): the new build is promoted, and auto-assignment is back on', async () => {
    const setup = (s: RunningSandbox) => {
      s.admin.vercel.upsertEnv('CLERK_SECRET_KEY', s.secretKey, 'encrypted', ['production'], 'clerk-incident-runbook key fp_0123456789abcdef');
      s.admin.vercel.autoAssignCustomDomains = false;
    };
    await withBadBuild({ setup }, async ({ sandbox, handle, good, bad }) => {
      await approveRollback(handle);
      const done = await handle.result();
      expect(done.status).toBe('resolved');
      const rebuilt = String(done.timeline.find((e) => e.step === 'rollback' && e.details?.outcome === 'succeeded')?.details?.toDeploymentId);
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(rebuilt);
      expect(v.lastAliasRequest).toMatchObject({ type: 'promote', fromDeploymentId: bad, toDeploymentId: rebuilt, jobStatus: 'succeeded' });
      expect(v.autoAssignCustomDomains).toBe(true);
      expect(sandbox.admin.vercel.deployment(rebuilt)?.redeployOf).toBe(good);
    });
  });

  it('the verified rollback undone on request (the offered step): the live deployment promoted back, and the fix checked again', async () => {
    const offered = { ...input, timeouts: { ...input.timeouts, steps: { undo_rollback: { decideWithin: '60s' } } } };
    await withBadBuild({ input: offered }, async ({ sandbox, handle, good, bad }) => {
      await approveRollback(handle);
      const waiting = await waitForState(handle, getIncidentState, (s) => outcome(s, 'verify_fix') === 'succeeded' && /undo_rollback/.test(s.waitingFor ?? ''), 30_000);
      expect(waiting.waitingFor).toContain(`promote ${bad} back (undo the rollback to ${good})`);
      // One person asks, the same person cannot approve it, another does.
      await handle.executeUpdate(requestStep, { args: [{ step: 'undo_rollback', requester: 'alice', reason: 'the rollback brought back the old signup bug' }] });
      const asked = await waitForState(handle, getIncidentState, pendingStep('undo_rollback'), 20_000);
      expect(asked.pendingApprovals.find((p) => p.step === 'undo_rollback')?.title).toContain(`promote ${bad} back in place of ${good}`);
      expect(await refusal(handle.executeUpdate(approveStep, { args: [{ step: 'undo_rollback', approver: 'alice' }] }))).toMatch(/alice/);
      await handle.executeUpdate(approveStep, { args: [{ step: 'undo_rollback', approver: 'bob' }] });

      const done = await handle.result();
      expect(outcome(done, 'undo_rollback')).toBe('succeeded');
      expect(outcome(done, 'rollback')).toBe('compensated');
      // The bad build is live again: the fix no longer holds, and the incident does not claim it does.
      expect(outcome(done, 'verify_fix')).toBe('failed');
      expect(done.status).not.toBe('resolved');
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(bad);
      expect(v.lastAliasRequest).toMatchObject({ type: 'promote', fromDeploymentId: good, toDeploymentId: bad, jobStatus: 'succeeded' });
      expect(v.autoAssignCustomDomains).toBe(true);
      expect(await status(sandbox)).toBe(500);
      expect(done.timeline.find((e) => e.step === 'close')?.description).not.toMatch(/auto-promote is off/);
    });
  });

  it('a deployment list the platform answers malformed: no rollback is asked or sent, the operator confirms by hand, and the timeline names the field', async () => {
    // The current deployment listed as it is, every earlier one (the candidate) with a createdAt that is not a number.
    const listChange: ListChange = ([current, ...rest]) => ({ deployments: [current, ...rest.map((d) => ({ ...d, createdAt: 'yesterday' }))] });
    await withBadBuild({ listChange }, async ({ sandbox, handle, bad }) => {
      const asked = await waitForState(handle, getIncidentState, pendingStep('operator_action'), 60_000);
      expect(asked.pendingApprovals.map((p) => p.step)).not.toContain('rollback');
      expect(asked.timeline.find((e) => e.step === 'rollback')?.description).toMatch(
        /no automated rollback: the deployment platform could not be read \(.*GET \/v6\/deployments answered with an unexpected body \(deployments\.[1-9]\d*\.createdAt: Invalid input: expected number, received string\)/,
      );
      const v = sandbox.admin.vercel.overview();
      expect(v.productionDeploymentId).toBe(bad);
      expect(v.lastAliasRequest).toBeNull();
      await handle.cancel();
    });
  }, 90_000);

  it('signed webhook, the deployments named in the input: rolled back through the receiver after approval, unconfirmed until the probes pass, resolved', async () => {
    const named = ({ good, bad }: { good: string; bad: string }): IncidentInput => ({ ...input, rollback: { from: bad, to: good } });
    await withBadBuild({ adapter: 'webhook', input: named }, async ({ sandbox, handle, good, bad, hook }) => {
      const asked = await approveRollback(handle);
      const title = asked.pendingApprovals.find((p) => p.step === 'rollback')?.title ?? '';
      expect(title).toContain(`roll production back from ${bad} to ${good} through the webhook adapter, as the incident input names them`);
      expect(title).toContain('nor checked its env');

      const done = await handle.result();
      expect(done.status).toBe('resolved');
      // Accepted first (partial: the platform says nothing back), then confirmed by the probes.
      const rollbackOutcomes = done.timeline.filter((e) => e.step === 'rollback' && e.details?.outcome !== undefined).map((e) => e.details?.outcome);
      expect(rollbackOutcomes).toEqual(['approved', 'partial', 'succeeded']);
      expect(outcome(done, 'verify_fix')).toBe('succeeded');
      expect(hook?.deliveries).toEqual([{ type: 'deployment.rollback', deploymentId: good }]);
      expect(sandbox.admin.vercel.overview().productionDeploymentId).toBe(good);
      expect(await status(sandbox)).toBe(200);
      // Nothing said auto-promote is off: a webhook platform reports no such thing.
      expect(done.timeline.find((e) => e.step === 'close')?.description).not.toMatch(/auto-promote is off/);
      expect(done.review).toContain(`rollback: production rolled back from ${bad} to ${good}`);
    });
  });

  it('signed webhook, a rollback to a deployment that does not fix it: the undo promotes the live one back through the receiver', async () => {
    let goodToo = '';
    const setup = (s: RunningSandbox) => void s.admin.vercel.badDeployments.add((goodToo = s.admin.vercel.deployments[0]?.id ?? ''));
    await withBadBuild({ adapter: 'webhook', setup, input: ({ good, bad }) => ({ ...input, rollback: { from: bad, to: good, confirmWithin: '4s' } }) }, async ({ sandbox, handle, good, bad, hook }) => {
      expect(goodToo).toBe(good);
      await approveRollback(handle);
      const done = await handle.result();
      expect(done.status).toBe('needs_human');
      expect(outcome(done, 'verify_fix')).toBe('failed');
      expect(outcome(done, 'rollback')).toBe('compensated');
      expect(hook?.deliveries).toEqual([
        { type: 'deployment.rollback', deploymentId: good },
        { type: 'deployment.promote', deploymentId: bad },
      ]);
      await eventually(async () => sandbox.admin.vercel.overview().productionDeploymentId === bad);
    });
  });

  it('Vercel, a rollback named in the input: that deployment is the only candidate; a wrong "from" is refused with both ids', async () => {
    await withBadBuild({ input: ({ good, bad }) => ({ ...input, rollback: { from: bad, to: good } }) }, async ({ handle, good }) => {
      const asked = await approveRollback(handle);
      expect(asked.pendingApprovals.find((p) => p.step === 'rollback')?.title).toContain(`to ${good} (`);
      expect((await handle.result()).status).toBe('resolved');
    });
    await withBadBuild({ input: ({ good }) => ({ ...input, rollback: { from: 'dpl_notLive', to: good } }) }, async ({ handle, bad }) => {
      const asked = await waitForState(handle, getIncidentState, pendingStep('operator_action'), 30_000);
      expect(asked.timeline.find((e) => e.step === 'rollback')?.description).toContain(`the incident input names dpl_notLive as the deployment serving production, but the platform says ${bad} is`);
      await handle.cancel();
    });
  });

  it('signed webhook without deployments named: no rollback, and the timeline says how to name them', async () => {
    await withBadBuild({ adapter: 'webhook' }, async ({ handle, hook }) => {
      const asked = await waitForState(handle, getIncidentState, pendingStep('operator_action'), 30_000);
      expect(asked.timeline.find((e) => e.step === 'rollback')?.description).toMatch(/webhook adapter cannot list deployments.*"rollback": \{"from": "<live>", "to": "<last good>"\}/);
      expect(hook?.deliveries).toEqual([]);
      await handle.cancel();
    });
  });

  it('Edge Config only: no rollback, the operator confirms by hand, and the timeline says why', async () => {
    await withBadBuild({ adapter: 'vercel-edge-config' }, async ({ handle }) => {
      const asked = await waitForState(handle, getIncidentState, pendingStep('operator_action'), 30_000);
      expect(asked.timeline.find((e) => e.step === 'rollback')?.description).toMatch(/no automated rollback: .*Edge Config holds items, not deployments/);
      await handle.cancel();
    });
  });
});
