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

/** A production deployment as a rollback candidate: when it was built and from what. */
export interface ProductionDeployment {
  id: string;
  url: string | null;
  state: DeploymentState;
  /** Creation time (ms since epoch): the env it captured is the project env of then. */
  createdAt: number;
  /** Has served production: only those can be rolled back to (Vercel's `isRollbackCandidate`). */
  rollbackCandidate: boolean;
  /** Commit, branch and message when the platform reports them (Vercel's `meta.githubCommit*`). */
  commit: { sha: string | null; ref: string | null; message: string | null };
}

export type AliasJobStatus = 'pending' | 'in-progress' | 'succeeded' | 'failed' | 'skipped';

/** The platform's last move of production (Vercel's `lastAliasRequest`). */
export interface AliasRequest {
  type: 'rollback' | 'promote';
  fromDeploymentId: string;
  toDeploymentId: string;
  jobStatus: AliasJobStatus;
  requestedAt: number;
}

/** Where production is now, and whether new builds take it (Vercel: `autoAssignCustomDomains`, off after a rollback). */
export interface AliasStatus {
  productionDeploymentId: string | null;
  autoAssignCustomDomains: boolean | null;
  lastAliasRequest: AliasRequest | null;
}

/** A project env var's write: what the runbook's markers (the `comment`) and times say. No value. */
export interface EnvWrite {
  key: string;
  comment: string | null;
  createdAt: number | null;
  updatedAt: number | null;
}

/** What a rollback or promote request returned: accepted, the outcome comes from `aliasStatus()` (or the platform's own report). */
export interface AliasRequested {
  adapter: AdapterName;
  type: 'rollback' | 'promote';
  toDeploymentId: string;
}

/**
 * Rolling production back to an earlier deployment, and undoing it (promote). Vercel has all of it;
 * the signed webhook only sends the two requests (its receiver reports nothing back).
 */
export interface RollbackCapability {
  /** Production deployments newest first (Vercel: READY rollback candidates only, created before `until`). */
  listProductionDeployments?(opts: { until?: number; limit: number }): Promise<ProductionDeployment[]>;
  /** Point production at `deploymentId` (an instant rollback: that build, with its own env). */
  rollback(deploymentId: string, opts?: { description?: string }): Promise<AliasRequested>;
  /** Point production at `deploymentId` and let new builds take production again (the undo). */
  promote(deploymentId: string): Promise<AliasRequested>;
  aliasStatus?(): Promise<AliasStatus>;
  /** Production env writes with their markers, to tell which build carries what the runbook wrote. */
  envWrites?(): Promise<EnvWrite[]>;
}

/** Who asks for a redeploy: the activity's id (hashed) and whether this is a retry of it. */
export interface RedeployRequest {
  id: string;
  retry: boolean;
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
  /**
   * Redeploy the current production deployment, or `fromDeploymentId`'s source, with today's env
   * (only adapters with `needsRedeploy`). After a Vercel rollback the new build does not take
   * production by itself: promote it once READY. `request` names the asking activity (`id`, stable
   * across its retries): a build is tagged with it, and a retry (`retry`) first looks for the build
   * it already started and starts none (Vercel: the build's `meta`).
   */
  redeploy?(fromDeploymentId?: string, opts?: { request?: RedeployRequest }): Promise<Deployment>;
  /** A deployment's state, by id. */
  deployment?(id: string): Promise<Deployment>;
  /** Absent: this platform cannot roll back (Edge Config: see `rollbackSupport`). */
  readonly rollbacks?: RollbackCapability;
}
