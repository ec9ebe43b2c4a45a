/**
 * The sandbox's HTTP surface (fastify): the Clerk Backend API subset under `/v1`, the status
 * page (`/api/v2/*.json`), the example app (`/api/clerk-health`, `/app/*`) and the admin API
 * (`/__sandbox/*`, never rate limited nor faulted).
 *
 * Request pipeline of a Clerk route, in the order a real request meets it: outage → injected
 * fault (hang / latency / error status) → secret key → rate limit → handler (where a
 * `rejectSessions` fault answers its 4xx) → audit.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SandboxNotFoundError, type SandboxAdmin } from './admin';
import type { AuditFault, KeyState } from './audit';
import {
  SandboxInputError,
  parseInput,
  rateLimitSchema,
  type RouteKey,
} from './schemas';
import { SESSION_STATUSES, USER_ORDER_FIELDS, type SessionStatus, type UserOrderField } from './columns';
import type { ClerkStore } from './store';
import { emptyUserFilter, type UserFilter } from './user-query';

declare module 'fastify' {
  interface FastifyContextConfig {
    routeKey?: RouteKey;
    /** A Clerk Backend API route: secret key, rate limit and global faults apply. */
    clerk?: boolean;
  }
  interface FastifyRequest {
    sbx: RequestContext | null;
  }
}

interface RequestContext {
  route: RouteKey;
  arrivedAt: number;
  keyId: string | null;
  keyState: KeyState | null;
  fault: AuditFault | null;
  recorded: boolean;
}

// ---------------------------------------------------------------------------------------------
// Clerk-shaped answers

interface ClerkErrorItem {
  code: string;
  message: string;
  long_message: string;
  meta: Record<string, unknown>;
}

function traceId(): string {
  return randomBytes(16).toString('hex');
}

function clerkErrors(code: string, message: string, longMessage: string, meta: Record<string, unknown> = {}) {
  const errors: ClerkErrorItem[] = [{ code, message, long_message: longMessage, meta }];
  return { errors, clerk_trace_id: traceId() };
}

/**
 * The SDK parses a body as JSON only when Content-Type is exactly `application/json` (as Clerk
 * sends it); fastify appends `; charset=utf-8` to strings, not to a Buffer.
 */
function sendClerk(reply: FastifyReply, status: number, body: unknown): FastifyReply {
  return reply.code(status).header('content-type', 'application/json').send(Buffer.from(JSON.stringify(body)));
}

/** A request parameter Clerk would reject (422 form_param_* errors). */
class ClerkParamError extends Error {
  constructor(
    readonly param: string,
    readonly code: 'form_param_format_invalid' | 'form_param_value_invalid' | 'form_param_missing',
    readonly longMessage: string,
  ) {
    super(longMessage);
  }
}

class ClerkNotFound extends Error {}

// ---------------------------------------------------------------------------------------------
// Query parameter parsing (fastify's parser gives string | string[] for repeated keys)

type Query = Record<string, string | string[] | undefined>;

function all(q: Query, name: string): string[] {
  const v = q[name];
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function first(q: Query, name: string): string | undefined {
  const v = q[name];
  return Array.isArray(v) ? v[0] : v;
}

function intParam(q: Query, name: string, opts: { min?: number; max?: number } = {}): number | undefined {
  const raw = first(q, name);
  if (raw === undefined || raw === '') return undefined;
  if (!/^-?\d+$/.test(raw)) throw new ClerkParamError(name, 'form_param_format_invalid', `${name} must be an integer`);
  const v = Number(raw);
  if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    const range = `${opts.min ?? '-∞'} and ${opts.max ?? '∞'}`;
    throw new ClerkParamError(name, 'form_param_value_invalid', `${name} must be between ${range}`);
  }
  return v;
}

function pagination(q: Query): { limit: number; offset: number } {
  return { limit: intParam(q, 'limit', { min: 1, max: 500 }) ?? 10, offset: intParam(q, 'offset', { min: 0 }) ?? 0 };
}

const FILTER_PARAMS = [
  'user_id', 'email_address', 'phone_number', 'external_id', 'username', 'web3_wallet', 'organization_id',
  'provider', 'provider_user_id', 'query', 'email_address_query', 'phone_number_query', 'username_query',
  'name_query', 'banned', 'last_active_at_before', 'last_active_at_after', 'last_active_at_since',
  'created_at_before', 'created_at_after', 'last_sign_in_at_before', 'last_sign_in_at_after',
] as const;

/** Translates `GET /v1/users` (and `/count`) filters into a store filter plus a cache key. */
function userFilter(store: ClerkStore, q: Query): { filter: UserFilter; cacheKey: string } {
  const f = emptyUserFilter();
  const intersect = (rows: number[]) => {
    f.include = f.include === null ? rows : f.include.filter((r) => rows.includes(r));
  };
  const ids = all(q, 'user_id');
  const includeIds = ids.filter((v) => !v.startsWith('-')).map((v) => v.replace(/^\+/, ''));
  for (const id of ids.filter((v) => v.startsWith('-'))) {
    for (const r of store.resolveUserIds([id.slice(1)])) f.exclude.add(r);
  }
  if (includeIds.length) intersect(store.resolveUserIds(includeIds));
  const emails = all(q, 'email_address');
  if (emails.length) intersect(store.resolveEmails(emails));
  // Sandbox users have no phone numbers, usernames, wallets, organizations, external accounts.
  for (const name of ['phone_number', 'username', 'web3_wallet', 'organization_id', 'provider_user_id'] as const) {
    if (all(q, name).length) f.matchNone = true;
  }
  if (all(q, 'external_id').some((v) => !v.startsWith('-'))) f.matchNone = true;
  for (const name of ['phone_number_query', 'username_query'] as const) if (first(q, name)) f.matchNone = true;
  const text = (name: string, fields: UserFilter['text'][number]['fields']) => {
    const v = first(q, name);
    if (v) f.text.push({ needle: v.toLowerCase(), fields });
  };
  text('query', ['email', 'name', 'id']);
  text('email_address_query', ['email']);
  text('name_query', ['name']);
  const banned = first(q, 'banned');
  if (banned !== undefined) {
    if (banned !== 'true' && banned !== 'false') throw new ClerkParamError('banned', 'form_param_format_invalid', 'banned must be true or false');
    f.banned = banned === 'true';
  }
  f.lastActiveAtAfter = intParam(q, 'last_active_at_after') ?? intParam(q, 'last_active_at_since');
  f.lastActiveAtBefore = intParam(q, 'last_active_at_before');
  f.createdAtAfter = intParam(q, 'created_at_after');
  f.createdAtBefore = intParam(q, 'created_at_before');
  f.lastSignInAtAfter = intParam(q, 'last_sign_in_at_after');
  f.lastSignInAtBefore = intParam(q, 'last_sign_in_at_before');
  const cacheKey = FILTER_PARAMS.map((p) => `${p}=${all(q, p).join(',')}`).join('&');
  return { filter: f, cacheKey };
}

function userOrder(q: Query): { field: UserOrderField; descending: boolean } {
  const raw = first(q, 'order_by') ?? '-created_at';
  const descending = raw.startsWith('-');
  const field = raw.replace(/^[+-]/, '');
  if (!(USER_ORDER_FIELDS as readonly string[]).includes(field)) {
    throw new ClerkParamError('order_by', 'form_param_value_invalid', `order_by must be one of ${USER_ORDER_FIELDS.join(', ')}, with an optional + or - prefix`);
  }
  return { field: field as UserOrderField, descending };
}

// ---------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function sdkVersion(): string {
  try {
    const req = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js'));
    const entry = req.resolve('@clerk/backend');
    const pkg: unknown = JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8'));
    return z.object({ version: z.string() }).parse(pkg).version;
  } catch {
    return 'unknown';
  }
}

export interface ServerContext {
  admin: SandboxAdmin;
  /** The sandbox's own base URL (known once listening); the example app calls Clerk through it. */
  selfUrl: () => string;
}

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

  registerClerkRoutes(app, ctx);
  registerSideRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  return app;
}

// ---------------------------------------------------------------------------------------------
// Clerk Backend API

function registerClerkRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { admin } = ctx;
  const store = admin.store;
  const clerk = (routeKey: RouteKey) => ({ config: { routeKey, clerk: true } });

  app.get('/v1/users', clerk('GET /v1/users'), async (req, reply) => {
    const q = req.query as Query;
    const { limit, offset } = pagination(q);
    const order = userOrder(q);
    const { filter, cacheKey } = userFilter(store, q);
    const rows = store.queryUsers(filter, order, cacheKey);
    let startAt = offset;
    const cursor = first(q, 'starting_after');
    if (cursor) {
      if (order.field !== 'created_at') throw new ClerkParamError('starting_after', 'form_param_value_invalid', 'starting_after requires ordering by created_at');
      if (offset !== 0) throw new ClerkParamError('offset', 'form_param_value_invalid', 'starting_after cannot be combined with a non-zero offset');
      startAt = cursorPosition(rows, store, cursor, order.descending);
    }
    const page: string[] = [];
    for (let k = startAt; k < rows.length && page.length < limit; k++) page.push(store.userJsonString(rows[k]!));
    return reply.code(200).header('content-type', 'application/json').send(Buffer.from(`[${page.join(',')}]`));
  });

  app.get('/v1/users/count', clerk('GET /v1/users/count'), async (req, reply) => {
    const { filter, cacheKey } = userFilter(store, req.query as Query);
    return sendClerk(reply, 200, { object: 'total_count', total_count: store.countUsers(filter, cacheKey) });
  });

  app.get('/v1/users/:user_id', clerk('GET /v1/users/{user_id}'), async (req, reply) => {
    const { user_id } = req.params as { user_id: string };
    const i = store.findUser(user_id);
    if (i < 0) throw new ClerkNotFound(`No user was found with id ${user_id}`);
    return sendClerk(reply, 200, store.userJson(i));
  });

  app.delete('/v1/users/:user_id', clerk('DELETE /v1/users/{user_id}'), async (req, reply) => {
    const { user_id } = req.params as { user_id: string };
    if (store.findUser(user_id) < 0) throw new ClerkNotFound(`No user was found with id ${user_id}`);
    return sendClerk(reply, 200, admin.deleteUser(user_id));
  });

  app.get('/v1/sessions', clerk('GET /v1/sessions'), async (req, reply) => {
    const q = req.query as Query;
    const userId = first(q, 'user_id');
    const clientId = first(q, 'client_id');
    if (!userId && !clientId) throw new ClerkParamError('user_id', 'form_param_missing', 'Either user_id or client_id must be provided');
    const status = first(q, 'status');
    if (status !== undefined && !(SESSION_STATUSES as readonly string[]).includes(status)) {
      throw new ClerkParamError('status', 'form_param_value_invalid', `status must be one of ${SESSION_STATUSES.join(', ')}`);
    }
    const { limit, offset } = pagination(q);
    let rows: number[] = [];
    if (userId) {
      const i = store.findUser(userId);
      rows = i < 0 ? [] : store.sessionRows(i, status as SessionStatus | undefined);
    }
    if (clientId) {
      const j = store.findSessionByClient(clientId);
      const byClient = j < 0 || (status && store.sessionStatus(j) !== status) || store.isDeleted(store.sessionUser(j)) ? [] : [j];
      rows = userId ? rows.filter((r) => byClient.includes(r)) : byClient;
    }
    const data = rows.slice(offset, offset + limit).map((j) => store.sessionJson(j));
    // `paginated=true` (what the SDK sends) wraps the page with the total; otherwise a bare array.
    return sendClerk(reply, 200, first(q, 'paginated') === 'true' ? { data, total_count: rows.length } : data);
  });

  app.get('/v1/sessions/:session_id', clerk('GET /v1/sessions/{session_id}'), async (req, reply) => {
    const { session_id } = req.params as { session_id: string };
    const j = store.findSession(session_id);
    if (j < 0) throw new ClerkNotFound(`No session was found with id ${session_id}`);
    return sendClerk(reply, 200, store.sessionJson(j));
  });

  app.post('/v1/sessions/:session_id/revoke', clerk('POST /v1/sessions/{session_id}/revoke'), async (req, reply) => {
    const { session_id } = req.params as { session_id: string };
    // Clerk's own refusal of this item: after key and rate limit, like any answer of the handler.
    const rejection = admin.faults.rejectRevoke(session_id);
    if (rejection) {
      if (req.sbx) req.sbx.fault = 'rejected';
      admin.audit.recordRevoke(session_id, 'rejected');
      return sendClerk(reply, rejection.status, clerkErrors(rejection.code, rejection.message, rejection.message, { session_id, sandbox_fault: 'rejectSessions' }));
    }
    const j = store.findSession(session_id);
    if (j < 0) throw new ClerkNotFound(`No session was found with id ${session_id}`);
    const changed = admin.revokeSession(j);
    if (!changed && admin.options.revokeInactiveSession === 'error') {
      const st = store.sessionStatus(j);
      return sendClerk(reply, 400, clerkErrors('session_not_active', 'session is not active', `Session ${session_id} cannot be revoked because its status is ${st}.`, { session_id, status: st }));
    }
    return sendClerk(reply, 200, store.sessionJson(j));
  });

  app.post('/v1/webhooks/svix_url', clerk('POST /v1/webhooks/svix_url'), async (_req, reply) => {
    return sendClerk(reply, 200, { svix_url: `${ctx.selfUrl()}/__sandbox/svix-portal?token=${randomBytes(12).toString('hex')}` });
  });
}

/**
 * Index in `rows` of the first row after the cursor user. Works even if that user was deleted:
 * row order is created_at order, so a deleted row still marks its place among the live ones.
 */
function cursorPosition(rows: Uint32Array, store: ClerkStore, cursorId: string, descending: boolean): number {
  const target = store.findUser(cursorId, { includeDeleted: true });
  if (target < 0) throw new ClerkParamError('starting_after', 'form_param_value_invalid', `No user was found with id ${cursorId}`);
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const after = descending ? rows[mid]! < target : rows[mid]! > target;
    if (after) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Status page and example app

const COMPONENTS = ['Frontend API', 'Backend API', 'Dashboard', 'Webhooks', 'Account Portal'] as const;
const INDICATOR_TEXT = { none: 'All Systems Operational', minor: 'Minor Service Outage', major: 'Partial System Outage', critical: 'Major System Outage' } as const;

function registerSideRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { admin } = ctx;
  const side = (routeKey: RouteKey) => ({ config: { routeKey } });
  const version = sdkVersion();
  const pageCreated = new Date(admin.startedAt).toISOString();

  const statusNow = () => {
    const down = admin.outage.isDown();
    const indicator = down ? admin.outage.currentIndicator : 'none';
    const page = { id: 'clerk-sandbox', name: 'Clerk (SANDBOX)', url: `${ctx.selfUrl()}/api/v2/status.json`, time_zone: 'Etc/UTC', updated_at: new Date().toISOString() };
    return { down, indicator, page, status: { indicator, description: INDICATOR_TEXT[indicator] } };
  };

  app.get('/api/v2/status.json', side('GET /api/v2/status.json'), async () => {
    const s = statusNow();
    return { page: s.page, status: s.status };
  });

  app.get('/api/v2/summary.json', side('GET /api/v2/summary.json'), async () => {
    const s = statusNow();
    const hit = (name: string): string => {
      if (!s.down) return 'operational';
      if (s.indicator === 'critical') return 'major_outage';
      if (name === 'Backend API' || name === 'Frontend API') return s.indicator === 'major' ? 'major_outage' : 'partial_outage';
      return s.indicator === 'major' ? 'degraded_performance' : 'operational';
    };
    const updated = s.page.updated_at;
    const components = COMPONENTS.map((name, position) => ({
      id: `cmp_${name.toLowerCase().replace(/\s+/g, '_')}`,
      name,
      status: hit(name),
      created_at: pageCreated,
      updated_at: updated,
      position: position + 1,
      description: null,
      showcase: true,
      start_date: null,
      group_id: null,
      page_id: s.page.id,
      group: false,
      only_show_if_degraded: false,
    }));
    const startedAt = new Date(admin.outage.startedAt ?? Date.now()).toISOString();
    const incidents = s.down
      ? [
          {
            id: 'inc_sandbox_outage',
            name: 'Elevated error rates on the Clerk APIs (sandbox outage switch)',
            status: 'investigating',
            created_at: startedAt,
            updated_at: updated,
            monitoring_at: null,
            resolved_at: null,
            impact: s.indicator,
            shortlink: `${ctx.selfUrl()}/api/v2/summary.json`,
            started_at: startedAt,
            page_id: s.page.id,
            incident_updates: [
              {
                id: 'upd_sandbox_outage',
                status: 'investigating',
                body: 'We are investigating elevated error rates. (Clerk sandbox: outage switch on.)',
                incident_id: 'inc_sandbox_outage',
                created_at: startedAt,
                updated_at: startedAt,
                display_at: startedAt,
                affected_components: components.filter((c) => c.status !== 'operational').map((c) => ({ code: c.id, name: c.name, old_status: 'operational', new_status: c.status })),
              },
            ],
            components: components.filter((c) => c.status !== 'operational'),
          },
        ]
      : [];
    return { page: s.page, components, incidents, scheduled_maintenances: [], status: s.status };
  });

  app.get('/api/clerk-health', side('GET /api/clerk-health'), async (_req, reply) => {
    const t0 = Date.now();
    const base = { sandbox: true, sdk: { name: '@clerk/backend', version }, middleware: admin.app.middlewareFailure ? 'failing' : 'ok' };
    try {
      const res = await fetch(`${ctx.selfUrl()}/v1/users/count`, {
        headers: { authorization: `Bearer ${admin.app.secretKey}`, 'user-agent': `example-app @clerk/backend@${version}` },
        signal: AbortSignal.timeout(3000),
      });
      const text = await res.text();
      const latencyMs = Date.now() - t0;
      if (res.ok) return reply.code(200).send({ status: 'ok', ...base, clerk: { reachable: true, status: res.status, latencyMs } });
      const parsed = z.object({ errors: z.array(z.object({ code: z.string(), message: z.string() })) }).safeParse(safeJson(text));
      const err = parsed.success ? parsed.data.errors[0] : undefined;
      return reply.code(503).send({
        status: 'error',
        ...base,
        clerk: { reachable: true, status: res.status, latencyMs, errorCode: err?.code ?? null, message: err?.message ?? text.slice(0, 200) },
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      return reply.code(503).send({
        status: 'error',
        ...base,
        clerk: { reachable: false, status: null, latencyMs: Date.now() - t0, errorCode: timedOut ? 'timeout' : 'network_error', message: e instanceof Error ? e.message : String(e) },
      });
    }
  });

  const page = (title: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    if (admin.app.middlewareFailure) {
      return reply.code(500).send({ error: 'Internal Server Error', message: 'clerkMiddleware() failed: unable to authenticate the request (sandbox middlewareFailure switch)', sandbox: true });
    }
    return reply.code(200).header('content-type', 'text/html; charset=utf-8').send(`<!doctype html><title>${title} — example app (Clerk SANDBOX)</title><h1>${title}</h1>`);
  };
  app.get('/app/dashboard', side('GET /app/dashboard'), page('Dashboard'));
  app.get('/app/profile', side('GET /app/profile'), page('Profile'));
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Admin API

/** CPU and memory of the sandbox process (benchmarks derive capacity per CPU-second from it). */
export function processUsage(): { cpuMs: number; rssMb: number } {
  const cpu = process.cpuUsage();
  return { cpuMs: (cpu.user + cpu.system) / 1000, rssMb: Math.round(process.memoryUsage().rss / 2 ** 20) };
}

const sessionsQuerySchema = z.object({ status: z.enum(SESSION_STATUSES).default('active') }).strict();
const eventsQuerySchema = z.object({ type: z.string().optional(), status: z.string().optional() }).strict();
const rateLimitBodySchema = z.object({ rateLimit: rateLimitSchema }).strict();

function registerAdminRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { admin } = ctx;
  const A = '/__sandbox';

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
    keys: admin.listKeys(),
    process: processUsage(),
  }));

  app.get(`${A}/faults`, async () => ({ faults: admin.getFaults(), injected: admin.faultCounters() }));
  app.put(`${A}/faults`, async (req) => ({ faults: admin.setFaults(req.body) }));
  app.delete(`${A}/faults`, async () => ({ faults: admin.setFaults({}) }));

  app.get(`${A}/rate-limit`, async () => ({ rateLimit: admin.getRateLimit(), limited: admin.limiter.limited }));
  app.put(`${A}/rate-limit`, async (req) => {
    const body = parseInput(rateLimitBodySchema, req.body);
    return { rateLimit: admin.setRateLimit(body.rateLimit) };
  });

  app.get(`${A}/keys`, async () => ({ keys: admin.listKeys() }));
  app.post(`${A}/keys`, async (req, reply) => reply.code(201).send(admin.addKey(req.body ?? {})));
  app.delete(`${A}/keys/:id`, async (req) => {
    const { id } = req.params as { id: string };
    admin.deleteKey(id);
    return { id, deleted: true };
  });

  app.get(`${A}/audit`, async (req) => ({ entries: admin.auditEntries(req.query as Record<string, string>) }));
  app.get(`${A}/audit/summary`, async () => admin.auditSummary());
  app.get(`${A}/audit/revokes`, async () => ({ revokes: admin.revokes() }));
  app.delete(`${A}/audit`, async () => {
    admin.resetAudit();
    return { reset: true };
  });

  app.post(`${A}/seed`, async (req) => admin.seed(req.body));
  app.get(`${A}/stats`, async () => admin.stats());
  app.get(`${A}/sessions`, async (req) => {
    const q = parseInput(sessionsQuerySchema, req.query);
    return { status: q.status, ids: admin.sessionIds(q.status) };
  });
  app.post(`${A}/users`, async (req, reply) => reply.code(201).send({ users: admin.createUsers(req.body) }));
  app.delete(`${A}/users/:id`, async (req) => admin.deleteUser((req.params as { id: string }).id));

  app.get(`${A}/outage`, async () => admin.outageState());
  app.post(`${A}/outage`, async (req) => admin.setOutage(req.body));

  app.get(`${A}/webhooks`, async () => ({ ...admin.webhookConfig(), counts: admin.webhooks.counts() }));
  app.put(`${A}/webhooks`, async (req) => admin.setWebhooks(req.body));
  app.get(`${A}/webhooks/events`, async (req) => ({ events: admin.webhookEvents(parseInput(eventsQuerySchema, req.query)) }));
  app.post(`${A}/webhooks/replay`, async (req) => admin.replayWebhooks(req.body ?? {}));
  app.post(`${A}/webhooks/flush`, async () => {
    await admin.webhooksIdle();
    return { counts: admin.webhooks.counts() };
  });

  app.get(`${A}/app`, async () => admin.appState());
  app.put(`${A}/app`, async (req) => admin.setApp(req.body));

  // What `webhooks.generateSvixAuthURL()` points at: a read-only stand-in for the Svix portal.
  app.get(`${A}/svix-portal`, async (_req, reply) => {
    const rows = admin
      .webhookEvents()
      .slice(-500)
      .map((e) => `<tr><td>${e.id}</td><td>${e.type}</td><td>${e.subjectId}</td><td>${e.status}</td><td>${e.attempts}</td><td>${e.createdAt}</td></tr>`)
      .join('');
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .send(`<!doctype html><title>Svix portal (Clerk SANDBOX)</title><h1>Webhook messages (Clerk SANDBOX)</h1><table><tr><th>id</th><th>type</th><th>subject</th><th>status</th><th>attempts</th><th>created</th></tr>${rows}</table>`);
  });
}
