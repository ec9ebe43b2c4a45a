/**
 * The activities of `revokeSessionsWorkflow`. A batch walks pages of users (the next page is
 * listed while the current one is worked), handles a bounded number of users at once, and
 * heartbeats a cursor that only moves past users that are completely done. A retried batch
 * (worker killed, Clerk down for longer than the gateway's retries) resumes from that cursor.
 */
import { ApplicationFailure, CancelledFailure, Context, log } from '@temporalio/activity';
import {
  ClerkError,
  ClerkKeyInvalid,
  ClerkRateLimited,
  ClerkRequestRejected,
  toApplicationFailure,
} from './clerk-errors';
import type { ClerkGateway, SessionSummary, UserSummary } from './clerk';
import {
  addTotals,
  emptyTotals,
  type RevocationBatchInput,
  type RevocationBatchResult,
  type RevocationCursor,
  type RevocationFailure,
  type RevocationHeartbeat,
  type RevocationTotals,
} from '../revocation';

/** Failures one batch reports with ids; more are counted only. */
const MAX_BATCH_FAILURES = 200;
/** Least time between two heartbeats of a batch. */
const HEARTBEAT_EVERY_MS = 200;
/** Ids per `user_id` filter (Clerk accepts up to 100). */
const IDS_PER_LIST = 100;
/** Clock skew we allow between Clerk's `updated_at` and our start time when recognising our own earlier revokes. */
const CLOCK_SKEW_MS = 5 * 60_000;

interface WorkItem {
  /** A user to handle, or an id of a `users` scope that Clerk does not know. */
  user: UserSummary | null;
  userId: string;
  /** Where the cursor stands once this item is done. */
  cursorAfter: RevocationCursor;
}

interface Page {
  items: WorkItem[];
  /** No more users after this page. */
  last: boolean;
  usersMatching: number | null;
}

type UserOutcome = Partial<RevocationTotals> & { failed?: RevocationFailure[] };

export interface RevocationActivityDeps {
  /** The worker's Clerk gateway; undefined when the worker has no Clerk configuration. */
  clerk: () => ClerkGateway | undefined;
}

export function createRevocationActivities(deps: RevocationActivityDeps) {
  const gatewayOrFail = (): ClerkGateway => {
    const gateway = deps.clerk();
    if (!gateway) {
      throw ApplicationFailure.create({
        type: 'ClerkNotConfigured',
        message: 'this worker has no Clerk configuration (secret key): it cannot revoke sessions',
        nonRetryable: true,
      });
    }
    return gateway;
  };

  return {
    /** Users in the instance, and those the last-activity window keeps (two count requests). */
    async countRevocationScope(input: {
      lastActiveAtAfter: number;
      lastActiveAtBefore: number | null;
    }): Promise<{ usersInInstance: number; usersInScope: number; requests: number }> {
      const gateway = gatewayOrFail().metered();
      try {
        const [usersInInstance, usersInScope] = await Promise.all([
          gateway.countUsers(),
          gateway.countUsers({
            lastActiveAtAfter: input.lastActiveAtAfter,
            ...(input.lastActiveAtBefore !== null ? { lastActiveAtBefore: input.lastActiveAtBefore } : {}),
          }),
        ]);
        return { usersInInstance, usersInScope, requests: gateway.stats().requests };
      } catch (err) {
        throw toApplicationFailure(err, 'users.getCount');
      }
    },

    /** One batch: up to `maxUsers` users or `timeBudgetMs`, whichever comes first (whole pages). */
    async revokeSessionsBatch(input: RevocationBatchInput): Promise<RevocationBatchResult> {
      const gateway = gatewayOrFail().metered();
      const ctx = Context.current();
      const startedAt = Date.now();
      const previous = ctx.info.heartbeatDetails as RevocationHeartbeat | undefined;
      const state: RevocationHeartbeat = previous
        ? structuredClone(previous)
        : { cursor: input.cursor, totals: emptyTotals(), failures: [], failuresDropped: 0, usersMatching: null };
      // An earlier attempt may have revoked sessions after its last heartbeat reached the server:
      // this attempt lists every status, and counts sessions revoked since the start as done.
      const resumed = ctx.info.attempt > 1 || input.afterInterruption;
      if (resumed) {
        log.info('revocation batch resumes', { ref: input.ref, attempt: ctx.info.attempt, cursor: state.cursor, fromHeartbeat: !!previous });
      }
      const excluded = new Set(input.excludeUserIds);
      const deadline = startedAt + input.timeBudgetMs;
      const handledBefore = state.totals.usersScanned + state.totals.usersNotFound;
      const statsAtHeartbeat = { requests: 0, rateLimited: 0, retries: 0 };
      /** Adds the gateway's counters since the last call to the totals (they go out with the heartbeat). */
      const takeStats = () => {
        const s = gateway.stats();
        state.totals = addTotals(state.totals, {
          requests: s.requests - statsAtHeartbeat.requests,
          rateLimited: s.rateLimited - statsAtHeartbeat.rateLimited,
          retries: s.retries - statsAtHeartbeat.retries,
        });
        Object.assign(statsAtHeartbeat, { requests: s.requests, rateLimited: s.rateLimited, retries: s.retries });
      };

      const fetchPage = (cursor: RevocationCursor): Promise<Page> =>
        input.source.type === 'listing' ? listingPage(gateway, input, cursor) : idsPage(gateway, input, cursor);

      const handleUser = (item: WorkItem): Promise<UserOutcome> => {
        if (!item.user) return Promise.resolve({ usersNotFound: 1 });
        if (excluded.has(item.userId)) return Promise.resolve({ usersScanned: 1, usersExcluded: 1 });
        const lastActive = item.user.lastActiveAt;
        if (input.source.type === 'ids' && (lastActive === null || lastActive <= input.source.lastActiveAtAfter)) {
          // Listed by id, so the filter could not keep it out: it is skipped here instead, with no call.
          return Promise.resolve({ usersScanned: 1, usersSkippedByFilter: 1 });
        }
        return revokeUserSessions(gateway, item.userId, { dryRun: input.dryRun, resumed, startedAt: input.startedAt });
      };

      let cancelled = false;
      ctx.cancellationSignal.addEventListener('abort', () => {
        cancelled = true;
      });

      let done = false;
      let interrupted: RevocationBatchResult['interrupted'] = null;
      let lastHeartbeatAt = 0;
      try {
        let page = await fetchPage(state.cursor);
        for (;;) {
          state.usersMatching = page.usersMatching ?? state.usersMatching;
          const handled = state.totals.usersScanned + state.totals.usersNotFound - handledBefore + page.items.length;
          const more = !page.last && handled < input.maxUsers && Date.now() < deadline;
          // List the next page while this one is worked on, so the limiter never idles between pages.
          const nextPage = more ? fetchPage(page.items.at(-1)!.cursorAfter) : null;
          nextPage?.catch(() => undefined); // awaited below; keeps an early rejection from going unhandled
          await workPage(page.items, input.usersInFlight, handleUser, () => cancelled, (item, outcome) => {
            const { failed = [], ...counts } = outcome;
            state.cursor = item.cursorAfter;
            state.totals = addTotals(state.totals, counts);
            for (const f of failed) {
              if (state.failures.length < MAX_BATCH_FAILURES) state.failures.push(f);
              else state.failuresDropped++;
            }
            takeStats();
            // Each heartbeat serialises the state; the SDK throttles what it sends anyway (0.8 × the
            // heartbeat timeout), so a few per second are plenty and keep the CPU for requests.
            const now = Date.now();
            if (now - lastHeartbeatAt >= HEARTBEAT_EVERY_MS) {
              lastHeartbeatAt = now;
              ctx.heartbeat(state);
            }
          });
          ctx.heartbeat(state);
          if (cancelled) throw new CancelledFailure('revocation batch cancelled');
          if (page.last) {
            done = true;
            break;
          }
          if (!nextPage) break;
          page = await nextPage;
        }
      } catch (err) {
        // Clerk still unavailable after the gateway's retries: stop at the exact cursor and let the
        // workflow wait (a durable timer) instead of failing and redoing work from an older heartbeat.
        if (!(err instanceof ClerkError && err.retryable)) {
          if (err instanceof ClerkKeyInvalid) log.error('Clerk rejected the secret key: revocation stops', { ref: input.ref });
          throw toApplicationFailure(err, 'revokeSessionsBatch');
        }
        log.warn('Clerk unavailable; the batch stops at its cursor', { ref: input.ref, error: err.message });
        interrupted = { type: err.name, message: err.message, retryAfterMs: err instanceof ClerkRateLimited ? err.retryAfterMs : null };
      }
      takeStats();
      return {
        cursor: state.cursor,
        done,
        totals: state.totals,
        failures: state.failures,
        failuresDropped: state.failuresDropped,
        usersMatching: state.usersMatching,
        startedAt,
        finishedAt: Date.now(),
        attempt: ctx.info.attempt,
        resumed: !!previous,
        interrupted,
      };
    },
  };
}

/** A page of users after `cursor`, ordered by `+created_at`, filtered by last activity. */
async function listingPage(gateway: ClerkGateway, input: RevocationBatchInput, cursor: RevocationCursor): Promise<Page> {
  if (input.source.type !== 'listing' || cursor.type !== 'created') throw new Error('listing page needs a listing source and cursor');
  const filters = {
    limit: input.pageSize,
    lastActiveAtAfter: input.source.lastActiveAtAfter,
    ...(input.source.lastActiveAtBefore !== null ? { lastActiveAtBefore: input.source.lastActiveAtBefore } : {}),
  };
  let page;
  try {
    page = await gateway.listUsers({ ...filters, ...(cursor.afterUserId ? { startingAfter: cursor.afterUserId } : {}) });
  } catch (err) {
    // The cursor's user was deleted since (or `starting_after` is refused): continue from its creation
    // time instead (users created in the same millisecond are listed again, which costs a call each
    // and revokes nothing twice).
    if (!(err instanceof ClerkRequestRejected && (err.status === 422 || err.status === 400) && cursor.afterCreatedAt !== null)) throw err;
    log.warn('cursor user is gone; continuing from its creation time', { afterUserId: cursor.afterUserId });
    page = await gateway.listUsers({ ...filters, createdAtAfter: cursor.afterCreatedAt - 1 });
    page = { ...page, users: page.users.filter((u) => u.id !== cursor.afterUserId) };
  }
  return {
    items: page.users.map((user) => ({
      user,
      userId: user.id,
      cursorAfter: { type: 'created', afterUserId: user.id, afterCreatedAt: user.createdAt },
    })),
    last: page.users.length < input.pageSize,
    usersMatching: page.totalCount,
  };
}

/** Up to `pageSize` ids of the batch's slice, resolved to users (unknown ids stay as not found). */
async function idsPage(gateway: ClerkGateway, input: RevocationBatchInput, cursor: RevocationCursor): Promise<Page> {
  if (input.source.type !== 'ids' || cursor.type !== 'ids') throw new Error('ids page needs an ids source and cursor');
  // The slice starts at the batch's starting cursor; a resumed attempt may be further in.
  const sliceStart = input.cursor.type === 'ids' ? input.cursor.index : 0;
  const from = cursor.index - sliceStart;
  const ids = input.source.userIds.slice(from, from + Math.min(input.pageSize, IDS_PER_LIST));
  const found = new Map<string, UserSummary>();
  if (ids.length > 0) {
    const page = await gateway.listUsers({ limit: IDS_PER_LIST, userIds: ids });
    for (const u of page.users) found.set(u.id, u);
  }
  return {
    items: ids.map((id, k) => ({ user: found.get(id) ?? null, userId: id, cursorAfter: { type: 'ids', index: cursor.index + k + 1 } })),
    last: from + ids.length >= input.source.userIds.length,
    usersMatching: null,
  };
}

/**
 * Works a page with at most `inFlight` users at once. `onDone` runs in page order, each time the
 * prefix of finished users grows, so the cursor it heartbeats never passes an unfinished user.
 */
async function workPage(
  items: WorkItem[],
  inFlight: number,
  handle: (item: WorkItem) => Promise<UserOutcome>,
  stopped: () => boolean,
  onDone: (item: WorkItem, outcome: UserOutcome) => void,
): Promise<void> {
  const outcomes: (UserOutcome | undefined)[] = new Array(items.length);
  let next = 0;
  let watermark = 0;
  let failure: unknown = null;
  const lane = async () => {
    while (next < items.length && failure === null && !stopped()) {
      const index = next++;
      try {
        outcomes[index] = await handle(items[index]!);
      } catch (err) {
        failure ??= err;
        return;
      }
      while (watermark < items.length && outcomes[watermark] !== undefined) {
        onDone(items[watermark]!, outcomes[watermark]!);
        outcomes[watermark] = undefined;
        watermark++;
      }
    }
  };
  // Every lane finishes its current user before the batch fails: no call is left running behind it.
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, lane));
  if (failure !== null) throw failure;
}

/** Lists a user's sessions and revokes the active ones. Per-item 4xx answers become failures. */
async function revokeUserSessions(
  gateway: ClerkGateway,
  userId: string,
  opts: { dryRun: boolean; resumed: boolean; startedAt: number },
): Promise<UserOutcome> {
  const counts = { usersScanned: 1, sessionsFound: 0, sessionsRevoked: 0, sessionsAlreadyRevoked: 0, failures: 0 };
  const failed: RevocationFailure[] = [];
  let sessions: SessionSummary[];
  try {
    sessions = await gateway.listSessions(userId, opts.resumed ? undefined : 'active');
  } catch (err) {
    return { ...counts, failures: 1, failed: [perItemFailure(err, userId, null, 'sessions.getSessionList')] };
  }
  for (const session of sessions) {
    if (session.status !== 'active') {
      if (opts.resumed && !opts.dryRun && session.status === 'revoked' && session.updatedAt >= opts.startedAt - CLOCK_SKEW_MS) {
        // Revoked since this revocation started: by an earlier attempt of this batch, most likely.
        counts.sessionsFound++;
        counts.sessionsAlreadyRevoked++;
      }
      continue;
    }
    counts.sessionsFound++;
    if (opts.dryRun) continue;
    try {
      const outcome = await gateway.revokeSession(session.id);
      if (outcome === 'revoked') counts.sessionsRevoked++;
      else counts.sessionsAlreadyRevoked++;
    } catch (err) {
      counts.failures++;
      failed.push(perItemFailure(err, userId, session.id, 'sessions.revokeSession'));
    }
  }
  return { ...counts, failed };
}

/**
 * A failure that belongs to one user or session (a 4xx that retrying will not change). Anything
 * else — the key refused, Clerk still down after the gateway's retries, a bug — is rethrown and
 * fails the batch, which Temporal retries from the heartbeated cursor (or stops, if non-retryable).
 */
function perItemFailure(err: unknown, userId: string, sessionId: string | null, operation: string): RevocationFailure {
  if (!(err instanceof ClerkError) || err.retryable || err instanceof ClerkKeyInvalid) throw err;
  const d = err.toDetails();
  return { userId, sessionId, operation: d.operation || operation, status: d.status, code: d.code, clerkTraceId: d.clerkTraceId, message: d.message };
}
