/**
 * A worker in a process of its own, so a test (or the benchmark) can SIGKILL it mid-batch.
 * Configured by one JSON argument (`RevocationWorkerConfig`); prints `ready` once polling, and
 * `rss <bytes>` every second so the parent can track its peak memory (with REVOCATION_WORKER_MEMORY_LOG
 * set, the whole `process.memoryUsage()` goes to stderr too).
 * Run: `node --import tsx tests/helpers/revocation-worker.ts '<json>'`.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createClerkGateway, type ClerkGatewayOptions } from '../../src/activities/clerk';
import { createWorker } from '../../src/worker';
import { DEFAULT_MAPPING, openUserStore } from '../../src/stores';
import type { ReconcileDeps } from '../../src/activities/reconcile-users';

export interface RevocationWorkerConfig {
  temporalAddress: string;
  taskQueue: string;
  /** A prebuilt workflow bundle; bundled at start when omitted. */
  workflowBundlePath?: string;
  identity: string;
  clerk: ClerkGatewayOptions;
  /** Activity tasks at once (the limiter still paces their requests). */
  maxConcurrentActivityTaskExecutions?: number;
  /** The user store and delivery of a reconciliation worker (tests/reconcile-kill.test.ts). */
  reconcile?: { storeUrl: string; delivery: ReconcileDeps['delivery'] };
}

async function main(): Promise<void> {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: revocation-worker.ts <json config>');
  const config = JSON.parse(raw) as RevocationWorkerConfig;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  const worker = await createWorker({
    connection,
    taskQueue: config.taskQueue,
    identity: config.identity,
    deps: {
      statusPageUrl: config.clerk.apiUrl ?? 'http://127.0.0.1:9',
      sandbox: true,
      clerk: createClerkGateway(config.clerk),
      ...(config.reconcile
        ? { reconcile: { store: openUserStore(config.reconcile.storeUrl), mapping: DEFAULT_MAPPING, delivery: config.reconcile.delivery } }
        : {}),
    },
    ...(config.workflowBundlePath ? { workflowBundle: { codePath: config.workflowBundlePath } } : {}),
  });
  const rss = setInterval(() => {
    const m = process.memoryUsage();
    process.stdout.write(`rss ${m.rss}\n`);
    if (process.env.REVOCATION_WORKER_MEMORY_LOG) process.stderr.write(`mem ${JSON.stringify(m)}\n`);
  }, 1000);
  process.stdout.write('ready\n');
  await worker.run();
  clearInterval(rss);
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
