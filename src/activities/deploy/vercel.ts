/**
 * Vercel REST API adapters (checked against Vercel's API reference, 2026-11):
 * - project env: `POST /v10/projects/{idOrName}/env?upsert=true` `{key, value, type, target}`,
 *   `GET /v10/projects/{idOrName}/env`, `DELETE /v9/projects/{idOrName}/env/{id}`; an env change
 *   reaches the app only with the next deployment, so: the current production deployment
 *   (`GET /v6/deployments?projectId=…&target=production&state=READY&limit=1`), a redeploy of it
 *   (`POST /v13/deployments` `{name, deploymentId, target: "production"}`) and its state
 *   (`GET /v13/deployments/{id}`, `readyState`).
 * - rollback (checked 2026-12-02): candidates `GET /v6/deployments?projectId=…&target=production&
 *   state=READY&rollbackCandidate=true&until=…`; instant rollback `POST /v1/projects/{projectId}/
 *   rollback/{deploymentId}` (201; the CLI calls `/v9/…` with `{}`, we send `{}` too); the undo
 *   `POST /v10/projects/{projectId}/promote/{deploymentId}` (201/202, no rebuild); the outcome in
 *   `GET /v9/projects/{idOrName}` → `lastAliasRequest`, `targets.production`, `autoAssignCustomDomains`.
 * - Edge Config: `PATCH /v1/edge-config/{ecfg_…}/items` `{items: [{operation, key, value}]}`;
 *   no redeploy, the app sees it within seconds; no deployments, so no rollback.
 * Every call: `Authorization: Bearer <token>`, `teamId` query parameter when configured.
 *
 * Hand-built requests rather than `@vercel/sdk` (weighed 2026-12-02, 1.28.35): the SDK checks every
 * answer against its full schemas, and the sandbox's env list fails them and it lists deployments
 * at /v7 (the sandbox serves /v6), so it cannot run here until the sandbox is fixed; and it would
 * save little: the error kinds, Retry-After, timeouts and the schemas of the four fields we read stay.
 */
import { z } from 'zod';
import { DeployRequestRejected, DeployUnavailable, errorForStatus, rollbackErrorForStatus, type AdapterName } from './errors';
import { callJson } from './http';
import { DEPLOYMENT_STATES, type AliasRequested, type AliasStatus, type DeployAdapter, type Deployment, type ProductionDeployment, type RedeployRequest, type RollbackCapability, type SetValueOptions, type ValueChange } from './types';

export const VERCEL_API_URL = 'https://api.vercel.com';

export interface VercelOptions {
  token: string;
  /** Project id (`prj_…`) or name. */
  project: string;
  teamId?: string;
  /** Default https://api.vercel.com; the sandbox's URL in sandbox mode. */
  apiUrl?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export interface EdgeConfigOptions extends Omit<VercelOptions, 'project'> {
  /** `ecfg_…` */
  edgeConfigId: string;
}

const createdEnv = z.object({ id: z.string(), key: z.string() }).loose();
const createEnvAnswer = z
  .object({
    created: z.union([createdEnv, z.array(createdEnv)]),
    failed: z.array(z.object({ error: z.object({ code: z.string().optional(), message: z.string().optional(), key: z.string().optional() }).loose() }).loose()).default([]),
  })
  .loose();
const envList = z
  .object({
    envs: z.array(
      z.object({ id: z.string(), key: z.string(), target: z.union([z.array(z.string()), z.string()]).optional(), comment: z.string().nullish(), createdAt: z.number().nullish(), updatedAt: z.number().nullish() }).loose(),
    ),
  })
  .loose();
/** The `meta` key a redeploy is tagged with: the hash of the activity that asked (never a secret, never an incident's text). */
const REDEPLOY_REQUEST_META = 'clerkIncidentRunbookRequest';
const deploymentAnswer = z.object({ id: z.string(), name: z.string().optional(), url: z.string().nullish(), readyState: z.enum(DEPLOYMENT_STATES) }).loose();
const deploymentList = z
  .object({
    deployments: z.array(
      z
        .object({
          uid: z.string(),
          name: z.string(),
          url: z.string().nullish(),
          readyState: z.enum(DEPLOYMENT_STATES).optional(),
          state: z.enum(DEPLOYMENT_STATES).optional(),
          created: z.number().optional(),
          createdAt: z.number().optional(),
          isRollbackCandidate: z.boolean().nullish(),
          meta: z.record(z.string(), z.unknown()).nullish(),
        })
        .loose()
        // Without a creation time a deployment would pass for one built in 1970: before every failure and rotation.
        .refine((d) => d.createdAt !== undefined || d.created !== undefined, { message: 'has neither createdAt nor created', path: ['createdAt'] }),
    ),
  })
  .loose();
const aliasRequest = z.object({
  type: z.enum(['rollback', 'promote']),
  fromDeploymentId: z.string(),
  toDeploymentId: z.string(),
  jobStatus: z.enum(['pending', 'in-progress', 'succeeded', 'failed', 'skipped']),
  requestedAt: z.number(),
});
const projectAnswer = z
  .object({
    autoAssignCustomDomains: z.boolean().nullish(),
    lastAliasRequest: aliasRequest.loose().nullish(),
    targets: z.object({ production: z.object({ id: z.string() }).loose().nullish() }).loose().nullish(),
  })
  .loose();

class VercelApi {
  readonly base: string;
  constructor(
    readonly adapter: AdapterName,
    private readonly opts: Omit<VercelOptions, 'project'>,
  ) {
    this.base = (opts.apiUrl ?? VERCEL_API_URL).replace(/\/+$/, '');
  }

  /** `path` may carry its own query; `teamId` is appended when configured. */
  async call<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, operation: string, schema: z.ZodType<T>, body?: unknown, classify: typeof errorForStatus = errorForStatus): Promise<T> {
    const url = new URL(this.base + path);
    if (this.opts.teamId) url.searchParams.set('teamId', this.opts.teamId);
    const answer = await callJson({
      adapter: this.adapter,
      method,
      url: url.toString(),
      operation,
      headers: { authorization: `Bearer ${this.opts.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      timeoutMs: this.opts.timeoutMs ?? 10_000,
      ...(this.opts.fetch ? { fetch: this.opts.fetch } : {}),
      classify,
    });
    const parsed = schema.safeParse(answer);
    if (!parsed.success) {
      // The field's path (`deployments.3.createdAt`) says which answer of the platform is at fault.
      const issue = parsed.error.issues[0];
      const what = issue ? `${issue.path.join('.') || 'body'}: ${issue.message}` : 'invalid';
      throw new DeployUnavailable(`${this.adapter}: ${operation} answered with an unexpected body (${what})`, {
        adapter: this.adapter,
        operation,
      });
    }
    return parsed.data;
  }
}

const enc = encodeURIComponent;

/** Vercel project env + redeploy. */
export function vercelEnvAdapter(opts: VercelOptions): DeployAdapter {
  const api = new VercelApi('vercel', opts);
  const p = enc(opts.project);
  const production = (target: string[] | string | undefined) => (Array.isArray(target) ? target.includes('production') : target === 'production');

  async function currentProduction(): Promise<{ id: string; name: string }> {
    const q = new URLSearchParams({ projectId: opts.project, target: 'production', state: 'READY', limit: '1' });
    const list = await api.call('GET', `/v6/deployments?${q.toString()}`, 'GET /v6/deployments', deploymentList);
    const d = list.deployments[0];
    if (!d) throw new DeployRequestRejected(`vercel: project ${opts.project} has no READY production deployment to redeploy`, { adapter: 'vercel', operation: 'GET /v6/deployments' });
    return { id: d.uid, name: d.name };
  }
  async function source(id: string): Promise<{ id: string; name: string }> {
    const d = await api.call('GET', `/v13/deployments/${enc(id)}`, 'GET /v13/deployments/{idOrUrl}', deploymentAnswer);
    return { id: d.id, name: d.name ?? opts.project };
  }
  const toDeployment = (d: z.infer<typeof deploymentAnswer>): Deployment => ({ id: d.id, url: d.url ?? null, state: d.readyState });
  const metaString = (meta: Record<string, unknown> | null | undefined, key: string) => (typeof meta?.[key] === 'string' ? meta[key] : null);
  /** The production build a request already started (its `meta`), among the newest: a retried redeploy finds it instead of starting another. */
  async function startedBy(requestId: string): Promise<Deployment | undefined> {
    const q = new URLSearchParams({ projectId: opts.project, target: 'production', limit: '20' });
    const list = await api.call('GET', `/v6/deployments?${q.toString()}`, 'GET /v6/deployments', deploymentList);
    const d = list.deployments.find((x) => metaString(x.meta, REDEPLOY_REQUEST_META) === requestId);
    return d ? { id: d.uid, url: d.url ?? null, state: d.readyState ?? d.state ?? 'QUEUED' } : undefined;
  }
  const toProduction = (d: z.infer<typeof deploymentList>['deployments'][number]): ProductionDeployment => ({
    id: d.uid,
    url: d.url ?? null,
    state: d.readyState ?? d.state ?? 'READY',
    createdAt: d.createdAt ?? d.created ?? 0, // one of them is there (the schema's refine)
    rollbackCandidate: d.isRollbackCandidate ?? false,
    commit: { sha: metaString(d.meta, 'githubCommitSha'), ref: metaString(d.meta, 'githubCommitRef'), message: metaString(d.meta, 'githubCommitMessage') },
  });
  const aliasCall = async (type: 'rollback' | 'promote', deploymentId: string, description?: string): Promise<AliasRequested> => {
    const path = type === 'rollback' ? `/v1/projects/${p}/rollback/${enc(deploymentId)}` : `/v10/projects/${p}/promote/${enc(deploymentId)}`;
    const query = description ? `?${new URLSearchParams({ description }).toString()}` : '';
    const operation = type === 'rollback' ? 'POST /v1/projects/{projectId}/rollback/{deploymentId}' : 'POST /v10/projects/{projectId}/promote/{deploymentId}';
    await api.call('POST', path + query, operation, z.unknown(), {}, rollbackErrorForStatus);
    return { adapter: 'vercel', type, toDeploymentId: deploymentId };
  };
  const rollbacks: RollbackCapability = {
    async listProductionDeployments({ until, limit }): Promise<ProductionDeployment[]> {
      const q = new URLSearchParams({ projectId: opts.project, target: 'production', state: 'READY', rollbackCandidate: 'true', limit: String(Math.min(Math.max(1, limit), 100)) });
      if (until !== undefined) q.set('until', String(until));
      const list = await api.call('GET', `/v6/deployments?${q.toString()}`, 'GET /v6/deployments', deploymentList);
      return list.deployments.map(toProduction);
    },
    rollback: (deploymentId, o = {}) => aliasCall('rollback', deploymentId, o.description),
    promote: (deploymentId) => aliasCall('promote', deploymentId),
    async aliasStatus(): Promise<AliasStatus> {
      const project = await api.call('GET', `/v9/projects/${p}`, 'GET /v9/projects/{idOrName}', projectAnswer);
      const last = project.lastAliasRequest;
      return {
        productionDeploymentId: project.targets?.production?.id ?? null,
        autoAssignCustomDomains: project.autoAssignCustomDomains ?? null,
        lastAliasRequest: last ? { type: last.type, fromDeploymentId: last.fromDeploymentId, toDeploymentId: last.toDeploymentId, jobStatus: last.jobStatus, requestedAt: last.requestedAt } : null,
      };
    },
    async envWrites() {
      const list = await api.call('GET', `/v10/projects/${p}/env`, 'GET /v10/projects/{idOrName}/env', envList);
      return list.envs.filter((e) => production(e.target)).map((e) => ({ key: e.key, comment: e.comment ?? null, createdAt: e.createdAt ?? null, updatedAt: e.updatedAt ?? null }));
    },
  };

  return {
    name: 'vercel',
    target: `vercel:${new URL(api.base).host}/${opts.teamId ? `${opts.teamId}/` : ''}${opts.project}`,
    needsRedeploy: true,
    rollbacks,
    async setValue(key: string, value: string, o: SetValueOptions = {}): Promise<ValueChange> {
      if (o.marker) {
        const list = await api.call('GET', `/v10/projects/${p}/env`, 'GET /v10/projects/{idOrName}/env', envList);
        const mine = list.envs.find((e) => e.key === key && production(e.target) && e.comment === o.marker);
        if (mine) return { adapter: 'vercel', key, action: 'set', id: mine.id, already: true };
      }
      const body = { key, value, type: o.sensitive ? 'sensitive' : 'encrypted', target: ['production'], ...(o.marker ? { comment: o.marker } : {}) };
      const answer = await api.call('POST', `/v10/projects/${p}/env?upsert=true`, 'POST /v10/projects/{idOrName}/env', createEnvAnswer, body);
      const failed = answer.failed[0];
      if (failed) {
        throw new DeployRequestRejected(`vercel: env ${key} was not saved: ${failed.error.code ?? 'failed'}: ${failed.error.message ?? ''}`.trim(), {
          adapter: 'vercel',
          operation: 'POST /v10/projects/{idOrName}/env',
          ...(failed.error.code ? { code: failed.error.code } : {}),
        });
      }
      const created = Array.isArray(answer.created) ? answer.created.find((c) => c.key === key) : answer.created;
      return { adapter: 'vercel', key, action: 'set', ...(created ? { id: created.id } : {}) };
    },
    async readValue(key: string): Promise<{ present: boolean; marker?: string }> {
      const list = await api.call('GET', `/v10/projects/${p}/env`, 'GET /v10/projects/{idOrName}/env', envList);
      const env = list.envs.find((e) => e.key === key && production(e.target));
      return env ? { present: true, ...(env.comment ? { marker: env.comment } : {}) } : { present: false };
    },
    async removeValue(key: string): Promise<ValueChange> {
      const list = await api.call('GET', `/v10/projects/${p}/env`, 'GET /v10/projects/{idOrName}/env', envList);
      const env = list.envs.find((e) => e.key === key && production(e.target));
      if (!env) return { adapter: 'vercel', key, action: 'absent' };
      await api.call('DELETE', `/v9/projects/${p}/env/${enc(env.id)}`, 'DELETE /v9/projects/{idOrName}/env/{id}', z.unknown());
      return { adapter: 'vercel', key, action: 'removed', id: env.id };
    },
    /** Without `fromDeploymentId`: the current production deployment (the newest READY one). */
    async redeploy(fromDeploymentId?: string, redeployOpts: { request?: RedeployRequest } = {}): Promise<Deployment> {
      const { request } = redeployOpts;
      const earlier = request?.retry ? await startedBy(request.id) : undefined;
      if (earlier) return earlier;
      const current = fromDeploymentId ? await source(fromDeploymentId) : await currentProduction();
      const body = { name: current.name, deploymentId: current.id, target: 'production', ...(request ? { meta: { [REDEPLOY_REQUEST_META]: request.id } } : {}) };
      return toDeployment(await api.call('POST', '/v13/deployments', 'POST /v13/deployments', deploymentAnswer, body));
    },
    async deployment(id: string): Promise<Deployment> {
      return toDeployment(await api.call('GET', `/v13/deployments/${enc(id)}`, 'GET /v13/deployments/{idOrUrl}', deploymentAnswer));
    },
  };
}

/** Vercel Edge Config items: no redeploy. Values are stored as JSON strings, as an env var would carry them. */
export function vercelEdgeConfigAdapter(opts: EdgeConfigOptions): DeployAdapter {
  const api = new VercelApi('vercel-edge-config', opts);
  const path = `/v1/edge-config/${enc(opts.edgeConfigId)}/items`;
  const op = 'PATCH /v1/edge-config/{edgeConfigId}/items';
  const ok = z.object({ status: z.string() }).loose();
  return {
    name: 'vercel-edge-config',
    target: `vercel-edge-config:${new URL(api.base).host}/${opts.teamId ? `${opts.teamId}/` : ''}${opts.edgeConfigId}`,
    needsRedeploy: false,
    async setValue(key: string, value: string): Promise<ValueChange> {
      await api.call('PATCH', path, op, ok, { items: [{ operation: 'upsert', key, value }] });
      return { adapter: 'vercel-edge-config', key, action: 'set' };
    },
    async removeValue(key: string): Promise<ValueChange> {
      await api.call('PATCH', path, op, ok, { items: [{ operation: 'delete', key }] });
      return { adapter: 'vercel-edge-config', key, action: 'removed' };
    },
  };
}
