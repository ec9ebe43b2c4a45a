/**
 * `npm run bench:sandbox`: how fast the Clerk sandbox answers the SDK's typical calls (faults
 * and rate limit off), so it never limits a benchmark of ours; and what seeding 1,000,000 users
 * costs. The sandbox runs in a child process (the CLI); the load comes from this process through
 * the real SDK with a fixed concurrency. Baseline measured in the same run: a bare node:http
 * hello-world server, loaded by the same client.
 *
 * Env: BENCH_SECONDS (per scenario, default 4), BENCH_CONCURRENCY (default 16), BENCH_USERS (100000).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { createClerkClient } from '@clerk/backend';
import { spawnSandbox } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import { ClerkStore } from '@clerk-incident-runbook/clerk-sandbox';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const USERS = Number(process.env.BENCH_USERS ?? 100_000);
const CLERK_PRODUCTION_PER_SECOND = 1000 / 10;

interface Result {
  name: string;
  /** Sandbox CPU time spent during the measured window (ms), when known. */
  serverCpuMs?: number;
  calls: number;
  httpRequests: number;
  seconds: number;
  errors: number;
  p50: number;
  p99: number;
}

/** Runs `call` from CONCURRENCY loops for SECONDS (after a short warm-up). */
async function load(name: string, requestsPerCall: number, call: (i: number) => Promise<unknown>): Promise<Result> {
  const warmEnd = performance.now() + 300;
  let n = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < warmEnd) await call(n++).catch(() => undefined);
  }));
  const latencies: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const end = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      try {
        await call(n++);
      } catch {
        errors++;
      }
      latencies.push(performance.now() - s);
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { name, calls: latencies.length, httpRequests: latencies.length * requestsPerCall, seconds, errors, p50: pct(0.5), p99: pct(0.99) };
}

async function helloWorld(): Promise<{ url: string; stop: () => Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['-e', "const s=require('node:http').createServer((q,r)=>{r.writeHead(200,{'content-type':'application/json'});r.end('{\"ok\":true}')});s.keepAliveTimeout=10000;s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
  return {
    url: `http://127.0.0.1:${line.trim()}`,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

function seedMillion(): { ms: number; rssDeltaMb: number; heapAndBuffersMb: number } {
  globalThis.gc?.();
  const before = process.memoryUsage();
  const t0 = performance.now();
  const store = new ClerkStore({ users: 1_000_000, seed: 'bench' });
  const ms = performance.now() - t0;
  const after = process.memoryUsage();
  if (store.userRowCount !== 1_000_000) throw new Error('seeding produced the wrong count');
  return {
    ms,
    rssDeltaMb: (after.rss - before.rss) / 2 ** 20,
    heapAndBuffersMb: (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20,
  };
}

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  console.log(`Clerk sandbox benchmark — ${SECONDS}s per scenario, concurrency ${CONCURRENCY}, ${fmt(USERS)} users, node ${process.version}\n`);

  const seeding = seedMillion();
  console.log(`Seeding 1,000,000 users: ${fmt(seeding.ms)} ms, RSS +${fmt(seeding.rssDeltaMb)} MB (heap + array buffers +${fmt(seeding.heapAndBuffersMb)} MB)\n`);

  const hello = await helloWorld();
  const baseline = await load('node:http hello world (fetch)', 1, async () => {
    const res = await fetch(hello.url);
    await res.arrayBuffer();
  });
  await hello.stop();

  const sandbox = await spawnSandbox(['--users', String(USERS), '--rate-limit', 'off', '--seed', 'bench', '--audit-capacity', '100000']);
  const results: Result[] = [];
  // Full 500-user pages: bounded by moving ~750 KB of JSON per page; reported, not in the goal.
  const heavy: Result[] = [];
  try {
    const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });
    const recentUsers = (await clerk.users.getUserList({ limit: 500, lastActiveAtAfter: Date.now() - 7 * 86_400_000 })).data.map((u) => u.id);
    const active = (await sandbox.admin.sessionIds('active')).ids;
    const auth = { authorization: `Bearer ${sandbox.secretKey}` };
    // Wraps a scenario with the sandbox process's CPU time: capacity per sandbox CPU-second is
    // what the sandbox could serve with a core to itself, whatever the client costs.
    const measured = async (r: () => Promise<Result>): Promise<Result> => {
      const before = (await sandbox.admin.info()).process.cpuMs;
      const result = await r();
      result.serverCpuMs = (await sandbox.admin.info()).process.cpuMs - before;
      return result;
    };

    results.push(
      await measured(() => load('raw fetch GET /v1/users/count', 1, async () => {
        const res = await fetch(`${sandbox.url}/v1/users/count`, { headers: auth });
        await res.arrayBuffer();
      })),
    );
    let page = 0;
    results.push(
      await measured(() => load('users.getUserList({ offset })  (SDK default limit 10)  [2 requests]', 2, () =>
        clerk.users.getUserList({ offset: (page++ % 1000) * 10 }))),
    );
    results.push(
      await measured(() => load('users.getUserList({ limit: 100, offset })  [2 requests]', 2, () =>
        clerk.users.getUserList({ limit: 100, offset: (page++ % 100) * 100 }))),
    );
    heavy.push(
      await measured(() => load('users.getUserList({ limit: 500, lastActiveAtAfter })  [2 requests, ~750 KB page]', 2, () =>
        clerk.users.getUserList({ limit: 500, lastActiveAtAfter: Date.now() - 7 * 86_400_000 }))),
    );
    results.push(
      await measured(() => load("sessions.getSessionList({ userId, status: 'active' })", 1, (i) =>
        clerk.sessions.getSessionList({ userId: recentUsers[i % recentUsers.length]!, status: 'active' }))),
    );
    let next = 0;
    results.push(
      await measured(() => load('sessions.revokeSession(id)  (each active session once)', 1, async () => {
        const id = active[next++];
        if (!id) throw new Error('out of active sessions');
        return clerk.sessions.revokeSession(id);
      })),
    );
    const summary = await sandbox.admin.auditSummary();
    if (summary.revokes.sessionsWithRepeatCalls !== 0) throw new Error('a session was revoked twice');
  } finally {
    await sandbox.close();
  }

  const baseRps = baseline.httpRequests / baseline.seconds;
  console.log('| scenario | SDK calls/s | HTTP req/s | × hello world | × Clerk prod limit (100 req/s) | sandbox req per CPU-s | p50 ms | p99 ms | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of [baseline, ...results, ...heavy]) {
    const rps = r.httpRequests / r.seconds;
    const perCpu = r.serverCpuMs ? fmt(r.httpRequests / (r.serverCpuMs / 1000)) : '–';
    console.log(
      `| ${r.name} | ${fmt(r.calls / r.seconds)} | ${fmt(rps)} | ${fmt(rps / baseRps, 2)} | ${fmt(rps / CLERK_PRODUCTION_PER_SECOND, 1)} | ${perCpu} | ${fmt(r.p50, 1)} | ${fmt(r.p99, 1)} | ${r.errors} |`,
    );
  }
  for (const r of heavy) {
    const callsPerSecond = r.calls / r.seconds;
    const serverCalls = r.serverCpuMs ? r.calls / (r.serverCpuMs / 1000) : 0;
    console.log(
      `\n${r.name}: ${fmt(callsPerSecond * 500)} users/s end to end (the SDK client in this process is the bottleneck); ` +
        `the sandbox spends ${fmt(r.serverCpuMs ? r.serverCpuMs / r.calls : 0, 2)} ms CPU per call = ${fmt(serverCalls * 500)} users/s per sandbox CPU-second. ` +
        `Clerk's production limit allows ${fmt((CLERK_PRODUCTION_PER_SECOND / 2) * 500)} users/s at this page size.`,
    );
  }
  const worst = Math.min(...results.map((r) => r.httpRequests / r.seconds));
  const capacity = Math.min(...results.map((r) => (r.serverCpuMs ? r.httpRequests / (r.serverCpuMs / 1000) : Infinity)));
  console.log(
    `Slowest typical scenario end to end: ${fmt(worst)} HTTP req/s (${fmt(worst / CLERK_PRODUCTION_PER_SECOND, 1)}× Clerk's production limit; client and sandbox share this machine's cores).`,
  );
  console.log(
    `Lowest sandbox capacity among typical scenarios: ${fmt(capacity)} req per sandbox CPU-second (${fmt(capacity / CLERK_PRODUCTION_PER_SECOND, 1)}× Clerk's production limit); goal ≥ 2,000 req/s: ${capacity >= 2000 ? 'met' : 'NOT met'}.`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
