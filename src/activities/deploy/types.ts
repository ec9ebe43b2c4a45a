/**
 * The deployment-platform adapter: one interface, three implementations chosen by configuration
 * (`DEPLOY_ADAPTER`): Vercel project env + redeploy, Vercel Edge Config, a signed webhook.
 * Used by the emergency auth bypass (a flag) and the key rotation (a new secret key). Values are
 * passed at adapter level, inside an activity: they never travel through workflow history.
 */
import type { AdapterName } from './errors';

export type { AdapterName } from './errors';

/** Vercel's `readyState`. */
export const DEPLOYMENT_STATES = ['QUEUED', 'INITIALIZING', 'BUILDING', 'READY', 'ERROR', 'CANCELED'] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

export interface Deployment {
  id: string;
  /** Host name as Vercel returns it (no scheme), or null when unknown. */
  url: string | null;
  state: DeploymentState;
}

/** What a set or remove did (no value: this crosses into workflow history). */
export interface ValueChange {
  adapter: AdapterName;
  key: string;
  /** `absent`: a remove found nothing to remove. */
  action: 'set' | 'removed' | 'absent';
  /** The platform's id of the env var, when it has one. */
  id?: string;
  /** The value was already there, written with the same marker (a retry after a crash): nothing was written. */
  already?: boolean;
}

export interface SetValueOptions {
  /** A secret (a Clerk secret key): stored as Vercel `sensitive` (write-only), never `encrypted`-and-readable. */
  sensitive?: boolean;
  /**
   * Names this write (incident, step, value's fingerprint; never the value). Stored with the value
   * where the platform keeps a note (Vercel env `comment`), so a retried activity finds its own
   * earlier write and does not apply it twice.
   */
  marker?: string;
}

export interface DeployAdapter {
  readonly name: AdapterName;
  /**
   * What this adapter writes to, without secrets (`vercel:<api host>/<project>`): one bypass lease
   * per target and flag (src/workflows/bypass-lease.ts), so two workers on one project share it.
   */
  readonly target: string;
  /** True when a change reaches the app only with the next deployment (Vercel project env). */
  readonly needsRedeploy: boolean;
  /** Set `key` to `value` for production. */
  setValue(key: string, value: string, opts?: SetValueOptions): Promise<ValueChange>;
  /** Remove `key` from production; `absent` when it was not set. */
  removeValue(key: string): Promise<ValueChange>;
  /** Whether `key` is set for production, with the note it was written with (adapters that can read back only). */
  readValue?(key: string): Promise<{ present: boolean; marker?: string }>;
  /** Redeploy the current production deployment (only adapters with `needsRedeploy`). */
  redeploy?(): Promise<Deployment>;
  /** A deployment's state, by id. */
  deployment?(id: string): Promise<Deployment>;
}
