/**
 * Worker Versioning of the production worker (docs/scale-out.md, "Upgrading the worker"): each
 * build is a Worker Deployment Version (TEMPORAL_DEPLOYMENT_NAME, TEMPORAL_BUILD_ID), and every
 * workflow it runs is pinned, so an incident finishes on the build it started on while new
 * incidents go to the deployment's current version. `npm start` and the tests run unversioned.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { WorkflowService } from '@temporalio/client';
import type { WorkerDeploymentVersion } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';
import { z } from 'zod';
import { ConfigError, type Env } from '../config';
import { PROJECT_ROOT } from '../temporal/provision';
import { prebuiltWorkflowBundle } from './bundle';

export type WorkerVersion = WorkerDeploymentVersion;

/** Pinned by default: an incident's approvals, timers and compensations all run on one build's code. */
export function versionedDeployment(version: WorkerVersion): WorkerDeploymentOptions {
  return { useWorkerVersioning: true, version: { deploymentName: version.deploymentName, buildId: version.buildId }, defaultVersioningBehavior: 'PINNED' };
}

const packageJson = z.object({ version: z.string().min(1) });

/**
 * The build id when TEMPORAL_BUILD_ID is unset: the package version and the git commit of a
 * checkout, else (an image has no .git) the package version and the hash of the prebuilt
 * workflow bundle, so a build with other workflow code never shares a version with this one.
 */
function defaultBuildId(root: string = PROJECT_ROOT, bundle: { codePath: string } | undefined = prebuiltWorkflowBundle()): string {
  const { version } = packageJson.parse(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')));
  const git = spawnSync('git', ['rev-parse', '--short=12', 'HEAD'], { cwd: root, encoding: 'utf8' });
  const sha = git.status === 0 ? git.stdout.trim() : '';
  if (/^[0-9a-f]{7,40}$/.test(sha)) return `${version}-${sha}`;
  if (bundle) return `${version}-${createHash('sha256').update(readFileSync(bundle.codePath)).digest('hex').slice(0, 12)}`;
  throw new ConfigError('TEMPORAL_BUILD_ID is not set, and neither git nor a prebuilt workflow bundle (npm run build) gives this build an id');
}

export function workerVersionFromEnv(env: Pick<Env, 'TEMPORAL_DEPLOYMENT_NAME' | 'TEMPORAL_BUILD_ID'>): WorkerVersion {
  return { deploymentName: env.TEMPORAL_DEPLOYMENT_NAME, buildId: env.TEMPORAL_BUILD_ID ?? defaultBuildId() };
}

export const describeVersion = (v: WorkerVersion) => `${v.deploymentName}:${v.buildId}`;

type CurrentVersionOutcome = { kind: 'made-current' } | { kind: 'already-current' } | { kind: 'other-current'; current: WorkerVersion };

/**
 * A deployment's first build: when the deployment has no current version yet, makes `version`
 * current, so a fresh cluster runs incidents without an operator step. Once a version is
 * current, promoting another is the operator's decision (`temporal worker deployment
 * set-current-version`), never a worker's. Waits until the server lists `version` (it does once
 * the worker has polled); a conflict with another worker doing the same is settled by the
 * deployment's conflict token and read again.
 */
export async function makeCurrentIfNone(
  connection: { workflowService: WorkflowService },
  namespace: string,
  version: WorkerVersion,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<CurrentVersionOutcome> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const service = connection.workflowService;
  let lastError: unknown;
  while (!opts.signal?.aborted) {
    try {
      const { workerDeploymentInfo: info, conflictToken } = await service.describeWorkerDeployment({ namespace, deploymentName: version.deploymentName });
      const current = info?.routingConfig?.currentDeploymentVersion;
      if (current?.buildId && current.deploymentName) {
        return current.buildId === version.buildId ? { kind: 'already-current' } : { kind: 'other-current', current: { deploymentName: current.deploymentName, buildId: current.buildId } };
      }
      if (info?.versionSummaries?.some((s) => s.deploymentVersion?.buildId === version.buildId)) {
        await service.setWorkerDeploymentCurrentVersion({
          namespace,
          deploymentName: version.deploymentName,
          buildId: version.buildId,
          ...(conflictToken?.length ? { conflictToken } : {}),
          identity: `${process.pid}@${hostname()}`,
        });
        return { kind: 'made-current' };
      }
    } catch (err) {
      // NotFound until the first poll registers the deployment; a lost conflict: read again.
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`${describeVersion(version)}: could not read or set the deployment's current version within ${opts.timeoutMs ?? 60_000} ms${lastError instanceof Error ? ` (${lastError.message})` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${describeVersion(version)}: stopped before the deployment's current version was settled`);
}
