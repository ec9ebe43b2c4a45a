/**
 * An incident worker in a process of its own, for the self-hosted suite: two of these poll one
 * task queue, and each keeps running (reconnecting) while the server is killed and restarted.
 * Configured by one JSON argument; prints `ready` once created. Activities go to the Clerk
 * sandbox whose URL and key it is given, as `npm start` configures a worker in sandbox mode.
 * With `version`, it is that build of a Worker Deployment as the production worker is
 * (src/worker/index.ts): its workflows pinned, and made current if the deployment has none yet.
 * Run: `node --import tsx tests/selfhosted/incident-worker.ts '<json>'`.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createWorker } from '../../src/worker';
import { makeCurrentIfNone, type WorkerVersion } from '../../src/worker/versioning';
import { runChildWorker } from '../helpers/child-worker-main';
import { sandboxDeps } from '../helpers/incident';

export interface IncidentWorkerConfig {
  temporalAddress: string;
  taskQueue: string;
  workflowBundlePath: string;
  identity: string;
  sandbox: { url: string; secretKey: string; publishableKey: string };
  version?: WorkerVersion;
}

async function start() {
  const config = JSON.parse(process.argv[2] ?? '') as IncidentWorkerConfig;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await createWorker({
    connection,
    taskQueue: config.taskQueue,
    identity: config.identity,
    workflowBundle: { codePath: config.workflowBundlePath },
    deps: sandboxDeps(config.sandbox),
    ...(config.version ? { version: config.version } : {}),
  });
  const { version } = config;
  const onReady = version
    ? () =>
        void makeCurrentIfNone(connection, 'default', version).then(
          (outcome) => console.error(`[${config.identity}] ${outcome.kind}`),
          (err: unknown) => console.error(`[${config.identity}] ${String(err)}`),
        )
    : undefined;
  return { worker, connection, ...(onReady ? { onReady } : {}) };
}

runChildWorker(start);
