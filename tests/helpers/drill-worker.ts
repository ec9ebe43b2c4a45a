/**
 * A sandbox-mode worker (as `npm start` and `npm run drill` wire one) in a process of its own, so
 * the crash suite can SIGKILL it at any point of a playbook and start another. Configured by one
 * JSON argument (`DrillWorkerConfig`); prints `ready` once polling.
 * Run: `node --import tsx tests/helpers/drill-worker.ts '<json>'`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import type { ReconcileDeps } from '../../src/activities/reconcile-users';
import { loadEnv } from '../../src/config';
import { DEFAULT_MAPPING, openUserStore } from '../../src/stores';
import { createWorker } from '../../src/worker';
import { SAMPLE_ROSTER_FILE, workerDepsFromEnv, type SandboxEndpoints } from '../../src/worker/deps';
import { runChildWorker } from './child-worker-main';
import type { SlackAppSettings } from '../../src/chat/slack-client';

export interface DrillWorkerConfig {
  temporalAddress: string;
  taskQueue: string;
  workflowBundlePath: string;
  identity: string;
  sandbox: SandboxEndpoints;
  /** The worker's `file:` key reference: kept across restarts, since a rotation writes the new key there. */
  keyFile: string;
  reconcile: { storeUrl: string; delivery: ReconcileDeps['delivery'] };
  chatWebhookUrl?: string;
  /** The Slack app's Web API side (the sandbox's emulated Slack): notifications in one thread per incident. */
  slack?: SlackAppSettings;
  /** No on-call roster (approvals unauthenticated, as a worker without ROSTER_FILE); the sample roster otherwise. */
  noRoster?: boolean;
}

async function start() {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: drill-worker.ts <json config>');
  const config = JSON.parse(raw) as DrillWorkerConfig;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // The key the previous worker left (the rotated one after a rotation), not the sandbox's first.
  const secretKey = existsSync(config.keyFile) ? readFileSync(config.keyFile, 'utf8').trim() : config.sandbox.secretKey;
  const deps = await workerDepsFromEnv(loadEnv({}), {
    sandbox: { endpoints: { ...config.sandbox, secretKey }, keyFile: config.keyFile },
    reconcile: { store: openUserStore(config.reconcile.storeUrl), mapping: DEFAULT_MAPPING, delivery: config.reconcile.delivery },
    ...(config.chatWebhookUrl ? { chatWebhookUrl: config.chatWebhookUrl } : {}),
    ...(config.slack ? { slack: config.slack } : {}),
    // The drills' roles (@auth-oncall) resolve through the sample roster, as in `npm run drill`.
    ...(config.noRoster ? {} : { rosterFile: SAMPLE_ROSTER_FILE }),
  });
  // Started while the server restarts: wait for it, as a supervised worker would be restarted until it connects.
  const deadline = Date.now() + 60_000;
  let connection: NativeConnection | undefined;
  while (!connection) {
    connection = await NativeConnection.connect({ address: config.temporalAddress }).catch((err: unknown) => {
      if (Date.now() > deadline) throw err;
      return new Promise<undefined>((r) => setTimeout(() => r(undefined), 500));
    });
  }
  const worker = await createWorker({
    connection,
    taskQueue: config.taskQueue,
    identity: config.identity,
    deps,
    workflowBundle: { codePath: config.workflowBundlePath },
  });
  return { worker, connection };
}

runChildWorker(start);
