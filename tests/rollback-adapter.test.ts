/**
 * The deploy adapters' rollback capability: the exact requests each call sends to the sandbox's
 * Vercel over HTTP, what the platform's own records show after them (production deployment,
 * alias job, auto-assignment), the typed failures, the signed webhook's rollback action, and the
 * Edge Config adapter's typed "not supported".
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DeployAuthFailed,
  DeployNotSupported,
  DeployRollbackRefused,
  DeployUnavailable,
  rollbackSupport,
  sandboxDeployAdapter,
  vercelEnvAdapter,
  verifyRunbookWebhook,
  webhookAdapter,
} from '../src/activities/deploy';
import { createDeployActivities } from '../src/activities/deploy/activities';
import { NON_RETRYABLE_ERROR_TYPES } from '../src/shared';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { recordingFetch, type Sent } from './helpers/recording-fetch';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, seed: 'rollback-adapter', rateLimit: 'off' });
});
afterAll(async () => {
  await sandbox?.close();
});
beforeEach(() => {
  sandbox.admin.vercel.reset();
  sandbox.admin.vercel.settings({ buildMs: 0, aliasDelayMs: 0 });
});

const HOUR = 3_600_000;
const vercel = (log: Sent[], extra: { teamId?: string; token?: string } = {}) =>
  vercelEnvAdapter({ token: extra.token ?? sandbox.vercel.token, project: sandbox.vercel.projectId, apiUrl: sandbox.url, fetch: recordingFetch(log), ...(extra.teamId ? { teamId: extra.teamId } : {}) });
const rollbacksOf = (log: Sent[], extra: { teamId?: string; token?: string } = {}) => {
  const r = vercel(log, extra).rollbacks;
  if (!r?.listProductionDeployments || !r.aliasStatus || !r.envWrites) throw new Error('the Vercel adapter must have the full rollback capability');
  return { ...r, listProductionDeployments: r.listProductionDeployments, aliasStatus: r.aliasStatus, envWrites: r.envWrites };
};

function history() {
  const v = sandbox.admin.vercel;
  const good = v.createDeployment({ ageMs: 2 * HOUR, meta: { githubCommitSha: 'b'.repeat(40), githubCommitRef: 'main', githubCommitMessage: 'good build\n\nwith a body' } });
  const bad = v.createDeployment({ ageMs: 60_000, bad: true, meta: { githubCommitSha: 'c'.repeat(40), githubCommitRef: 'feature/x', githubCommitMessage: 'bad build' } });
  return { initial: v.deployments[0]!, good, bad };
}

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

describe('Vercel: exact requests', () => {
  it('listProductionDeployments: GET /v6/deployments with projectId, target, state, rollbackCandidate, limit, until, teamId; maps meta to commit', async () => {
    const { initial, good, bad } = history();
    sandbox.admin.vercel.createDeployment({ promote: false });
    const log: Sent[] = [];
    const r = rollbacksOf(log, { teamId: 'team_abc' });
    const list = await r.listProductionDeployments({ until: bad.createdAt, limit: 10 });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ method: 'GET', headers: { authorization: `Bearer ${sandbox.vercel.token}` }, body: undefined });
    expect(log[0]?.url.pathname).toBe('/v6/deployments');
    expect(Object.fromEntries(log[0]?.url.searchParams ?? [])).toEqual({
      projectId: sandbox.vercel.projectId,
      target: 'production',
      state: 'READY',
      rollbackCandidate: 'true',
      limit: '10',
      until: String(bad.createdAt),
      teamId: 'team_abc',
    });
    expect(list.map((d) => d.id)).toEqual([good.id, initial.id]);
    expect(list[0]).toEqual({
      id: good.id,
      url: good.url,
      state: 'READY',
      createdAt: good.createdAt,
      rollbackCandidate: true,
      commit: { sha: 'b'.repeat(40), ref: 'main', message: 'good build\n\nwith a body' },
    });
    // Without `until` the current one is listed too (staged builds never: they are no candidates); limit is capped at Vercel's 100.
    const all = await r.listProductionDeployments({ limit: 500 });
    expect(all.map((d) => d.id)).toEqual([bad.id, good.id, initial.id]);
    expect(log[1]?.url.searchParams.get('limit')).toBe('100');
    expect(log[1]?.url.searchParams.has('until')).toBe(false);
  });

  it('rollback: POST /v1/projects/{projectId}/rollback/{deploymentId} with {} and the description; the sandbox then serves the old build', async () => {
    const { good, bad } = history();
    const log: Sent[] = [];
    const r = rollbacksOf(log);
    const requested = await r.rollback(good.id, { description: 'incident inc_1: /app 500 since 14:00' });
    expect(requested).toEqual({ adapter: 'vercel', type: 'rollback', toDeploymentId: good.id });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ method: 'POST', headers: { authorization: `Bearer ${sandbox.vercel.token}`, 'content-type': 'application/json' }, body: {} });
    expect(log[0]?.url.pathname).toBe(`/v1/projects/${sandbox.vercel.projectId}/rollback/${good.id}`);
    expect(Object.fromEntries(log[0]?.url.searchParams ?? [])).toEqual({ description: 'incident inc_1: /app 500 since 14:00' });
    // The platform's record, not the adapter's word.
    expect(sandbox.admin.vercel.productionId).toBe(good.id);
    expect(sandbox.admin.vercel.autoAssignCustomDomains).toBe(false);
    expect(sandbox.admin.vercel.entries().filter((e) => e.action === 'alias.requested')).toEqual([expect.objectContaining({ type: 'rollback', fromDeploymentId: bad.id, deploymentId: good.id })]);
  });

  it('aliasStatus: GET /v9/projects/{idOrName} → lastAliasRequest (pending → succeeded), production id, auto-assignment', async () => {
    const { good, bad } = history();
    sandbox.admin.vercel.settings({ aliasDelayMs: 2000 });
    const log: Sent[] = [];
    const r = rollbacksOf(log);
    expect(await r.aliasStatus()).toEqual({ productionDeploymentId: bad.id, autoAssignCustomDomains: true, lastAliasRequest: null });
    expect(log[0]?.method).toBe('GET');
    expect(log[0]?.url.pathname).toBe(`/v9/projects/${sandbox.vercel.projectId}`);
    await r.rollback(good.id);
    const pending = await r.aliasStatus();
    expect(pending).toMatchObject({ productionDeploymentId: bad.id, autoAssignCustomDomains: false, lastAliasRequest: { type: 'rollback', fromDeploymentId: bad.id, toDeploymentId: good.id, jobStatus: 'pending' } });
    await new Promise((res) => setTimeout(res, 2100));
    expect(await r.aliasStatus()).toMatchObject({ productionDeploymentId: good.id, lastAliasRequest: { jobStatus: 'succeeded', toDeploymentId: good.id } });
  });

  it('a failed alias job is reported, not thrown: production stays on the bad build', async () => {
    const { good, bad } = history();
    sandbox.admin.vercel.settings({ failAliasJobs: 1 });
    const r = rollbacksOf([]);
    await r.rollback(good.id);
    expect(await r.aliasStatus()).toMatchObject({ productionDeploymentId: bad.id, lastAliasRequest: { jobStatus: 'failed', toDeploymentId: good.id } });
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
  });

  it('promote (the undo): POST /v10/projects/{projectId}/promote/{deploymentId} with {}; auto-assignment back on', async () => {
    const { good, bad } = history();
    const log: Sent[] = [];
    const r = rollbacksOf(log);
    await r.rollback(good.id);
    const requested = await r.promote(bad.id);
    expect(requested).toEqual({ adapter: 'vercel', type: 'promote', toDeploymentId: bad.id });
    expect(log[1]).toMatchObject({ method: 'POST', body: {} });
    expect(log[1]?.url.pathname).toBe(`/v10/projects/${sandbox.vercel.projectId}/promote/${bad.id}`);
    expect([...(log[1]?.url.searchParams ?? [])]).toEqual([]);
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
    expect(sandbox.admin.vercel.autoAssignCustomDomains).toBe(true);
  });

  it("envWrites: GET /v10/projects/{idOrName}/env → production keys with the runbook's marker comments and times, no values", async () => {
    const log: Sent[] = [];
    const adapter = vercel(log);
    await adapter.setValue('CLERK_SECRET_KEY', 'sk_test_notarealkeyatall0000', { sensitive: true, marker: 'clerk-incident-runbook key fp_abc' });
    await adapter.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T00:00:00.000Z"}', { marker: 'clerk-incident-runbook inc_1 bypass until 2030-01-01T00:00:00.000Z' });
    const before = log.length;
    const writes = await rollbacksOf(log).envWrites();
    expect(log.slice(before).map((s) => `${s.method} ${s.url.pathname}`)).toEqual([`GET /v10/projects/${sandbox.vercel.projectId}/env`]);
    expect(writes.map((w) => [w.key, w.comment])).toEqual([
      ['CLERK_SECRET_KEY', 'clerk-incident-runbook key fp_abc'],
      ['CLERK_AUTH_BYPASS', 'clerk-incident-runbook inc_1 bypass until 2030-01-01T00:00:00.000Z'],
    ]);
    for (const w of writes) {
      expect(typeof w.updatedAt).toBe('number');
      expect(JSON.stringify(w)).not.toContain('sk_test_');
    }
  });

  it("redeploy(fromDeploymentId): the candidate's source with today's env (GET its name, POST /v13/deployments); after a rollback it does not take production", async () => {
    const { good } = history();
    const log: Sent[] = [];
    const adapter = vercel(log);
    await adapter.rollbacks?.rollback(good.id);
    sandbox.admin.vercel.upsertEnv('FRESH', 'today', 'plain', ['production']);
    const d = await adapter.redeploy?.(sandbox.admin.vercel.deployments[0]!.id);
    expect(log.slice(1).map((s) => `${s.method} ${s.url.pathname}`)).toEqual([`GET /v13/deployments/${sandbox.admin.vercel.deployments[0]!.id}`, 'POST /v13/deployments']);
    expect(log[2]?.body).toEqual({ name: 'example-app', deploymentId: sandbox.admin.vercel.deployments[0]!.id, target: 'production' });
    sandbox.admin.vercel.advance();
    expect(sandbox.admin.vercel.deployment(d?.id ?? '')?.env.FRESH).toBe('today');
    expect(sandbox.admin.vercel.productionId).toBe(good.id);
  });
});

describe('Vercel: typed failures', () => {
  it("the platform's refusals are DeployRollbackRefused with a reason, non-retryable, and leave production alone", async () => {
    const v = sandbox.admin.vercel;
    const { bad } = history();
    const building = v.createDeployment({ buildMs: 600_000, promote: false });
    const staged = v.createDeployment({ promote: false });
    const r = rollbacksOf([]);
    const cases: [string, string, number][] = [
      ['dpl_doesnotexist', 'unknown_deployment', 404],
      [building.id, 'not_ready', 422],
      [staged.id, 'not_rollback_candidate', 422],
      [bad.id, 'already_current', 409],
    ];
    for (const [id, reason, status] of cases) {
      const err = await caught(r.rollback(id));
      expect(err, id).toBeInstanceOf(DeployRollbackRefused);
      expect(err).toMatchObject({ name: 'DeployRollbackRefused', reason, status, retryable: false, adapter: 'vercel', operation: 'POST /v1/projects/{projectId}/rollback/{deploymentId}' });
      const failure = (err as DeployRollbackRefused).toApplicationFailure();
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'DeployRollbackRefused', nonRetryable: true });
      expect(failure.details?.[0]).toMatchObject({ reason, status, adapter: 'vercel' });
    }
    expect(NON_RETRYABLE_ERROR_TYPES).toContain('DeployRollbackRefused');
    expect(await caught(r.promote('dpl_doesnotexist'))).toMatchObject({ name: 'DeployRollbackRefused', reason: 'unknown_deployment', operation: 'POST /v10/projects/{projectId}/promote/{deploymentId}' });
    expect(v.productionId).toBe(bad.id);
    expect(v.lastAliasRequest).toBeNull();
  });

  it('a job already running is refused as alias_job_in_progress', async () => {
    const { good, initial } = history();
    sandbox.admin.vercel.settings({ aliasDelayMs: 60_000 });
    const r = rollbacksOf([]);
    await r.rollback(good.id);
    expect(await caught(r.rollback(initial.id))).toMatchObject({ name: 'DeployRollbackRefused', reason: 'alias_job_in_progress', status: 409 });
  });

  it('a wrong token is DeployAuthFailed naming the fix; a 5xx DeployUnavailable (retryable); a 429 keeps Retry-After', async () => {
    const { good } = history();
    const wrong = await caught(rollbacksOf([], { token: 'vercel_wrong_token' }).rollback(good.id));
    expect(wrong).toBeInstanceOf(DeployAuthFailed);
    expect((wrong as Error).message).toContain('VERCEL_TOKEN');
    expect((wrong as Error).message).not.toContain(sandbox.vercel.token);
    sandbox.admin.vercel.settings({
      failNext: [
        { route: 'POST /v1/projects/{projectId}/rollback/{deploymentId}', status: 503, count: 1 },
        { route: 'GET /v9/projects/{idOrName}', status: 429, count: 1 },
      ],
    });
    const r = rollbacksOf([]);
    const down = await caught(r.rollback(good.id));
    expect(down).toBeInstanceOf(DeployUnavailable);
    expect(down).toMatchObject({ retryable: true, status: 503 });
    expect(await caught(r.aliasStatus())).toMatchObject({ name: 'DeployRateLimited', retryAfterMs: 1000 });
    // Nothing moved by the failed call.
    expect(sandbox.admin.vercel.lastAliasRequest).toBeNull();
  });

  it('a network failure is DeployUnavailable', async () => {
    const r = vercelEnvAdapter({ token: 't', project: 'prj_x', apiUrl: 'http://127.0.0.1:9', timeoutMs: 2000 }).rollbacks;
    expect(await caught(r?.rollback('dpl_x') ?? Promise.reject(new Error('no rollbacks')))).toBeInstanceOf(DeployUnavailable);
  });
});

describe('signed webhook: the rollback and promote actions', () => {
  it('posts signed `deployment.rollback` / `deployment.promote` deliveries the documented receiver verifies; a 4xx is a typed refusal', async () => {
    const secret = 'whk_test_0123456789abcdef0123456789abcdef';
    const seen = new Set<string>();
    const received: { body: string; ok: boolean }[] = [];
    let answer = 204;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const verdict = verifyRunbookWebhook(secret, req.headers, body, { seen });
        received.push({ body, ok: verdict.ok });
        const status = verdict.ok ? answer : 401;
        res.writeHead(status, { 'content-type': 'application/json' }).end(status === 204 ? undefined : JSON.stringify({ error: { code: status === 409 ? 'deployment_already_current' : 'bad_signature', message: 'refused' } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runbook`;
    try {
      let n = 0;
      const hook = webhookAdapter({ url, secret, newId: () => `del_${++n}` });
      expect(await hook.rollbacks?.rollback('release-41', { description: 'inc_1' })).toEqual({ adapter: 'webhook', type: 'rollback', toDeploymentId: 'release-41' });
      expect(await hook.rollbacks?.promote('release-42')).toEqual({ adapter: 'webhook', type: 'promote', toDeploymentId: 'release-42' });
      answer = 409;
      const refused = await caught(hook.rollbacks?.rollback('release-42') ?? Promise.resolve());
      expect(refused).toMatchObject({ name: 'DeployRollbackRefused', reason: 'already_current', adapter: 'webhook', status: 409 });
      expect(received.map((r) => r.ok)).toEqual([true, true, true]);
      const iso = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(JSON.parse(received[0]!.body)).toEqual({ id: 'del_1', type: 'deployment.rollback', deploymentId: 'release-41', description: 'inc_1', sentAt: iso });
      expect(JSON.parse(received[1]!.body)).toEqual({ id: 'del_2', type: 'deployment.promote', deploymentId: 'release-42', sentAt: iso });
      // It lists nothing and reports no alias status: the workflow confirms by the probes.
      expect(hook.rollbacks?.listProductionDeployments).toBeUndefined();
      expect(hook.rollbacks?.aliasStatus).toBeUndefined();
      expect(rollbackSupport(hook)).toEqual({ supported: true, adapter: 'webhook', listsDeployments: false, reportsAliasStatus: false, redeploysFrom: false });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('Edge Config and no adapter: a typed "not supported" the workflow can explain', () => {
  it('rollbackSupport says why; the activities fail DeployNotSupported, non-retryable', async () => {
    const edge = sandboxDeployAdapter(sandbox.vercel, 'vercel-edge-config');
    expect(edge.rollbacks).toBeUndefined();
    const support = rollbackSupport(edge);
    expect(support).toMatchObject({ supported: false, adapter: 'vercel-edge-config' });
    expect(support.supported ? '' : support.reason).toMatch(/Edge Config holds items, not deployments.*DEPLOY_ADAPTER=vercel/);
    expect(rollbackSupport(undefined)).toMatchObject({ supported: false, adapter: null, reason: expect.stringContaining('no deploy adapter') });
    expect(rollbackSupport(sandboxDeployAdapter(sandbox.vercel))).toEqual({ supported: true, adapter: 'vercel', listsDeployments: true, reportsAliasStatus: true, redeploysFrom: true });

    const acts = createDeployActivities(() => edge);
    expect(await acts.deployRollbackSupport()).toEqual(support);
    for (const run of [() => acts.deployRollback({ deploymentId: 'dpl_x' }), () => acts.deployPromote({ deploymentId: 'dpl_x' }), () => acts.deployAliasStatus(), () => acts.deployListProductionDeployments({ limit: 5 })]) {
      const err = await caught(run());
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect(err).toMatchObject({ type: 'DeployNotSupported', nonRetryable: true });
      expect((err as Error).message).toContain('Edge Config');
    }
    expect(NON_RETRYABLE_ERROR_TYPES).toContain('DeployNotSupported');
    expect(new DeployNotSupported('x', { adapter: 'webhook', operation: 'y' }).retryable).toBe(false);
  });

  it('the activities over the Vercel adapter: rollback, alias status, promote, as activity failures of the same type', async () => {
    const { good, bad } = history();
    const acts = createDeployActivities(() => sandboxDeployAdapter(sandbox.vercel));
    const list = await acts.deployListProductionDeployments({ until: bad.createdAt, limit: 5 });
    expect(list[0]?.id).toBe(good.id);
    expect(await acts.deployRollback({ deploymentId: good.id })).toMatchObject({ type: 'rollback', toDeploymentId: good.id });
    expect(await acts.deployAliasStatus()).toMatchObject({ productionDeploymentId: good.id, lastAliasRequest: { jobStatus: 'succeeded' } });
    const again = await caught(acts.deployRollback({ deploymentId: good.id }));
    expect(again).toMatchObject({ type: 'DeployRollbackRefused', nonRetryable: true });
    expect(await acts.deployPromote({ deploymentId: bad.id })).toMatchObject({ type: 'promote' });
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
  });
});
