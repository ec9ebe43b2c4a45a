/**
 * The example app a Clerk customer runs: a health route that calls Clerk with the app's deployed
 * secret key (`/api/clerk-health`, through the sandbox's own `/v1`, so it counts against the rate
 * limit like a real app's would) and pages behind `clerkMiddleware()` (`/app/*`).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RouteKey } from '../schemas';
import type { ServerContext } from '../server';

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

export async function exampleApp(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const { admin } = ctx;
  const route = (routeKey: RouteKey) => ({ config: { routeKey } });
  const version = sdkVersion();

  app.get('/api/clerk-health', route('GET /api/clerk-health'), async (_req, reply) => {
    const t0 = Date.now();
    const self = new URL(ctx.selfUrl());
    const origin = admin.app.origin ? new URL(admin.app.origin).origin : self.origin;
    const base = {
      sandbox: true,
      sdk: { name: '@clerk/backend', version: admin.app.sdkVersion ?? version },
      middleware: admin.app.middlewareFailure ? 'failing' : 'ok',
      // What the app is configured with, for diagnostics: where it is served, where its session cookie lives, which instance it names.
      url: `${origin}/`,
      origin,
      cookieDomain: admin.app.cookieDomain ?? self.hostname,
      publishableKey: admin.app.publishableKey ?? admin.instance.publishableKey,
    };
    try {
      const res = await fetch(`${ctx.selfUrl()}/v1/users/count`, {
        headers: { authorization: `Bearer ${admin.app.secretKey}`, 'user-agent': `example-app @clerk/backend@${version}` },
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

  const page = (title: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    if (admin.app.middlewareFailure) {
      return reply.code(500).send({ error: 'Internal Server Error', message: 'clerkMiddleware() failed: unable to authenticate the request (sandbox middlewareFailure switch)', sandbox: true });
    }
    return reply.code(200).header('content-type', 'text/html; charset=utf-8').send(`<!doctype html><title>${title} — example app (Clerk SANDBOX)</title><h1>${title}</h1>`);
  };
  app.get('/app/dashboard', route('GET /app/dashboard'), page('Dashboard'));
  app.get('/app/profile', route('GET /app/profile'), page('Profile'));
}
