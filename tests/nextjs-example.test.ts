/**
 * The Next.js example (examples/nextjs-bypass) on the real framework: `next start` of its production
 * build, with the sandbox's Clerk keys, the bypass flag in its env or in the sandbox's emulated
 * Edge Config, probed over HTTP with raw paths (the shared table of hostile spellings).
 * Skipped, saying so, only when the example was not built (scripts/nextjs-example.sh builds it; CI runs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sandboxDeployAdapter } from '../src/activities/deploy';
import { startSandbox, type RunningSandbox } from '@clerk-incident-runbook/clerk-sandbox';
import { freePort } from '../src/temporal/dev-server';
import { ALLOWED_ROUTES, HOSTILE_ROWS, PROTECTED_ROUTES, rawGet, type RawResponse } from './helpers/bypass-spellings';

const APP_DIR = path.join(__dirname, '..', 'examples', 'nextjs-bypass');
const NEXT_BIN = path.join(APP_DIR, 'node_modules', 'next', 'dist', 'bin', 'next');
const built = existsSync(path.join(APP_DIR, '.next', 'BUILD_ID')) && existsSync(NEXT_BIN);
if (!built) console.warn('tests/nextjs-example.test.ts SKIPPED: examples/nextjs-bypass is not built; run scripts/nextjs-example.sh build (CI does)');

const FLAG = 'CLERK_AUTH_BYPASS';
const REFUSED = 'auth bypass flag refused';
const DOCUMENT = { accept: 'text/html', 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate' };
const hour = 3_600_000;
const flagFor = (aheadMs: number) => JSON.stringify({ until: new Date(Date.now() + aheadMs).toISOString(), incident: 'inc-nextjs-test' });

interface NextServer {
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

async function startNext(sandbox: RunningSandbox, env: Record<string, string>): Promise<NextServer> {
  const port = await freePort();
  let out = '';
  // `-H localhost`, not 127.0.0.1: clerkMiddleware() rewrites to the request's own URL, which Next.js
  // builds from this host name; under any other name it proxies that rewrite to itself and hangs.
  const child: ChildProcess = spawn(process.execPath, [NEXT_BIN, 'start', '-p', String(port), '-H', 'localhost'], {
    cwd: APP_DIR,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      NODE_ENV: 'production',
      NEXT_TELEMETRY_DISABLED: '1',
      CLERK_TELEMETRY_DISABLED: '1',
      CLERK_SECRET_KEY: sandbox.secretKey,
      CLERK_PUBLISHABLE_KEY: sandbox.publishableKey,
      CLERK_API_URL: sandbox.url,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`next start exited ${child.exitCode}:\n${out}`);
    if (await rawGet(url, '/', { accept: '*/*' }).then(() => true, () => false)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`next start did not answer within 90 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    url,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Clerk's own protection answered (a handshake or sign-in redirect; 404/308 from Next.js for paths it does not route): never the page, never the bypass. */
function expectNormalProtection(res: RawResponse, what: string): void {
  expect(res.headers['x-auth-bypass'], what).toBeUndefined();
  expect(res.body, what).not.toMatch(/Signed in as|public view/);
  expect([307, 308, 404], `${what}: ${res.status}`).toContain(res.status);
}

const refusedLines = (s: NextServer) => s.output().split('\n').filter((l) => l.includes(REFUSED));

/** The refusal lines logged since `before` lines: waits for the first, then a moment for any second. */
async function refusalsSince(s: NextServer, before: number): Promise<string[]> {
  for (const deadline = Date.now() + 10_000; refusedLines(s).length === before && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  return refusedLines(s).slice(before);
}

describe.skipIf(!built)('the Next.js example on Next.js 16 and @clerk/nextjs 7', () => {
  let sandbox: RunningSandbox;
  const servers: Record<'absent' | 'valid' | 'expired' | 'beyondMax' | 'malformed' | 'edgeConfig', NextServer> = {} as never;

  beforeAll(async () => {
    sandbox = await startSandbox({ users: 2, seed: 'nextjs-example' });
    const envs = {
      absent: {},
      valid: { [FLAG]: flagFor(hour) },
      expired: { [FLAG]: flagFor(-60_000) },
      beyondMax: { [FLAG]: flagFor(24 * hour) },
      malformed: { [FLAG]: 'true' },
      edgeConfig: { EDGE_CONFIG: sandbox.vercel.edgeConfigConnection },
    };
    // One at a time: each start is CPU heavy on a shared machine.
    for (const [name, env] of Object.entries(envs)) servers[name as keyof typeof envs] = await startNext(sandbox, env);
  }, 600_000);

  afterAll(async () => {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
    await sandbox?.close();
  });

  it('flag absent: Clerk protects the signed-in pages as usual (handshake redirect for a page, sign-in redirect otherwise)', async () => {
    const s = servers.absent;
    for (const route of [...ALLOWED_ROUTES, ...PROTECTED_ROUTES]) {
      const page = await rawGet(s.url, route, DOCUMENT);
      expectNormalProtection(page, `${route} (page)`);
      expect(page.status).toBe(307);
      // A development instance (pk_test_) first syncs its dev browser through the Frontend API's handshake…
      expect(String(page.headers.location)).toMatch(/^https:\/\/[^/]+\.clerk\.accounts\.dev\/v1\/client\/handshake\?/);
      // …and a request that is not a page navigation goes to the Account Portal's sign-in (auth.protect()).
      const api = await rawGet(s.url, route, { accept: 'application/json', 'sec-fetch-dest': 'empty' });
      expectNormalProtection(api, `${route} (not a page)`);
      expect(String(api.headers.location)).toMatch(/^https:\/\/[^/]+\.accounts\.dev\/sign-in\?redirect_url=/);
    }
    // A client cannot claim the bypass by sending its header.
    expectNormalProtection(await rawGet(s.url, '/app/dashboard', { ...DOCUMENT, 'x-auth-bypass': 'true' }), 'spoofed X-Auth-Bypass');
    // The public page is public (a document navigation would first get the dev-instance handshake too).
    const home = await rawGet(s.url, '/', { accept: '*/*' });
    expect(home.status).toBe(200);
    expect(home.body).toContain('Anyone can read this page');
    expect(home.headers['x-auth-bypass']).toBeUndefined();
    expect(refusedLines(s)).toEqual([]);
  });

  it('flag set and unexpired: the allowlisted routes answer 200 with X-Auth-Bypass: true', async () => {
    for (const route of ['/', ...ALLOWED_ROUTES]) {
      const res = await rawGet(servers.valid.url, route, DOCUMENT);
      expect(res.status, route).toBe(200);
      expect(res.headers['x-auth-bypass'], route).toBe('true');
    }
    expect((await rawGet(servers.valid.url, '/app/dashboard', DOCUMENT)).body).toContain('public view');
    expect(servers.valid.output()).toContain('auth bypass: request let through without authentication');
  });

  it('flag set: no spelling of a protected route opens it (encodings, case, slashes, dot segments, trailing characters)', async () => {
    const opened: string[] = [];
    for (const [route, raw] of HOSTILE_ROWS) {
      const res = await rawGet(servers.valid.url, raw, DOCUMENT).catch((e: unknown): RawResponse => ({ status: -1, headers: {}, body: String(e) }));
      // Opened = the proxy let it through (X-Auth-Bypass) or a page answered; the pages' own auth.protect() is only the second line.
      if (res.headers['x-auth-bypass'] !== undefined || (res.status >= 200 && res.status < 300) || /Signed in as/.test(res.body)) opened.push(`${route} via ${raw}: ${res.status}`);
    }
    expect(opened).toEqual([]);
  }, 300_000);

  it("flag set: the framework's own routing inputs (RSC, prefetch, internal headers, data routes) do not open a protected route", async () => {
    const tricks: [string, Record<string, string>][] = [
      ['/app/admin', { rsc: '1' }],
      ['/app/admin?_rsc=abc', { rsc: '1', 'next-router-prefetch': '1' }],
      ['/app/admin', { 'x-middleware-subrequest': 'proxy:proxy:proxy:proxy:proxy' }],
      ['/app/admin', { 'x-middleware-subrequest': 'middleware:middleware:middleware:middleware:middleware' }],
      ['/app/admin', { 'x-invoke-path': '/app/dashboard', 'x-matched-path': '/app/dashboard' }],
      ['/app/dashboard', { 'x-invoke-path': '/app/admin', 'x-matched-path': '/app/admin', 'x-now-route-matches': '' }],
      ['/app/admin', { 'x-forwarded-uri': '/app/dashboard', 'x-original-url': '/app/dashboard', 'x-rewrite-url': '/app/dashboard' }],
      ['/app/admin.rsc', {}],
      ['/_next/data/x/app/admin.json', {}],
      ['/index/app/admin', {}],
    ];
    for (const [raw, headers] of tricks) {
      const res = await rawGet(servers.valid.url, raw, { ...DOCUMENT, ...headers });
      expect(res.body, `${raw} ${JSON.stringify(headers)}`).not.toContain('Signed in as');
      if (raw.startsWith('/app/admin')) {
        expect(res.status >= 200 && res.status < 300, `${raw} ${JSON.stringify(headers)}: ${res.status}`).toBe(false);
        expect(res.headers['x-auth-bypass'], raw).toBeUndefined();
      }
    }
  });

  it.each(['expired', 'beyondMax', 'malformed'] as const)('flag %s: normal protection, and exactly one log line per request', async (name) => {
    const s = servers[name];
    const before = refusedLines(s).length;
    expectNormalProtection(await rawGet(s.url, '/app/dashboard', DOCUMENT), `${name} /app/dashboard`);
    const lines = await refusalsSince(s, before);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!.slice(lines[0]!.indexOf('{')))).toMatchObject({
      reason: { expired: 'flag_expired', beyondMax: 'flag_beyond_max', malformed: 'flag_malformed' }[name],
    });
  });

  it("the flag in the sandbox's emulated Edge Config, written through the Vercel API: takes effect and goes without a restart", async () => {
    const s = servers.edgeConfig;
    const adapter = sandboxDeployAdapter(sandbox.vercel, 'vercel-edge-config');
    expectNormalProtection(await rawGet(s.url, '/app/dashboard', DOCUMENT), 'no item');

    await adapter.setValue(FLAG, flagFor(hour));
    const on = await rawGet(s.url, '/app/dashboard', DOCUMENT);
    expect(on.status).toBe(200);
    expect(on.headers['x-auth-bypass']).toBe('true');
    for (const [route, raw] of HOSTILE_ROWS.filter((_, i) => i % 7 === 0)) {
      const res = await rawGet(s.url, raw, DOCUMENT);
      expect(res.body, `${route} via ${raw}`).not.toContain('Signed in as');
      expect(res.headers['x-auth-bypass'], `${route} via ${raw}`).toBeUndefined();
    }
    expectNormalProtection(await rawGet(s.url, '/app/admin', DOCUMENT), '/app/admin under the Edge Config flag');

    for (const [value, reason] of [
      [flagFor(-1000), 'flag_expired'],
      [flagFor(30 * hour), 'flag_beyond_max'],
      ['{"until":"soon"}', 'flag_malformed'],
    ] as const) {
      await adapter.setValue(FLAG, value);
      const before = refusedLines(s).length;
      expectNormalProtection(await rawGet(s.url, '/app/dashboard', DOCUMENT), reason);
      expect((await refusalsSince(s, before)).map((l) => JSON.parse(l.slice(l.indexOf('{'))).reason)).toEqual([reason]);
    }

    await adapter.removeValue(FLAG);
    expectNormalProtection(await rawGet(s.url, '/app/dashboard', DOCUMENT), 'item removed');
  });
});
