/**
 * What a drill reads from and does to the Clerk sandbox, over HTTP only (the sandbox may belong to
 * a running `npm start`): the admin client, plus the reads the drill's checks rest on (the
 * emulated Vercel's state and change log, the example app as a user sees it).
 */
import { z } from 'zod';
import { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';

/** The emulated Vercel as `GET /__sandbox/vercel` reports it (only the fields the checks read). */
const vercelOverviewSchema = z.object({
  token: z.string(),
  project: z.object({ id: z.string(), env: z.array(z.object({ key: z.string() })) }),
  productionDeploymentId: z.string().nullable(),
  deployments: z.array(z.object({ id: z.string(), readyState: z.string(), env: z.record(z.string(), z.string()) })),
  edgeConfig: z.object({ id: z.string(), items: z.record(z.string(), z.unknown()) }),
  flagKey: z.string(),
  log: z.array(z.object({ time: z.string(), action: z.string(), key: z.string().optional(), deploymentId: z.string().optional() })),
});
export type VercelOverview = z.infer<typeof vercelOverviewSchema>;

export class DrillSandbox {
  readonly admin: SandboxAdminClient;

  constructor(readonly url: string) {
    this.admin = new SandboxAdminClient(url);
  }

  private async json(method: string, path: string, body?: unknown, token?: string): Promise<unknown> {
    const res = await fetch(new URL(path, this.url), {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  }

  async vercel(): Promise<VercelOverview> {
    return vercelOverviewSchema.parse(await this.json('GET', '/__sandbox/vercel'));
  }

  /** Where the sandbox delivers webhooks, and what it drops. */
  async webhookConfig(): Promise<{ url: string | null; drop: boolean; dropRate: number }> {
    return z.object({ url: z.string().nullable(), drop: z.boolean(), dropRate: z.number() }).parse(await this.json('GET', '/__sandbox/webhooks'));
  }

  /** Clerk Platform API rotations the sandbox performed (key ids only). */
  async platformRotations(): Promise<Array<{ time: string; newKeyId: string; expiring: Array<{ id: string; expiresAt: string }> }>> {
    const body = z
      .object({ rotations: z.array(z.object({ time: z.string(), newKeyId: z.string(), expiring: z.array(z.object({ id: z.string(), expiresAt: z.string() })) })) })
      .parse(await this.json('GET', '/__sandbox/platform'));
    return body.rotations;
  }

  /** Users with past sessions that ended after `lifetimeMs` (a too-short session lifetime), each with one active session. */
  async createUsersWithShortSessions(count: number, lifetimeMs: number): Promise<string[]> {
    const body = z.object({ users: z.array(z.object({ id: z.string() })) }).parse(
      await this.json('POST', '/__sandbox/users', { count, expiredSessions: { count: 4, lifetimeMs } }),
    );
    return body.users.map((u) => u.id);
  }

  /**
   * Set (`value`) or remove (null) a production env var of the emulated Vercel project through its
   * REST API, as a team's own deploy would; it reaches the app with the next build.
   */
  async productionEnv(key: string, value: string | null): Promise<void> {
    const project = (await this.vercel()).project.id;
    if (value !== null) return void (await this.vercelApi('POST', `/v10/projects/${project}/env?upsert=true`, { key, value, type: 'plain', target: ['production'] }));
    const listed = z.object({ envs: z.array(z.object({ id: z.string(), key: z.string() })) }).parse(await this.vercelApi('GET', `/v10/projects/${project}/env`));
    for (const e of listed.envs.filter((x) => x.key === key)) await this.vercelApi('DELETE', `/v9/projects/${project}/env/${e.id}`);
  }

  /** A call to the emulated Vercel's REST API with its token, as a team's own tooling would make it. */
  async vercelApi(method: string, path: string, body?: unknown): Promise<unknown> {
    return this.json(method, path, body, (await this.vercel()).token);
  }

  /** The publishable key the example app reports on its health route (what its build runs with). */
  async appPublishableKey(): Promise<string | null> {
    const res = await fetch(new URL('/api/clerk-health', this.url), { signal: AbortSignal.timeout(10_000) });
    return z.object({ publishableKey: z.string().nullable().optional() }).parse(await res.json()).publishableKey ?? null;
  }

  /** An example-app page as a user's browser gets it. */
  async page(path = '/app/dashboard'): Promise<{ status: number; bypass: string | null }> {
    const res = await fetch(new URL(path, this.url), { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    return { status: res.status, bypass: res.headers.get('x-auth-bypass') };
  }

  /** True when the URL answers as a Clerk sandbox (its admin overview). */
  async answers(): Promise<boolean> {
    try {
      await this.admin.info();
      return true;
    } catch {
      return false;
    }
  }
}
