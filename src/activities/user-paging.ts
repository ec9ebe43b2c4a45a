/**
 * One batch of a job that pages through Clerk users (session revocation, user reconciliation). It
 * walks pages of users (the next page is listed while the current one is worked), handles a bounded
 * number of users at once, and heartbeats the job's state with a cursor that only moves past users
 * that are completely done. A retried batch (worker killed, Clerk down for longer than the
 * gateway's retries) resumes from that heartbeat; a batch Clerk keeps interrupting stops at its
 * exact cursor and says so, so the workflow can wait on a durable timer.
 */
import { CancelledFailure, Context, log } from '@temporalio/activity';
import type { ClerkGateway, UserSummary } from './clerk';
import { ClerkError, ClerkKeyInvalid, ClerkRateLimited, ClerkRequestRejected, toApplicationFailure } from './clerk-errors';
import type { BatchInterruption, UserCursor, UserPagingBatch } from '../user-paging';

/** Least time between two heartbeats of a batch. */
const HEARTBEAT_EVERY_MS = 200;
/** Ids per `user_id` filter (Clerk accepts up to 100). */
const IDS_PER_LIST = 100;

export interface UserItem {
  /** A user to handle, or null for an id of an explicit list that Clerk does not know. */
  user: UserSummary | null;
  userId: string;
  /** Where the cursor stands once this item is done. */
  cursorAfter: UserCursor;
}

/** The least a job's heartbeated state holds; the job adds its own counters and findings. */
export interface UserPagingState {
  cursor: UserCursor;
  /** Users matching the listing's filters, as Clerk counted them on the last page (for the ETA). */
  usersMatching: number | null;
  /** Requests sent to Clerk, 429 answers and retried calls, kept up to date by the pager. */
  totals: { requests: number; rateLimited: number; retries: number };
}

export interface UserPagingJob<S extends UserPagingState, O> {
  /** The worker's gateway (a metered view of it: its counters go into `state.totals`). */
  gateway: ClerkGateway;
  input: UserPagingBatch;
  /** Names the batch in logs and failures, e.g. `revocation batch` / `revokeSessionsBatch`. */
  label: string;
  operation: string;
  /** The state of a batch that starts afresh at `input.cursor` (a resumed one starts from its heartbeat). */
  initialState(cursor: UserCursor): S;
  /** Handles one user. `resumed`: an earlier attempt, or the interrupted batch before, may have done it already. */
  handle(item: UserItem, resumed: boolean): Promise<O>;
  /** Folds a finished user's outcome into the state (the cursor has already moved past it). */
  fold(state: S, outcome: O): void;
  /** Called once per page before its users are handled (e.g. to look them all up in one query). */
  preparePage?(items: UserItem[]): Promise<void>;
  /** The pages of an `own` source, after `cursor` (a `key` cursor). */
  fetchPage?(cursor: UserCursor): Promise<UserPage>;
  /**
   * Other failures that stop the batch at its cursor instead of failing it, like Clerk being
   * unavailable (e.g. the app's webhook endpoint down): the interruption, or null for a failure.
   */
  interruption?(err: unknown): BatchInterruption | null;
}

export interface UserPagingOutcome<S> {
  state: S;
  /** No user left after the cursor (listing), or the slice is finished (ids). */
  done: boolean;
  interrupted: BatchInterruption | null;
  startedAt: number;
  finishedAt: number;
  attempt: number;
  /** True when this attempt picked up from a cursor an earlier, interrupted attempt heartbeated. */
  fromHeartbeat: boolean;
}

export interface UserPage {
  items: UserItem[];
  /** No more users after this page. */
  last: boolean;
  usersMatching: number | null;
}

/** Runs one batch of `job` in the current activity: up to `maxUsers` users or `timeBudgetMs`, whole pages. */
export async function pageUsers<S extends UserPagingState, O>(job: UserPagingJob<S, O>): Promise<UserPagingOutcome<S>> {
  const { gateway, input } = job;
  const ctx = Context.current();
  const startedAt = Date.now();
  const previous = ctx.info.heartbeatDetails as S | undefined;
  const state: S = previous ? structuredClone(previous) : job.initialState(input.cursor);
  // An earlier attempt may have done work after its last heartbeat reached the server.
  const resumed = ctx.info.attempt > 1 || input.afterInterruption;
  if (resumed) {
    log.info(`${job.label} resumes`, { ref: input.ref, attempt: ctx.info.attempt, cursor: state.cursor, fromHeartbeat: !!previous });
  }
  const deadline = startedAt + input.timeBudgetMs;
  const statsAtHeartbeat = { requests: 0, rateLimited: 0, retries: 0 };
  /** Adds the gateway's counters since the last call to the totals (they go out with the heartbeat). */
  const takeStats = () => {
    const s = gateway.stats();
    state.totals = {
      ...state.totals,
      requests: state.totals.requests + s.requests - statsAtHeartbeat.requests,
      rateLimited: state.totals.rateLimited + s.rateLimited - statsAtHeartbeat.rateLimited,
      retries: state.totals.retries + s.retries - statsAtHeartbeat.retries,
    };
    Object.assign(statsAtHeartbeat, { requests: s.requests, rateLimited: s.rateLimited, retries: s.retries });
  };
  const fetchPage = (cursor: UserCursor): Promise<UserPage> => {
    if (input.source.type === 'own') {
      if (!job.fetchPage) throw new Error(`${job.label}: an own source needs fetchPage`);
      return job.fetchPage(cursor);
    }
    return input.source.type === 'listing' ? listingPage(gateway, input, cursor) : idsPage(gateway, input, cursor);
  };

  let cancelled = false;
  ctx.cancellationSignal.addEventListener('abort', () => {
    cancelled = true;
  });

  let done = false;
  let interrupted: BatchInterruption | null = null;
  let handled = 0;
  let lastHeartbeatAt = 0;
  try {
    let page = await fetchPage(state.cursor);
    for (;;) {
      state.usersMatching = page.usersMatching ?? state.usersMatching;
      const more = !page.last && handled + page.items.length < input.maxUsers && Date.now() < deadline;
      // List the next page while this one is worked on, so the limiter never idles between pages.
      const nextPage = more ? fetchPage(page.items.at(-1)!.cursorAfter) : null;
      nextPage?.catch(() => undefined); // awaited below; keeps an early rejection from going unhandled
      if (job.preparePage) await job.preparePage(page.items);
      await workPage(page.items, input.usersInFlight, (item) => job.handle(item, resumed), () => cancelled, (item, outcome) => {
        state.cursor = item.cursorAfter;
        job.fold(state, outcome);
        handled++;
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
      if (cancelled) throw new CancelledFailure(`${job.label} cancelled`);
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
    const own = job.interruption?.(err) ?? null;
    if (own) {
      log.warn(`${own.type}; the batch stops at its cursor`, { ref: input.ref, error: own.message });
      interrupted = own;
    } else if (!(err instanceof ClerkError && err.retryable)) {
      if (err instanceof ClerkKeyInvalid) log.error(`Clerk rejected the secret key: ${job.label} stops`, { ref: input.ref });
      throw toApplicationFailure(err, job.operation);
    } else {
      log.warn('Clerk unavailable; the batch stops at its cursor', { ref: input.ref, error: err.message });
      interrupted = { type: err.name, message: err.message, retryAfterMs: err instanceof ClerkRateLimited ? err.retryAfterMs : null };
    }
  }
  takeStats();
  return { state, done, interrupted, startedAt, finishedAt: Date.now(), attempt: ctx.info.attempt, fromHeartbeat: !!previous };
}

/** A page of users after `cursor`, ordered by `+created_at`, filtered by last activity. */
async function listingPage(gateway: ClerkGateway, input: UserPagingBatch, cursor: UserCursor): Promise<UserPage> {
  if (input.source.type !== 'listing' || cursor.type !== 'created') throw new Error('listing page needs a listing source and cursor');
  const { lastActiveAtAfter, lastActiveAtBefore, createdAtAfter, createdAtBefore } = input.source;
  const filters = {
    limit: input.pageSize,
    ...(lastActiveAtAfter !== undefined ? { lastActiveAtAfter } : {}),
    ...(lastActiveAtBefore != null ? { lastActiveAtBefore } : {}),
    ...(createdAtAfter !== undefined ? { createdAtAfter } : {}),
    ...(createdAtBefore !== undefined ? { createdAtBefore } : {}),
  };
  let page;
  try {
    page = await gateway.listUsers({ ...filters, ...(cursor.afterUserId ? { startingAfter: cursor.afterUserId } : {}) });
  } catch (err) {
    // The cursor's user was deleted since (or `starting_after` is refused): continue from its creation
    // time instead (users created in the same millisecond are listed again, which costs a call each
    // and does no work twice).
    if (!(err instanceof ClerkRequestRejected && (err.status === 422 || err.status === 400) && cursor.afterCreatedAt !== null)) throw err;
    log.warn('cursor user is gone; continuing from its creation time', { afterUserId: cursor.afterUserId });
    page = await gateway.listUsers({ ...filters, createdAtAfter: Math.max(cursor.afterCreatedAt - 1, createdAtAfter ?? -Infinity) });
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
async function idsPage(gateway: ClerkGateway, input: UserPagingBatch, cursor: UserCursor): Promise<UserPage> {
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
async function workPage<O>(
  items: UserItem[],
  inFlight: number,
  handle: (item: UserItem) => Promise<O>,
  stopped: () => boolean,
  onDone: (item: UserItem, outcome: O) => void,
): Promise<void> {
  const outcomes: ({ value: O } | undefined)[] = new Array(items.length);
  let next = 0;
  let watermark = 0;
  let failure: unknown = null;
  const lane = async () => {
    while (next < items.length && failure === null && !stopped()) {
      const index = next++;
      try {
        outcomes[index] = { value: await handle(items[index]!) };
      } catch (err) {
        failure ??= err;
        return;
      }
      while (watermark < items.length && outcomes[watermark] !== undefined) {
        onDone(items[watermark]!, outcomes[watermark]!.value);
        outcomes[watermark] = undefined;
        watermark++;
      }
    }
  };
  // Every lane finishes its current user before the batch fails: no call is left running behind it.
  await Promise.all(Array.from({ length: Math.min(inFlight, items.length) }, lane));
  if (failure !== null) throw failure;
}

/** Failures a batch keeps in its result (and heartbeat); the rest are only counted. */
export const MAX_BATCH_FAILURES = 200;

/** A job state that keeps a bounded list of failures. */
export interface FailureKeepingState<F> extends UserPagingState {
  failures: F[];
  failuresDropped: number;
}

export function keepFailure<F>(state: FailureKeepingState<F>, failure: F): void {
  if (state.failures.length < MAX_BATCH_FAILURES) state.failures.push(failure);
  else state.failuresDropped++;
}

/** What every batch activity reports of its pass, whatever the job: cursor, totals, failures, timing. */
export function batchSummary<F, S extends FailureKeepingState<F>>(batch: UserPagingOutcome<S>) {
  const { state } = batch;
  return {
    cursor: state.cursor,
    done: batch.done,
    totals: state.totals as S['totals'],
    failures: state.failures,
    failuresDropped: state.failuresDropped,
    usersMatching: state.usersMatching,
    startedAt: batch.startedAt,
    finishedAt: batch.finishedAt,
    attempt: batch.attempt,
    resumed: batch.fromHeartbeat,
    interrupted: batch.interrupted,
  };
}
