/**
 * The remedies of the diagnostics' rule table that change Clerk or the deployed app
 * (src/diagnostics/rules.ts, docs/diagnostics.md "Remedies"): the instance's `allowed_origins`
 * through the Backend API (`PATCH /v1/instance`, read back with `GET /v1/instance`), a
 * compare-and-set on the list the workflow saw, so a retry after a crash finds its own change done
 * and a list someone else changed meanwhile is refused, not overwritten; and the app's publishable
 * key through the deploy adapter, written with a marker so a retry writes nothing twice. (The
 * session lifetime is instance-config.ts.)
 */
import { ApplicationFailure } from '@temporalio/common';
import type { ClerkGateway } from './clerk';
import { toApplicationFailure } from './clerk-errors';
import { toDeployFailure } from './deploy/errors';
import type { DeployAdapter, ValueChange } from './deploy/types';
import { publishableKeyHost } from './diagnostics';

export interface RemedyDeps {
  clerk?: ClerkGateway;
  /** The deploy adapter (DEPLOY_ADAPTER), for a remedy that is a deployed env var. */
  deploy?: DeployAdapter;
  /** CLERK_PUBLISHABLE_KEY: the key the app should be deployed with (read here, never passed through history). */
  publishableKey?: string;
  /** APP_PUBLISHABLE_KEY_ENV: the only env var the keys remedy writes. */
  publishableKeyEnv?: string;
}

/** What the publishable key's remedy wrote (the host it names, never the key). */
export interface PublishableKeyChange extends ValueChange {
  host: string;
  /** The change reaches the app only with a new build (Vercel project env). */
  needsRedeploy: boolean;
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
    /** Whether this worker can set the app's publishable key itself (a deploy adapter and CLERK_PUBLISHABLE_KEY), else by hand. */
    async deployedEnvSupport(): Promise<{ automated: boolean; adapter: string | null }> {
      const d = deps();
      return { automated: d.deploy !== undefined && d.publishableKey !== undefined, adapter: d.deploy?.name ?? null };
    },

    /**
     * Set the app's `env` (its publishable key) to CLERK_PUBLISHABLE_KEY for production, when that
     * key still names `host` (the diagnosis's); the redeploy is the workflow's. A retry finds its
     * own write by its marker and writes nothing.
     */
    async applyDeployedPublishableKey(input: { env: string; host: string; marker: string }): Promise<PublishableKeyChange> {
      const { deploy, publishableKey, publishableKeyEnv } = deps();
      if (!deploy || !publishableKey) throw ApplicationFailure.create({ type: 'DeployRequestRejected', nonRetryable: true, message: 'applyDeployedPublishableKey: needs a deploy adapter (DEPLOY_ADAPTER) and CLERK_PUBLISHABLE_KEY' });
      // The variable is the worker's configuration, not the caller's to choose (never CLERK_SECRET_KEY, say).
      if (input.env !== publishableKeyEnv) {
        throw ApplicationFailure.create({ type: 'DeployRequestRejected', nonRetryable: true, message: `applyDeployedPublishableKey: writes only APP_PUBLISHABLE_KEY_ENV (${publishableKeyEnv ?? 'unset'}), not ${JSON.stringify(input.env.slice(0, 128))}` });
      }
      const host = publishableKeyHost(publishableKey);
      if (host !== input.host) {
        throw ApplicationFailure.create({ type: 'DeployRequestRejected', nonRetryable: true, message: `CLERK_PUBLISHABLE_KEY names ${host ?? 'nothing valid'} now, not ${input.host} as when diagnosed: not deployed; look again` });
      }
      try {
        const change = await deploy.setValue(input.env, publishableKey, { marker: input.marker });
        return { ...change, host, needsRedeploy: deploy.needsRedeploy };
      } catch (err) {
        throw toDeployFailure(err);
      }
    },

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
