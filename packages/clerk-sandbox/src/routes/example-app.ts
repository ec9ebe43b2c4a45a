/**
 * The example app a Clerk customer runs: a health route that calls Clerk with the app's deployed
 * secret key (`/api/clerk-health`, through the sandbox's own `/v1`, so it counts against the rate
 * limit like a real app's would) and pages behind `clerkMiddleware()` (`/app/*`).
 *
 * Deployed on the sandbox's Vercel (../vercel.ts): its secret key and emergency bypass flag come
 * from the env of the current production deployment (so an env change needs a redeploy, as on
 * Vercel), the flag also from Edge Config (at once). The bypass is decided by the same module as
 * the Next.js example's middleware (examples/nextjs-bypass/bypass-decision.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BYPASS_HEADER, decideBypass, type BypassDecision } from '../../../../examples/nextjs-bypass/bypass-decision';
import type { RouteKey } from '../schemas';
import type { ServerContext } from '../server-context';

function sdkVersion(): string {
  try {
    const req = createRequire(typeof __filename === 'string' ? __filename : path.join(process.cwd(), 'index.js'));
    const entry = req.resolve('@clerk/backend');
    const pkg: unknown = JSON.parse(readFileSync(path.join(path.dirname(entry), '..', 'package.json'), 'utf8'));
    return z.object({ version: z.string() }).parse(pkg).version;
  } catch {
    return 'unknown';
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

const clerkErrorBody = z.object({ errors: z.array(z.object({ code: z.string(), message: z.string() })) });

/** The env var the example app reads its publishable key from (the runbook's APP_PUBLISHABLE_KEY_ENV default). */
const PUBLISHABLE_KEY_ENV = 'NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY';

export async function exampleApp(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });
  const version = sdkVersion();
  const vercel = admin.vercel;
  /** The key the app runs with: its production deployment's CLERK_SECRET_KEY, else the one it was set up with. */
  const secretKey = () => vercel.productionEnv().CLERK_SECRET_KEY ?? admin.app.secretKey;
  /** The flag as the app reads it: Edge Config first (no redeploy), else the production deployment's env. */
  const bypassFlag = (): { raw: unknown; source: 'edge-config' | 'deployment-env' | null } => {
    const item = vercel.edgeConfig.get(vercel.flagKey);
    if (item !== undefined) return { raw: item, source: 'edge-config' };
    const env = vercel.productionEnv()[vercel.flagKey];
    return env !== undefined ? { raw: env, source: 'deployment-env' } : { raw: undefined, source: null };
  };
  const decide = (path: string): { decision: BypassDecision; source: string | null } => {
    const flag = bypassFlag();
    return { decision: decideBypass({ flag: flag.raw, path, now: Date.now() }), source: flag.source };
  };

  app.get('/api/clerk-health', route('GET /api/clerk-health'), async (_req, reply) => {
    const t0 = Date.now();
    const { decision, source } = decide('/api/clerk-health');
    const bypass =
      decision.action === 'authenticate'
        ? { active: false, reason: decision.reason, detail: decision.detail, source, deploymentId: vercel.productionId }
        : { active: true, until: decision.until, source, deploymentId: vercel.productionId };
    if (bypass.active) reply.header(BYPASS_HEADER, 'true');
    const self = new URL(ctx.selfUrl());
    const origin = admin.app.origin ? new URL(admin.app.origin).origin : self.origin;
    const base = {
      sandbox: true,
      sdk: { name: '@clerk/backend', version: admin.app.sdkVersion ?? version },
      middleware: admin.app.middlewareFailure || vercel.servingBad() ? 'failing' : 'ok',
      // What the app is configured with, for diagnostics: where it is served, where its session cookie lives, which instance it names.
      url: `${origin}/`,
      origin,
      cookieDomain: admin.app.cookieDomain ?? self.hostname,
      // As a Next.js app reads it: its production build's env first (what a deploy changes), else the fault override, else the instance's own.
      publishableKey: vercel.productionEnv()[PUBLISHABLE_KEY_ENV] ?? admin.app.publishableKey ?? admin.instance.publishableKey,
      bypass,
    };
    try {
      const res = await fetch(`${ctx.selfUrl()}/v1/users/count`, {
        headers: { authorization: `Bearer ${secretKey()}`, 'user-agent': `example-app @clerk/backend@${version}` },
        signal: AbortSignal.timeout(3000),
      });
      const text = await res.text();
      const latencyMs = Date.now() - t0;
      if (res.ok) return reply.code(200).send({ status: 'ok', ...base, clerk: { reachable: true, status: res.status, latencyMs } });
      const parsed = clerkErrorBody.safeParse(safeJson(text));
      const err = parsed.success ? parsed.data.errors[0] : undefined;
      return reply.code(503).send({
        status: 'error',
        ...base,
        clerk: { reachable: true, status: res.status, latencyMs, errorCode: err?.code ?? null, message: err?.message ?? text.slice(0, 200) },
      });
    } catch (e) {
      const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
      return reply.code(503).send({
        status: 'error',
        ...base,
        clerk: { reachable: false, status: null, latencyMs: Date.now() - t0, errorCode: timedOut ? 'timeout' : 'network_error', message: e instanceof Error ? e.message : String(e) },
      });
    }
  });

  const page = (title: string) => async (req: FastifyRequest, reply: FastifyReply) => {
    if (admin.app.middlewareFailure) {
      return reply.code(500).send({ error: 'Internal Server Error', message: 'clerkMiddleware() failed: unable to authenticate the request (sandbox middlewareFailure switch)', sandbox: true });
    }
    // A bad build (the sandbox's badDeployments): its middleware throws on every page while it serves.
    if (vercel.servingBad()) {
      return reply.code(500).send({ error: 'Internal Server Error', message: `clerkMiddleware() failed in deployment ${vercel.productionId} (sandbox bad deployment)`, sandbox: true });
    }
    const { decision, source } = decide(req.url);
    if (decision.action === 'closed') {
      req.log.warn({ path: req.url }, 'auth bypass: protected route kept closed');
      return reply.code(503).header(BYPASS_HEADER, 'true').send({ error: 'Service Unavailable', message: decision.message, sandbox: true });
    }
    if (decision.action === 'bypass') {
      vercel.bypassedRequests += 1;
      return reply
        .code(200)
        .header(BYPASS_HEADER, 'true')
        .header('content-type', 'text/html; charset=utf-8')
        .send(`<!doctype html><title>${title} — example app (Clerk SANDBOX)</title><h1>${title}</h1><p>Emergency auth bypass until ${decision.until} (flag from ${source}).</p>`);
    }
    // What clerkMiddleware() does when Clerk cannot be reached: the request fails.
    if (admin.outage.isDown()) {
      return reply.code(500).send({ error: 'Internal Server Error', message: 'clerkMiddleware() failed: Clerk is unreachable (sandbox outage)', sandbox: true });
    }
    return reply.code(200).header('content-type', 'text/html; charset=utf-8').send(`<!doctype html><title>${title} — example app (Clerk SANDBOX)</title><h1>${title}</h1>`);
  };
  app.get('/app/dashboard', route('GET /app/dashboard'), page('Dashboard'));
  app.get('/app/profile', route('GET /app/profile'), page('Profile'));
  // Always protected: closed (503) while auth is bypassed.
  app.get('/app/admin', route('GET /app/admin'), page('Admin'));
  app.get('/app/billing', route('GET /app/billing'), page('Billing'));
  app.get('/app/api-keys', route('GET /app/api-keys'), page('API keys'));
}
