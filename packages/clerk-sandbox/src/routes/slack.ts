/**
 * Slack on the sandbox's URL (state and rules in ../slack.ts): the Web API at
 * `POST /slack/api/<method>` (form-encoded as @slack/web-api sends it, or JSON; HTTP 200
 * `{ok, …}` or 429 with Retry-After), the `response_url`s it hands out at
 * `POST /slack/response/<id>`, and `GET /slack`, a page to read the channels and click as a person.
 * Admin: `GET /__sandbox/slack` (settings without secrets, channels, ephemerals, views, deliveries,
 * calls), `PUT` settings, `DELETE` resets; `POST /__sandbox/slack/click|submit|command` act as a user.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { parseInput, SandboxInputError, type RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';
import { inputsOf, SlackRefusal, slackClickSchema, slackCommandSchema, slackSettingsSchema, slackSubmitSchema, type SlackApiAnswer } from '../slack';
import { renderSlackPage } from '../slack-page';

function send(reply: FastifyReply, answer: SlackApiAnswer): FastifyReply {
  if (answer.retryAfterSeconds !== undefined) reply.header('retry-after', String(answer.retryAfterSeconds));
  return reply.code(answer.status).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(answer.body));
}

/** What @slack/web-api sends and HTML forms post. */
function acceptForms(scope: FastifyInstance): void {
  scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))));
  });
}

/** A refusal of the emulated people (no such message, a button not shown) answers 404 or 409 with its reason. */
async function refusing<T>(reply: FastifyReply, act: () => Promise<T>): Promise<T | FastifyReply> {
  try {
    return await act();
  } catch (err) {
    if (err instanceof SlackRefusal) return reply.code(err.status).send({ error: err.status === 404 ? 'not_found' : 'conflict', message: err.message });
    throw err;
  }
}

const uiClickSchema = z.object({ ts: z.string(), channel: z.string(), actionId: z.string(), blockId: z.string(), userId: z.string() }).strict();
const uiSubmitSchema = z.object({ viewId: z.string(), userId: z.string() }).catchall(z.string());
const pageQuery = z.object({ as: z.string().optional(), notice: z.string().max(2000).optional() });

export async function slackApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const slack = ctx.admin.slack;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });

  // The Web API and response URLs in their own scope, so a body that does not parse answers in Slack's shape.
  await app.register(async (api) => {
    acceptForms(api);
    api.setErrorHandler((err: FastifyError | Error, req, reply) => {
      const code = 'code' in err ? err.code : undefined;
      const status = 'statusCode' in err && typeof err.statusCode === 'number' ? err.statusCode : 500;
      if (status >= 500) return reply.code(500).send({ ok: false, error: 'internal_error' });
      if (req.url.startsWith('/slack/response/')) return reply.code(400).send({ ok: false, error: 'invalid_payload' });
      const error = code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'invalid_post_type' : code === 'FST_ERR_CTP_INVALID_JSON_BODY' ? 'invalid_json' : 'invalid_form_data';
      return reply.code(200).send({ ok: false, error });
    });
    api.post<{ Params: { method: string } }>('/slack/api/:method', route('POST /slack/api/{method}'), async (req, reply) => send(reply, slack.call(req.params.method, req.headers.authorization, req.body)));
    api.post<{ Params: { id: string } }>('/slack/response/:id', route('POST /slack/response/{id}'), async (req, reply) => {
      const answer = slack.respond(req.params.id, req.body);
      return reply.code(answer.status).send(answer.body);
    });
  });

  // The page for people: read the channels, click as someone, submit an open modal.
  await app.register(async (ui) => {
    acceptForms(ui);
    const page = (user: string, notice: string) => `/slack?${new URLSearchParams({ as: user, notice })}`;
    const outcome = async (act: () => Promise<{ status: unknown; ms: number }>, what: string) => {
      try {
        const r = await act();
        return `${what}: the app answered ${String(r.status)} in ${r.ms} ms`;
      } catch (err) {
        if (err instanceof SlackRefusal || err instanceof SandboxInputError) return `${what}: ${err.message}`;
        throw err;
      }
    };
    ui.get('/slack', async (req, reply) => {
      const q = parseInput(pageQuery, req.query);
      const as = slack.users.some((u) => u.id === q.as) ? (q.as as string) : (slack.users[0]?.id ?? '');
      return reply.header('content-type', 'text/html; charset=utf-8').send(renderSlackPage(slack.overview(), { as, ...(q.notice ? { notice: q.notice } : {}) }));
    });
    ui.post('/slack/ui/click', async (req, reply) => {
      const f = parseInput(uiClickSchema, req.body);
      const click = parseInput(slackClickSchema, { ts: f.ts, channel: f.channel, actionId: f.actionId, blockId: f.blockId, userId: f.userId });
      const notice = await outcome(() => slack.click(click, ctx.selfUrl()), `${f.userId} clicked ${f.actionId}`);
      return reply.redirect(page(f.userId, notice), 303);
    });
    ui.post('/slack/ui/submit', async (req, reply) => {
      const f = parseInput(uiSubmitSchema, req.body);
      const view = slack.overview().views.find((v) => v.id === f.viewId);
      const values: Record<string, Record<string, string>> = {};
      inputsOf(view?.view ?? { type: 'modal', title: { type: 'plain_text', text: '' }, blocks: [] }).forEach((i, n) => {
        const value = f[`input.${n}`];
        if (value) values[i.blockId] = { ...values[i.blockId], [i.actionId]: value };
      });
      const notice = await outcome(() => slack.submit(parseInput(slackSubmitSchema, { viewId: f.viewId, userId: f.userId, values })), `${f.userId} submitted ${f.viewId}`);
      return reply.redirect(page(f.userId, notice), 303);
    });
  });

  // Admin: GET reads, PUT settings, DELETE resets (the sandbox's convention); POSTs act as a person.
  app.get('/__sandbox/slack', async () => slack.overview());
  app.put('/__sandbox/slack', async (req) => {
    slack.settings(parseInput(slackSettingsSchema, req.body ?? {}));
    return slack.overview();
  });
  app.delete('/__sandbox/slack', async () => {
    slack.reset();
    return slack.overview();
  });
  app.post('/__sandbox/slack/click', async (req, reply) => refusing(reply, () => slack.click(parseInput(slackClickSchema, req.body ?? {}), ctx.selfUrl())));
  app.post('/__sandbox/slack/submit', async (req, reply) => refusing(reply, () => slack.submit(parseInput(slackSubmitSchema, req.body ?? {}))));
  app.post('/__sandbox/slack/command', async (req, reply) => refusing(reply, () => slack.command(parseInput(slackCommandSchema, req.body ?? {}), ctx.selfUrl())));
}
