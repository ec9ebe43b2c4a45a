/**
 * The one module behind which Clerk sits. Everything else calls Clerk through a `ClerkGateway`:
 *
 * - it builds the `@clerk/backend` client (`createClerkClient({ secretKey, apiUrl })`);
 * - it classifies every failure once into a named error (`./clerk-errors.ts`: `ClerkRateLimited`,
 *   `ClerkUnavailable`, `ClerkKeyInvalid`, `ClerkRequestRejected`) and, for activities, into a
 *   Temporal `ApplicationFailure` of the same type;
 * - it paces every request through one client-side rate limiter per Clerk instance (shared by the
 *   gateways given the worker's `ClerkRateLimiters`), set below the instance's limit by a
 *   configurable headroom, with bounded concurrency;
 * - it retries where Clerk asks to be retried: a 429 pauses the whole limiter for `Retry-After`
 *   and the call is sent again (no work is lost); 5xx and network errors back off and retry a
 *   few times, then fail retryable; a 4xx fails at once.
 *
 * - with a `keySource` (a key reference, src/keys), it resolves the instance's *current* key per
 *   call (cached briefly) and, on `clerk_key_invalid`, resolves once more before failing: a key
 *   rotated under a running worker is picked up without a restart, behind the same limiter.
 *
 * Secret keys live here and in the worker's configuration only, never in workflow inputs.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClerkClient, type ClerkClient, type Session, type User, type UserJSON } from '@clerk/backend';
// `limiter` (token bucket, CommonJS + ESM, maintained, ~44 M weekly downloads) paces requests:
// a FIFO of waiters behind one timer, no initial burst, and a small bucket so that any window of
// Clerk's, aligned with ours or not, holds at most `bucket + rate × window` requests. We measured
// Bottleneck first: its serialised, timer-yielding job registration caps it near 350 jobs/s, far
// below what the raw SDK does (~1,600/s); p-limit/p-queue are ESM-only in this CommonJS package.
// Concurrency is a plain semaphore below; a 429 closes a gate every caller waits at.
import { TokenBucket } from 'limiter';
import { classifyClerkError, ClerkError, ClerkKeyInvalid, ClerkRateLimited, ClerkRequestRejected, withTimeout } from './clerk-errors';
import type { KeySource } from '../keys/resolve';

// ---------------------------------------------------------------------------------------------
// Rate limiting

/** Clerk's Backend API limits per instance (DESIGN.md, "Facts we checked"). */
export const CLERK_RATE_LIMITS = {
  production: { requests: 1000, windowMs: 10_000 },
  development: { requests: 100, windowMs: 10_000 },
} as const;
export type ClerkInstanceType = keyof typeof CLERK_RATE_LIMITS;

/** `sk_live_…` keys belong to production instances, `sk_test_…` to development ones. */
export function instanceTypeOfKey(secretKey: string): ClerkInstanceType {
  return secretKey.startsWith('sk_live_') ? 'production' : 'development';
}

export const DEFAULT_HEADROOM = 0.05;
export const DEFAULT_CONCURRENCY = 16;

/**
 * The limiter settings of the worker's configuration (CLERK_INSTANCE_TYPE, CLERK_RATE_HEADROOM,
 * CLERK_CONCURRENCY, CLERK_WORKERS). Several workers calling one instance each pace to their share:
 * with `CLERK_WORKERS=n` a worker takes ⌊limit / n⌋ as its whole limit (headroom and burst inside
 * it), so n workers together stay under the instance's limit in any window (docs/scale-out.md).
 */
export function clerkLimitsFromEnv(
  env: { CLERK_INSTANCE_TYPE?: ClerkInstanceType; CLERK_RATE_HEADROOM: number; CLERK_CONCURRENCY: number; CLERK_WORKERS?: number },
  secretKey: string,
  instanceType: ClerkInstanceType | undefined = env.CLERK_INSTANCE_TYPE,
): Pick<ClerkGatewayOptions, 'limit' | 'concurrency'> {
  const type = instanceType ?? instanceTypeOfKey(secretKey);
  const limit = workerShare(CLERK_RATE_LIMITS[type], env.CLERK_WORKERS ?? 1);
  return { limit: { ...limit, headroom: env.CLERK_RATE_HEADROOM }, concurrency: env.CLERK_CONCURRENCY };
}

/**
 * One worker's part of an instance's limit when `workers` share it. At least 2 requests: the
 * limiter's smallest bucket (1 paced + 1 burst) must fit in it (so at most limit / 2 workers).
 */
export function workerShare(limit: { requests: number; windowMs: number }, workers: number): { requests: number; windowMs: number } {
  if (!(Number.isInteger(workers) && workers >= 1 && workers <= limit.requests / 2)) {
    throw new RangeError(`workers must be an integer from 1 to ${Math.floor(limit.requests / 2)} for a limit of ${limit.requests}, got ${workers}`);
  }
  return { requests: Math.floor(limit.requests / workers), windowMs: limit.windowMs };
}

/** Pacing, bounded concurrency and a 429 gate, shared by every caller of one Clerk instance. */
export interface SharedLimiter {
  /** Resolves when the caller may send `weight` requests; call `release()` once they are answered. */
  acquire(weight: number): Promise<() => void>;
  /** Holds every caller back until `until` (ms since epoch); extends, never shortens. */
  pause(until: number): void;
}

/**
 * The worker's rate limiters: one per Clerk instance (API URL + key + settings), shared by every
 * gateway given this registry. The worker creates one (`createClerkRateLimiters()`); a gateway
 * created without one paces alone.
 */
export interface ClerkRateLimiters {
  limiterFor(key: string, create: () => SharedLimiter): SharedLimiter;
}

export function createClerkRateLimiters(): ClerkRateLimiters {
  const byInstance = new Map<string, SharedLimiter>();
  return {
    limiterFor(key, create) {
      let limiter = byInstance.get(key);
      if (!limiter) byInstance.set(key, (limiter = create()));
      return limiter;
    },
  };
}

function createLimiter(requestsPerWindow: number, windowMs: number, burst: number, concurrency: number): SharedLimiter {
  const bucket = new TokenBucket({ bucketSize: burst, tokensPerInterval: requestsPerWindow, interval: windowMs });
  let pausedUntil = 0;
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else inFlight--;
  };
  const shared: SharedLimiter = {
    async acquire(weight) {
      // A slot first (FIFO), then the 429 gate, then tokens: a slot holder never sends early.
      if (inFlight < concurrency) inFlight++;
      else await new Promise<void>((resolve) => waiting.push(resolve));
      try {
        for (let wait = pausedUntil - Date.now(); wait > 0; wait = pausedUntil - Date.now()) await sleep(wait);
        for (let k = 0; k < weight; k++) await bucket.removeTokens(1);
      } catch (err) {
        release();
        throw err;
      }
      return release;
    },
    pause(until) {
      pausedUntil = Math.max(pausedUntil, until);
    },
  };
  return shared;
}

// ---------------------------------------------------------------------------------------------
// The gateway

export interface ClerkRetryPolicy {
  /** 429s waited out per call before giving up (as a retryable `ClerkRateLimited`). */
  maxRateLimitWaits: number;
  /** Attempts per call on 5xx/network errors/timeouts before giving up (retryable `ClerkUnavailable`). */
  maxUnavailableAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

export const DEFAULT_RETRY: ClerkRetryPolicy = {
  maxRateLimitWaits: 20,
  maxUnavailableAttempts: 5,
  initialBackoffMs: 250,
  maxBackoffMs: 5000,
};

export interface ClerkGatewayOptions {
  /** The key (with `keySource`: the key it resolved at start, which sets the instance type). */
  secretKey: string;
  /** Where the instance's current key lives; resolved per call (see the module comment). */
  keySource?: KeySource;
  /** Defaults to Clerk's `https://api.clerk.com`; the sandbox's URL in sandbox mode. */
  apiUrl?: string;
  /** Defaults to the limit of the key's instance type, with `DEFAULT_HEADROOM`. */
  limit?: { requests: number; windowMs: number; headroom?: number };
  /** Requests in flight at once, for all callers of this limiter. */
  concurrency?: number;
  retry?: Partial<ClerkRetryPolicy>;
  /** A request with no answer by then counts as a network error (the SDK has no timeout of its own). */
  requestTimeoutMs?: number;
  /** The worker's limiter registry: gateways of one instance given the same registry share a limiter. */
  rateLimiters?: ClerkRateLimiters;
}

/** Counters of one gateway view (a batch's own, or the worker's). */
export interface ClerkCallStats {
  /** HTTP requests sent (a `getUserList` is two). */
  requests: number;
  /** 429 answers received. */
  rateLimited: number;
  /** 5xx, network errors and timeouts. */
  unavailable: number;
  /** Calls sent again after a 429 or an unavailable answer. */
  retries: number;
  /** Time spent waiting out 429s and backoffs, summed over calls. */
  waitedMs: number;
}

export type RevokeOutcome = 'revoked' | 'not_active';

export interface SessionSummary {
  id: string;
  userId: string;
  status: string;
  updatedAt: number;
}

export interface UserSummary {
  id: string;
  createdAt: number;
  lastActiveAt: number | null;
  updatedAt: number;
  /** The user as Clerk sent it (what a `user.created`/`user.updated` webhook carries as `data`). */
  raw: UserJSON | null;
}

export interface UserPage {
  users: UserSummary[];
  /** Users matching the filters (all of them, not only those after the cursor). */
  totalCount: number;
}

export interface ListUsersParams {
  limit: number;
  /** Cursor pagination (ordered by `+created_at`): the id of the last user of the previous page. */
  startingAfter?: string;
  createdAtAfter?: number;
  createdAtBefore?: number;
  lastActiveAtAfter?: number;
  lastActiveAtBefore?: number;
  userIds?: string[];
}

export interface ClerkGateway {
  /** The raw client (of the current key), for operations without a method here: wrap the call in `call()`. */
  readonly client: ClerkClient;
  readonly settings: { requestsPerWindow: number; windowMs: number; minTimeMs: number; concurrency: number };
  /** Paces, retries and classifies one call. `weight` = HTTP requests the call makes. */
  call<T>(operation: string, fn: (clerk: ClerkClient) => Promise<T>, opts?: { weight?: number; retry?: boolean }): Promise<T>;
  /** `users.getUserList`, ordered by `+created_at` (stable under sign-ups: new users come last). */
  listUsers(params: ListUsersParams): Promise<UserPage>;
  countUsers(params?: { lastActiveAtAfter?: number; lastActiveAtBefore?: number; userIds?: string[] }): Promise<number>;
  /** Every session of a user with that status (all statuses when omitted), every page. */
  listSessions(userId: string, status?: 'active'): Promise<SessionSummary[]>;
  getSession(sessionId: string): Promise<SessionSummary>;
  /** Revokes a session; `not_active` when Clerk says it already is not active (revoked, ended...). */
  revokeSession(sessionId: string): Promise<RevokeOutcome>;
  stats(): ClerkCallStats;
  /** A view sharing this gateway's client and limiter, with counters of its own (also added to this one's). */
  metered(): ClerkGateway;
}

function emptyStats(): ClerkCallStats {
  return { requests: 0, rateLimited: 0, unavailable: 0, retries: 0, waitedMs: 0 };
}

function userSummary(u: User): UserSummary {
  return { id: u.id, createdAt: u.createdAt, lastActiveAt: u.lastActiveAt ?? null, updatedAt: u.updatedAt, raw: u.raw };
}

function sessionSummary(s: Session): SessionSummary {
  return { id: s.id, userId: s.userId, status: s.status, updatedAt: s.updatedAt };
}

/** 4xx codes of a revoke that may mean "this session is not active any more". */
const MAYBE_NOT_ACTIVE = new Set([400, 409, 410, 422]);
const SESSIONS_PAGE = 100;

export function createClerkGateway(opts: ClerkGatewayOptions): ClerkGateway {
  const base = opts.limit ?? CLERK_RATE_LIMITS[instanceTypeOfKey(opts.secretKey)];
  const headroom = opts.limit?.headroom ?? DEFAULT_HEADROOM;
  if (!(headroom >= 0 && headroom < 1)) throw new RangeError(`headroom must be in [0, 1), got ${headroom}`);
  const requestsPerWindow = Math.max(1, Math.floor(base.requests * (1 - headroom)));
  // A burst of at most half the headroom (and 20): every window of `windowMs`, aligned or not with
  // Clerk's, then holds at most `requestsPerWindow + burst` < the limit.
  const burst = Math.max(1, Math.min(20, Math.floor((base.requests - requestsPerWindow) / 2)));
  const minTimeMs = base.windowMs / requestsPerWindow;
  const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
  const retry: ClerkRetryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const clients = new Map<string, ClerkClient>();
  const clientFor = (secretKey: string): ClerkClient => {
    let c = clients.get(secretKey);
    if (!c) clients.set(secretKey, (c = createClerkClient({ secretKey, ...(opts.apiUrl ? { apiUrl: opts.apiUrl } : {}) })));
    return c;
  };
  const source = opts.keySource;
  const currentKey = (): Promise<string> => (source ? source.current() : Promise.resolve(opts.secretKey));
  // One limiter per instance, not per key: with a reference, the reference names the instance.
  const instance = source ? `ref:${source.ref}` : createHash('sha256').update(opts.secretKey).digest('hex').slice(0, 16);
  const newLimiter = () => createLimiter(requestsPerWindow, base.windowMs, burst, concurrency);
  const limiter = opts.rateLimiters
    ? opts.rateLimiters.limiterFor(`${opts.apiUrl ?? 'clerk'}|${instance}|${requestsPerWindow}/${base.windowMs}|${concurrency}`, newLimiter)
    : newLimiter();
  const settings = { requestsPerWindow, windowMs: base.windowMs, minTimeMs, burst, concurrency };

  const build = (counters: ClerkCallStats[]): ClerkGateway => {
    const count = (field: keyof ClerkCallStats, n = 1) => {
      for (const c of counters) c[field] += n;
    };

    async function call<T>(
      operation: string,
      fn: (clerk: ClerkClient) => Promise<T>,
      callOpts: { weight?: number; retry?: boolean } = {},
    ): Promise<T> {
      const weight = callOpts.weight ?? 1;
      let rateLimitWaits = 0;
      let unavailableAttempts = 0;
      let reresolved = false;
      for (;;) {
        const secretKey = await currentKey();
        // A call of weight n takes n tokens (getUserList sends two requests at once).
        const release = await limiter.acquire(weight);
        count('requests', weight);
        let outcome: { ok: true; value: T } | { ok: false; error: unknown };
        try {
          outcome = { ok: true, value: await withTimeout(fn(clientFor(secretKey)), requestTimeoutMs) };
        } catch (error) {
          outcome = { ok: false, error };
        } finally {
          release();
        }
        if (outcome.ok) return outcome.value;
        const err = classifyClerkError(outcome.error, operation);
        if (err instanceof ClerkKeyInvalid && source && !reresolved) {
          // The key may have been rotated since it was cached: resolve once more, retry if it changed.
          reresolved = true;
          const fresh = await source.refresh().catch(() => secretKey);
          if (fresh !== secretKey) {
            count('retries');
            continue;
          }
        }
        if (!(err instanceof ClerkError) || !err.retryable) throw err;
        let waitMs: number;
        if (err instanceof ClerkRateLimited) {
          count('rateLimited');
          // Every caller of the instance holds back, whether or not this one retries.
          limiter.pause(Date.now() + err.retryAfterMs);
          if (callOpts.retry === false || ++rateLimitWaits > retry.maxRateLimitWaits) throw err;
          waitMs = err.retryAfterMs;
        } else {
          count('unavailable');
          if (callOpts.retry === false || ++unavailableAttempts >= retry.maxUnavailableAttempts) throw err;
          const backoff = Math.min(retry.maxBackoffMs, retry.initialBackoffMs * 2 ** (unavailableAttempts - 1));
          waitMs = Math.round(backoff * (0.5 + Math.random() / 2)); // jitter: retries of parallel calls spread out
        }
        count('retries');
        count('waitedMs', waitMs);
        await sleep(waitMs);
      }
    }

    const gateway: ClerkGateway = {
      get client() {
        return clientFor(source?.peek() ?? opts.secretKey);
      },
      settings,
      call,
      async listUsers(p) {
        // `startingAfter` is in Clerk's API (cursor pagination) but not in the SDK's param type;
        // the SDK snake-cases and forwards every query param, so it reaches Clerk as `starting_after`.
        const params: Parameters<ClerkClient['users']['getUserList']>[0] & { startingAfter?: string } = {
          limit: p.limit,
          orderBy: '+created_at',
          ...(p.startingAfter ? { startingAfter: p.startingAfter } : {}),
          ...(p.createdAtAfter !== undefined ? { createdAtAfter: p.createdAtAfter } : {}),
          ...(p.createdAtBefore !== undefined ? { createdAtBefore: p.createdAtBefore } : {}),
          ...(p.lastActiveAtAfter !== undefined ? { lastActiveAtAfter: p.lastActiveAtAfter } : {}),
          ...(p.lastActiveAtBefore !== undefined ? { lastActiveAtBefore: p.lastActiveAtBefore } : {}),
          ...(p.userIds ? { userId: p.userIds } : {}),
        };
        const page = await call('users.getUserList', (c) => c.users.getUserList(params), { weight: 2 });
        return { users: page.data.map(userSummary), totalCount: page.totalCount };
      },
      async countUsers(p = {}) {
        // The count endpoint takes the list's filters (Clerk's spec); the SDK's type lists only some.
        const params: Parameters<ClerkClient['users']['getCount']>[0] & ReturnType<typeof lastActive> = {
          ...(p.userIds ? { userId: p.userIds } : {}),
          ...lastActive(p),
        };
        return call('users.getCount', (c) => c.users.getCount(params));
      },
      async listSessions(userId, status) {
        const out: SessionSummary[] = [];
        for (let offset = 0; ; offset += SESSIONS_PAGE) {
          const page = await call('sessions.getSessionList', (c) =>
            c.sessions.getSessionList({ userId, limit: SESSIONS_PAGE, offset, ...(status ? { status } : {}) }),
          );
          out.push(...page.data.map(sessionSummary));
          if (page.data.length < SESSIONS_PAGE || out.length >= page.totalCount) return out;
        }
      },
      async getSession(sessionId) {
        return sessionSummary(await call('sessions.getSession', (c) => c.sessions.getSession(sessionId)));
      },
      async revokeSession(sessionId) {
        try {
          await call('sessions.revokeSession', (c) => c.sessions.revokeSession(sessionId));
          return 'revoked';
        } catch (err) {
          if (!(err instanceof ClerkRequestRejected) || err.status === undefined || !MAYBE_NOT_ACTIVE.has(err.status)) throw err;
          if (err.code === 'session_not_active') return 'not_active';
          // Clerk's spec only says "400 ClerkErrors": ask the session itself before calling it a failure.
          const session = await gateway.getSession(sessionId);
          if (session.status !== 'active') return 'not_active';
          throw err;
        }
      },
      stats: () => ({ ...counters[0]! }),
      metered: () => build([emptyStats(), ...counters]),
    };
    return gateway;
  };

  return build([emptyStats()]);
}

function lastActive(p: { lastActiveAtAfter?: number; lastActiveAtBefore?: number }) {
  return {
    ...(p.lastActiveAtAfter !== undefined ? { lastActiveAtAfter: p.lastActiveAtAfter } : {}),
    ...(p.lastActiveAtBefore !== undefined ? { lastActiveAtBefore: p.lastActiveAtBefore } : {}),
  };
}
