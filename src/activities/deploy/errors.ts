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

/** Why the platform refused a rollback or promote (Vercel documents 402/404/409/422; the codes are read first, the status second). */
export const ROLLBACK_REFUSALS = ['unknown_deployment', 'not_ready', 'not_rollback_candidate', 'already_current', 'alias_job_in_progress', 'plan_limit', 'other'] as const;
export type RollbackRefusal = (typeof ROLLBACK_REFUSALS)[number];

/** A rollback or promote the platform refused: retrying will not change it; another candidate might. */
export class DeployRollbackRefused extends DeployError {
  override readonly name = 'DeployRollbackRefused' as const;
  readonly retryable = false;
  readonly reason: RollbackRefusal;

  constructor(message: string, init: DeployErrorInit & { reason: RollbackRefusal }) {
    const { reason, ...rest } = init;
    super(message, rest);
    this.reason = reason;
  }

  override toDetails(): ReturnType<DeployError['toDetails']> & { reason: RollbackRefusal } {
    return { ...super.toDetails(), reason: this.reason };
  }
}

/** The configured adapter has no such capability (Edge Config cannot roll back): a human does it. */
export class DeployNotSupported extends DeployError {
  override readonly name = 'DeployNotSupported' as const;
  readonly retryable = false;
}

const REFUSAL_BY_CODE: Record<string, RollbackRefusal> = {
  not_found: 'unknown_deployment',
  deployment_not_found: 'unknown_deployment',
  deployment_not_ready: 'not_ready',
  not_rollback_candidate: 'not_rollback_candidate',
  deployment_already_current: 'already_current',
  alias_job_in_progress: 'alias_job_in_progress',
};

/** A rollback/promote answer that was not 2xx: a 4xx other than auth and 429 becomes `DeployRollbackRefused`. */
export function rollbackErrorForStatus(adapter: AdapterName, operation: string, status: number, body: { code?: string; message?: string }, retryAfterMs?: number): DeployError {
  const plain = errorForStatus(adapter, operation, status, body, retryAfterMs);
  if (plain.name !== 'DeployRequestRejected') return plain;
  const byStatus: RollbackRefusal = status === 404 ? 'unknown_deployment' : status === 402 ? 'plan_limit' : 'other';
  const reason = (body.code ? REFUSAL_BY_CODE[body.code] : undefined) ?? byStatus;
  return new DeployRollbackRefused(`${adapter}: ${operation} refused (${status}, ${reason})${body.message ? `: ${body.message}` : ''}`, {
    adapter,
    operation,
    status,
    reason,
    ...(body.code ? { code: body.code } : {}),
  });
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
