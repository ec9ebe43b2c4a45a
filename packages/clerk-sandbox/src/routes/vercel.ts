/**
 * The sandbox's emulation of the Vercel REST API endpoints the runbook's deploy adapters call
 * (same paths, shapes and `{error: {code, message}}` bodies; see src/activities/deploy/vercel.ts),
 * and its admin routes `/__sandbox/vercel` (GET state and log, PUT settings, DELETE reset,
 * POST `/__sandbox/vercel/deployments` a deployment with given env and meta: "deploy a bad build").
 * One project (`example-app`, `prj_sandboxexampleapp`) and one Edge Config (`ecfg_sandboxexampleapp`);
 * any bearer token other than the sandbox's is refused with 403, as Vercel does.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { parseInput, type RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';
import { AliasRefusal, SANDBOX_EDGE_CONFIG_ID, SANDBOX_PROJECT, vercelSettingsSchema, type AliasRequest, type VercelDeploymentBody, type SandboxDeployment, type VercelEnvVar, type VercelSandbox } from '../vercel';

function vercelError(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify({ error: { code, message, ...extra } }));
}

const ERROR_FOR: Record<number, [string, string]> = {
  401: ['unauthorized', 'Unauthorized'],
  403: ['forbidden', 'Not authorized'],
  429: ['rate_limited', 'Rate limit exceeded (sandbox failNext)'],
  500: ['internal_server_error', 'An unexpected internal error occurred'],
  502: ['bad_gateway', 'Bad gateway (sandbox failNext)'],
  503: ['service_unavailable', 'Service unavailable (sandbox failNext)'],
};

const envInput = z.object({
  key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
  value: z.string().max(65_536),
  type: z.enum(['plain', 'encrypted', 'sensitive', 'secret', 'system']),
  target: z.array(z.enum(['production', 'preview', 'development'])).min(1),
  gitBranch: z.string().optional(),
  comment: z.string().optional(),
});
const envBody = z.union([envInput, z.array(envInput).min(1)]);
const deployBody = z.object({
  name: z.string().min(1),
  deploymentId: z.string().min(1).optional(),
  target: z.string().optional(),
  meta: z.record(z.string().max(256), z.string().max(1024)).refine((m) => Object.keys(m).length <= 32, 'at most 32 keys').optional(),
});
const edgeItemsBody = z.object({
  items: z
    .array(z.object({ operation: z.enum(['create', 'update', 'upsert', 'delete']), key: z.string().regex(/^[\w-]+$/).max(256), value: z.unknown().optional() }))
    .min(1),
});

const first = (e: z.ZodError) => {
  const i = e.issues[0];
  return i ? `${i.path.join('.') || '(body)'}: ${i.message}` : 'invalid body';
};

function envJson(e: VercelEnvVar) {
  // Vercel never returns the value of a sensitive variable, and returns others encrypted unless decrypted.
  return { type: e.type, id: e.id, key: e.key, ...(e.type === 'plain' ? { value: e.value } : {}), target: e.target, createdAt: e.createdAt, updatedAt: e.updatedAt, ...(e.comment === undefined ? {} : { comment: e.comment }), decrypted: false };
}

function deploymentJson(v: VercelSandbox, d: SandboxDeployment) {
  const readyState = v.readyState(d);
  return {
    id: d.id,
    url: d.url,
    name: d.name,
    readyState,
    status: readyState,
    target: d.target,
    createdAt: d.createdAt,
    ...(readyState === 'READY' ? { ready: d.readyAt } : {}),
    alias: d.id === v.productionId ? [`${d.name}.vercel.app`] : [],
    meta: { ...d.meta, ...(d.redeployOf ? { redeployOf: d.redeployOf } : {}) },
  };
}

/** An item of `GET /v6/deployments`, with the fields Vercel lists. */
function listedJson(v: VercelSandbox, d: SandboxDeployment) {
  const readyState = v.readyState(d);
  return {
    uid: d.id,
    name: d.name,
    url: d.url,
    created: d.createdAt,
    createdAt: d.createdAt,
    buildingAt: d.createdAt,
    ...(readyState === 'READY' || readyState === 'ERROR' ? { ready: d.readyAt } : {}),
    state: readyState,
    readyState,
    type: 'LAMBDAS',
    target: d.target,
    meta: { ...d.meta, ...(d.redeployOf ? { redeployOf: d.redeployOf } : {}) },
    isRollbackCandidate: d.rollbackCandidate,
    source: 'git',
  };
}

const listQuery = z.object({
  projectId: z.string().optional(),
  target: z.string().optional(),
  state: z.string().optional(),
  since: z.coerce.number().int().min(0).optional(),
  until: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  rollbackCandidate: z.enum(['true', 'false']).optional(),
}).loose();

export async function vercelApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const v = ctx.admin.vercel;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });

  // Token and injected failures, for the emulated API only (not the admin routes).
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.url.startsWith('/__sandbox')) return;
    const auth = req.headers.authorization;
    if (!auth?.startsWith('Bearer ')) return vercelError(reply, 403, 'forbidden', 'Not authorized', { missingToken: true });
    if (auth.slice(7) !== v.token) return vercelError(reply, 403, 'forbidden', 'Not authorized', { invalidToken: true });
    const status = v.takeFailure(req.routeOptions.config.routeKey ?? '');
    if (status) {
      if (status === 429) reply.header('retry-after', '1');
      const [code, message] = ERROR_FOR[status] ?? ['error', 'error'];
      return vercelError(reply, status, code, message);
    }
  });

  const project = (req: FastifyRequest<{ Params: { idOrName: string } }>, reply: FastifyReply): boolean => {
    const p = req.params.idOrName;
    if (p === SANDBOX_PROJECT.id || p === SANDBOX_PROJECT.name) return true;
    void vercelError(reply, 404, 'not_found', `Project not found: ${p}`);
    return false;
  };

  app.post<{ Params: { idOrName: string }; Querystring: { upsert?: string } }>('/v10/projects/:idOrName/env', route('POST /v10/projects/{idOrName}/env'), async (req, reply) => {
    if (!project(req, reply)) return reply;
    const parsed = envBody.safeParse(req.body);
    if (!parsed.success) return vercelError(reply, 400, 'bad_request', `Invalid request: ${first(parsed.error)}`);
    const items = Array.isArray(parsed.data) ? parsed.data : [parsed.data];
    const upsert = req.query.upsert === 'true';
    const created: ReturnType<typeof envJson>[] = [];
    const failed: { error: { code: string; message: string; key: string } }[] = [];
    for (const item of items) {
      const exists = [...v.env.values()].some((e) => e.key === item.key && e.target.some((t) => (item.target as string[]).includes(t)));
      if (exists && !upsert) {
        failed.push({ error: { code: 'ENV_ALREADY_EXISTS', message: `A variable with the name \`${item.key}\` already exists for the target ${item.target.join(',')}`, key: item.key } });
        continue;
      }
      created.push(envJson(v.upsertEnv(item.key, item.value, item.type, item.target, item.comment)));
    }
    return reply.code(201).send({ created: Array.isArray(parsed.data) ? created : (created[0] ?? []), failed });
  });

  app.get<{ Params: { idOrName: string } }>('/v10/projects/:idOrName/env', route('GET /v10/projects/{idOrName}/env'), async (req, reply) => {
    if (!project(req, reply)) return reply;
    return { envs: [...v.env.values()].map(envJson) };
  });

  app.delete<{ Params: { idOrName: string; id: string } }>('/v9/projects/:idOrName/env/:id', route('DELETE /v9/projects/{idOrName}/env/{id}'), async (req, reply) => {
    if (!project(req, reply)) return reply;
    const removed = v.deleteEnv(req.params.id);
    if (!removed) return vercelError(reply, 404, 'not_found', `Environment variable not found: ${req.params.id}`);
    return envJson(removed);
  });

  app.get('/v6/deployments', route('GET /v6/deployments'), async (req, reply) => {
    v.advance();
    const parsed = listQuery.safeParse(req.query);
    if (!parsed.success) return vercelError(reply, 400, 'bad_request', `Invalid request: ${first(parsed.error)}`);
    const { projectId, target, state, since, until, limit, rollbackCandidate } = parsed.data;
    const states = state ? state.split(',') : null;
    // Newest first; `until`/`since` bound the creation time (exclusive), `pagination.next` is the `until` of the next page.
    const matching = v.deployments
      .filter(() => !projectId || projectId === SANDBOX_PROJECT.id || projectId === SANDBOX_PROJECT.name)
      .filter((d) => !target || d.target === target)
      .filter((d) => !states || states.includes(v.readyState(d)))
      .filter((d) => since === undefined || d.createdAt > since)
      .filter((d) => until === undefined || d.createdAt < until)
      .filter((d) => rollbackCandidate === undefined || d.rollbackCandidate === (rollbackCandidate === 'true'))
      .sort((a, b) => b.createdAt - a.createdAt);
    const page = matching.slice(0, limit);
    const next = matching.length > page.length ? (page.at(-1)?.createdAt ?? null) : null;
    return { deployments: page.map((d) => listedJson(v, d)), pagination: { count: page.length, next, prev: page[0]?.createdAt ?? null } };
  });

  app.post('/v13/deployments', route('POST /v13/deployments'), async (req, reply) => {
    const parsed = deployBody.safeParse(req.body);
    if (!parsed.success) return vercelError(reply, 400, 'bad_request', `Invalid request: ${first(parsed.error)}`);
    const { deploymentId, target, meta } = parsed.data;
    if (!deploymentId) return vercelError(reply, 400, 'bad_request', 'The sandbox only redeploys: give deploymentId');
    if (target !== 'production') return vercelError(reply, 400, 'bad_request', 'The sandbox only deploys to target "production"');
    const from = v.deployment(deploymentId);
    if (!from) return vercelError(reply, 404, 'not_found', `Deployment not found: ${deploymentId}`);
    return deploymentJson(v, v.redeploy(from, meta));
  });

  app.get<{ Params: { idOrUrl: string } }>('/v13/deployments/:idOrUrl', route('GET /v13/deployments/{idOrUrl}'), async (req, reply) => {
    v.advance();
    const d = v.deployments.find((x) => x.id === req.params.idOrUrl || x.url === req.params.idOrUrl);
    if (!d) return vercelError(reply, 404, 'not_found', `Deployment not found: ${req.params.idOrUrl}`);
    return deploymentJson(v, d);
  });

  const projectJson = () => {
    v.advance();
    const prod = v.deployment(v.productionId);
    return {
      id: SANDBOX_PROJECT.id,
      name: SANDBOX_PROJECT.name,
      framework: 'nextjs',
      autoAssignCustomDomains: v.autoAssignCustomDomains,
      lastAliasRequest: v.lastAliasRequest,
      // Vercel's older field the CLI read before lastAliasRequest: the rollback target, if the last job was a rollback.
      lastRollbackTarget: v.lastAliasRequest?.type === 'rollback' ? v.lastAliasRequest : null,
      targets: prod ? { production: { ...deploymentJson(v, prod), alias: [`${prod.name}.vercel.app`] } } : {},
      latestDeployments: [...v.deployments].sort((a, b) => b.createdAt - a.createdAt).slice(0, 5).map((d) => deploymentJson(v, d)),
    };
  };
  app.get<{ Params: { idOrName: string } }>('/v9/projects/:idOrName', route('GET /v9/projects/{idOrName}'), async (req, reply) => {
    if (!project(req, reply)) return reply;
    return projectJson();
  });

  // Instant rollback and promote: an alias job; 201/202 with no body, the outcome in `lastAliasRequest`.
  const alias = (type: AliasRequest['type'], status: 201 | 202) => async (req: FastifyRequest<{ Params: { projectId: string; deploymentId: string } }>, reply: FastifyReply) => {
    const p = req.params.projectId;
    if (p !== SANDBOX_PROJECT.id && p !== SANDBOX_PROJECT.name) return vercelError(reply, 404, 'not_found', `Project not found: ${p}`);
    try {
      v.requestAlias(type, req.params.deploymentId);
    } catch (err) {
      if (err instanceof AliasRefusal) return vercelError(reply, err.status, err.code, err.message);
      throw err;
    }
    return reply.code(status).send();
  };
  app.post('/v1/projects/:projectId/rollback/:deploymentId', route('POST /v1/projects/{projectId}/rollback/{deploymentId}'), alias('rollback', 201));
  app.post('/v9/projects/:projectId/rollback/:deploymentId', route('POST /v9/projects/{projectId}/rollback/{deploymentId}'), alias('rollback', 201));
  app.post('/v10/projects/:projectId/promote/:deploymentId', route('POST /v10/projects/{projectId}/promote/{deploymentId}'), alias('promote', 202));

  app.patch<{ Params: { edgeConfigId: string } }>('/v1/edge-config/:edgeConfigId/items', route('PATCH /v1/edge-config/{edgeConfigId}/items'), async (req, reply) => {
    if (req.params.edgeConfigId !== SANDBOX_EDGE_CONFIG_ID) return vercelError(reply, 404, 'not_found', `Edge Config not found: ${req.params.edgeConfigId}`);
    const parsed = edgeItemsBody.safeParse(req.body);
    if (!parsed.success) return vercelError(reply, 400, 'bad_request', `Invalid request: ${first(parsed.error)}`);
    for (const item of parsed.data.items) {
      if (item.operation === 'create' && v.edgeConfig.has(item.key)) return vercelError(reply, 409, 'conflict', `Item already exists: ${item.key}`);
      if (item.operation === 'update' && !v.edgeConfig.has(item.key)) return vercelError(reply, 404, 'not_found', `Item not found: ${item.key}`);
      if (item.operation !== 'delete' && item.value === undefined) return vercelError(reply, 400, 'bad_request', `Invalid request: items: ${item.key} has no value`);
    }
    v.patchEdgeConfig(parsed.data.items);
    return { status: 'ok' };
  });

  // Admin: GET reads, PUT settings, DELETE resets (the sandbox's convention).
  app.get('/__sandbox/vercel', async () => v.overview());
  app.put('/__sandbox/vercel', async (req) => {
    v.settings(parseInput(vercelSettingsSchema, req.body ?? {}));
    return v.overview();
  });
  app.delete('/__sandbox/vercel', async () => {
    v.reset();
    return v.overview();
  });
  app.post('/__sandbox/vercel/deployments', async (req, reply) => {
    const d = v.createDeployment((req.body ?? {}) as VercelDeploymentBody);
    return reply.code(201).send(v.overview().deployments.find((x) => x.id === d.id));
  });
}

/**
 * The read side of Edge Config, as `@vercel/edge-config` calls it from the app (`GET <base>/item/<key>`,
 * `/items`, `/digest`; bearer = the read token of the `EDGE_CONFIG` connection string, 401 otherwise;
 * 404 with a digest header for a missing item). Mounted under `/edge-config` of the sandbox's URL.
 */
export async function edgeConfigReads(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const v = ctx.admin.vercel;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });
  const send = (reply: FastifyReply, status: number, body: unknown) =>
    reply
      .code(status)
      .header('content-type', 'application/json; charset=utf-8')
      .header('x-edge-config-digest', v.edgeConfigDigest())
      .send(body === undefined ? '' : JSON.stringify(body));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.headers.authorization !== `Bearer ${v.edgeConfigReadToken}`) return vercelError(reply, 401, 'unauthorized', 'Unauthorized');
    const status = v.takeFailure(req.routeOptions.config.routeKey ?? '');
    if (status) return vercelError(reply, status, ERROR_FOR[status]?.[0] ?? 'error', ERROR_FOR[status]?.[1] ?? 'error');
  });
  const known = (id: string, reply: FastifyReply): boolean => {
    if (id === SANDBOX_EDGE_CONFIG_ID) return true;
    // An unknown Edge Config: 404 without a digest, which the SDK reports as "Edge Config not found".
    void vercelError(reply, 404, 'edge_config_not_found', 'Edge Config not found');
    return false;
  };

  app.get<{ Params: { edgeConfigId: string; key: string } }>('/edge-config/:edgeConfigId/item/:key', route('GET /edge-config/{edgeConfigId}/item/{key}'), async (req, reply) => {
    if (!known(req.params.edgeConfigId, reply)) return reply;
    return v.edgeConfig.has(req.params.key) ? send(reply, 200, v.edgeConfig.get(req.params.key)) : send(reply, 404, undefined);
  });
  app.get<{ Params: { edgeConfigId: string } }>('/edge-config/:edgeConfigId/items', route('GET /edge-config/{edgeConfigId}/items'), async (req, reply) => {
    if (!known(req.params.edgeConfigId, reply)) return reply;
    return send(reply, 200, Object.fromEntries(v.edgeConfig));
  });
  app.get<{ Params: { edgeConfigId: string } }>('/edge-config/:edgeConfigId/digest', route('GET /edge-config/{edgeConfigId}/digest'), async (req, reply) => {
    if (!known(req.params.edgeConfigId, reply)) return reply;
    return send(reply, 200, v.edgeConfigDigest());
  });
}
