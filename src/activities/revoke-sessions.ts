/**
 * The activities of `revokeSessionsWorkflow`: count the scope, and revoke the sessions of one batch
 * of users. Paging, heartbeats, resuming and interruptions are `./user-paging.ts`'s; what is
 * particular to revocation (exclusions, the activity filter of id lists, revoking a user's active
 * sessions, per-item failures) is here.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { ClerkGateway, SessionSummary } from './clerk';
import { ClerkError, ClerkKeyInvalid, toApplicationFailure } from './clerk-errors';
import { batchSummary, keepFailure, pageUsers, type UserItem } from './user-paging';
import {
  addTotals,
  emptyTotals,
  MAX_NOT_FOUND_KEPT,
  type RevocationBatchInput,
  type RevocationBatchResult,
  type RevocationFailure,
  type RevocationHeartbeat,
  type RevocationTotals,
} from '../revoke-sessions';

/** Clock skew we allow between Clerk's `updated_at` and our start time when recognising our own earlier revokes. */
const CLOCK_SKEW_MS = 5 * 60_000;

type UserOutcome = Partial<RevocationTotals> & { failed?: RevocationFailure[]; notFound?: string };

export interface RevokeSessionsActivityDeps {
  /** The worker's Clerk gateway; undefined when the worker has no Clerk configuration. */
  clerk: () => ClerkGateway | undefined;
}

export function createRevokeSessionsActivities(deps: RevokeSessionsActivityDeps) {
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
      const excluded = new Set(input.excludeUserIds);
      const { source } = input;
      const handleUser = (item: UserItem, resumed: boolean): Promise<UserOutcome> => {
        if (!item.user) return Promise.resolve({ usersNotFound: 1, notFound: item.userId });
        if (excluded.has(item.userId)) return Promise.resolve({ usersScanned: 1, usersExcluded: 1 });
        const lastActive = item.user.lastActiveAt;
        if (source.type === 'ids' && (lastActive === null || lastActive <= source.lastActiveAtAfter)) {
          // Listed by id, so the filter could not keep it out: it is skipped here instead, with no call.
          return Promise.resolve({ usersScanned: 1, usersSkippedByFilter: 1, usersChecked: 1 });
        }
        // A resumed batch lists every status, and counts sessions revoked since the start as done.
        return revokeUserSessions(gateway, item.userId, { dryRun: input.dryRun, resumed, startedAt: input.startedAt });
      };
      const batch = await pageUsers<RevocationHeartbeat, UserOutcome>({
        gateway,
        input,
        label: 'revocation batch',
        operation: 'revokeSessionsBatch',
        initialState: (cursor) => ({ cursor, totals: emptyTotals(), failures: [], failuresDropped: 0, notFoundUserIds: [], usersMatching: null }),
        handle: handleUser,
        fold: (state, { failed = [], notFound, ...counts }) => {
          state.totals = addTotals(state.totals, counts);
          if (notFound !== undefined) {
            // A heartbeat of an older worker has no list: start one.
            state.notFoundUserIds ??= [];
            if (state.notFoundUserIds.length < MAX_NOT_FOUND_KEPT) state.notFoundUserIds.push(notFound);
          }
          for (const f of failed) keepFailure(state, f);
        },
      });
      return { ...batchSummary(batch), notFoundUserIds: batch.state.notFoundUserIds ?? [] };
    },
  };
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
  return { ...counts, usersChecked: failed.length === 0 ? 1 : 0, failed };
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
