/**
 * The instance's session settings through Clerk's Platform API instance config (the
 * `session_issues` remedy for a too-short session lifetime): read them, and change them with a
 * version precondition, optionally as a dry run.
 *
 * Checked 2026-12-03 in github.com/clerk/openapi-specs `platform/beta.yml` (servers
 * `https://api.clerk.com/v1`; `PlatformGetConfig`, `PlatformPatchConfig`) and github.com/clerk/cli
 * `packages/cli-core` (src/lib/plapi.ts, commands/config, cli-program.test.ts):
 * - `GET /v1/platform/applications/{applicationID}/instances/{envOrInsID}/config[?keys=session]`
 *   (`envOrInsID`: `development`, `production` or `ins_…`), bearer Platform API token, scope
 *   `applications:manage` → `PlatformConfigResponse`: the keys and `config_version` (a string);
 * - `PATCH` same path, deep merge; `?dry_run=true` (query, not body) previews; `?destructive=true`
 *   lets a key be set to null; `If-Match: <config_version>` is the optimistic-concurrency
 *   precondition; `?keys=` names keys to return (default: only the updated ones) →
 *   `PlatformConfigPatchResponse` `{config_version, dry_run, before, after}`; `config_version` is
 *   not accepted in the body (the CLI strips it);
 * - errors are `ClerkErrors` `{errors:[{code, message, long_message, meta}], clerk_trace_id}`;
 *   PATCH lists 400, 401, 402, 403, 404, 409 (Conflict) and 422; the CLI handles 400
 *   `config_validation_error` (`meta.param_name` `session.lifetime`, `meta.config_key` `session`),
 *   `unknown_config_key` and `destructive_operation_not_allowed`;
 * - the maximum lifetime is `session.lifetime`, in seconds (604800, Clerk's 7-day default, in the
 *   CLI's examples).
 * Not found in either, so assumed (and emulated so by the sandbox): the inactivity timeout as
 * `session.inactivity_timeout` in seconds (null: off); a stale `If-Match` answered 409 (the only
 * conflict status the spec lists; its code undocumented, `conflict` in the sandbox) — 412 is taken
 * as the same. The status alone decides: a 409/412 to a request with `If-Match` is a mismatch.
 */
import { Context } from '@temporalio/activity';
import { z } from 'zod';
import type { Env } from '../config';
import type { PlatformErrorName } from '../shared';
import { HttpFailure, retryAfterMs, type HttpFailureInit } from './http-errors';

export interface InstanceConfigOptions {
  /** CLERK_PLATFORM_API_URL; default https://api.clerk.com (the sandbox's URL in sandbox mode). */
  url?: string;
  /** CLERK_PLATFORM_API_TOKEN: a Platform API token, not a secret key. */
  token: string;
  /** CLERK_APPLICATION_ID (`app_…`). */
  applicationId: string;
  /** CLERK_INSTANCE: `ins_…`, or the environment (`production`, `development`). */
  instance: string;
  timeoutMs?: number;
}

/** The two settings; null is "off" (Clerk keeps at least one on). */
export interface SessionValues {
  maxLifetimeMs: number | null;
  inactivityTimeoutMs: number | null;
}

export interface SessionSettings extends SessionValues {
  /** `config_version`: what a change must name to go through. */
  version: string;
}

export interface SessionSettingsChange {
  maxLifetimeMs: number;
  /** Undefined: left as it is; null: turned off. */
  inactivityTimeoutMs?: number | null;
}

export interface SessionSettingsResult {
  dryRun: boolean;
  /** The settings differ after (or would, for a dry run). */
  changed: boolean;
  before: SessionValues;
  after: SessionValues;
  /** The version now: unchanged by a dry run or a change to the same values. */
  version: string;
}

// -- failures -----------------------------------------------------------------------------------

abstract class PlatformApiError extends HttpFailure {
  abstract override readonly name: Exclude<PlatformErrorName, 'PlatformApiNotConfigured'>;
  toDetails(): { operation: string; status: number | null; code: string | null } {
    return { operation: this.operation, status: this.status ?? null, code: this.code ?? null };
  }
}

/** 5xx, 429, a network error or a timeout: retried (after `Retry-After` when given). */
export class PlatformApiUnavailable extends PlatformApiError {
  override readonly name = 'PlatformApiUnavailable' as const;
  readonly retryable = true;
}

/** Any other refusal (bad token, unknown application or instance, invalid value, answer not as specified): not retried. */
export class PlatformApiRejected extends PlatformApiError {
  override readonly name = 'PlatformApiRejected' as const;
  readonly retryable = false;
}

/** The config changed since the version given was read: not retried; read again and decide again. */
export class InstanceConfigVersionMismatch extends PlatformApiError {
  override readonly name = 'InstanceConfigVersionMismatch' as const;
  readonly retryable = false;
}

// -- answers ------------------------------------------------------------------------------------

const seconds = z.number().int().nonnegative().nullable();
/** A string per the spec; a number is taken too (the CLI's fixtures use one). */
const configVersion = z.union([z.string().min(1), z.number().int()]).transform(String);
/** `lifetime` must be there; `inactivity_timeout` (the assumed name) may not be: then off. */
const sessionKey = z.looseObject({ lifetime: seconds, inactivity_timeout: seconds.optional() });
const configAnswer = z.looseObject({ config_version: configVersion, session: sessionKey });
const patchAnswer = z.looseObject({
  config_version: configVersion,
  dry_run: z.boolean().optional(),
  before: z.looseObject({ session: sessionKey.optional() }).optional(),
  after: z.looseObject({ session: sessionKey.optional() }).optional(),
});
const clerkErrorBody = z.looseObject({ errors: z.array(z.looseObject({ code: z.string().optional(), long_message: z.string().optional(), message: z.string().optional() })).min(1) });

const toValues = (s: z.output<typeof sessionKey>): SessionValues => ({
  maxLifetimeMs: s.lifetime === null ? null : s.lifetime * 1000,
  inactivityTimeoutMs: s.inactivity_timeout == null ? null : s.inactivity_timeout * 1000,
});

// -- calls --------------------------------------------------------------------------------------

const OPERATION = '/v1/platform/applications/{applicationID}/instances/{envOrInsID}/config';

function configUrl(o: InstanceConfigOptions, query: Record<string, string>): string {
  const base = (o.url ?? 'https://api.clerk.com').replace(/\/+$/, '');
  const qs = new URLSearchParams(query);
  return `${base}/v1/platform/applications/${encodeURIComponent(o.applicationId)}/instances/${encodeURIComponent(o.instance)}/config${qs.size ? `?${qs}` : ''}`;
}

/** An error's code or class, never its message (a client's "invalid header value" may quote the token). */
function errorCode(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: unknown };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : undefined;
  return code ?? (typeof e?.name === 'string' ? e.name : 'error');
}

/** One call; the parsed 2xx body, or a typed failure whose message never holds the token. */
async function call(o: InstanceConfigOptions, method: 'GET' | 'PATCH', query: Record<string, string>, extra: { body?: unknown; ifMatch?: string; signal?: AbortSignal } = {}): Promise<unknown> {
  const operation = `${method} ${OPERATION}`;
  const timeout = AbortSignal.timeout(o.timeoutMs ?? 15_000);
  const headers: Record<string, string> = { authorization: `Bearer ${o.token}`, accept: 'application/json' };
  if (extra.body !== undefined) headers['content-type'] = 'application/json';
  if (extra.ifMatch !== undefined) headers['if-match'] = extra.ifMatch;
  let res: Response;
  try {
    res = await fetch(configUrl(o, query), {
      method,
      headers,
      ...(extra.body !== undefined ? { body: JSON.stringify(extra.body) } : {}),
      signal: extra.signal ? AbortSignal.any([timeout, extra.signal]) : timeout,
    });
  } catch (err) {
    // Cancelled (the activity's signal): leave as the cancellation, not as an outage.
    if (extra.signal?.aborted) throw extra.signal.reason;
    throw new PlatformApiUnavailable(`Platform API ${operation} did not answer (${errorCode(err)})`, { operation });
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (res.ok) return body;
  const e = clerkErrorBody.safeParse(body).data?.errors[0];
  const scrub = (s: string) => s.split(o.token).join('[redacted]');
  const detail = scrub(e?.long_message ?? e?.message ?? (text.trim().slice(0, 200) || 'no detail'));
  const init: HttpFailureInit = { operation, status: res.status, ...(e?.code ? { code: e.code } : {}) };
  const message = `Platform API ${operation} answered ${res.status}${e?.code ? ` ${e.code}` : ''}: ${detail}`;
  if (res.status >= 500 || res.status === 429) {
    const wait = retryAfterMs(res.headers);
    throw new PlatformApiUnavailable(message, { ...init, ...(wait !== undefined ? { retryAfterMs: wait } : {}) });
  }
  if (extra.ifMatch !== undefined && (res.status === 409 || res.status === 412)) {
    throw new InstanceConfigVersionMismatch(`${message} (version ${extra.ifMatch} is no longer current)`, init);
  }
  throw new PlatformApiRejected(message, init);
}

function parsed<S extends z.ZodType>(schema: S, body: unknown, operation: string): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new PlatformApiRejected(`Platform API ${operation} answered 200 but not as specified (${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'})`, { operation, status: 200 });
}

export async function readSessionSettings(o: InstanceConfigOptions, signal?: AbortSignal): Promise<SessionSettings> {
  const body = await call(o, 'GET', { keys: 'session' }, signal ? { signal } : {});
  const a = parsed(configAnswer, body, `GET ${OPERATION}`);
  return { ...toValues(a.session), version: a.config_version };
}

/** Whole seconds, at least one: what Clerk keeps (the API's own bounds are for it to say). */
function toSeconds(field: string, ms: number): number {
  if (!Number.isInteger(ms) || ms < 1000 || ms % 1000 !== 0) {
    throw new PlatformApiRejected(`not sent: ${field} must be whole seconds in ms (got ${ms})`, { operation: `PATCH ${OPERATION}` });
  }
  return ms / 1000;
}

export async function patchSessionSettings(
  o: InstanceConfigOptions,
  change: SessionSettingsChange,
  opts: { dryRun: boolean; version: string },
  signal?: AbortSignal,
): Promise<SessionSettingsResult> {
  const session: Record<string, number | null> = { lifetime: toSeconds('maxLifetimeMs', change.maxLifetimeMs) };
  if (change.inactivityTimeoutMs !== undefined) session.inactivity_timeout = change.inactivityTimeoutMs === null ? null : toSeconds('inactivityTimeoutMs', change.inactivityTimeoutMs);
  if (!opts.version) throw new PlatformApiRejected('not sent: a change needs the version it was decided on (readSessionSettings)', { operation: `PATCH ${OPERATION}` });
  const query: Record<string, string> = { keys: 'session' };
  if (opts.dryRun) query.dry_run = 'true';
  // Only clearing the inactivity timeout needs it: never sent otherwise, so nothing else can be cleared by accident.
  if (change.inactivityTimeoutMs === null) query.destructive = 'true';
  const body = await call(o, 'PATCH', query, { body: { session }, ifMatch: opts.version, ...(signal ? { signal } : {}) });
  const a = parsed(patchAnswer, body, `PATCH ${OPERATION}`);
  // `before`/`after` hold only what changed unless `keys` is honoured: without them, nothing changed.
  const before = a.before?.session ? toValues(a.before.session) : undefined;
  const after = a.after?.session ? toValues(a.after.session) : undefined;
  const now = before && after ? undefined : await readSessionSettings(o, signal);
  const b = before ?? after ?? now!;
  const f = after ?? before ?? now!;
  return {
    dryRun: a.dry_run ?? opts.dryRun,
    changed: b.maxLifetimeMs !== f.maxLifetimeMs || b.inactivityTimeoutMs !== f.inactivityTimeoutMs,
    before: { maxLifetimeMs: b.maxLifetimeMs, inactivityTimeoutMs: b.inactivityTimeoutMs },
    after: { maxLifetimeMs: f.maxLifetimeMs, inactivityTimeoutMs: f.inactivityTimeoutMs },
    version: a.config_version,
  };
}

/** The Platform API settings key rotation uses (docs/key-rotation.md); undefined without a token. */
export function instanceConfigOptionsFromEnv(env: Pick<Env, 'CLERK_PLATFORM_API_TOKEN' | 'CLERK_PLATFORM_API_URL' | 'CLERK_APPLICATION_ID' | 'CLERK_INSTANCE'>): InstanceConfigOptions | undefined {
  if (!env.CLERK_PLATFORM_API_TOKEN) return undefined;
  if (!env.CLERK_APPLICATION_ID) throw new Error('CLERK_PLATFORM_API_TOKEN needs CLERK_APPLICATION_ID (the application whose instance config is changed)');
  return {
    ...(env.CLERK_PLATFORM_API_URL ? { url: env.CLERK_PLATFORM_API_URL } : {}),
    token: env.CLERK_PLATFORM_API_TOKEN,
    applicationId: env.CLERK_APPLICATION_ID,
    instance: env.CLERK_INSTANCE,
  };
}

// -- activities ---------------------------------------------------------------------------------

/** No Platform API token: the remedy is then done in the Dashboard. */
class PlatformApiNotConfiguredError extends HttpFailure {
  override readonly name = 'PlatformApiNotConfigured' satisfies PlatformErrorName;
  readonly retryable = false;
  constructor(what: string) {
    super(`${what}: no Platform API token is configured (CLERK_PLATFORM_API_TOKEN, CLERK_APPLICATION_ID); change the session lifetime in the Clerk Dashboard`, { operation: what });
  }
  toDetails(): { operation: string } {
    return { operation: this.operation };
  }
}

/** The activities (deps in, functions out, as key-rotation.ts): failures leave as `ApplicationFailure`s of the types above. */
export function createInstanceConfigActivities(getOptions: () => InstanceConfigOptions | undefined) {
  const need = (what: string): InstanceConfigOptions => {
    const o = getOptions();
    if (!o) throw new PlatformApiNotConfiguredError(what).toApplicationFailure();
    return o;
  };
  const asFailure = (err: unknown): never => {
    throw err instanceof HttpFailure ? err.toApplicationFailure() : err;
  };
  return {
    async readSessionSettings(): Promise<SessionSettings> {
      return readSessionSettings(need('readSessionSettings'), Context.current().cancellationSignal).catch(asFailure);
    },
    async patchSessionSettings(change: SessionSettingsChange, opts: { dryRun: boolean; version: string }): Promise<SessionSettingsResult> {
      return patchSessionSettings(need('patchSessionSettings'), change, opts, Context.current().cancellationSignal).catch(asFailure);
    },
  };
}
