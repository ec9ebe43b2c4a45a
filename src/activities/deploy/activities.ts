/**
 * Activity-level building blocks over the configured deploy adapter, for any step that changes
 * the deployment (the emergency bypass, the key rotation, the rollback): set or remove a value,
 * redeploy production, read a deployment's state, list rollback candidates, roll back, promote,
 * read the alias job. A `DeployError` leaves as an `ApplicationFailure` of
 * the same type (retryable or not, `Retry-After` honoured).
 *
 * Secrets never go through these: `deploySetEnv` refuses values that look like keys. A step
 * that pushes a secret resolves it inside its own activity and calls `adapter.setValue` there.
 */
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { DeployNotSupported, toDeployFailure } from './errors';
import type { AliasRequested, AliasStatus, DeployAdapter, Deployment, EnvWrite, ProductionDeployment, RedeployRequest, RollbackCapability, ValueChange } from './types';

/** What the configured adapter can do for a rollback, with the reason when it cannot (for the workflow to say). */
export type RollbackSupport =
  | { supported: true; adapter: DeployAdapter['name']; listsDeployments: boolean; reportsAliasStatus: boolean; redeploysFrom: boolean }
  | { supported: false; adapter: DeployAdapter['name'] | null; reason: string };

export function rollbackSupport(adapter: DeployAdapter | undefined): RollbackSupport {
  if (!adapter) return { supported: false, adapter: null, reason: 'no deploy adapter is configured (DEPLOY_ADAPTER): roll back by hand and confirm' };
  const r = adapter.rollbacks;
  if (!r) {
    const why = adapter.name === 'vercel-edge-config' ? 'Edge Config holds items, not deployments: there is no build to roll back to' : 'this adapter has no rollback';
    return { supported: false, adapter: adapter.name, reason: `the ${adapter.name} adapter cannot roll back (${why}); set DEPLOY_ADAPTER=vercel or webhook, or roll back by hand and confirm` };
  }
  return { supported: true, adapter: adapter.name, listsDeployments: !!r.listProductionDeployments, reportsAliasStatus: !!r.aliasStatus, redeploysFrom: !!adapter.redeploy };
}

function notSupported(adapter: DeployAdapter, operation: string, what: string): DeployNotSupported {
  return new DeployNotSupported(`${operation}: the ${adapter.name} adapter cannot ${what}`, { adapter: adapter.name, operation });
}

/** Values that must never be activity inputs (they would be in the history). */
const LOOKS_SECRET = /\b(sk|whsec|rk)_(test|live)?_?[A-Za-z0-9]{8,}/;

function notConfigured(what: string): ApplicationFailure {
  return ApplicationFailure.create({
    type: 'DeployRequestRejected',
    message: `${what}: no deploy adapter is configured (set DEPLOY_ADAPTER and its variables, docs/bypass.md)`,
    nonRetryable: true,
  });
}

async function translated<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw toDeployFailure(err);
  }
}

/**
 * The id of the activity asking for a build, stable across its retries (and the worker's crashes:
 * the workflow schedules it once), so a retry finds the build it started. Hashed: it names a
 * workflow id the incident's starter chose. Undefined outside an activity.
 */
function redeployRequest(): RedeployRequest | undefined {
  let info: Context['info'];
  try {
    info = Context.current().info;
  } catch {
    return undefined;
  }
  // Standalone activities (SDK 1.24) have no workflow: nothing to find a retry by.
  const run = info.workflowExecution;
  if (!run) return undefined;
  const { workflowId, runId } = run;
  // A first attempt started nothing yet: only a retry looks for its build.
  return { id: createHash('sha256').update(`${workflowId}/${runId}/${info.activityId}`).digest('hex').slice(0, 32), retry: info.attempt > 1 };
}

export function createDeployActivities(adapter: () => DeployAdapter | undefined) {
  const need = (what: string): DeployAdapter => {
    const a = adapter();
    if (!a) throw notConfigured(what);
    return a;
  };
  const rollbacks = (what: string): { a: DeployAdapter; r: RollbackCapability } => {
    const a = need(what);
    const support = rollbackSupport(a);
    if (!a.rollbacks || !support.supported) throw toDeployFailure(new DeployNotSupported(`${what}: ${support.supported ? 'no rollback' : support.reason}`, { adapter: a.name, operation: what }));
    return { a, r: a.rollbacks };
  };
  return {
    /** The configured adapter, or null: `{ name, needsRedeploy }` (no secrets). */
    async deployAdapterInfo(): Promise<{ name: DeployAdapter['name']; needsRedeploy: boolean } | null> {
      const a = adapter();
      return a ? { name: a.name, needsRedeploy: a.needsRedeploy } : null;
    },

    /** Set a production value that is not secret (a flag). A value that looks like a key is refused. */
    async deploySetEnv(input: { key: string; value: string }): Promise<ValueChange> {
      if (LOOKS_SECRET.test(input.value)) {
        throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `deploySetEnv: the value of ${input.key} looks like a secret; set secrets inside the activity that resolves them`, nonRetryable: true });
      }
      const a = need('deploySetEnv');
      return translated(() => a.setValue(input.key, input.value));
    },

    async deployRemoveEnv(input: { key: string }): Promise<ValueChange> {
      const a = need('deployRemoveEnv');
      return translated(() => a.removeValue(input.key));
    },

    /**
     * Redeploy production so env changes take effect (adapters with `needsRedeploy` only), or, with
     * `fromDeploymentId`, build that deployment's source again with today's env (a rollback
     * candidate refused for its env alone).
     */
    async deployRedeploy(input: { fromDeploymentId?: string } = {}): Promise<Deployment> {
      const a = need('deployRedeploy');
      if (!a.redeploy) throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `deployRedeploy: the ${a.name} adapter has no redeploy (its changes are live at once)`, nonRetryable: true });
      const redeploy = a.redeploy.bind(a);
      const request = redeployRequest();
      return translated(() => redeploy(input.fromDeploymentId, request ? { request } : {}));
    },

    async deployRollbackSupport(): Promise<RollbackSupport> {
      return rollbackSupport(adapter());
    },

    /** Production rollback candidates, newest first, created before `until` (ms) when given. */
    async deployListProductionDeployments(input: { until?: number; limit: number }): Promise<ProductionDeployment[]> {
      const { a, r } = rollbacks('deployListProductionDeployments');
      if (!r.listProductionDeployments) throw toDeployFailure(notSupported(a, 'deployListProductionDeployments', 'list deployments'));
      const list = r.listProductionDeployments.bind(r);
      return translated(() => list(input));
    },

    async deployRollback(input: { deploymentId: string; description?: string }): Promise<AliasRequested> {
      const { r } = rollbacks('deployRollback');
      return translated(() => r.rollback(input.deploymentId, input.description ? { description: input.description } : {}));
    },

    async deployPromote(input: { deploymentId: string }): Promise<AliasRequested> {
      const { r } = rollbacks('deployPromote');
      return translated(() => r.promote(input.deploymentId));
    },

    async deployAliasStatus(): Promise<AliasStatus> {
      const { a, r } = rollbacks('deployAliasStatus');
      if (!r.aliasStatus) throw toDeployFailure(notSupported(a, 'deployAliasStatus', 'report where production points'));
      const read = r.aliasStatus.bind(r);
      return translated(() => read());
    },

    /** Production env writes (key, marker comment, times; never values), for the candidate check. */
    async deployEnvWrites(): Promise<EnvWrite[]> {
      const { a, r } = rollbacks('deployEnvWrites');
      if (!r.envWrites) throw toDeployFailure(notSupported(a, 'deployEnvWrites', 'list env writes'));
      const read = r.envWrites.bind(r);
      return translated(() => read());
    },

    /** A new production build of `fromDeploymentId`'s source with today's env (the fix for a candidate that carries a dead key). */
    async deployRedeployFrom(input: { fromDeploymentId: string }): Promise<Deployment> {
      const a = need('deployRedeployFrom');
      if (!a.redeploy) throw toDeployFailure(notSupported(a, 'deployRedeployFrom', 'redeploy'));
      const redeploy = a.redeploy.bind(a);
      const request = redeployRequest();
      return translated(() => redeploy(input.fromDeploymentId, request ? { request } : {}));
    },

    async deploymentStatus(input: { id: string }): Promise<Deployment> {
      const a = need('deploymentStatus');
      if (!a.deployment) throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `deploymentStatus: the ${a.name} adapter has no deployments`, nonRetryable: true });
      const read = a.deployment.bind(a);
      return translated(() => read(input.id));
    },
  };
}
