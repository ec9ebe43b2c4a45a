/**
 * The sandbox's own admin API (`/__sandbox/*`): faults, rate limit, keys, audit, data, outage,
 * webhooks, the example app's switches and the instance's session settings, over HTTP for tests and benchmarks in another
 * process. Never rate limited nor faulted. Bodies and queries are declared with the zod schemas
 * `SandboxAdmin` validates with, so a bad one answers 400 naming the field.
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import {
  addKeyBodySchema,
  appBodySchema,
  auditQuerySchema,
  allowedOriginsBodySchema,
  clockBodySchema,
  createUsersBodySchema,
  faultConfigSchema,
  outageBodySchema,
  rateLimitBodySchema,
  replayBodySchema,
  seedBodySchema,
  sessionSettingsBodySchema,
  sessionsQuerySchema,
  webhookBodySchema,
  webhookEventsQuerySchema,
  zodValidatorCompiler,
} from '../schemas';
import type { ServerContext } from '../server-context';

/** CPU and memory of the sandbox process (benchmarks derive capacity per CPU-second from it). */
function processUsage(): { cpuMs: number; rssMb: number } {
  const cpu = process.cpuUsage();
  return { cpuMs: (cpu.user + cpu.system) / 1000, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) };
}

const body = <S extends z.ZodType>(schema: S) => ({ schema: { body: schema } });
const query = <S extends z.ZodType>(schema: S) => ({ schema: { querystring: schema } });
// A POST without a body means "all defaults" on these routes.
const optionalAddKeyBody = addKeyBodySchema.nullish();
const optionalReplayBody = replayBodySchema.nullish();

const ADMIN_PREFIX = '/__sandbox';

export async function adminApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const A = ADMIN_PREFIX;
  app.setValidatorCompiler(zodValidatorCompiler());

  app.get(A, async () => ({
    sandbox: true,
    url: ctx.selfUrl(),
    instanceId: admin.instanceId,
    startedAt: new Date(admin.startedAt).toISOString(),
    seed: admin.lastSeed,
    rateLimit: admin.getRateLimit(),
    faults: admin.getFaults(),
    outage: admin.outageState(),
    webhooks: admin.webhooks.getConfig(),
    app: admin.appState(),
    publishableKey: admin.instance.publishableKey,
    frontendApi: admin.instance.frontendApiHost,
    clock: admin.clock(),
    keys: admin.listKeys(),
    process: processUsage(),
  }));

  app.get(`${A}/faults`, async () => ({ faults: admin.getFaults(), injected: admin.faultCounters() }));
  app.put(`${A}/faults`, body(faultConfigSchema), async (req) => ({ faults: admin.setFaults(req.body) }));
  app.delete(`${A}/faults`, async () => ({ faults: admin.setFaults({}) }));

  app.get(`${A}/rate-limit`, async () => ({ rateLimit: admin.getRateLimit(), limited: admin.limiter.limited }));
  app.put<{ Body: z.output<typeof rateLimitBodySchema> }>(`${A}/rate-limit`, body(rateLimitBodySchema), async (req) => ({
    rateLimit: admin.setRateLimit(req.body.rateLimit),
  }));

  app.get(`${A}/keys`, async () => ({ keys: admin.listKeys() }));
  app.post<{ Body: z.output<typeof optionalAddKeyBody> }>(`${A}/keys`, body(optionalAddKeyBody), async (req, reply) =>
    reply.code(201).send(admin.addKey(req.body ?? {})),
  );
  app.delete<{ Params: { id: string } }>(`${A}/keys/:id`, async (req) => {
    const { id } = req.params;
    admin.deleteKey(id);
    return { id, deleted: true };
  });

  app.get<{ Querystring: z.output<typeof auditQuerySchema> }>(`${A}/audit`, query(auditQuerySchema), async (req) => ({
    entries: admin.auditEntries(req.query),
  }));
  app.get(`${A}/audit/summary`, async () => admin.auditSummary());
  app.get(`${A}/audit/revokes`, async () => ({ revokes: admin.revokes() }));
  app.delete(`${A}/audit`, async () => {
    admin.resetAudit();
    return { reset: true };
  });

  app.post(`${A}/seed`, body(seedBodySchema), async (req) => admin.seed(req.body));
  app.get(`${A}/stats`, async () => admin.stats());
  app.get<{ Querystring: z.output<typeof sessionsQuerySchema> }>(`${A}/sessions`, query(sessionsQuerySchema), async (req) => ({
    status: req.query.status,
    ids: admin.sessionIds(req.query.status),
  }));
  app.post(`${A}/users`, body(createUsersBodySchema), async (req, reply) => reply.code(201).send({ users: admin.createUsers(req.body) }));
  app.delete<{ Params: { id: string } }>(`${A}/users/:id`, async (req) => admin.deleteUser(req.params.id));

  app.get(`${A}/outage`, async () => admin.outageState());
  app.put(`${A}/outage`, body(outageBodySchema), async (req) => admin.setOutage(req.body));

  app.get(`${A}/webhooks`, async () => ({ ...admin.webhookConfig(), counts: admin.webhooks.counts() }));
  app.put(`${A}/webhooks`, body(webhookBodySchema), async (req) => admin.setWebhooks(req.body));
  app.get<{ Querystring: z.output<typeof webhookEventsQuerySchema> }>(`${A}/webhooks/events`, query(webhookEventsQuerySchema), async (req) => ({
    events: admin.webhookEvents(req.query),
  }));
  app.post<{ Body: z.output<typeof optionalReplayBody> }>(`${A}/webhooks/replay`, body(optionalReplayBody), async (req) =>
    admin.replayWebhooks(req.body ?? {}),
  );
  app.post(`${A}/webhooks/flush`, async () => {
    await admin.webhooksIdle();
    return { counts: admin.webhooks.counts() };
  });

  app.get(`${A}/app`, async () => admin.appState());
  app.put(`${A}/app`, body(appBodySchema), async (req) => admin.setApp(req.body));
  app.delete(`${A}/app`, async () => admin.resetApp());

  app.get(`${A}/instance`, async () => admin.instanceOverview(ctx.selfUrl()));
  app.put(`${A}/instance/allowed-origins`, body(allowedOriginsBodySchema), async (req) => admin.setAllowedOrigins(req.body));
  // The instance's session settings: what the Platform API config serves and new sessions last.
  app.get(`${A}/instance/config`, async () => admin.instance.configOverview());
  app.put(`${A}/instance/session`, body(sessionSettingsBodySchema), async (req) => {
    admin.instance.setSessionSettings(req.body);
    return admin.instance.configOverview();
  });
  app.get(`${A}/clock`, async () => admin.clock());
  app.put(`${A}/clock`, body(clockBodySchema), async (req) => admin.setClock(req.body));
  app.delete(`${A}/clock`, async () => admin.resetClock());
}
