/**
 * A worker in a process of its own, logging as `npm start`'s does (`workerLogger`, WARN), so a
 * test can read exactly what the worker log shows (tests/bad-input-log.test.ts). No Clerk behind
 * it and no user store: every activity fails. Configured by one JSON argument; prints `ready`
 * once polling. Run: `node --import tsx tests/helpers/bad-input-worker.ts '<json>'`.
 */
import { NativeConnection, Runtime } from '@temporalio/worker';
import { createClerkGateway } from '../../src/activities/clerk';
import { createWorker } from '../../src/worker';
import { workerLogger } from '../../src/worker/logger';

export interface BadInputWorkerConfig {
  temporalAddress: string;
  taskQueue: string;
  workflowBundlePath: string;
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: bad-input-worker.ts <json config>');
  const config = JSON.parse(raw) as BadInputWorkerConfig;
  Runtime.install({ logger: workerLogger('WARN') });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const nowhere = 'http://127.0.0.1:9';
  const worker = await createWorker({
    connection,
    taskQueue: config.taskQueue,
    workflowBundle: { codePath: config.workflowBundlePath },
    deps: { statusPageUrl: nowhere, sandbox: true, clerk: createClerkGateway({ secretKey: 'sk_test_badinputworker0000', apiUrl: nowhere }) },
  });
  process.stdout.write('ready\n');
  // Worker.run() stops on SIGINT/SIGTERM (the SDK installs the handlers).
  await worker.run();
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
