/**
 * What every failure of an HTTP service shares (ky-style): one class per kind with a literal
 * `name` (it survives the activity boundary, where `instanceof` is lost), the retry decision on
 * it, the answer's status sorted once into a kind, and for activities a Temporal
 * `ApplicationFailure` of the same type. Clerk's errors (`clerk-errors.ts`) and the deployment
 * platforms' (`deploy/errors.ts`) extend it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { redactSecrets } from '../secret-patterns';

export interface HttpFailureInit {
  /** What we were doing, e.g. `sessions.revokeSession` or `POST /v13/deployments`. */
  operation: string;
  /** HTTP status; undefined for network errors and timeouts. */
  status?: number;
  /** The service's own error code, e.g. `clerk_key_invalid`. */
  code?: string;
  /** How long the service asked us to wait (`Retry-After`). */
  retryAfterMs?: number;
  cause?: unknown;
}

export abstract class HttpFailure extends Error {
  abstract override readonly name: string;
  abstract readonly retryable: boolean;
  readonly operation: string;
  readonly status?: number;
  readonly code?: string;
  readonly retryAfterMs?: number;

  constructor(message: string, init: HttpFailureInit) {
    // A service's answer, or the client's error, may quote what was sent: never a secret in the message.
    super(redactSecrets(message), init.cause === undefined ? undefined : { cause: init.cause });
    this.operation = init.operation;
    this.status = init.status;
    this.code = init.code;
    this.retryAfterMs = init.retryAfterMs;
  }

  /** What the activity failure carries in `details[0]`; never a secret. */
  abstract toDetails(): object;

  /**
   * For activities: a failure of type `name`, non-retryable unless `retryable`, with `toDetails()`
   * and `Retry-After` as its `nextRetryDelay`. `chain` keeps this error (and what it wraps) as the
   * failure's cause.
   */
  toApplicationFailure({ chain = false }: { chain?: boolean } = {}): ApplicationFailure {
    return ApplicationFailure.create({
      type: this.name,
      message: this.message,
      nonRetryable: !this.retryable,
      details: [this.toDetails()],
      ...(this.retryAfterMs !== undefined ? { nextRetryDelay: this.retryAfterMs } : {}),
      ...(chain ? { cause: this } : {}),
    });
  }
}

/** How long an answer asks us to wait (`Retry-After`: seconds or an HTTP date), capped at 10 minutes; undefined without one. */
export function retryAfterMs(headers: Headers): number | undefined {
  const h = headers.get('retry-after');
  if (!h) return undefined;
  const seconds = Number(h);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 600_000);
  const at = Date.parse(h);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.min(at - Date.now(), 600_000));
}

/** The four ways an answer fails, whatever the service: each client has one class per kind. */
export type HttpFailureKind = 'unavailable' | 'rate_limited' | 'auth_failed' | 'rejected';

/**
 * The kind of a failed call by its status: none (a network error or timeout) or 5xx unavailable,
 * 429 rate limited, one of `authStatuses` (the service's "your credentials are wrong") auth
 * failed, any other 4xx rejected.
 */
export function failureKind(status: number | undefined, authStatuses: readonly number[]): HttpFailureKind {
  if (status === undefined || status >= 500) return 'unavailable';
  if (status === 429) return 'rate_limited';
  if (authStatuses.includes(status)) return 'auth_failed';
  return 'rejected';
}
