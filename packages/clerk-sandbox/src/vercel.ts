/**
 * The sandbox's Vercel: one project (env vars, deployments), one Edge Config, and a log of every
 * change, so a drill verifies what the runbook did from the platform's own records. Deployments
 * snapshot the project env when created and become READY `buildMs` later, as on Vercel: an env
 * change reaches the example app only with the next production deployment; an Edge Config item
 * reaches it at once. State advances lazily (on each read), so no timers outlive the sandbox.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

export type VercelEnvType = 'plain' | 'encrypted' | 'sensitive' | 'secret' | 'system';
export type ReadyState = 'QUEUED' | 'BUILDING' | 'READY' | 'ERROR' | 'CANCELED';

export interface VercelEnvVar {
  id: string;
  key: string;
  value: string;
  type: VercelEnvType;
  target: string[];
  createdAt: number;
  updatedAt: number;
  /** Vercel's free-text note on the variable (the runbook's write marker). */
  comment?: string;
}

export interface SandboxDeployment {
  id: string;
  name: string;
  url: string;
  target: 'production';
  createdAt: number;
  /** When the build finishes (READY from then on). */
  readyAt: number;
  /** The deployment this one redeployed, if any. */
  redeployOf: string | null;
  /** The project env of production at creation time (what the app sees once it serves). */
  env: Record<string, string>;
}

export interface VercelLogEntry {
  time: string;
  action: 'env.upsert' | 'env.delete' | 'deployment.create' | 'deployment.ready' | 'deployment.promoted' | 'edge-config.upsert' | 'edge-config.delete';
  key?: string;
  deploymentId?: string;
  /** Plain values only: a `sensitive`/`encrypted` value is never logged. */
  value?: string;
}

export const VERCEL_FAIL_STATUSES = [401, 403, 429, 500, 502, 503] as const;

const failRule = z.object({ status: z.literal(VERCEL_FAIL_STATUSES), count: z.number().int().min(1).max(1000), route: z.string().min(1).optional() }).strict();
type FailRule = z.output<typeof failRule>;

export const vercelSettingsSchema = z
  .object({
    /** How long a build takes before READY. */
    buildMs: z.number().int().min(0).max(600_000).optional(),
    /** The next `count` Vercel API calls (of `route`, e.g. "POST /v13/deployments", or any) answer `status`; a list applies each rule in turn. */
    failNext: z.union([failRule, z.array(failRule).max(20)]).nullable().optional(),
    /** A new API token (the old one stops working). */
    token: z.string().min(8).max(200).optional(),
  })
  .strict();

const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, '').slice(0, 16)}`;

export const SANDBOX_PROJECT = { id: 'prj_sandboxexampleapp', name: 'example-app' } as const;
export const SANDBOX_EDGE_CONFIG_ID = 'ecfg_sandboxexampleapp';

export class VercelSandbox {
  /** The env var / Edge Config key the example app reads its bypass flag from. */
  flagKey = 'CLERK_AUTH_BYPASS';
  /** Requests the example app let through under the bypass (never reset but by `reset`). */
  bypassedRequests = 0;
  token = `vercel_sandbox_${randomBytes(18).toString('base64url')}`;
  /** The Edge Config read token apps hold in their `EDGE_CONFIG` connection string (not the API token, as on Vercel). */
  readonly edgeConfigReadToken = `ecfg_read_${randomBytes(18).toString('base64url')}`;
  /** Bumped on every Edge Config write: what `x-edge-config-digest` and `GET …/digest` answer. */
  edgeConfigVersion = 0;
  buildMs = 1500;
  /** Injected failures still due, first matching rule first. */
  failNext: FailRule[] = [];
  readonly env = new Map<string, VercelEnvVar>();
  readonly deployments: SandboxDeployment[] = [];
  readonly edgeConfig = new Map<string, unknown>();
  private log: VercelLogEntry[] = [];
  private readonly readyLogged = new Set<string>();
  /** Id of the deployment production traffic goes to. */
  productionId: string;

  constructor() {
    this.productionId = this.reset();
  }

  /** Back to one READY production deployment, no env, no Edge Config items, empty log. */
  reset(): string {
    this.env.clear();
    this.deployments.length = 0;
    this.edgeConfig.clear();
    this.edgeConfigVersion += 1;
    this.log = [];
    this.readyLogged.clear();
    this.failNext = [];
    this.bypassedRequests = 0;
    const now = Date.now();
    const first: SandboxDeployment = { id: newId('dpl'), name: SANDBOX_PROJECT.name, url: `${SANDBOX_PROJECT.name}-initial.vercel.app`, target: 'production', createdAt: now, readyAt: now, redeployOf: null, env: {} };
    this.deployments.push(first);
    this.readyLogged.add(first.id);
    this.productionId = first.id;
    return first.id;
  }

  settings(body: z.output<typeof vercelSettingsSchema>): void {
    if (body.buildMs !== undefined) this.buildMs = body.buildMs;
    if (body.failNext !== undefined) this.failNext = body.failNext === null ? [] : (Array.isArray(body.failNext) ? body.failNext : [body.failNext]).map((r) => ({ ...r }));
    if (body.token !== undefined) this.token = body.token;
  }

  /** An injected failure for this route, if one is due (and counts it down). */
  takeFailure(route: string): number | null {
    const f = this.failNext.find((r) => !r.route || r.route === route);
    if (!f) return null;
    f.count -= 1;
    if (f.count <= 0) this.failNext.splice(this.failNext.indexOf(f), 1);
    return f.status;
  }

  private record(entry: Omit<VercelLogEntry, 'time'>, at = Date.now()): void {
    this.log.push({ time: new Date(at).toISOString(), ...entry });
    if (this.log.length > 1000) this.log.shift();
  }

  /** Builds that finished become READY; the newest READY production deployment serves. */
  advance(now = Date.now()): void {
    for (const d of this.deployments) {
      if (d.readyAt > now || this.readyLogged.has(d.id)) continue;
      this.readyLogged.add(d.id);
      this.record({ action: 'deployment.ready', deploymentId: d.id }, d.readyAt);
    }
    const ready = this.deployments.filter((d) => d.readyAt <= now).sort((a, b) => b.createdAt - a.createdAt)[0];
    if (ready && ready.id !== this.productionId) {
      this.productionId = ready.id;
      this.record({ action: 'deployment.promoted', deploymentId: ready.id }, ready.readyAt);
    }
  }

  deployment(id: string): SandboxDeployment | undefined {
    return this.deployments.find((d) => d.id === id);
  }

  readyState(d: SandboxDeployment, now = Date.now()): ReadyState {
    return d.readyAt <= now ? 'READY' : d.createdAt + 100 > now ? 'QUEUED' : 'BUILDING';
  }

  /** The env the app serves with right now: that of the current production deployment. */
  productionEnv(): Record<string, string> {
    this.advance();
    return this.deployment(this.productionId)?.env ?? {};
  }

  upsertEnv(key: string, value: string, type: VercelEnvType, target: string[], comment?: string): VercelEnvVar {
    const now = Date.now();
    const existing = [...this.env.values()].find((e) => e.key === key && e.target.some((t) => target.includes(t)));
    const base = existing ? { ...existing, value, type, target, updatedAt: now } : { id: newId('env').slice(0, 20), key, value, type, target, createdAt: now, updatedAt: now };
    const { comment: _old, ...rest } = base;
    const env: VercelEnvVar = comment === undefined ? rest : { ...rest, comment };
    this.env.set(env.id, env);
    this.record({ action: 'env.upsert', key, ...(type === 'plain' ? { value } : {}) });
    return env;
  }

  deleteEnv(id: string): VercelEnvVar | undefined {
    const env = this.env.get(id);
    if (!env) return undefined;
    this.env.delete(id);
    this.record({ action: 'env.delete', key: env.key });
    return env;
  }

  /** A new production deployment from `from`'s source, with the project's production env of now. */
  redeploy(from: SandboxDeployment): SandboxDeployment {
    this.advance();
    const now = Date.now();
    const env = Object.fromEntries([...this.env.values()].filter((e) => e.target.includes('production')).map((e) => [e.key, e.value]));
    const id = newId('dpl');
    const d: SandboxDeployment = { id, name: from.name, url: `${from.name}-${id.slice(4, 13).toLowerCase()}.vercel.app`, target: 'production', createdAt: now, readyAt: now + this.buildMs, redeployOf: from.id, env };
    this.deployments.push(d);
    this.record({ action: 'deployment.create', deploymentId: id });
    this.advance(now);
    return d;
  }

  patchEdgeConfig(items: { operation: 'create' | 'update' | 'upsert' | 'delete'; key: string; value?: unknown }[]): void {
    for (const item of items) {
      if (item.operation === 'delete') {
        this.edgeConfig.delete(item.key);
        this.record({ action: 'edge-config.delete', key: item.key });
      } else {
        this.edgeConfig.set(item.key, item.value);
        this.record({ action: 'edge-config.upsert', key: item.key, value: typeof item.value === 'string' ? item.value : JSON.stringify(item.value) });
      }
    }
    this.edgeConfigVersion += 1;
  }

  /** The digest the Edge Config read API answers with: changes on every write. */
  edgeConfigDigest(): string {
    return `sandbox-${this.edgeConfigVersion}`;
  }

  entries(): VercelLogEntry[] {
    this.advance();
    return [...this.log];
  }

  /** What `GET /__sandbox/vercel` shows: values of non-plain env vars are hidden. */
  overview(): object {
    this.advance();
    const now = Date.now();
    const hide = (e: VercelEnvVar) => ({ ...e, value: e.type === 'plain' ? e.value : '(hidden)' });
    const hideSnapshot = (env: Record<string, string>) => Object.fromEntries(Object.keys(env).map((k) => [k, [...this.env.values()].find((e) => e.key === k)?.type === 'plain' ? env[k] : '(hidden)']));
    return {
      token: this.token,
      project: { ...SANDBOX_PROJECT, env: [...this.env.values()].map(hide) },
      productionDeploymentId: this.productionId,
      deployments: this.deployments.map((d) => ({ ...d, readyState: this.readyState(d, now), env: hideSnapshot(d.env) })),
      edgeConfig: { id: SANDBOX_EDGE_CONFIG_ID, items: Object.fromEntries(this.edgeConfig) },
      buildMs: this.buildMs,
      flagKey: this.flagKey,
      bypassedRequests: this.bypassedRequests,
      failNext: this.failNext,
      log: [...this.log],
    };
  }
}
