/**
 * Activity-level building blocks over the configured deploy adapter, for any step that changes
 * the deployment (the emergency bypass, the key rotation): set or remove a value, redeploy
 * production, read a deployment's state. A `DeployError` leaves as an `ApplicationFailure` of
 * the same type (retryable or not, `Retry-After` honoured).
 *
 * Secrets never go through these: `deploySetEnv` refuses values that look like keys. A step
 * that pushes a secret resolves it inside its own activity and calls `adapter.setValue` there.
 */
import { ApplicationFailure } from '@temporalio/common';
import { toDeployFailure } from './errors';
import type { DeployAdapter, Deployment, ValueChange } from './types';

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

export function createDeployActivities(adapter: () => DeployAdapter | undefined) {
  const need = (what: string): DeployAdapter => {
    const a = adapter();
    if (!a) throw notConfigured(what);
    return a;
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

    /** Redeploy production so env changes take effect (adapters with `needsRedeploy` only). */
    async deployRedeploy(): Promise<Deployment> {
      const a = need('deployRedeploy');
      if (!a.redeploy) throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `deployRedeploy: the ${a.name} adapter has no redeploy (its changes are live at once)`, nonRetryable: true });
      const redeploy = a.redeploy.bind(a);
      return translated(() => redeploy());
    },

    async deploymentStatus(input: { id: string }): Promise<Deployment> {
      const a = need('deploymentStatus');
      if (!a.deployment) throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `deploymentStatus: the ${a.name} adapter has no deployments`, nonRetryable: true });
      const read = a.deployment.bind(a);
      return translated(() => read(input.id));
    },
  };
}
