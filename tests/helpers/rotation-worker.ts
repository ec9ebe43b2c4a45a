/**
 * A rotation worker in a process of its own (tests/helpers/rotation.ts), so a test can SIGKILL it
 * between the push and the retirement. One JSON argument; prints `ready` once polling.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createWorker } from '../../src/worker';
import { rotationDeps, type RotationWorkerSetup } from './rotation';

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as { temporalAddress: string; taskQueue: string; workflowBundlePath: string; setup: RotationWorkerSetup };
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await createWorker({ connection, taskQueue: config.taskQueue, identity: 'rotation-worker-to-kill', deps: rotationDeps(config.setup), workflowBundle: { codePath: config.workflowBundlePath } });
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
