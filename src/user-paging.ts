/**
 * Paging through Clerk users in checkpointed batches: the cursor a batch heartbeats and the next
 * one starts from, what a batch lists, and how it reports that Clerk interrupted it. Shared by the
 * batch activities (`src/activities/user-paging.ts`) and the workflows that carry the cursor
 * (`src/workflows/checkpointed-batches.ts`). Imported by workflow code, so: no Node APIs, no I/O.
 */
import { z } from 'zod';

export const userCursorSchema = z.discriminatedUnion('type', [
  /** Users ordered by `+created_at`; `afterUserId` is the last one handled (null: from the start). */
  z.strictObject({ type: z.literal('created'), afterUserId: z.string().nullable(), afterCreatedAt: z.number().nullable() }),
  /** Position in an explicit list of user ids. */
  z.strictObject({ type: z.literal('ids'), index: z.number().int().min(0) }),
  /** Position in a job's own ordered list (e.g. the app's user store by id): the last key handled. */
  z.strictObject({ type: z.literal('key'), after: z.string().nullable() }),
]);
export type UserCursor = z.infer<typeof userCursorSchema>;

/** The cursor before the first user of a listing or of an id list. */
export function firstCursor(source: UserSource['type']): UserCursor {
  if (source === 'own') return { type: 'key', after: null };
  return source === 'ids' ? { type: 'ids', index: 0 } : { type: 'created', afterUserId: null, afterCreatedAt: null };
}

/**
 * What a batch pages through. `listing`: the instance's users by creation time, optionally only
 * those active in a window (epoch ms). `ids`: this batch's slice of an explicit list (the cursor
 * counts from the start of the whole list, the slice from the batch's starting cursor). `own`: the
 * job lists its pages itself (`UserPagingJob.fetchPage`, with a `key` cursor), e.g. the app's store.
 * A listing may also keep only users created in a window (epoch ms).
 */
export type UserSource =
  | { type: 'listing'; lastActiveAtAfter?: number; lastActiveAtBefore?: number | null; createdAtAfter?: number; createdAtBefore?: number }
  | { type: 'ids'; userIds: string[] }
  | { type: 'own' };

/**
 * Set when Clerk stayed unavailable (5xx, network, 429s) past the gateway's retries: the batch
 * stopped at its exact cursor instead of failing, and the workflow waits before the next one.
 */
export interface BatchInterruption {
  type: string;
  message: string;
  retryAfterMs: number | null;
}

/** What a paging batch activity takes; a job's own batch input extends it. */
export interface UserPagingBatch {
  /** The workflow id, for logs. */
  ref: string;
  source: UserSource;
  /** Where the batch starts; a retried attempt resumes from the cursor it heartbeated instead. */
  cursor: UserCursor;
  pageSize: number;
  /** Users one batch handles at most (whole pages: the last page may overshoot). */
  maxUsers: number;
  /** The batch stops taking new pages after this long. */
  timeBudgetMs: number;
  /** Users handled at once (their requests still share the worker's rate limiter). */
  usersInFlight: number;
  /** The previous batch stopped short (Clerk unavailable), so it may have done work past its cursor. */
  afterInterruption: boolean;
}
