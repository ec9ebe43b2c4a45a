/**
 * Workflow side of a redeploy: start it, then read its state on durable timers until it is
 * READY, fails, or the bound runs out. For any step that changes production env (the emergency
 * bypass, the key rotation). Deterministic: the I/O is in the `deployRedeploy` and
 * `deploymentStatus` activities.
 */
import { isCancellation, proxyActivities, sleep } from '@temporalio/workflow';
import type { DeployActivities } from '../activities';
import type { Deployment } from '../activities/deploy/types';
import { formatDuration } from '../domain';
import { NON_RETRYABLE_ERROR_TYPES } from '../shared';

const deploy = proxyActivities<DeployActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 6, nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES] },
});

export interface RedeployOptions {
  /** Between two reads of the deployment's state. */
  pollEvery: number;
  /** Give up waiting after this long (the deployment may still become READY later). */
  readyWithin: number;
  /** Prefix of activity and timer summaries, e.g. `emergency_bypass`. */
  step: string;
  /** Build this deployment's source again (with today's env) instead of production's. */
  fromDeploymentId?: string;
}

export type RedeployResult =
  | { outcome: 'ready'; deployment: Deployment; waitedMs: number }
  | { outcome: 'failed'; deployment: Deployment; waitedMs: number; reason: string }
  | { outcome: 'timed_out'; deployment: Deployment; waitedMs: number; reason: string };

/** Redeploy production and wait until the new deployment is READY (bounded). Throws only if the redeploy cannot start. */
export async function redeployAndWait(opts: RedeployOptions): Promise<RedeployResult> {
  const started = Date.now();
  let deployment = opts.fromDeploymentId
    ? await deploy.deployRedeploy.executeWithOptions({ summary: `${opts.step}: build ${opts.fromDeploymentId}'s source with today's env` }, [{ fromDeploymentId: opts.fromDeploymentId }])
    : await deploy.deployRedeploy.executeWithOptions({ summary: `${opts.step}: redeploy production` }, []);
  const polls = Math.max(1, Math.ceil(opts.readyWithin / opts.pollEvery));
  for (let i = 1; deployment.state !== 'READY' && deployment.state !== 'ERROR' && deployment.state !== 'CANCELED' && i <= polls; i++) {
    await sleep(opts.pollEvery, { summary: `${opts.step}: deployment ${deployment.id} is ${deployment.state}; check ${i}/${polls}` });
    try {
      deployment = await deploy.deploymentStatus.executeWithOptions({ summary: `${opts.step}: state of deployment ${deployment.id}` }, [{ id: deployment.id }]);
    } catch (err) {
      if (isCancellation(err)) throw err;
      // A status read that fails after its retries is a missed check, not a failed deployment.
    }
  }
  const waitedMs = Date.now() - started;
  if (deployment.state === 'READY') return { outcome: 'ready', deployment, waitedMs };
  if (deployment.state === 'ERROR' || deployment.state === 'CANCELED') return { outcome: 'failed', deployment, waitedMs, reason: `deployment ${deployment.id} ended ${deployment.state}` };
  return { outcome: 'timed_out', deployment, waitedMs, reason: `deployment ${deployment.id} still ${deployment.state} after ${formatDuration(waitedMs)}` };
}
