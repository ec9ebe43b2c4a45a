/**
 * PagerDuty's Events API v2 on the sandbox's own URL (so `PAGERDUTY_EVENTS_URL=<sandbox url>`):
 * `POST /v2/enqueue` (alert events: trigger, acknowledge, resolve) and `POST /v2/change/enqueue`
 * (change events), answering 202 `{status:'success', message, dedup_key}`, 400
 * `{status:'invalid event', message, errors}` (a body that is not JSON included) or 429; state and
 * validation in ../pagerduty.ts. Admin: `GET /__sandbox/pagerduty` (keys, alerts, change events,
 * log), `PUT` settings (routing keys, failNext, rate limit), `DELETE` resets.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { parseInput, type RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';
import { pagerDutySettingsSchema, type PagerDutyAnswer, type PagerDutyEndpoint } from '../pagerduty';

function send(reply: FastifyReply, answer: PagerDutyAnswer): FastifyReply {
  if (answer.status === 429 && answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
  return reply.code(answer.status).header('content-type', 'application/json').send(JSON.stringify(answer.body));
}

export async function pagerDutyApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const pd = ctx.admin.pagerduty;

  // The Events API in its own scope, so its error handler (a body that is not JSON) answers in PagerDuty's shape.
  await app.register(async (events) => {
    events.setErrorHandler((err: FastifyError | Error, req, reply) => {
      const endpoint: PagerDutyEndpoint = req.url.startsWith('/v2/change/') ? 'change' : 'enqueue';
      const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
      if (status >= 500) return reply.code(500).header('content-type', 'application/json').send(JSON.stringify({ status: 'error', message: err.message }));
      return send(reply, pd.refuse(endpoint, [`Invalid JSON: ${err.message}`]));
    });
    const route = (routeKey: RouteKey) => ({ config: { routeKey } });
    events.post('/v2/enqueue', route('POST /v2/enqueue'), async (req, reply) => send(reply, pd.receive('enqueue', req.body)));
    events.post('/v2/change/enqueue', route('POST /v2/change/enqueue'), async (req, reply) => send(reply, pd.receive('change', req.body)));
  });

  // Admin: GET reads, PUT settings, DELETE resets (the sandbox's convention).
  app.get('/__sandbox/pagerduty', async () => pd.overview());
  app.put('/__sandbox/pagerduty', async (req) => {
    pd.settings(parseInput(pagerDutySettingsSchema, req.body ?? {}));
    return pd.overview();
  });
  app.delete('/__sandbox/pagerduty', async () => {
    pd.reset();
    return pd.overview();
  });
}
