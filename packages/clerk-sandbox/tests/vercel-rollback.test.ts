/** The emulated Vercel's deployment history, instant rollback and promote, judged by its own records (overview, log) and the example app's answers. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type RunningSandbox } from '../src';
import { SandboxAdminClient } from '../src/admin-client';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 1, seed: 'vercel-rollback', rateLimit: 'off' });
});
afterAll(() => sandbox.close());
beforeEach(() => {
  const v = sandbox.admin.vercel;
  v.reset();
  v.settings({ buildMs: 0, aliasDelayMs: 0 });
});

const HOUR = 3_600_000;
const api = (method: string, path: string, body?: unknown) =>
  fetch(`${sandbox.vercel.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${sandbox.vercel.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
const json = async (res: Response) => (await res.json()) as Record<string, unknown>;
const p = () => sandbox.vercel.projectId;
const rollback = (id: string, version: 'v1' | 'v9' = 'v1') => api('POST', `/${version}/projects/${p()}/rollback/${id}`, {});
const promote = (id: string) => api('POST', `/v10/projects/${p()}/promote/${id}`, {});
const project = async () => json(await api('GET', `/v9/projects/${p()}`));
const dashboard = async () => (await fetch(`${sandbox.url}/app/dashboard`)).status;

/** After the initial build (a day old): a good one 3 h ago, a good one 2 h ago with its own env, then a bad one a minute ago. */
function history() {
  const v = sandbox.admin.vercel;
  const initial = v.deployments[0]!;
  const older = v.createDeployment({ ageMs: 3 * HOUR, meta: { githubCommitSha: 'a'.repeat(40), githubCommitRef: 'main', githubCommitMessage: 'older' } });
  const good = v.createDeployment({ ageMs: 2 * HOUR, env: { FEATURE: 'good' }, meta: { githubCommitSha: 'b'.repeat(40), githubCommitRef: 'main', githubCommitMessage: 'good' } });
  const bad = v.createDeployment({ ageMs: 60_000, bad: true, env: { FEATURE: 'bad' }, meta: { githubCommitSha: 'c'.repeat(40), githubCommitRef: 'feature/x', githubCommitMessage: 'the bad one' } });
  return { initial, older, good, bad };
}

describe('deployment history and the list filters', () => {
  it('lists production deployments newest first with creation time, meta and isRollbackCandidate; honours until, since, limit, state, rollbackCandidate', async () => {
    const { initial, older, good, bad } = history();
    const staged = sandbox.admin.vercel.createDeployment({ promote: false });
    const all = (await json(await api('GET', `/v6/deployments?projectId=${p()}&target=production`))).deployments as Record<string, unknown>[];
    expect(all.map((d) => d.uid)).toEqual([staged.id, bad.id, good.id, older.id, initial.id]);
    const listedBad = all.find((d) => d.uid === bad.id);
    expect(listedBad).toMatchObject({ state: 'READY', target: 'production', createdAt: bad.createdAt, isRollbackCandidate: true, meta: { githubCommitSha: 'c'.repeat(40), githubCommitRef: 'feature/x', githubCommitMessage: 'the bad one' } });
    expect(all.find((d) => d.uid === staged.id)).toMatchObject({ isRollbackCandidate: false });

    const q = async (query: string) => ((await json(await api('GET', `/v6/deployments?projectId=${p()}&target=production&${query}`))).deployments as { uid: string }[]).map((d) => d.uid);
    expect(await q(`until=${bad.createdAt}`)).toEqual([good.id, older.id, initial.id]);
    expect(await q(`since=${older.createdAt}&until=${bad.createdAt}`)).toEqual([good.id]);
    expect(await q('rollbackCandidate=true&limit=2')).toEqual([bad.id, good.id]);
    expect(await q('rollbackCandidate=true')).not.toContain(staged.id);
    const page = await json(await api('GET', `/v6/deployments?projectId=${p()}&limit=1`));
    expect(page.pagination).toMatchObject({ count: 1, next: staged.createdAt });
    expect(await q('state=BUILDING')).toEqual([]);
    expect((await json(await api('GET', '/v6/deployments?projectId=prj_other'))).deployments).toEqual([]);
  });

  it('a build that is still building or failed is listed with its state and never serves', async () => {
    const v = sandbox.admin.vercel;
    const building = v.createDeployment({ buildMs: 600_000 });
    const failed = v.createDeployment({ buildError: true });
    const listed = (await json(await api('GET', `/v6/deployments?projectId=${p()}`))).deployments as { uid: string; state: string }[];
    expect(listed.find((d) => d.uid === building.id)?.state).toMatch(/QUEUED|BUILDING/);
    expect(listed.find((d) => d.uid === failed.id)?.state).toBe('ERROR');
    expect(v.productionId).not.toBe(building.id);
    expect(v.productionId).not.toBe(failed.id);
    expect(v.entries().map((e) => e.action)).toContain('deployment.error');
  });
});

describe('the bad-deployment fault', () => {
  it('every /app route answers 500 while the bad deployment serves, and the health route says middleware failing', async () => {
    expect(await dashboard()).toBe(200);
    const { bad } = history();
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
    for (const path of ['/app/dashboard', '/app/profile', '/app/admin', '/app/billing', '/app/api-keys']) {
      const res = await fetch(`${sandbox.url}${path}`);
      expect(res.status, path).toBe(500);
      expect(((await res.json()) as { message: string }).message).toContain(bad.id);
    }
    const health = (await (await fetch(`${sandbox.url}/api/clerk-health`)).json()) as { middleware: string };
    expect(health.middleware).toBe('failing');
    // The fault belongs to the deployment, not the app: marking it good again ends it.
    sandbox.admin.vercel.settings({ badDeployments: [] });
    expect(await dashboard()).toBe(200);
  });

  it('a redeploy of a bad deployment is bad too (same source)', async () => {
    const { bad } = history();
    const again = sandbox.admin.vercel.redeploy(bad);
    sandbox.admin.vercel.advance();
    expect(sandbox.admin.vercel.productionId).toBe(again.id);
    expect(await dashboard()).toBe(500);
  });
});

describe('instant rollback', () => {
  for (const version of ['v1', 'v9'] as const) {
    it(`${version}: answers 201, serves the old build with its own env, and stops auto-assigning production`, async () => {
      const { good, bad } = history();
      expect(await dashboard()).toBe(500);
      const res = await rollback(good.id, version);
      expect(res.status).toBe(201);
      const after = await project();
      expect(after.lastAliasRequest).toMatchObject({ type: 'rollback', fromDeploymentId: bad.id, toDeploymentId: good.id, jobStatus: 'succeeded' });
      expect(after.autoAssignCustomDomains).toBe(false);
      expect(after.targets).toMatchObject({ production: { id: good.id } });
      expect(sandbox.admin.vercel.productionId).toBe(good.id);
      expect(sandbox.admin.vercel.productionEnv().FEATURE).toBe('good');
      expect(await dashboard()).toBe(200);
      const log = sandbox.admin.vercel.entries();
      expect(log.filter((e) => e.action.startsWith('alias.')).map((e) => [e.action, e.type, e.fromDeploymentId, e.deploymentId])).toEqual([
        ['alias.requested', 'rollback', bad.id, good.id],
        ['alias.succeeded', 'rollback', bad.id, good.id],
      ]);
    });
  }

  it('lastAliasRequest is pending, in-progress from halfway through the configured delay, then succeeded', async () => {
    const { good, bad } = history();
    sandbox.admin.vercel.settings({ aliasDelayMs: 1200 });
    const t0 = Date.now();
    expect((await rollback(good.id)).status).toBe(201);
    const pending = await project();
    expect(pending.lastAliasRequest).toMatchObject({ jobStatus: 'pending', toDeploymentId: good.id });
    expect((pending.lastAliasRequest as { requestedAt: number }).requestedAt).toBeGreaterThanOrEqual(t0);
    // Still the bad build meanwhile; a second request is refused while the job runs.
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
    const again = await rollback(good.id);
    expect(again.status).toBe(409);
    expect((await json(again)).error).toMatchObject({ code: 'alias_job_in_progress' });
    await new Promise((r) => setTimeout(r, 700));
    expect((await project()).lastAliasRequest).toMatchObject({ jobStatus: 'in-progress' });
    await new Promise((r) => setTimeout(r, 600));
    expect((await project()).lastAliasRequest).toMatchObject({ jobStatus: 'succeeded' });
    expect(sandbox.admin.vercel.productionId).toBe(good.id);
  });

  it('a failed alias job leaves production where it was', async () => {
    const { good, bad } = history();
    sandbox.admin.vercel.settings({ failAliasJobs: 1 });
    expect((await rollback(good.id)).status).toBe(201);
    expect((await project()).lastAliasRequest).toMatchObject({ jobStatus: 'failed', toDeploymentId: good.id, fromDeploymentId: bad.id });
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
    expect(await dashboard()).toBe(500);
    expect(sandbox.admin.vercel.entries().map((e) => e.action)).toContain('alias.failed');
    // Only the next job failed: a retry goes through.
    expect((await rollback(good.id)).status).toBe(201);
    expect(sandbox.admin.vercel.productionId).toBe(good.id);
  });

  it("answers Vercel's errors: unknown deployment, not READY, not a candidate, the current one, unknown project", async () => {
    const v = sandbox.admin.vercel;
    const { bad } = history();
    const building = v.createDeployment({ buildMs: 600_000, promote: false });
    const staged = v.createDeployment({ promote: false });
    const cases: [Response, number, string][] = [
      [await rollback('dpl_doesnotexist'), 404, 'not_found'],
      [await rollback(building.id), 422, 'deployment_not_ready'],
      [await rollback(staged.id), 422, 'not_rollback_candidate'],
      [await rollback(bad.id), 409, 'deployment_already_current'],
      [await api('POST', `/v1/projects/prj_other/rollback/${bad.id}`, {}), 404, 'not_found'],
    ];
    for (const [res, status, code] of cases) {
      expect(res.status).toBe(status);
      expect((await json(res)).error).toMatchObject({ code });
    }
    // None of them moved production or started a job.
    expect(v.productionId).toBe(bad.id);
    expect(v.lastAliasRequest).toBeNull();
    expect(v.autoAssignCustomDomains).toBe(true);
  });

  it('a wrong token is refused with 403 and injected failures apply (failNext)', async () => {
    const { good } = history();
    const res = await fetch(`${sandbox.vercel.url}/v1/projects/${p()}/rollback/${good.id}`, { method: 'POST', headers: { authorization: 'Bearer nope' } });
    expect(res.status).toBe(403);
    sandbox.admin.vercel.settings({ failNext: { route: 'POST /v1/projects/{projectId}/rollback/{deploymentId}', status: 503, count: 1 } });
    expect((await rollback(good.id)).status).toBe(503);
    expect((await rollback(good.id)).status).toBe(201);
  });
});

describe('after a rollback: no auto-promotion until a promote', () => {
  it('a new production build (redeploy or push) does not take production; promote re-enables it', async () => {
    const v = sandbox.admin.vercel;
    const { good, bad } = history();
    await rollback(good.id);
    const redeployed = await json(await api('POST', '/v13/deployments', { name: 'example-app', deploymentId: good.id, target: 'production' }));
    const pushed = v.createDeployment({ meta: { githubCommitMessage: 'fix forward' } });
    v.advance();
    expect(v.deployment(String(redeployed.id))?.readyAt).toBeLessThanOrEqual(Date.now());
    expect(v.productionId).toBe(good.id);
    expect(v.deployment(pushed.id)?.rollbackCandidate).toBe(false);

    // Promote the fix: it serves, auto-assignment is back, and the next build takes production again.
    const res = await promote(pushed.id);
    expect(res.status).toBe(202);
    const after = await project();
    expect(after.lastAliasRequest).toMatchObject({ type: 'promote', fromDeploymentId: good.id, toDeploymentId: pushed.id, jobStatus: 'succeeded' });
    expect(after.autoAssignCustomDomains).toBe(true);
    expect(v.productionId).toBe(pushed.id);
    const next = v.createDeployment();
    expect(v.productionId).toBe(next.id);
    expect(bad.id).not.toBe(next.id);
  });

  it('the undo: promoting the deployment that was live puts it back (and the bad build 500s again)', async () => {
    const { good, bad } = history();
    await rollback(good.id);
    expect(await dashboard()).toBe(200);
    expect((await promote(bad.id)).status).toBe(202);
    expect(sandbox.admin.vercel.productionId).toBe(bad.id);
    expect(await dashboard()).toBe(500);
    expect((await project()).autoAssignCustomDomains).toBe(true);
  });

  it('promoting the current deployment is allowed only to switch auto-assignment back on', async () => {
    const { good } = history();
    await rollback(good.id);
    expect((await promote(good.id)).status).toBe(202);
    expect((await project()).autoAssignCustomDomains).toBe(true);
    const again = await promote(good.id);
    expect(again.status).toBe(409);
    expect((await json(again)).error).toMatchObject({ code: 'deployment_already_current' });
  });
});

describe('admin: deploying a bad build from outside', () => {
  it('in process and over HTTP (SandboxAdminClient), with env and meta; bad input answers 400 naming the field', async () => {
    const client = new SandboxAdminClient(sandbox.url);
    sandbox.admin.vercel.upsertEnv('CLERK_SECRET_KEY', sandbox.secretKey, 'sensitive', ['production']);
    const created = await client.createVercelDeployment({ bad: true, env: { EXTRA: 'x' }, meta: { githubCommitMessage: 'drill: bad build' } });
    expect(created.bad).toBe(true);
    expect(created.meta.githubCommitMessage).toBe('drill: bad build');
    expect(Object.keys(created.env).sort()).toEqual(['CLERK_SECRET_KEY', 'EXTRA']);
    expect(created.env.CLERK_SECRET_KEY).toBe('(hidden)');
    const overview = await client.vercel();
    expect(overview.productionDeploymentId).toBe(created.id);
    expect(overview.badDeployments).toEqual([created.id]);
    expect(await dashboard()).toBe(500);

    await expect(client.createVercelDeployment({ meta: { githubCommitSha: 'not-hex' } })).rejects.toMatchObject({ status: 400, body: { field: 'meta.githubCommitSha' } });
    await expect(client.setVercel({ badDeployments: ['nope'] })).rejects.toMatchObject({ status: 400 });
    await expect(client.setVercel({ aliasDelayMs: -1 })).rejects.toMatchObject({ status: 400 });
    let refused: unknown;
    try {
      sandbox.admin.vercel.createDeployment({ ageMs: -5 });
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ name: 'SandboxInputError', field: 'ageMs' });

    const reset = await client.resetVercel();
    expect(reset.badDeployments).toEqual([]);
    expect(reset.autoAssignCustomDomains).toBe(true);
    expect(reset.deployments).toHaveLength(1);
  });
});

describe("a redeploy's meta (POST /v13/deployments)", () => {
  it('is kept on the build and listed; a malformed one is refused naming the field, and no build starts', async () => {
    const v = sandbox.admin.vercel;
    const from = v.deployments[0]!;
    const made = await json(await api('POST', '/v13/deployments', { name: 'example-app', deploymentId: from.id, target: 'production', meta: { clerkIncidentRunbookRequest: 'abc123' } }));
    const listed = await json(await api('GET', `/v6/deployments?projectId=${p()}&target=production&limit=20`));
    const mine = (listed.deployments as { uid: string; meta?: Record<string, string> }[]).find((d) => d.uid === made.id);
    expect(mine?.meta?.clerkIncidentRunbookRequest).toBe('abc123');
    const count = v.deployments.length;
    for (const meta of [{ request: 42 }, { request: 'x'.repeat(2000) }, Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, 'v'])), 'request=abc']) {
      const res = await api('POST', '/v13/deployments', { name: 'example-app', deploymentId: from.id, target: 'production', meta });
      expect(res.status).toBe(400);
      expect(((await json(res)).error as { message: string }).message).toMatch(/^Invalid request: meta/);
    }
    expect(v.deployments.length).toBe(count);
  });
});
