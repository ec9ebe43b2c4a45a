/**
 * The worker of `npm run bench:load`, in a process of its own so that its CPU time and memory are
 * measured apart from the driver's. Wired by the worker's one wiring in sandbox mode
 * (`workerDepsFromEnv`, src/worker/deps.ts, with the app's user store and a chat webhook), through
 * `createWorker` with no tuning of its own: what is measured is the worker users run.
 *
 * Talks to its parent over the IPC channel: the first message is its `LoadWorkerConfig`; it answers
 * `{ type: 'ready' }` once polling, and each `{ type: 'stats', reset? }` with its CPU time (user +
 * system, all threads: getrusage) and the peak RSS sampled since the last reset.
 * Run by bench/load.ts: `node --import tsx bench/load-worker.ts` with an IPC channel.
 */
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { loadEnv } from '../src/config';
import { reconcileDepsFromEnv } from '../src/reconcile-setup';
import { createWorker } from '../src/worker';
import { workerDepsFromEnv, type SandboxEndpoints } from '../src/worker/deps';

export interface LoadWorkerConfig {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  sandbox: SandboxEndpoints;
  /** Where the sandbox's key is written for the worker's `file:` key reference. */
  keyFile: string;
  chatWebhookUrl: string;
  /** CLERK_RATE_HEADROOM of the worker: the share of Clerk's limit its paced calls leave to everything else. */
  clerkHeadroom: number;
  /** The app's user store and the example receiver (webhook_backlog). */
  reconcile: { storeUrl: string; receiverUrl: string; signingSecret: string };
}

export type ToWorker = { type: 'config'; config: LoadWorkerConfig } | { type: 'stats'; reset?: boolean } | { type: 'stop' };
export interface WorkerStats {
  type: 'stats';
  /** CPU seconds since the process started (user + system, every thread). */
  cpuSeconds: number;
  rss: number;
  /** The largest RSS sampled (every 100 ms) since the last reset. */
  peakRss: number;
}
export type FromWorker = { type: 'ready' } | WorkerStats | { type: 'error'; message: string };

const send = (m: FromWorker) => process.send?.(m);

async function run(config: LoadWorkerConfig): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // No post-incident phase: the bench measures the incidents to their end, not a week of waiting for findings.
  const env = loadEnv({ CLERK_RATE_HEADROOM: String(config.clerkHeadroom), REVIEW_PHASE: 'off' });
  const connection = await NativeConnection.connect({ address: config.temporalAddress });
  // The receiver runs in the parent: the store and endpoint it serves, as USER_STORE_URL and RECONCILE_WEBHOOK_URL would name them.
  const reconcile = reconcileDepsFromEnv(env, { storeUrl: config.reconcile.storeUrl, webhookUrl: config.reconcile.receiverUrl, signingSecret: config.reconcile.signingSecret });
  const deps = await workerDepsFromEnv(env, { sandbox: { endpoints: config.sandbox, keyFile: config.keyFile }, chatWebhookUrl: config.chatWebhookUrl, ...(reconcile ? { reconcile } : {}) });
  const worker = await createWorker({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue,
    workflowBundle: { codePath: config.workflowBundlePath },
    identity: `bench-load-worker-${process.pid}`,
    deps,
  });
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100);
  process.on('message', (m: ToWorker) => {
    if (m.type === 'stats') {
      const rss = process.memoryUsage.rss();
      const cpu = process.cpuUsage();
      send({ type: 'stats', cpuSeconds: (cpu.user + cpu.system) / 1e6, rss, peakRss: Math.max(peak, rss) });
      if (m.reset) peak = rss;
    } else if (m.type === 'stop') worker.shutdown();
  });
  const running = worker.run();
  send({ type: 'ready' });
  await running;
  clearInterval(sampler);
  await deps.reconcile?.store.close();
  await connection.close();
  process.exit(0);
}

process.once('message', (m: ToWorker) => {
  if (m.type !== 'config') return;
  run(m.config).catch((err: unknown) => {
    send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(1);
  });
});
