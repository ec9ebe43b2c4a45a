/**
 * Where a drill runs: the sandbox and worker of a running `npm start` (found through its runtime
 * file), or what the drill starts itself, wired by the worker's one wiring (src/worker/deps.ts)
 * in sandbox mode as `npm start` is: a Clerk sandbox, the deploy adapter on its emulated Vercel,
 * a worker on a task queue of its own, and the Temporal server at TEMPORAL_ADDRESS or else a dev
 * server with a throwaway database. The environment is `sandboxOnly`: nothing outside the sandbox.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { dataConverterFromEnv } from '../codec';
import { loadEnv } from '../config';
import { temporalConnectionOptions } from '../connection';
import { startSandboxReconcile } from '../reconcile-sandbox';
import { findRunningStart } from '../runtime-file';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { freePort, serverAnswers, startDevServer } from '../temporal/dev-server';
import { ensureBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../temporal/provision';
import { createWorker } from '../worker';
import { SAMPLE_ROSTER_FILE, sandboxOnly, workerDepsFromEnv } from '../worker/deps';
import type { DrillTarget } from './run';
import { DrillSandbox } from './sandbox';
import { DrillSlack } from './slack';
import { slackConfigFromEnv, startSlackApp } from '../chat/start';
import { readRoster } from '../roster/load';

/** How the drill's approvers decide: updates as the CLI sends them, or clicks in the emulated Slack. */
export type DrillVia = 'updates' | 'slack';

export const DEFAULT_REVIEW_DIR = join(PROJECT_ROOT, '.data', 'drills');

/**
 * The incident channel of a worker the drill starts: a Slack-compatible webhook on loopback whose
 * messages go to `log` (stderr), so the worker's console notifications never mix into `--json`.
 */
async function startChatSink(log: (line: string) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      try {
        log(`[channel] ${String((JSON.parse(body) as { text?: unknown }).text ?? '').replace(/\s*\n\s*/g, ' | ')}`);
      } catch {
        // not JSON: nothing to show
      }
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/chat`, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

export interface OpenedTarget {
  target: DrillTarget;
  /** Which setup the drill uses, in a sentence. */
  description: string;
  close(): Promise<void>;
}

/**
 * The running `npm start` when there is one in sandbox mode; otherwise everything the drill
 * needs, started here and stopped by `close`.
 */
export async function openDrillTarget(log: (line: string) => void, reviewDir = DEFAULT_REVIEW_DIR, via: DrillVia = 'updates'): Promise<OpenedTarget> {
  const env = loadEnv();
  const running = findRunningStart();
  if (running.kind === 'found' && running.info.mode === 'sandbox' && running.info.sandboxUrl) {
    const sandbox = new DrillSandbox(running.info.sandboxUrl);
    if (await sandbox.answers()) {
      let slack: DrillSlack | undefined;
      if (via === 'slack') {
        if (!(await sandbox.admin.slack()).settings.interactivityUrl) throw new Error(`--via slack: the running npm start (pid ${running.info.pid}) runs no Slack app (SLACK=off?); stop it, or drill without --via slack`);
        slack = new DrillSlack(sandbox.admin, await readRoster(running.info.rosterFile ?? SAMPLE_ROSTER_FILE));
      }
      const connection = await Connection.connect(temporalConnectionOptions(env, running.info.temporalAddress));
      const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, dataConverter: dataConverterFromEnv(env), identity: 'game-day-drill' });
      return {
        // npm start's sandbox-mode store (src/main.ts: startSandboxReconcile with .data), unless USER_STORE_URL says otherwise.
        target: { client, taskQueue: env.TEMPORAL_TASK_QUEUE, sandbox, reviewDir, log, userStoreUrl: env.USER_STORE_URL ?? `sqlite:${join(PROJECT_ROOT, '.data')}/users.db`, ...(slack ? { slack } : {}) },
        description: `the running npm start (pid ${running.info.pid}): sandbox ${running.info.sandboxUrl}, Temporal ${running.info.temporalAddress}, task queue ${env.TEMPORAL_TASK_QUEUE}`,
        close: () => connection.close(),
      };
    }
    log(`the running npm start's sandbox at ${running.info.sandboxUrl} does not answer: starting a sandbox of our own`);
  } else if (running.kind === 'found') {
    log(`the running npm start (pid ${running.info.pid}) uses real Clerk; drills run in sandbox mode only: starting a sandbox of our own`);
  }

  const stops: Array<() => Promise<void>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log(`while stopping: ${String(err)}`));
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'cir-drill-'));
    stops.push(async () => rmSync(dir, { recursive: true, force: true }));
    let address = env.TEMPORAL_ADDRESS;
    let serverNote = `the Temporal server at ${address}`;
    if (!(await serverAnswers(temporalConnectionOptions(env)))) {
      const cliPath = ensureBinary(TEMPORAL_CLI, { log: (l) => log(`[provision] ${l}`) });
      const server = await startDevServer({ cliPath, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), port: await freePort(), uiPort: await freePort(), namespace: env.TEMPORAL_NAMESPACE });
      stops.push(() => server.stop());
      address = server.address;
      serverNote = `a dev server of its own at ${address} (throwaway database)`;
    }
    const sandbox = await startSandbox({ users: 100, seed: 'drill' });
    stops.push(() => sandbox.close());
    // The app's side of webhooks, as npm start wires sandbox mode: a SQLite store fed by the example receiver.
    const users = await startSandboxReconcile(env, sandbox, dir);
    stops.push(() => users.close());
    // The channel: a webhook sink on stderr, or with --via slack the sandbox's emulated Slack and our Slack app.
    const slackConfig = via === 'slack' ? slackConfigFromEnv({ SLACK: 'on', SLACK_PORT: '0' }, sandbox.url) : undefined;
    const chat = slackConfig ? undefined : await startChatSink(log);
    if (chat) stops.push(chat.close);
    const nativeConnection = await NativeConnection.connect(temporalConnectionOptions(env, address));
    stops.push(() => nativeConnection.close());
    const taskQueue = `clerk-incident-drill-${randomUUID().slice(0, 8)}`;
    const deps = await workerDepsFromEnv(sandboxOnly(env), {
      sandbox: { endpoints: sandbox, keyFile: join(dir, 'clerk-secret-key') },
      reconcile: users.deps,
      ...(chat ? { chatWebhookUrl: chat.url } : {}),
      ...(slackConfig ? { slack: slackConfig.settings } : {}),
      rosterFile: SAMPLE_ROSTER_FILE,
    });
    const worker: Worker = await createWorker({ connection: nativeConnection, namespace: env.TEMPORAL_NAMESPACE, taskQueue, dataConverter: dataConverterFromEnv(env), deps });
    const running = worker.run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    const connection = await Connection.connect(temporalConnectionOptions(env, address));
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, dataConverter: dataConverterFromEnv(env), identity: 'game-day-drill' });
    let slack: DrillSlack | undefined;
    if (slackConfig && deps.roster) {
      const roster = deps.roster;
      const app = await startSlackApp(slackConfig, { connection, namespace: env.TEMPORAL_NAMESPACE, taskQueue, dataConverter: dataConverterFromEnv(env), roster: () => roster.current(), defaultApprovers: ['@auth-oncall'], sandboxUrl: sandbox.url, log: () => undefined });
      stops.push(() => app.close());
      slack = new DrillSlack(new DrillSandbox(sandbox.url).admin, roster.current());
    }
    return {
      target: { client, taskQueue, sandbox: new DrillSandbox(sandbox.url), reviewDir, log, userStoreUrl: users.storeUrl, ...(slack ? { slack } : {}) },
      description: `a sandbox of its own at ${sandbox.url}, ${serverNote}, a worker on task queue ${taskQueue}`,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
