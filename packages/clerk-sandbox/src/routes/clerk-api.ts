/**
 * The Clerk Backend API subset under `/v1`, as `@clerk/backend` calls it. Querystrings are
 * declared as zod schemas that coerce the way Clerk does and let through every parameter the
 * SDK may add (`paginated`, repeated `user_id`, ...); a bad value answers Clerk's 422
 * `form_param_*`. Key, rate limit and faults are the server's pipeline (`clerk: true`).
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ClerkNotFound, ClerkParamError, clerkErrors, sendClerk, sendClerkJson } from '../clerk-reply';
import { SESSION_STATUSES, USER_ORDER_FIELDS, type SessionStatus, type UserOrderField } from '../columns';
import { zodValidatorCompiler, type RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';
import type { ClerkStore } from '../store';
import { emptyUserFilter, type UserFilter } from '../user-query';
import { SVIX_PORTAL_PATH } from './svix-portal';

// ---------------------------------------------------------------------------------------------
// Query parameters (fastify's parser gives string | string[] for repeated keys)

type Raw = string | string[] | undefined;
const raw = z.union([z.string(), z.array(z.string())]).optional();

/** Every value of a parameter, repeated or comma-separated. */
function all(v: Raw): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
}

function first(v: Raw): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function clerkInt(name: string, value: string | undefined, opts: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^-?\d+$/.test(value)) throw new ClerkParamError(name, 'form_param_format_invalid', `${name} must be an integer`);
  const v = Number(value);
  if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    const range = `${opts.min ?? '-∞'} and ${opts.max ?? '∞'}`;
    throw new ClerkParamError(name, 'form_param_value_invalid', `${name} must be between ${range}`);
  }
  return v;
}

/** A parameter parsed by `parse`; the ClerkParamError it throws becomes the field's issue. */
function param<T>(parse: (value: Raw) => T) {
  return raw.transform((value, ctx) => {
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof ClerkParamError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.longMessage, params: { clerkError: err } });
      return z.NEVER;
    }
  });
}

const int = (name: string, opts: { min?: number; max?: number } = {}) => param((v) => clerkInt(name, first(v), opts));
const text = param(first);
const list = param(all);

const pagination = {
  limit: param((v) => clerkInt('limit', first(v), { min: 1, max: 500 }) ?? 10),
  offset: param((v) => clerkInt('offset', first(v), { min: 0 }) ?? 0),
};

const orderBy = param((v): { field: UserOrderField; descending: boolean } => {
  const value = first(v) ?? '-created_at';
  const field = value.replace(/^[+-]/, '');
  if (!(USER_ORDER_FIELDS as readonly string[]).includes(field)) {
    throw new ClerkParamError('order_by', 'form_param_value_invalid', `order_by must be one of ${USER_ORDER_FIELDS.join(', ')}, with an optional + or - prefix`);
  }
  return { field: field as UserOrderField, descending: value.startsWith('-') };
});

/** `GET /v1/users` and `/count` filters, in the order Clerk checks them. */
const userFilterParams = {
  user_id: list,
  email_address: list,
  phone_number: list,
  username: list,
  web3_wallet: list,
  organization_id: list,
  provider_user_id: list,
  external_id: list,
  query: text,
  email_address_query: text,
  name_query: text,
  phone_number_query: text,
  username_query: text,
  banned: param((v) => {
    const value = first(v);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false') throw new ClerkParamError('banned', 'form_param_format_invalid', 'banned must be true or false');
    return value === 'true';
  }),
  last_active_at_after: int('last_active_at_after'),
  /** Read only when `last_active_at_after` is absent (its older name). */
  last_active_at_since: text,
  last_active_at_before: int('last_active_at_before'),
  created_at_after: int('created_at_after'),
  created_at_before: int('created_at_before'),
  last_sign_in_at_after: int('last_sign_in_at_after'),
  last_sign_in_at_before: int('last_sign_in_at_before'),
};

const userCountQuery = z.looseObject(userFilterParams);
const userListQuery = z.looseObject({ ...pagination, order_by: orderBy, ...userFilterParams, starting_after: text });
type UserFilterQuery = z.output<typeof userCountQuery>;

const sessionListQuery = z.preprocess(
  (q, ctx) => {
    // Clerk answers a missing owner before looking at any other parameter.
    const given = (name: string) => typeof q === 'object' && q !== null && Boolean(first((q as Record<string, Raw>)[name]));
    if (!given('user_id') && !given('client_id')) {
      const clerkError = new ClerkParamError('user_id', 'form_param_missing', 'Either user_id or client_id must be provided');
      ctx.addIssue({ code: 'custom', message: clerkError.longMessage, params: { clerkError } });
    }
    return q;
  },
  z.looseObject({
    user_id: text,
    client_id: text,
    status: param((v) => {
      const value = first(v);
      if (value !== undefined && !(SESSION_STATUSES as readonly string[]).includes(value)) {
        throw new ClerkParamError('status', 'form_param_value_invalid', `status must be one of ${SESSION_STATUSES.join(', ')}`);
      }
      return value as SessionStatus | undefined;
    }),
    ...pagination,
    paginated: param((v) => first(v) === 'true'),
  }),
);

/** `PATCH /v1/instance`: each allowed origin a bare origin (`scheme://host[:port]`), as Clerk stores them. */
const instancePatchBody = z
  .object({
    allowed_origins: z
      .array(z.string().refine((o) => URL.canParse(o) && new URL(o).origin === o.replace(/\/$/, ''), 'must be an origin like https://app.example.com'))
      .max(100)
      .optional(),
  })
  .loose();

const tokenBody = z.looseObject({ expires_in_seconds: z.number().int().min(30).max(315_360_000).nullish() });

/** The first issue of a Clerk querystring, as the 422 Clerk answers. */
function clerkParamError(error: z.ZodError): ClerkParamError {
  const issue = error.issues[0];
  const own = issue?.code === 'custom' ? issue.params?.clerkError : undefined;
  if (own instanceof ClerkParamError) return own;
  return new ClerkParamError(String(issue?.path[0] ?? 'query'), 'form_param_value_invalid', issue?.message ?? 'is invalid');
}

/** Translates the user filters into a store filter plus a cache key. */
function userFilter(store: ClerkStore, q: UserFilterQuery): { filter: UserFilter; cacheKey: string } {
  const f = emptyUserFilter();
  const intersect = (rows: number[]) => {
    f.include = f.include === null ? rows : f.include.filter((r) => rows.includes(r));
  };
  const ids = q.user_id;
  const includeIds = ids.filter((v) => !v.startsWith('-')).map((v) => v.replace(/^\+/, ''));
  for (const id of ids.filter((v) => v.startsWith('-'))) {
    for (const r of store.resolveUserIds([id.slice(1)])) f.exclude.add(r);
  }
  if (includeIds.length) intersect(store.resolveUserIds(includeIds));
  if (q.email_address.length) intersect(store.resolveEmails(q.email_address));
  // Sandbox users have no phone numbers, usernames, wallets, organizations, external accounts.
  if (q.phone_number.length || q.username.length || q.web3_wallet.length || q.organization_id.length || q.provider_user_id.length) f.matchNone = true;
  if (q.external_id.some((v) => !v.startsWith('-'))) f.matchNone = true;
  if (q.phone_number_query || q.username_query) f.matchNone = true;
  const search = (needle: string | undefined, fields: UserFilter['text'][number]['fields']) => {
    if (needle) f.text.push({ needle: needle.toLowerCase(), fields });
  };
  search(q.query, ['email', 'name', 'id']);
  search(q.email_address_query, ['email']);
  search(q.name_query, ['name']);
  f.banned = q.banned;
  f.lastActiveAtAfter = q.last_active_at_after ?? clerkInt('last_active_at_since', q.last_active_at_since);
  f.lastActiveAtBefore = q.last_active_at_before;
  f.createdAtAfter = q.created_at_after;
  f.createdAtBefore = q.created_at_before;
  f.lastSignInAtAfter = q.last_sign_in_at_after;
  f.lastSignInAtBefore = q.last_sign_in_at_before;
  const cacheKey = JSON.stringify(Object.keys(userFilterParams).map((name) => q[name as keyof typeof userFilterParams] ?? null));
  return { filter: f, cacheKey };
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

export async function clerkBackendApi(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const store = admin.store;
  app.setValidatorCompiler(zodValidatorCompiler(clerkParamError));
  const clerk = (routeKey: RouteKey, querystring?: z.ZodType) => ({
    config: { routeKey, clerk: true },
    ...(querystring ? { schema: { querystring } } : {}),
  });

  app.get<{ Querystring: z.output<typeof userListQuery> }>('/v1/users', clerk('GET /v1/users', userListQuery), async (req, reply) => {
    const q = req.query;
    const order = q.order_by;
    const { filter, cacheKey } = userFilter(store, q);
    const rows = store.queryUsers(filter, order, cacheKey);
    let startAt = q.offset;
    if (q.starting_after) {
      if (order.field !== 'created_at') throw new ClerkParamError('starting_after', 'form_param_value_invalid', 'starting_after requires ordering by created_at');
      if (q.offset !== 0) throw new ClerkParamError('offset', 'form_param_value_invalid', 'starting_after cannot be combined with a non-zero offset');
      startAt = cursorPosition(rows, store, q.starting_after, order.descending);
    }
    const page: string[] = [];
    for (let k = startAt; k < rows.length && page.length < q.limit; k++) page.push(store.userJsonString(rows[k]!));
    return sendClerkJson(reply, 200, `[${page.join(',')}]`);
  });

  app.get<{ Querystring: UserFilterQuery }>('/v1/users/count', clerk('GET /v1/users/count', userCountQuery), async (req, reply) => {
    const { filter, cacheKey } = userFilter(store, req.query);
    return sendClerk(reply, 200, { object: 'total_count', total_count: store.countUsers(filter, cacheKey) });
  });

  app.get<{ Params: { user_id: string } }>('/v1/users/:user_id', clerk('GET /v1/users/{user_id}'), async (req, reply) => {
    const { user_id } = req.params;
    const i = store.findUser(user_id);
    if (i < 0) throw new ClerkNotFound(`No user was found with id ${user_id}`);
    return sendClerk(reply, 200, store.userJson(i));
  });

  app.delete<{ Params: { user_id: string } }>('/v1/users/:user_id', clerk('DELETE /v1/users/{user_id}'), async (req, reply) => {
    const { user_id } = req.params;
    if (store.findUser(user_id) < 0) throw new ClerkNotFound(`No user was found with id ${user_id}`);
    return sendClerk(reply, 200, admin.deleteUser(user_id));
  });

  app.get<{ Querystring: z.output<typeof sessionListQuery> }>('/v1/sessions', clerk('GET /v1/sessions', sessionListQuery), async (req, reply) => {
    const { user_id: userId, client_id: clientId, status, limit, offset, paginated } = req.query;
    let rows: number[] = [];
    if (userId) {
      const i = store.findUser(userId);
      rows = i < 0 ? [] : store.sessionRows(i, status);
    }
    if (clientId) {
      const j = store.findSessionByClient(clientId);
      const byClient = j < 0 || (status && store.sessionStatus(j) !== status) || store.isDeleted(store.sessionUser(j)) ? [] : [j];
      rows = userId ? rows.filter((r) => byClient.includes(r)) : byClient;
    }
    const data = rows.slice(offset, offset + limit).map((j) => store.sessionJson(j));
    // `paginated=true` (what the SDK sends) wraps the page with the total; otherwise a bare array.
    return sendClerk(reply, 200, paginated ? { data, total_count: rows.length } : data);
  });

  app.get<{ Params: { session_id: string } }>('/v1/sessions/:session_id', clerk('GET /v1/sessions/{session_id}'), async (req, reply) => {
    const { session_id } = req.params;
    const j = store.findSession(session_id);
    if (j < 0) throw new ClerkNotFound(`No session was found with id ${session_id}`);
    return sendClerk(reply, 200, store.sessionJson(j));
  });

  app.post<{ Params: { session_id: string } }>('/v1/sessions/:session_id/revoke', clerk('POST /v1/sessions/{session_id}/revoke'), async (req, reply) => {
    const { session_id } = req.params;
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

  // The instance, its domains and the keys its session tokens are signed with (diagnostics read these).
  app.get('/v1/instance', clerk('GET /v1/instance'), async (_req, reply) => sendClerk(reply, 200, admin.instance.instanceJson()));

  // Clerk's UpdateInstance: the settings given change, the rest stay; 204 with no body. Only allowed_origins is kept here.
  app.patch('/v1/instance', clerk('PATCH /v1/instance'), async (req, reply) => {
    const body = instancePatchBody.safeParse(req.body ?? {});
    if (!body.success) {
      const issue = body.error.issues[0];
      throw new ClerkParamError(String(issue?.path[0] ?? 'body'), 'form_param_format_invalid', `${String(issue?.path.join('.') ?? 'body')} is invalid: ${issue?.message ?? 'unexpected value'}`);
    }
    if (body.data.allowed_origins) admin.instance.setAllowedOrigins(body.data.allowed_origins);
    return reply.code(204).send();
  });

  app.get('/v1/domains', clerk('GET /v1/domains'), async (_req, reply) => {
    const data = admin.instance.domains(ctx.selfUrl());
    return sendClerk(reply, 200, { data, total_count: data.length });
  });

  app.get('/v1/jwks', clerk('GET /v1/jwks'), async (_req, reply) => sendClerk(reply, 200, admin.instance.jwks()));

  app.post<{ Params: { session_id: string } }>('/v1/sessions/:session_id/tokens', clerk('POST /v1/sessions/{session_id}/tokens'), async (req, reply) => {
    const { session_id } = req.params;
    const body = tokenBody.safeParse(req.body ?? {});
    if (!body.success) throw new ClerkParamError('expires_in_seconds', 'form_param_value_invalid', 'expires_in_seconds must be an integer between 30 and 315360000');
    const j = store.findSession(session_id);
    // Clerk's spec names 401 and 404 only: a session that is not active has no token to give.
    if (j < 0 || store.sessionStatus(j) !== 'active') throw new ClerkNotFound(`No active session was found with id ${session_id}`);
    const azp = admin.app.origin ?? new URL(ctx.selfUrl()).origin;
    const userId = store.sessionJson(j).user_id;
    const jwt = admin.instance.sessionToken({ sessionId: session_id, userId, azp }, body.data.expires_in_seconds ?? undefined);
    return sendClerk(reply, 200, { object: 'token', jwt });
  });

  // What `webhooks.generateSvixAuthURL()` asks for: a link to the (stand-in) Svix app portal.
  app.post('/v1/webhooks/svix_url', clerk('POST /v1/webhooks/svix_url'), async (_req, reply) => {
    return sendClerk(reply, 200, { svix_url: `${ctx.selfUrl()}${SVIX_PORTAL_PATH}?token=${randomBytes(12).toString('hex')}` });
  });
}
