/**
 * The worker on task queue `clerk-incident`: runs the incident workflows and their activities.
 * `createWorker` is what `npm start` and the tests use (unversioned); run this file directly for
 * the production worker (`npm run worker:prod`, the image): configured by environment variables
 * (./deps.ts), one build of its Worker Deployment with its workflows pinned (./versioning.ts).
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { dataConverterFromEnv } from '../codec';
import { loadEnv } from '../config';
import { describeTemporalConnection, temporalConnectionOptions } from '../connection';
import { NAMESPACE_DEFAULT, TASK_QUEUE } from '../shared';
import { ensureBypassSweepSchedule } from './bypass-sweep';
import { prebuiltWorkflowBundle, WORKFLOWS_PATH } from './bundle';
import { workerDepsFromEnv } from './deps';
import { workerLogger } from './logger';
import { redactFailures } from './redact-failures';
import { describeVersion, makeCurrentIfNone, versionedDeployment, workerVersionFromEnv, type WorkerVersion } from './versioning';
import { exitQuietlyWhenOutputCloses } from '../stdio';

export { WORKFLOWS_PATH } from './bundle';

export interface CreateWorkerOptions {
  connection: NativeConnection;
  deps: ActivityDeps;
  namespace?: string;
  taskQueue?: string;
  /** A prebuilt bundle (tests build one per run); otherwise the workflows are bundled now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  identity?: string;
  /** Payload encryption (`dataConverterFromEnv`); codecs run outside the workflow sandbox, so the bundle is the same. */
  dataConverter?: DataConverter;
  /** Worker Versioning: this worker is that build of its deployment, its workflows pinned (./versioning.ts). Unset: unversioned. */
  version?: WorkerVersion;
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? NAMESPACE_DEFAULT,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    activities: createActivities(opts.deps),
    // Last line: nothing shaped like a secret leaves in an activity failure (./redact-failures.ts).
    interceptors: { activity: [redactFailures] },
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
    ...(opts.version ? { workerDeploymentOptions: versionedDeployment(opts.version) } : {}),
  });
}

async function main(): Promise<void> {
  const env = loadEnv();
  // The SDK's default level (INFO); input refusals as one line each (./logger.ts).
  Runtime.install({ logger: workerLogger('INFO') });
  if (!env.CLERK_SECRET_KEY && !env.CLERK_SECRET_KEY_REF) {
    throw new Error(
      'CLERK_SECRET_KEY is not set. A worker on its own talks to real Clerk only; use `npm start` for sandbox mode.',
    );
  }
  const version = workerVersionFromEnv(env);
  const deps = await workerDepsFromEnv(env, { say: (line) => console.log(line) });
  const connection = await NativeConnection.connect(temporalConnectionOptions(env));
  const worker = await createWorker({
    connection,
    // Run from dist/ (`npm run build`): the bundle built then; run by tsx from src/: bundled now.
    workflowBundle: prebuiltWorkflowBundle(),
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    dataConverter: dataConverterFromEnv(env),
    version,
    deps,
  });
  const sweep = await ensureBypassSweepSchedule(connection, env.TEMPORAL_NAMESPACE, env.TEMPORAL_TASK_QUEUE);
  console.log(`bypass sweep schedule (every minute): ${sweep}`);
  console.log(`worker polling task queue ${env.TEMPORAL_TASK_QUEUE} on ${describeTemporalConnection(env)} as version ${describeVersion(version)} (workflows pinned)`);
  // Worker.run() stops on SIGINT/SIGTERM by itself (the SDK installs the handlers).
  const running = worker.run();
  const stopped = new AbortController();
  const settled = makeCurrentIfNone(connection, env.TEMPORAL_NAMESPACE, version, { signal: stopped.signal }).then(
    (outcome) => {
      if (outcome.kind === 'made-current') console.log(`${describeVersion(version)} is now the current version (the deployment had none)`);
      if (outcome.kind === 'other-current') {
        console.log(`the current version is ${describeVersion(outcome.current)}: this build takes new incidents once it is made current (docs/scale-out.md)`);
      }
    },
    (err: unknown) => console.error(`could not check the deployment's current version: ${err instanceof Error ? err.message : String(err)}`),
  );
  await running;
  stopped.abort();
  await settled;
  await connection.close();
}

if (require.main === module) {
  exitQuietlyWhenOutputCloses('keep-running');
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
