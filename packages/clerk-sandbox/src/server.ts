/**
 * The sandbox's HTTP server (fastify): one plugin per emulated system, behind one request
 * pipeline. Adding a system (say, a deployment platform) is one plugin in `routes/` and one
 * `register` line below; its routes join the pipeline by naming a route key in their config.
 *
 * Request pipeline of a Clerk route, in the order a real request meets it: outage → injected
 * fault (hang / latency / error status) → secret key → rate limit → querystring → handler (where
 * a `rejectSessions` fault answers its 4xx) → audit. Other routes with a route key (status page,
 * example app) meet only the per-route faults and the audit; the admin API meets neither.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { SandboxNotFoundError } from './admin';
import { ClerkNotFound, ClerkParamError, clerkErrors, sendClerk } from './clerk-reply';
import { adminApi } from './routes/admin-api';
import { clerkBackendApi } from './routes/clerk-api';
import { exampleApp } from './routes/example-app';
import { statusPage } from './routes/status-page';
import { svixPortal } from './routes/svix-portal';
import { vaultApi } from './routes/vault';
import { clerkPlatformApi } from './routes/clerk-platform';
import { edgeConfigReads, vercelApi } from './routes/vercel';
import { pagerDutyApi } from './routes/pagerduty';
import { slackApi } from './routes/slack';
import { SandboxInputError } from './schemas';
import type { RequestContext, ServerContext } from './server-context';

export function buildServer(ctx: ServerContext): FastifyInstance {
  const { admin } = ctx;
  const app = Fastify({
    logger: false,
    // Hung requests must not keep close() waiting.
    forceCloseConnections: true,
    keepAliveTimeout: 10_000,
    bodyLimit: 1_048_576,
  });
  app.decorateRequest('sbx', null);

  // The SDK sends `Content-Type: application/json` with no body on POST .../revoke: accept it.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err: FastifyError = Object.assign(new Error('request body is not valid JSON'), {
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
        name: 'SyntaxError',
        statusCode: 400,
      });
      done(err, undefined);
    }
  });

  const record = (req: FastifyRequest, status: number) => {
    const c = req.sbx;
    if (!c || c.recorded) return;
    c.recorded = true;
    admin.audit.record({
      time: new Date(c.arrivedAt).toISOString(),
      method: req.method,
      path: req.url.split('?')[0] ?? req.url,
      route: c.route,
      keyId: c.keyId,
      keyState: c.keyState,
      status,
      durationMs: Date.now() - c.arrivedAt,
      fault: c.fault,
    });
  };

  const hang = (req: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const res = reply.raw;
    const timer = setTimeout(() => res.destroy(), admin.options.maxHangMs);
    res.once('close', () => {
      clearTimeout(timer);
      record(req, 0);
    });
  };

  app.addHook('onRequest', async (req, reply) => {
    const route = req.routeOptions.config.routeKey;
    if (!route) return;
    const clerk = req.routeOptions.config.clerk === true;
    const c: RequestContext = { route, arrivedAt: Date.now(), keyId: null, keyState: null, fault: null, recorded: false };
    req.sbx = c;
    if (clerk && admin.outage.isDown()) {
      c.fault = 'outage';
      return sendClerk(reply, 503, clerkErrors('service_unavailable', 'Service unavailable', 'Clerk is experiencing an outage. Please try again later.'));
    }
    const action = admin.faults.decide(route, clerk);
    if (action.kind === 'hang') {
      c.fault = 'hang';
      hang(req, reply);
      return reply;
    }
    if (action.delayMs > 0) {
      c.fault = 'latency';
      await sleep(action.delayMs);
    }
    if (action.kind === 'error') {
      c.fault = 'error';
      if (action.status === 502) {
        // A proxy in front of Clerk answers, not Clerk: HTML, no Clerk error body.
        return reply.code(502).header('content-type', 'text/html').send('<html><body><h1>502 Bad Gateway</h1></body></html>');
      }
      return action.status === 500
        ? sendClerk(reply, 500, clerkErrors('internal_clerk_error', 'Oops, an unexpected error occurred', 'There was an internal error on our servers. We\'ve been notified and are working on fixing it.'))
        : sendClerk(reply, 503, clerkErrors('service_unavailable', 'Service unavailable', 'The service is temporarily unavailable. Please try again later.'));
    }
    if (!clerk) return;
    const key = admin.keys.lookup(req.headers.authorization);
    c.keyId = key.id;
    c.keyState = key.state;
    if (key.state === 'missing') {
      return sendClerk(reply, 401, clerkErrors('authorization_header_format_invalid', 'Invalid Authorization header format', "Invalid Authorization header format. Must be 'Bearer <YOUR_API_KEY>'"));
    }
    if (key.state !== 'active') {
      const msg = 'The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.';
      return sendClerk(reply, 401, clerkErrors('clerk_key_invalid', msg, msg));
    }
    const rl = admin.limiter.take(Date.now());
    if (rl && !rl.allowed) {
      c.fault = 'rate_limited';
      reply.header('retry-after', String(rl.retryAfterSeconds));
      return sendClerk(reply, 429, clerkErrors('too_many_requests', 'Too many requests', 'Too many requests, please try again later.'));
    }
  });

  // A skewed clock shows in the `Date` header of Clerk's answers and of the app's health route.
  app.addHook('onSend', async (req, reply) => {
    const target = req.url.startsWith('/v1/') ? 'clerk' : req.routeOptions.config.routeKey === 'GET /api/clerk-health' ? 'app' : null;
    if (target && admin.instance.clock.skewMs !== 0 && admin.instance.clock.applyTo.includes(target)) {
      reply.header('date', new Date(admin.instance.now(target)).toUTCString());
    }
  });

  app.addHook('onResponse', async (req, reply) => {
    record(req, reply.statusCode);
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    if (req.url.startsWith('/v1/')) {
      if (err instanceof ClerkParamError) {
        return sendClerk(reply, 422, clerkErrors(err.code, err.code === 'form_param_missing' ? 'missing requirement' : 'is invalid', err.longMessage, { param_name: err.param }));
      }
      if (err instanceof ClerkNotFound) {
        return sendClerk(reply, 404, clerkErrors('resource_not_found', 'not found', err.message));
      }
      const status = 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500 ? err.statusCode : 500;
      return sendClerk(reply, status, clerkErrors(status === 500 ? 'internal_clerk_error' : 'request_invalid', err.message, err.message));
    }
    if (err instanceof SandboxInputError) {
      return reply.code(400).send({ error: 'invalid_request', field: err.field, message: err.message, issues: err.issues });
    }
    if (err instanceof SandboxNotFoundError) return reply.code(404).send({ error: 'not_found', message: err.message });
    if ('statusCode' in err && typeof err.statusCode === 'number' && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'invalid_request', field: '(body)', message: err.message });
    }
    return reply.code(500).send({ error: 'internal_error', message: err.message });
  });

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/v1/')) return sendClerk(reply, 404, clerkErrors('resource_not_found', 'not found', `No route ${req.method} ${req.url.split('?')[0]} in the Clerk sandbox`));
    return reply.code(404).send({ error: 'not_found', message: `No route ${req.method} ${req.url.split('?')[0]}` });
  });

  // The emulated systems, one plugin each; they inherit the pipeline above.
  void app.register(clerkBackendApi, ctx);
  void app.register(svixPortal, ctx);
  void app.register(statusPage, ctx);
  void app.register(exampleApp, ctx);
  void app.register(adminApi, ctx);
  void app.register(vaultApi, ctx);
  void app.register(clerkPlatformApi, ctx);
  void app.register(vercelApi, ctx);
  void app.register(edgeConfigReads, ctx);
  void app.register(pagerDutyApi, ctx);
  void app.register(slackApi, ctx);
  return app;
}
