/**
 * The remedies of the diagnostics' rule table that change Clerk (src/diagnostics/rules.ts,
 * docs/diagnostics.md "Remedies"): the instance's `allowed_origins` through the Backend API
 * (`PATCH /v1/instance`, read back with `GET /v1/instance`). Each call is a compare-and-set on the
 * list the workflow saw, so a retry after a crash finds its own change done and a list someone
 * else changed meanwhile is refused, not overwritten.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ClerkGateway } from './clerk';
import { toApplicationFailure } from './clerk-errors';

export interface RemedyDeps {
  clerk?: ClerkGateway;
}

/** What `applyAllowedOrigins` found and left: the list before and after, as Clerk reads them back. */
export interface AllowedOriginsChange {
  before: string[];
  after: string[];
  /** The list already was `origins` (a retry after the change, or nothing to do). */
  alreadyDone: boolean;
}

const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

export function createRemedyActivities(deps: () => RemedyDeps) {
  const gateway = (what: string): ClerkGateway => {
    const clerk = deps().clerk;
    if (!clerk) throw ApplicationFailure.create({ type: 'ClerkRequestRejected', message: `${what}: no Clerk secret key configured (CLERK_SECRET_KEY)`, nonRetryable: true });
    return clerk;
  };
  return {
    /**
     * Set the instance's `allowed_origins` to `origins` when it still is `expected` (the list the
     * diagnostics read, or the change being undone); confirmed by reading it back.
     */
    async applyAllowedOrigins(input: { origins: string[]; expected: string[] }): Promise<AllowedOriginsChange> {
      const clerk = gateway('applyAllowedOrigins');
      try {
        const now = (await clerk.call('instance.get', (c) => c.instance.get())).allowedOrigins ?? [];
        if (same(now, input.origins)) return { before: now, after: now, alreadyDone: true };
        if (!same(now, input.expected)) {
          throw ApplicationFailure.create({
            type: 'ClerkRequestRejected',
            nonRetryable: true,
            message: `allowed_origins changed since it was read (now ${now.join(', ') || 'none'}, expected ${input.expected.join(', ') || 'none'}): not overwritten; look again`,
          });
        }
        await clerk.call('instance.update', (c) => c.instance.update({ allowedOrigins: input.origins }));
        const after = (await clerk.call('instance.get', (c) => c.instance.get())).allowedOrigins ?? [];
        if (!same(after, input.origins)) {
          throw ApplicationFailure.create({ type: 'ClerkRequestRejected', nonRetryable: true, message: `allowed_origins reads back as ${after.join(', ') || 'none'}, not ${input.origins.join(', ')}` });
        }
        return { before: now, after, alreadyDone: false };
      } catch (err) {
        if (err instanceof ApplicationFailure) throw err;
        throw toApplicationFailure(err, 'instance.update');
      }
    },
  };
}
