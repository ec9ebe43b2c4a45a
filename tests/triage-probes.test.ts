/**
 * What the triage activity lets into workflow history: the app's answers are the app's to fill (an
 * echoed env, a megabyte of JSON), so only what triage reads crosses: the health route's `status`
 * and `middleware`, no page body. The activity runs as the worker runs it (MockActivityEnvironment)
 * against a real HTTP app on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../src/activities';
import type { ProbeReport } from '../src/triage/rules';
import { classify } from '../src/triage/rules';
import { findSecrets } from './helpers/history-scan';

const LEAK = `sk_live_${'A1b2C3d4'.repeat(5)}`;
let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/api/health') return void res.end(JSON.stringify({ status: 'error', middleware: 'failing', env: { CLERK_SECRET_KEY: LEAK }, padding: 'x'.repeat(2_000_000) }));
    res.writeHead(500).end(JSON.stringify({ error: 'boom', stack: `Error: CLERK_SECRET_KEY=${LEAK}`, rows: Array.from({ length: 50_000 }, (_, i) => ({ i })) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe('the triage report as it enters history', () => {
  it("keeps the health route's status and middleware, no page body, nothing the app echoed; the rules still read it", async () => {
    const acts = createActivities({ statusPageUrl: base, sandbox: true, appHealthUrl: `${base}/api/health`, appRoutes: [`${base}/app/a`, `${base}/app/b`] });
    const report = (await new MockActivityEnvironment().run(() => acts.runTriageProbes({ timeoutMs: 5000 }))) as ProbeReport;
    expect(report.health).toMatchObject({ kind: 'ok', status: 200, body: { status: 'error', middleware: 'failing' } });
    expect(Object.keys((report.health as { body: object }).body).sort()).toEqual(['middleware', 'status']);
    expect(report.routes.map((r) => ('body' in r ? r.body : 'none'))).toEqual([null, null]);
    const text = JSON.stringify(report);
    expect(findSecrets(text, [LEAK])).toEqual([]);
    expect(text.length).toBeLessThan(5_000);
    // What triage decides from it is unchanged: every route 500 is the middleware.
    expect(classify(report).rule).toBe('app_routes_500');
  });
});
