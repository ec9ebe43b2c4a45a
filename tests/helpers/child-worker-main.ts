/** The life of a worker that a test runs in a child process: `ready` once polling, exit 1 with the error on failure. */
import type { NativeConnection, Worker } from '@temporalio/worker';

export function runChildWorker(start: () => Promise<{ worker: Worker; connection: NativeConnection; onReady?: () => void }>): void {
  start()
    .then(async ({ worker, connection, onReady }) => {
      process.stdout.write('ready\n');
      onReady?.();
      await worker.run();
      await connection.close();
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
