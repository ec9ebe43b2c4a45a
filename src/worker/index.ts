/**
 * The worker on task queue `clerk-incident`: runs the incident workflows and their activities.
 * `createWorker` is what `npm start` and the tests use; run this file directly for a worker
 * alone (e.g. in the container image), configured by environment variables.
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities, type ActivityDeps } from '../activities';
import { clerkLimitsFromEnv, createClerkGateway, createClerkRateLimiters } from '../activities/clerk';
import { signingFromEnv } from '../activities/signing';
import { deployAdapterFromEnv } from '../activities/deploy';
import { workerKeysFromEnv } from '../keys/worker-keys';
import { bypassConfigFromEnv } from '../activities/bypass';
import { dataConverterFromEnv } from '../codec';
import { CLERK_STATUS_PAGE, diagnosticsConfig, loadEnv } from '../config';
import { describeTemporalConnection, temporalConnectionOptions } from '../connection';
import { NAMESPACE_DEFAULT, TASK_QUEUE } from '../shared';
import { prebuiltWorkflowBundle, WORKFLOWS_PATH } from './bundle';
import { reconcileDepsFromEnv } from '../reconcile-setup';
import { workerLogger } from './logger';

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
}

export async function createWorker(opts: CreateWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace ?? NAMESPACE_DEFAULT,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    activities: createActivities(opts.deps),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    ...(opts.identity ? { identity: opts.identity } : {}),
    ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}),
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
  const signing = await signingFromEnv(env, (line) => console.log(line));
  const keys = await workerKeysFromEnv(env);
  const connection = await NativeConnection.connect(temporalConnectionOptions(env));
  // One limiter per Clerk instance for this process: every gateway created here shares it.
  const rateLimiters = createClerkRateLimiters();
  const reconcile = reconcileDepsFromEnv(env);
  const worker = await createWorker({
    connection,
    // Run from dist/ (`npm run build`): the bundle built then; run by tsx from src/: bundled now.
    workflowBundle: prebuiltWorkflowBundle(),
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.TEMPORAL_TASK_QUEUE,
    dataConverter: dataConverterFromEnv(env),
    deps: {
      statusPageUrl: env.CLERK_STATUS_PAGE_URL ?? CLERK_STATUS_PAGE,
      sandbox: false,
      clerk: createClerkGateway({
        secretKey: keys.secretKey,
        keySource: keys.keySource,
        apiUrl: env.CLERK_API_URL,
        ...clerkLimitsFromEnv(env, keys.secretKey),
        rateLimiters,
      }),
      appHealthUrl: env.APP_HEALTH_URL,
      appRoutes: env.APP_ROUTES,
      ...(env.APPROVER_IDENTITIES ? { approverIdentities: env.APPROVER_IDENTITIES } : {}),
      ...(signing ? { signing } : {}),
      diagnostics: diagnosticsConfig(env),
      chatWebhookUrl: env.CHAT_WEBHOOK_URL,
      temporalUiUrl: env.TEMPORAL_UI_URL,
      namespace: env.TEMPORAL_NAMESPACE,
      deploy: deployAdapterFromEnv(env),
      keys: keys.rotation,
      bypass: bypassConfigFromEnv(env),
      ...(reconcile ? { reconcile } : {}),
    },
  });
  console.log(`worker polling task queue ${env.TEMPORAL_TASK_QUEUE} on ${describeTemporalConnection(env)}`);
  // Worker.run() stops on SIGINT/SIGTERM by itself (the SDK installs the handlers).
  await worker.run();
  await connection.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
