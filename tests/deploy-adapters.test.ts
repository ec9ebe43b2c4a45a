/**
 * The deploy adapters against the sandbox's Vercel over HTTP (the exact requests each sends, what
 * the platform's own records show), their failure classes, and the signed webhook end to end.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeployActivities } from '../src/activities/deploy/activities';
import type { Deployment } from '../src/activities/deploy/types';
import {
  DeployAuthFailed,
  DeployRateLimited,
  DeployRequestRejected,
  DeployUnavailable,
  sandboxDeployAdapter,
  signRunbookWebhook,
  toDeployFailure,
  vercelEnvAdapter,
  verifyRunbookWebhook,
  webhookAdapter,
} from '../src/activities/deploy';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { recordingFetch, type Sent } from './helpers/recording-fetch';
import { eventually } from './helpers/incident';

let sandbox: RunningSandbox;
beforeAll(async () => {
  sandbox = await startSandbox({ users: 5, seed: 'deploy-adapters' });
});
afterAll(async () => {
  await sandbox?.close();
});

const adapterWith = (log: Sent[], extra: { teamId?: string; token?: string } = {}) =>
  vercelEnvAdapter({ token: extra.token ?? sandbox.vercel.token, project: sandbox.vercel.projectId, apiUrl: sandbox.url, fetch: recordingFetch(log), ...(extra.teamId ? { teamId: extra.teamId } : {}) });

describe('Vercel project env + redeploy', () => {
  it('a marked write is applied once: the retry of a crashed activity finds its own write (env comment) and writes nothing', async () => {
    sandbox.admin.vercel.reset();
    const log: Sent[] = [];
    const vercel = adapterWith(log);
    const marker = 'clerk-incident-runbook inc-1 bypass until 2030-01-01T00:00:00.000Z';
    const first = await vercel.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T00:00:00.000Z"}', { marker });
    const again = await vercel.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T00:00:00.000Z"}', { marker });
    expect(first).toMatchObject({ action: 'set' });
    expect(first.already).toBeUndefined();
    expect(again).toMatchObject({ action: 'set', already: true, id: first.id });
    expect(log.map((r) => r.method)).toEqual(['GET', 'POST', 'GET']);
    expect(log[1]?.body).toMatchObject({ comment: marker });
    const upserts = sandbox.admin.vercel.entries().filter((e) => e.action === 'env.upsert' && e.key === 'CLERK_AUTH_BYPASS');
    expect(upserts).toHaveLength(1);
    // Another write (a new expiry) carries another marker: it is applied.
    const extended = await vercel.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T01:00:00.000Z"}', { marker: marker.replace('00:00:00', '01:00:00') });
    expect(extended.already).toBeUndefined();
    expect(sandbox.admin.vercel.entries().filter((e) => e.action === 'env.upsert')).toHaveLength(2);
  });

  it('sends exactly the documented requests, and the new value reaches the app only with the redeploy', async () => {
    sandbox.admin.vercel.reset();
    sandbox.admin.vercel.buildMs = 300;
    const log: Sent[] = [];
    const vercel = adapterWith(log, { teamId: 'team_abc' });
    const auth = `Bearer ${sandbox.vercel.token}`;

    const set = await vercel.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T00:00:00.000Z"}');
    expect(set).toMatchObject({ adapter: 'vercel', key: 'CLERK_AUTH_BYPASS', action: 'set' });
    expect(set.id).toMatch(/^env_/);
    expect(log[0]).toMatchObject({ method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' } });
    expect(log[0]?.url.pathname).toBe(`/v10/projects/${sandbox.vercel.projectId}/env`);
    expect(Object.fromEntries(log[0]?.url.searchParams ?? [])).toEqual({ upsert: 'true', teamId: 'team_abc' });
    expect(log[0]?.body).toEqual({ key: 'CLERK_AUTH_BYPASS', value: '{"until":"2030-01-01T00:00:00.000Z"}', type: 'encrypted', target: ['production'] });

    // Not live yet: the production deployment still has the env it was built with.
    expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBeUndefined();

    const before = sandbox.admin.vercel.productionId;
    const deployment = await vercel.redeploy?.();
    expect(deployment?.state).toMatch(/QUEUED|BUILDING/);
    const [list, create] = log.slice(1);
    expect(list?.method).toBe('GET');
    expect(list?.url.pathname).toBe('/v6/deployments');
    expect(Object.fromEntries(list?.url.searchParams ?? [])).toEqual({ projectId: sandbox.vercel.projectId, target: 'production', state: 'READY', limit: '1', teamId: 'team_abc' });
    expect(create).toMatchObject({ method: 'POST', headers: { authorization: auth } });
    expect(create?.url.pathname).toBe('/v13/deployments');
    expect(create?.body).toEqual({ name: 'example-app', deploymentId: before, target: 'production' });

    const ready = await eventually(async () => {
      const d = await vercel.deployment?.(deployment?.id ?? '');
      return d?.state === 'READY' ? d : undefined;
    }, 10_000);
    expect(ready.url).toContain('.vercel.app');
    expect(log.at(-1)?.url.pathname).toBe(`/v13/deployments/${deployment?.id}`);
    expect(sandbox.admin.vercel.productionId).toBe(deployment?.id);
    expect(sandbox.admin.vercel.productionEnv().CLERK_AUTH_BYPASS).toBe('{"until":"2030-01-01T00:00:00.000Z"}');

    // Removal: find the variable, delete it by id.
    const removed = await vercel.removeValue('CLERK_AUTH_BYPASS');
    expect(removed).toMatchObject({ action: 'removed', id: set.id });
    const [find, del] = log.slice(-2);
    expect(find?.method).toBe('GET');
    expect(find?.url.pathname).toBe(`/v10/projects/${sandbox.vercel.projectId}/env`);
    expect(del?.method).toBe('DELETE');
    expect(del?.url.pathname).toBe(`/v9/projects/${sandbox.vercel.projectId}/env/${set.id}`);
    expect(await vercel.removeValue('CLERK_AUTH_BYPASS')).toMatchObject({ action: 'absent' });
    // The platform's own record.
    expect(sandbox.admin.vercel.entries().map((e) => e.action)).toEqual(['env.upsert', 'deployment.create', 'deployment.ready', 'deployment.promoted', 'env.delete']);
  });

  it('a sensitive value is stored as Vercel `sensitive`, never shown back', async () => {
    sandbox.admin.vercel.reset();
    const log: Sent[] = [];
    await adapterWith(log).setValue('CLERK_SECRET_KEY', 'sk_test_notarealkeyatall', { sensitive: true });
    expect(log[0]?.body).toMatchObject({ type: 'sensitive' });
    expect(JSON.stringify(sandbox.admin.vercel.overview())).not.toContain('sk_test_notarealkeyatall');
  });

  it('a redeploy asked again by the same activity (its retry after a crash) finds the build it started and starts none; another activity starts its own', async () => {
    sandbox.admin.vercel.reset();
    sandbox.admin.vercel.buildMs = 300;
    const acts = createDeployActivities(() => sandboxDeployAdapter(sandbox.vercel));
    const info = { activityId: '7', workflowExecution: { workflowId: 'incident-redeploy', runId: 'run-1' } };
    // In an activity of that workflow run (MockActivityEnvironment), as the worker runs it.
    const inActivity = (i: typeof info & { attempt?: number }, call: () => Promise<Deployment>) => new MockActivityEnvironment(i).run(call) as Promise<Deployment>;
    const builds = () => sandbox.admin.vercel.entries().filter((e) => e.action === 'deployment.create').length;
    const before = builds();
    const first = await inActivity(info, () => acts.deployRedeploy({}));
    const retried = await inActivity({ ...info, attempt: 2 }, () => acts.deployRedeploy({}));
    expect(retried.id).toBe(first.id);
    expect(builds() - before).toBe(1);
    // The request is named by a hash: the workflow id is not in the build's meta.
    expect(JSON.stringify(sandbox.admin.vercel.overview().deployments)).not.toContain('incident-redeploy');
    const other = await inActivity({ ...info, activityId: '8' }, () => acts.deployRedeploy({}));
    expect(other.id).not.toBe(first.id);
    expect(builds() - before).toBe(2);
    // A rebuild of a named source (the rollback's) the same way.
    const rebuilt = await inActivity({ ...info, activityId: '9' }, () => acts.deployRedeployFrom({ fromDeploymentId: first.id }));
    const rebuiltAgain = await inActivity({ ...info, activityId: '9', attempt: 3 }, () => acts.deployRedeployFrom({ fromDeploymentId: first.id }));
    expect(rebuiltAgain.id).toBe(rebuilt.id);
    expect(builds() - before).toBe(3);
  });

  it('classifies failures: 5xx and 429 retryable, 401/403 a non-retryable failure that names the adapter and the fix', async () => {
    sandbox.admin.vercel.reset();
    const vercel = sandboxDeployAdapter(sandbox.vercel);
    sandbox.admin.vercel.settings({ failNext: { status: 503, count: 1 } });
    const unavailable = await vercel.setValue('X', '1').catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(DeployUnavailable);
    expect((unavailable as DeployUnavailable).retryable).toBe(true);

    sandbox.admin.vercel.settings({ failNext: { status: 429, count: 1, route: 'POST /v10/projects/{idOrName}/env' } });
    const limited = await vercel.setValue('X', '1').catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(DeployRateLimited);
    expect((limited as DeployRateLimited).retryAfterMs).toBe(1000);
    const failure = toDeployFailure(limited) as { type: string; nonRetryable: boolean; nextRetryDelay: unknown };
    expect(failure).toMatchObject({ type: 'DeployRateLimited', nonRetryable: false, nextRetryDelay: 1000 });

    const denied = await vercelEnvAdapter({ token: 'wrong-token', project: sandbox.vercel.projectId, apiUrl: sandbox.url }).setValue('X', '1').catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(DeployAuthFailed);
    expect((denied as Error).message).toMatch(/^vercel: POST \/v10\/projects\/\{idOrName\}\/env answered 403: forbidden: Not authorized\. Fix: set VERCEL_TOKEN/);
    expect((denied as Error).message).not.toContain('wrong-token');
    expect(toDeployFailure(denied)).toMatchObject({ type: 'DeployAuthFailed', nonRetryable: true });

    const unknown = await vercelEnvAdapter({ token: sandbox.vercel.token, project: 'no-such-project', apiUrl: sandbox.url }).setValue('X', '1').catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(DeployRequestRejected);
    expect((unknown as Error).message).toContain('Project not found: no-such-project');
  });
});

describe('Vercel Edge Config', () => {
  it('upserts and deletes the item with one PATCH each; the app sees it without a redeploy', async () => {
    sandbox.admin.vercel.reset();
    const log: Sent[] = [];
    const edge = sandboxDeployAdapter(sandbox.vercel, 'vercel-edge-config');
    const recorded = (await import('../src/activities/deploy')).vercelEdgeConfigAdapter({
      token: sandbox.vercel.token,
      edgeConfigId: sandbox.vercel.edgeConfigId,
      apiUrl: sandbox.url,
      fetch: recordingFetch(log),
    });
    expect(edge.needsRedeploy).toBe(false);
    const until = new Date(Date.now() + 600_000).toISOString();
    await recorded.setValue('CLERK_AUTH_BYPASS', JSON.stringify({ until }));
    expect(log[0]).toMatchObject({ method: 'PATCH', headers: { authorization: `Bearer ${sandbox.vercel.token}`, 'content-type': 'application/json' } });
    expect(log[0]?.url.pathname).toBe(`/v1/edge-config/${sandbox.vercel.edgeConfigId}/items`);
    expect(log[0]?.body).toEqual({ items: [{ operation: 'upsert', key: 'CLERK_AUTH_BYPASS', value: JSON.stringify({ until }) }] });
    const page = await fetch(`${sandbox.url}/app/dashboard`);
    expect(page.headers.get('x-auth-bypass')).toBe('true');

    await recorded.removeValue('CLERK_AUTH_BYPASS');
    expect(log[1]?.body).toEqual({ items: [{ operation: 'delete', key: 'CLERK_AUTH_BYPASS' }] });
    expect((await fetch(`${sandbox.url}/app/dashboard`)).headers.get('x-auth-bypass')).toBeNull();
  });
});

describe('signed webhook', () => {
  it('posts a signed, timestamped delivery the documented receiver accepts once (replay refused)', async () => {
    const secret = 'whk_test_0123456789abcdef0123456789abcdef';
    const seen = new Set<string>();
    const received: { headers: IncomingHttpHeaders; body: string; verdict: ReturnType<typeof verifyRunbookWebhook> }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        const verdict = verifyRunbookWebhook(secret, req.headers, body, { seen });
        received.push({ headers: req.headers, body, verdict });
        res.writeHead(verdict.ok ? 204 : 401, { 'content-type': 'application/json' }).end(verdict.ok ? undefined : JSON.stringify({ error: { code: 'bad_signature', message: verdict.reason } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/runbook`;
    try {
      const hook = webhookAdapter({ url, secret });
      const change = await hook.setValue('CLERK_AUTH_BYPASS', '{"until":"2030-01-01T00:00:00.000Z"}');
      expect(change).toMatchObject({ adapter: 'webhook', action: 'set' });
      const first = received[0];
      expect(first?.verdict).toEqual({ ok: true, deliveryId: change.id });
      expect(JSON.parse(first?.body ?? '{}')).toMatchObject({ id: change.id, type: 'env.set', key: 'CLERK_AUTH_BYPASS', sensitive: false });
      expect(first?.headers['x-runbook-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
      // The same delivery again is a replay.
      expect(verifyRunbookWebhook(secret, first?.headers ?? {}, first?.body ?? '', { seen })).toEqual({ ok: false, reason: 'delivery already seen (replay)' });
      // A tampered body, a stale timestamp: refused.
      expect(verifyRunbookWebhook(secret, first?.headers ?? {}, `${first?.body} `, {})).toMatchObject({ ok: false, reason: 'signature does not match' });
      expect(verifyRunbookWebhook(secret, first?.headers ?? {}, first?.body ?? '', { now: Date.now() + 600_000 })).toMatchObject({ ok: false });
      // A receiver with another secret answers 401: a non-retryable failure naming the fix.
      const wrong = await webhookAdapter({ url, secret: 'whk_other_0123456789abcdef0123456789ab' }).removeValue('CLERK_AUTH_BYPASS').catch((e: unknown) => e);
      expect(wrong).toBeInstanceOf(DeployAuthFailed);
      expect((wrong as Error).message).toContain('DEPLOY_WEBHOOK_SECRET');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('keys replay on the signed id: new unsigned headers, a forged id, an old capture or a huge window do not get a delivery in twice', () => {
    const secret = 'whk_test_0123456789abcdef0123456789abcdef';
    const at = Date.now();
    const ts = Math.floor(at / 1000);
    const deliver = (id: string, t = ts) => {
      const body = JSON.stringify({ id, type: 'env.set', key: 'CLERK_AUTH_BYPASS', value: '{"until":"2030-01-01T00:00:00.000Z"}', sensitive: false, sentAt: new Date(t * 1000).toISOString() });
      return { body, headers: { 'x-runbook-delivery': id, 'x-runbook-timestamp': String(t), 'x-runbook-signature': signRunbookWebhook(secret, t, body) } as Record<string, string | undefined> };
    };
    for (const seen of [new Set<string>(), new Map<string, number>()]) {
      const d = deliver('delivery-1');
      expect(verifyRunbookWebhook(secret, d.headers, d.body, { seen, now: at })).toEqual({ ok: true, deliveryId: 'delivery-1' });
      // The same signed delivery with other unsigned delivery headers: each refused, never a new delivery.
      for (const header of ['delivery-2', 'DELIVERY-1', 'delivery-1 ', '', undefined]) {
        const verdict = verifyRunbookWebhook(secret, { ...d.headers, 'x-runbook-delivery': header }, d.body, { seen, now: at });
        expect(verdict.ok, String(header)).toBe(false);
      }
      expect(verifyRunbookWebhook(secret, { ...d.headers, 'x-runbook-delivery': 'delivery-2' }, d.body, { seen: new Set(), now: at })).toEqual({ ok: false, reason: 'delivery header does not match the signed id' });
      // A forged id in the body (the signature no longer covers it), or one without any signature.
      const forged = d.body.replace('delivery-1', 'delivery-3');
      expect(verifyRunbookWebhook(secret, { ...d.headers, 'x-runbook-delivery': 'delivery-3' }, forged, { seen, now: at })).toEqual({ ok: false, reason: 'signature does not match' });
      expect(verifyRunbookWebhook(secret, { ...d.headers, 'x-runbook-signature': undefined }, d.body, { seen, now: at })).toMatchObject({ ok: false });
      // A signed body without an id is refused (nothing to key replay on).
      const noId = JSON.stringify({ type: 'env.remove', key: 'CLERK_AUTH_BYPASS' });
      expect(verifyRunbookWebhook(secret, { 'x-runbook-timestamp': String(ts), 'x-runbook-signature': signRunbookWebhook(secret, ts, noId) }, noId, { seen, now: at })).toEqual({ ok: false, reason: 'the signed body has no delivery id' });
      // The window is bounded: a capture two hours old is refused even by a receiver configured with a day.
      const old = deliver('delivery-old', ts - 7200);
      expect(verifyRunbookWebhook(secret, old.headers, old.body, { seen, now: at, toleranceSeconds: 86_400 })).toEqual({ ok: false, reason: 'timestamp outside the tolerance' });
    }
    // A Map remembers ids only as long as the window: older ones are pruned (their timestamps are refused anyway).
    const seen = new Map<string, number>();
    const early = deliver('early', ts - 200);
    expect(verifyRunbookWebhook(secret, early.headers, early.body, { seen, now: at })).toMatchObject({ ok: true });
    const later = deliver('later', ts + 200);
    expect(verifyRunbookWebhook(secret, later.headers, later.body, { seen, now: at + 200_000 })).toMatchObject({ ok: true });
    expect([...seen.keys()]).toEqual(['later']);
    expect(verifyRunbookWebhook(secret, early.headers, early.body, { seen, now: at + 200_000 })).toEqual({ ok: false, reason: 'timestamp outside the tolerance' });
  });
});
