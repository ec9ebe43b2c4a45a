/** Per-test-file access to the run's Temporal dev server (started in tests/global-setup.ts). */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime } from '@temporalio/worker';
import { inject } from 'vitest';
import type { ActivityDeps } from '../../src/activities';
import { createWorker } from '../../src/worker';
import { workerLogger } from '../../src/worker/logger';

export interface TemporalTestContext {
  client: Client;
  nativeConnection: NativeConnection;
  close(): Promise<void>;
}

let runtimeInstalled = false;
/** Workers log at INFO by default; tests only want warnings, as npm start logs them. Once per test file (process). */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  Runtime.install({ logger: workerLogger('WARN') });
  runtimeInstalled = true;
}

/** `dataConverter`: a client that encrypts and decrypts payloads (`dataConverterFromEnv`, src/codec). */
export async function connectTemporal(opts: { dataConverter?: DataConverter } = {}): Promise<TemporalTestContext> {
  quietRuntime();
  const address = inject('temporalAddress');
  const connection = await Connection.connect({ address });
  const nativeConnection = await NativeConnection.connect({ address });
  return {
    client: new Client({ connection, ...(opts.dataConverter ? { dataConverter: opts.dataConverter } : {}) }),
    nativeConnection,
    async close() {
      await nativeConnection.close();
      await connection.close();
    },
  };
}

export { uniqueTaskQueue, uniqueWorkflowId } from './ids';

export function testWorker(nativeConnection: NativeConnection, taskQueue: string, deps: ActivityDeps, identity?: string) {
  return createWorker({
    connection: nativeConnection,
    taskQueue,
    deps,
    workflowBundle: { codePath: inject('workflowBundlePath') },
    ...(identity ? { identity } : {}),
  });
}
