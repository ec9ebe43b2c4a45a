/**
 * The activities of `reconcileUsersWorkflow`: prepare (store size, delivery mode, Clerk's Svix
 * portal link) and one batch of a pass. Paging, heartbeats, resuming and interruptions are
 * `./user-paging.ts`'s; what is particular to reconciliation is here: comparing a page of Clerk's
 * users with the store (missing, stale), sweeping the store's ids for users deleted in Clerk, and
 * fixing each difference by a signed webhook event (`./webhook-delivery.ts`) or a direct write.
 *
 * A retried or resumed batch compares again before it delivers, so a user it already fixed is in
 * sync and gets nothing; only a delivery the endpoint accepted but whose store write was not yet
 * visible could go twice, with the same `svix-id` (the receiver ignores it).
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/activity';
import type { ClerkGateway, UserSummary } from './clerk';
import { batchSummary, keepFailure, pageUsers, type UserItem, type UserPage } from './user-paging';
import { deliverEvent, reconcileMessageId, WebhookEndpointUnavailable, WebhookRejected, type ReconcileEventType, type WebhookEndpoint } from './webhook-delivery';
import {
  addReconcileTotals,
  emptyReconcileTotals,
  emptySamples,
  SAMPLES_KEPT,
  type ReconcileBatchInput,
  type ReconcileBatchResult,
  type ReconcileFailure,
  type ReconcileHeartbeat,
  type ReconcileTotals,
} from '../reconcile';
import { staleFields, storedUserFromClerk, UserStoreError, type StoreChange, type StoredUser, type StoreMapping, type UserStore } from '../stores';
import type { BatchInterruption } from '../user-paging';

/** Failures one batch reports with ids; more are counted only. */
/** Clerk's `user_id` filter takes up to 100 ids. */
const IDS_PER_LOOKUP = 100;

/** The worker's reconciliation configuration (USER_STORE_URL, RECONCILE_WEBHOOK_URL, …): never in workflow history. */
export interface ReconcileDeps {
  store: UserStore;
  mapping: StoreMapping;
  /** `webhook`: signed events to the app's endpoint (the app applies them); `store`: write the store directly. */
  delivery: { type: 'webhook'; endpoint: WebhookEndpoint } | { type: 'store' };
}

type Change = { type: ReconcileEventType; data: object; version: string; fields: string[] };
type UserOutcome = Partial<ReconcileTotals> & { failure?: ReconcileFailure; sample?: { kind: 'missing' | 'stale' | 'deleted'; userId: string; fields: string[] } };

export function createReconcileActivities(deps: { clerk: () => ClerkGateway | undefined; reconcile: () => ReconcileDeps | undefined }) {
  const configured = (): { gateway: ClerkGateway; rc: ReconcileDeps } => {
    const gateway = deps.clerk();
    const rc = deps.reconcile();
    if (!gateway || !rc) {
      throw ApplicationFailure.create({
        type: 'ReconcileNotConfigured',
        message: `this worker has no ${gateway ? 'user store (USER_STORE_URL)' : 'Clerk configuration (secret key)'}: it cannot reconcile users`,
        nonRetryable: true,
      });
    }
    return { gateway, rc };
  };

  return {
    /** What the run needs to know first: how it delivers, how many rows the store has, Clerk's Svix portal link. */
    async prepareReconcile(): Promise<{ delivery: 'webhook' | 'store'; storeRows: number; svixPortalUrl: string | null; portalError: string | null }> {
      const { gateway, rc } = configured();
      const storeRows = await storeCall(() => rc.store.count());
      let svixPortalUrl: string | null = null;
      let portalError: string | null = null;
      try {
        // Read-only: the link to the app's Svix portal (createSvixApp would create one: not ours to do).
        const res = await gateway.call('webhooks.generateSvixAuthURL', (c) => c.webhooks.generateSvixAuthURL());
        svixPortalUrl = res.svix_url;
      } catch (err) {
        portalError = err instanceof Error ? err.message : String(err);
      }
      return { delivery: rc.delivery.type, storeRows, svixPortalUrl, portalError };
    },

    /** One batch of a pass: up to `maxUsers` users or `timeBudgetMs` (whole pages). */
    async reconcileUsersBatch(input: ReconcileBatchInput): Promise<ReconcileBatchResult> {
      const { gateway: root, rc } = configured();
      const gateway = root.metered();
      const stored = new Map<string, StoredUser>();

      const fix = async (userId: string, change: Change, kind: 'missing' | 'stale' | 'deleted'): Promise<UserOutcome> => {
        const found: UserOutcome = { [kind]: 1, sample: { kind, userId, fields: change.fields } };
        if (input.dryRun) return found;
        const svixId = reconcileMessageId(userId, change.type, change.version);
        if (rc.delivery.type === 'store') {
          const write: StoreChange = change.type === 'user.deleted' ? { type: 'delete', id: userId } : { type: 'upsert', user: storedUserFromClerk(change.data as never) };
          await storeCall(() => rc.store.apply(write));
          return { ...found, applied: 1 };
        }
        try {
          const { attempts } = await deliverEvent(rc.delivery.endpoint, svixId, change.type, change.data);
          return { ...found, applied: 1, deliveryRetries: attempts - 1 };
        } catch (err) {
          if (!(err instanceof WebhookRejected)) throw err;
          return { ...found, rejected: 1, failure: { userId, type: change.type, svixId, status: err.status, answer: err.body.slice(0, 300) } };
        }
      };

      const handle = async (item: UserItem): Promise<UserOutcome> => {
        if (input.pass === 'store') {
          if (item.user) return { storeRowsScanned: 1 };
          // Stored, and Clerk does not know the id: deleted in Clerk.
          return { storeRowsScanned: 1, ...(await fix(item.userId, { type: 'user.deleted', data: { deleted: true, id: item.userId, object: 'user' }, version: 'deleted', fields: [] }, 'deleted')) };
        }
        const user = item.user!;
        const copy = stored.get(user.id);
        stored.delete(user.id);
        if (!user.raw) throw new Error(`Clerk's answer for ${user.id} has no user JSON`);
        const clerk = storedUserFromClerk(user.raw);
        if (!copy) return { usersScanned: 1, ...(await fix(user.id, { type: 'user.created', data: user.raw, version: `${user.updatedAt}|none`, fields: [] }, 'missing')) };
        const fields = staleFields(clerk, copy, rc.mapping);
        if (fields.length === 0) return { usersScanned: 1, inSync: 1 };
        // The version names the store's copy too: a new drift of the same Clerk user is a new message.
        const version = `${user.updatedAt}|${createHash('sha256').update(JSON.stringify(copy)).digest('hex').slice(0, 16)}`;
        return { usersScanned: 1, ...(await fix(user.id, { type: 'user.updated', data: user.raw, version, fields }, 'stale')) };
      };

      /**
       * A page of the store's ids (up to `pageSize`), resolved against Clerk 100 ids at a time, in
       * parallel: one count per 100 ids, a lookup only where some are gone.
       */
      const storePage = async (cursor: ReconcileBatchInput['cursor']): Promise<UserPage> => {
        if (cursor.type !== 'key') throw new Error('the store sweep needs a key cursor');
        const ids = await storeCall(() => rc.store.idsAfter(cursor.after, input.pageSize));
        const known = new Set<string>();
        const chunks = Array.from({ length: Math.ceil(ids.length / IDS_PER_LOOKUP) }, (_, k) => ids.slice(k * IDS_PER_LOOKUP, (k + 1) * IDS_PER_LOOKUP));
        await Promise.all(
          chunks.map(async (chunk) => {
            const n = await gateway.countUsers({ userIds: chunk });
            if (n >= chunk.length) for (const id of chunk) known.add(id);
            else for (const u of (await gateway.listUsers({ limit: IDS_PER_LOOKUP, userIds: chunk })).users) known.add(u.id);
          }),
        );
        return {
          // A known id needs only to be known: the summary is a stand-in (no field of it is read).
          items: ids.map((id) => ({ user: known.has(id) ? presentUser(id) : null, userId: id, cursorAfter: { type: 'key', after: id } })),
          last: ids.length < input.pageSize,
          usersMatching: null,
        };
      };

      const batch = await pageUsers<ReconcileHeartbeat, UserOutcome>({
        gateway,
        input,
        label: `reconcile ${input.pass} batch`,
        operation: 'reconcileUsersBatch',
        initialState: (cursor) => ({ cursor, totals: emptyReconcileTotals(), failures: [], failuresDropped: 0, samples: emptySamples(), usersMatching: null }),
        handle: (item) => handle(item),
        ...(input.pass === 'store'
          ? { fetchPage: storePage }
          : {
              preparePage: async (items: UserItem[]) => {
                const found = await storeCall(() => rc.store.getMany(items.map((i) => i.userId)));
                for (const [id, u] of found) stored.set(id, u);
              },
            }),
        interruption,
        fold: (state, { failure, sample, ...counts }) => {
          state.totals = addReconcileTotals(state.totals, counts);
          if (failure) {
            keepFailure(state, failure);
          }
          if (sample) {
            const s = state.samples;
            if (sample.kind === 'stale') {
              if (s.stale.length < SAMPLES_KEPT) s.stale.push({ userId: sample.userId, fields: sample.fields });
            } else if (s[sample.kind].length < SAMPLES_KEPT) s[sample.kind].push(sample.userId);
          }
        },
      });
      return { ...batchSummary(batch), samples: batch.state.samples, delivery: rc.delivery.type };
    },
  };
}

function presentUser(id: string): UserSummary {
  return { id, createdAt: 0, lastActiveAt: null, updatedAt: 0, raw: null };
}

/** The endpoint or the store down: the batch stops at its cursor and the workflow waits, as for Clerk. */
function interruption(err: unknown): BatchInterruption | null {
  if (err instanceof WebhookEndpointUnavailable) return { type: err.name, message: err.message, retryAfterMs: null };
  if (err instanceof UserStoreError && err.retryable) return { type: 'UserStoreUnavailable', message: err.message, retryAfterMs: null };
  return null;
}

/** A store call; a store error retrying cannot fix (a missing table, a bad URL) fails the run at once. */
async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserStoreError && !err.retryable) {
      throw ApplicationFailure.create({ type: 'UserStoreMisconfigured', message: err.message, nonRetryable: true, cause: err });
    }
    throw err;
  }
}
