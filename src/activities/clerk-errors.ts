/**
 * Clerk's failures, classified once: four named kinds (`ClerkRateLimited`, `ClerkUnavailable`,
 * `ClerkKeyInvalid`, `ClerkRequestRejected`), each with its retry decision, and for activities a
 * Temporal `ApplicationFailure` of the same type (`nextRetryDelay` from `Retry-After`), on the
 * shared HTTP-failure base (`http-errors.ts`). The names
 * that are never retried are listed in `src/shared.ts` (`NON_RETRYABLE_ERROR_TYPES`), where
 * workflows can import them.
 */
import { isClerkAPIResponseError } from '@clerk/backend/errors';
import type { ApplicationFailure } from '@temporalio/common';
import type { ClerkErrorName } from '../shared';
import { failureKind, HttpFailure } from './http-errors';
import { redactSecrets } from '../secret-patterns';

/** One entry of Clerk's `errors` array. */
export interface ClerkApiErrorItem {
  code: string;
  message: string;
  longMessage?: string;
  meta?: Record<string, unknown>;
}

interface ClerkErrorInit {
  operation: string;
  status?: number;
  clerkTraceId?: string;
  errors?: ClerkApiErrorItem[];
  cause?: unknown;
}

/** Base of the four Clerk error kinds; match on `name` (it survives the activity boundary). */
/** Its `code` is Clerk's first error code, e.g. `clerk_key_invalid`. */
export abstract class ClerkError extends HttpFailure {
  abstract override readonly name: ClerkErrorName;
  readonly clerkTraceId?: string;
  readonly errors: ClerkApiErrorItem[];

  constructor(message: string, init: ClerkErrorInit) {
    const errors = init.errors ?? [];
    super(message, { operation: init.operation, status: init.status, code: errors[0]?.code, cause: init.cause });
    this.errors = errors;
    this.clerkTraceId = init.clerkTraceId || undefined;
  }

  /** What an activity failure carries in `details[0]` (Clerk's own words, anything shaped like a secret redacted). */
  toDetails(): ClerkErrorDetails {
    return {
      operation: this.operation,
      status: this.status ?? null,
      code: this.code ?? null,
      clerkTraceId: this.clerkTraceId ?? null,
      message: redactSecrets(this.errors[0]?.longMessage ?? this.errors[0]?.message ?? this.message),
    };
  }
}

export interface ClerkErrorDetails {
  operation: string;
  status: number | null;
  code: string | null;
  clerkTraceId: string | null;
  message: string;
}

/** 429: the instance's rate limit. Retry after `retryAfterMs`. */
export class ClerkRateLimited extends ClerkError {
  override readonly name = 'ClerkRateLimited' as const;
  readonly retryable = true;
  constructor(
    message: string,
    init: ClerkErrorInit,
    override readonly retryAfterMs: number,
  ) {
    super(message, init);
  }
}

/** 5xx, a network error (no status) or a timeout: Clerk (or the way to it) is down. Retry with backoff. */
export class ClerkUnavailable extends ClerkError {
  override readonly name = 'ClerkUnavailable' as const;
  readonly retryable = true;
}

/** 401 `clerk_key_invalid` (or a malformed key): every call will fail the same way until the key changes. */
export class ClerkKeyInvalid extends ClerkError {
  override readonly name = 'ClerkKeyInvalid' as const;
  readonly retryable = false;
}

/** Any other 4xx: the request itself is wrong or refers to something that is gone. Not retried. */
export class ClerkRequestRejected extends ClerkError {
  override readonly name = 'ClerkRequestRejected' as const;
  readonly retryable = false;
}

/** `Retry-After` when Clerk sends none (it always should on a 429). */
const DEFAULT_RETRY_AFTER_MS = 2000;

/**
 * Turns whatever `@clerk/backend` threw into one of the four kinds. Errors that are not Clerk API
 * responses (our own bugs) are returned unchanged.
 */
export function classifyClerkError(err: unknown, operation: string): ClerkError | unknown {
  if (err instanceof ClerkError) return err;
  if (err instanceof ClerkCallTimeout) {
    return new ClerkUnavailable(`Clerk ${operation}: no answer within ${err.timeoutMs} ms`, { operation, cause: err });
  }
  if (!isClerkAPIResponseError(err)) return err;
  const errors: ClerkApiErrorItem[] = (err.errors ?? []).map((e) => ({
    code: e.code,
    message: e.message,
    ...(e.longMessage ? { longMessage: e.longMessage } : {}),
    ...(e.meta ? { meta: { ...e.meta } } : {}),
  }));
  const status = typeof err.status === 'number' && err.status > 0 ? err.status : undefined;
  const init: ClerkErrorInit = { operation, status, clerkTraceId: err.clerkTraceId, errors, cause: err };
  const first = errors[0];
  const said = first ? `${first.code}: ${first.longMessage ?? first.message}` : err.message || 'no error body';
  const trace = err.clerkTraceId ? ` (clerk_trace_id ${err.clerkTraceId})` : '';
  // A 4xx whose code is clerk_key_invalid is a bad key whatever its status.
  const kind = failureKind(status, [401]);
  switch (kind === 'rejected' && first?.code === 'clerk_key_invalid' ? 'auth_failed' : kind) {
    case 'unavailable':
      return new ClerkUnavailable(status === undefined ? `Clerk ${operation}: network error: ${said}` : `Clerk ${operation}: ${status} ${said}${trace}`, init);
    case 'rate_limited': {
      const retryAfterMs = typeof err.retryAfter === 'number' ? err.retryAfter * 1000 : DEFAULT_RETRY_AFTER_MS;
      return new ClerkRateLimited(`Clerk ${operation}: 429 ${said}${trace}; retry after ${retryAfterMs} ms`, init, retryAfterMs);
    }
    case 'auth_failed':
      return new ClerkKeyInvalid(`Clerk ${operation}: ${status} ${said}${trace}`, init);
    case 'rejected':
      return new ClerkRequestRejected(`Clerk ${operation}: ${status} ${said}${trace}`, init);
  }
}

/** For activities: the Temporal failure that carries a Clerk error's kind, retryability and details. */
export function toApplicationFailure(err: unknown, operation = 'call'): ApplicationFailure | unknown {
  const e = classifyClerkError(err, operation);
  return e instanceof ClerkError ? e.toApplicationFailure({ chain: true }) : e;
}

/** A call with no answer within its timeout (the SDK has none of its own); classified as `ClerkUnavailable`. */
export class ClerkCallTimeout extends Error {
  override readonly name = 'ClerkCallTimeout';
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
  }
}

/** `promise`, or a `ClerkCallTimeout` when it has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ClerkCallTimeout(ms)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
