/**
 * Deployment-platform failures, classified once on the shared HTTP-failure base
 * (`../http-errors.ts`: one class per kind, a literal `name`, the retry decision on it). For
 * activities, `toDeployFailure` turns them into Temporal `ApplicationFailure`s of the same type;
 * the never-retried names are in `src/shared.ts` (`NON_RETRYABLE_ERROR_TYPES`) so workflows can
 * import them.
 */
import type { DeployErrorName } from '../../shared';
import { failureKind, HttpFailure, type HttpFailureInit } from '../http-errors';

/** Which adapter failed, e.g. `vercel`, `vercel-edge-config`, `webhook`. */
export type AdapterName = 'vercel' | 'vercel-edge-config' | 'webhook';

interface DeployErrorInit extends HttpFailureInit {
  adapter: AdapterName;
}

/** Base of the four kinds: `operation` is the route (`POST /v10/projects/{idOrName}/env`), `code` the platform's (Vercel: `error.code`). */
export abstract class DeployError extends HttpFailure {
  abstract override readonly name: DeployErrorName;
  readonly adapter: AdapterName;

  constructor(message: string, init: DeployErrorInit) {
    const { adapter, ...http } = init;
    super(message, http);
    this.adapter = adapter;
  }

  toDetails(): { adapter: AdapterName; operation: string; status: number | null; code: string | null } {
    return { adapter: this.adapter, operation: this.operation, status: this.status ?? null, code: this.code ?? null };
  }
}

/** 5xx, a network error or a timeout: retried. */
export class DeployUnavailable extends DeployError {
  override readonly name = 'DeployUnavailable' as const;
  readonly retryable = true;
}

/** 429: retried after `Retry-After` (or the retry policy's delay). */
export class DeployRateLimited extends DeployError {
  override readonly name = 'DeployRateLimited' as const;
  readonly retryable = true;
}

/** 401/403: the token or signing secret is wrong or lacks access; retrying will not fix it. */
export class DeployAuthFailed extends DeployError {
  override readonly name = 'DeployAuthFailed' as const;
  readonly retryable = false;
}

/** Any other 4xx (unknown project, bad body, not found): a configuration or request mistake. */
export class DeployRequestRejected extends DeployError {
  override readonly name = 'DeployRequestRejected' as const;
  readonly retryable = false;
}

/** What to do about a 401/403, per adapter: named in the failure so the on-call knows the fix. */
export const AUTH_FIX: Record<AdapterName, string> = {
  vercel: 'set VERCEL_TOKEN to a Vercel access token with access to VERCEL_PROJECT (and VERCEL_TEAM_ID for a team project), then restart the worker',
  'vercel-edge-config': 'set VERCEL_TOKEN to a Vercel access token that can write Edge Config VERCEL_EDGE_CONFIG_ID (and VERCEL_TEAM_ID for a team), then restart the worker',
  webhook: "set DEPLOY_WEBHOOK_SECRET to the receiver's signing secret (both sides must hold the same one), then restart the worker",
};

/** Classify an HTTP answer that was not 2xx. `body` is the platform's error body, if any. */
export function errorForStatus(
  adapter: AdapterName,
  operation: string,
  status: number,
  body: { code?: string; message?: string },
  retryAfterMs?: number,
): DeployError {
  const said = body.message ? `: ${body.code ? `${body.code}: ` : ''}${body.message}` : body.code ? `: ${body.code}` : '';
  const init = { adapter, operation, status, ...(body.code ? { code: body.code } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  switch (failureKind(status, [401, 403])) {
    case 'auth_failed':
      return new DeployAuthFailed(`${adapter}: ${operation} answered ${status}${said}. Fix: ${AUTH_FIX[adapter]}`, init);
    case 'rate_limited':
      return new DeployRateLimited(`${adapter}: ${operation} rate limited (429)${said}`, init);
    case 'unavailable':
      return new DeployUnavailable(`${adapter}: ${operation} answered ${status}${said}`, init);
    case 'rejected':
      return new DeployRequestRejected(`${adapter}: ${operation} refused (${status})${said}`, init);
  }
}

export function isDeployError(err: unknown): err is DeployError {
  return err instanceof DeployError;
}

/** For activities: a `DeployError` as an `ApplicationFailure` of the same type; anything else unchanged. */
export function toDeployFailure(err: unknown): unknown {
  return isDeployError(err) ? err.toApplicationFailure() : err;
}
