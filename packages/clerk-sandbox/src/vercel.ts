/**
 * The sandbox's Vercel: one project (env vars, deployments), one Edge Config, and a log of every
 * change, so a drill verifies what the runbook did from the platform's own records. Deployments
 * snapshot the project env when created and become READY `buildMs` later, as on Vercel: an env
 * change reaches the example app only with the next production deployment; an Edge Config item
 * reaches it at once. A finished build takes production while the project auto-assigns its domains;
 * an instant rollback (or a promote) is an alias job that completes `aliasDelayMs` later, and a
 * rollback stops the auto-assignment until the next promote, as on Vercel. State advances lazily
 * (on each read), so no timers outlive the sandbox.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseInput } from './schemas';

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
  /** Git metadata as Vercel reports it: `githubCommitSha`, `githubCommitRef`, `githubCommitMessage`. */
  meta: Record<string, string>;
  /** Has served production (what Vercel's `isRollbackCandidate` says): only those can be rolled back to. */
  rollbackCandidate: boolean;
  /** The build failed (`ERROR` from `readyAt` on): it never serves. */
  buildError: boolean;
  /** Takes production when its build finishes, if the project auto-assigns (false: a staged build). */
  autoPromote: boolean;
}

export type AliasJobStatus = 'pending' | 'in-progress' | 'succeeded' | 'failed' | 'skipped';

/** The project's `lastAliasRequest`, as `GET /v9/projects/{idOrName}` reports it. */
export interface AliasRequest {
  type: 'rollback' | 'promote';
  fromDeploymentId: string;
  toDeploymentId: string;
  jobStatus: AliasJobStatus;
  requestedAt: number;
}

export interface VercelLogEntry {
  time: string;
  action:
    | 'env.upsert'
    | 'env.delete'
    | 'deployment.create'
    | 'deployment.ready'
    | 'deployment.error'
    | 'deployment.promoted'
    | 'alias.requested'
    | 'alias.succeeded'
    | 'alias.failed'
    | 'edge-config.upsert'
    | 'edge-config.delete';
  key?: string;
  deploymentId?: string;
  /** Alias jobs: the deployment production moves away from, and the request's type. */
  fromDeploymentId?: string;
  type?: AliasRequest['type'];
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
    /** How long an alias job (rollback, promote) takes: `pending`, `in-progress` from halfway, then done. */
    aliasDelayMs: z.number().int().min(0).max(600_000).optional(),
    /** The next `n` alias jobs end `failed` (production stays where it was). */
    failAliasJobs: z.number().int().min(0).max(100).optional(),
    /** These deployments are bad: every `/app` route answers 500 while one of them serves production. Replaces the list. */
    badDeployments: z.array(z.string().regex(/^dpl_[A-Za-z0-9]+$/, 'must be a deployment id (dpl_…)')).max(100).optional(),
  })
  .strict();

const metaValue = z.string().max(1000);
/** A deployment made from outside (a push, a drill's bad build): `POST /__sandbox/vercel/deployments`. */
export const vercelDeploymentSchema = z
  .object({
    /** Values on top of the project's production env at creation (null: left out of this build). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an env var name'), z.string().max(65_536).nullable()).optional(),
    meta: z.object({ githubCommitSha: z.string().regex(/^[0-9a-f]{7,40}$/, 'must be a hex commit sha').optional(), githubCommitRef: metaValue.optional(), githubCommitMessage: metaValue.optional() }).catchall(metaValue).optional(),
    /** Every `/app` route answers 500 while it serves. */
    bad: z.boolean().default(false),
    /** Created this long ago (history for tests and drills); its build time counts from then. */
    ageMs: z.number().int().min(0).max(90 * 86_400_000).default(0),
    /** Build time; default the sandbox's `buildMs`. */
    buildMs: z.number().int().min(0).max(600_000).optional(),
    /** The build fails (`ERROR`). */
    buildError: z.boolean().default(false),
    /** Takes production when READY if the project auto-assigns (false: staged, not a rollback candidate until promoted). */
    promote: z.boolean().default(true),
  })
  .strict();
export type VercelDeploymentBody = z.input<typeof vercelDeploymentSchema>;

const newId = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, '').slice(0, 16)}`;

export const SANDBOX_PROJECT = { id: 'prj_sandboxexampleapp', name: 'example-app' } as const;
export const SANDBOX_EDGE_CONFIG_ID = 'ecfg_sandboxexampleapp';

/** `GET /__sandbox/vercel`: the project, its deployments (env snapshots with non-plain values hidden), alias state and the log. */
export interface VercelOverview {
  token: string;
  project: { id: string; name: string; env: VercelEnvVar[] };
  productionDeploymentId: string;
  autoAssignCustomDomains: boolean;
  lastAliasRequest: AliasRequest | null;
  aliasDelayMs: number;
  failAliasJobs: number;
  badDeployments: string[];
  deployments: (SandboxDeployment & { readyState: ReadyState; bad: boolean })[];
  edgeConfig: { id: string; items: Record<string, unknown> };
  buildMs: number;
  flagKey: string;
  bypassedRequests: number;
  failNext: FailRule[];
  log: VercelLogEntry[];
}

/** Why a rollback or promote is refused: status and Vercel-style `error.code` (routes/vercel.ts answers it). */
export class AliasRefusal extends Error {
  override readonly name = 'AliasRefusal';
  constructor(readonly status: 404 | 409 | 422, readonly code: string, message: string) {
    super(message);
  }
}

const hex = (n: number) => randomBytes(Math.ceil(n / 2)).toString('hex').slice(0, n);

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
  /** Vercel's project flag: new production builds take the domains. A rollback turns it off, a promote on. */
  autoAssignCustomDomains = true;
  lastAliasRequest: AliasRequest | null = null;
  /** When the pending alias job completes, and whether it fails. */
  private aliasJob: { completesAt: number; fails: boolean } | null = null;
  aliasDelayMs = 1500;
  failAliasJobs = 0;
  readonly badDeployments = new Set<string>();

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
    this.autoAssignCustomDomains = true;
    this.lastAliasRequest = null;
    this.aliasJob = null;
    this.failAliasJobs = 0;
    this.badDeployments.clear();
    const now = Date.now();
    // Built a day ago: the history every later deployment (a test's, a drill's) is newer than.
    const builtAt = now - 86_400_000;
    const first: SandboxDeployment = {
      id: newId('dpl'),
      name: SANDBOX_PROJECT.name,
      url: `${SANDBOX_PROJECT.name}-initial.vercel.app`,
      target: 'production',
      createdAt: builtAt,
      readyAt: builtAt,
      redeployOf: null,
      env: {},
      meta: { githubCommitSha: hex(40), githubCommitRef: 'main', githubCommitMessage: 'Initial commit' },
      rollbackCandidate: true,
      buildError: false,
      autoPromote: true,
    };
    this.deployments.push(first);
    this.readyLogged.add(first.id);
    this.productionId = first.id;
    return first.id;
  }

  settings(body: z.output<typeof vercelSettingsSchema>): void {
    if (body.buildMs !== undefined) this.buildMs = body.buildMs;
    if (body.failNext !== undefined) this.failNext = body.failNext === null ? [] : (Array.isArray(body.failNext) ? body.failNext : [body.failNext]).map((r) => ({ ...r }));
    if (body.token !== undefined) this.token = body.token;
    if (body.aliasDelayMs !== undefined) this.aliasDelayMs = body.aliasDelayMs;
    if (body.failAliasJobs !== undefined) this.failAliasJobs = body.failAliasJobs;
    if (body.badDeployments !== undefined) {
      this.badDeployments.clear();
      for (const id of body.badDeployments) this.badDeployments.add(id);
    }
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

  /**
   * Applies what has happened since the last read, in time order: finished builds (READY, or
   * ERROR) and a due alias job. A build that finishes while the project auto-assigns takes production.
   */
  advance(now = Date.now()): void {
    type Event = { at: number; apply: () => void };
    const events: Event[] = [];
    for (const d of this.deployments) {
      if (d.readyAt > now || this.readyLogged.has(d.id)) continue;
      events.push({ at: d.readyAt, apply: () => this.finishBuild(d) });
    }
    const job = this.aliasJob;
    if (job && job.completesAt <= now) events.push({ at: job.completesAt, apply: () => this.finishAliasJob(job.completesAt) });
    for (const e of events.sort((a, b) => a.at - b.at)) e.apply();
    // Halfway through its delay a job reports `in-progress`, as Vercel's do before they finish.
    const req = this.lastAliasRequest;
    if (this.aliasJob && req?.jobStatus === 'pending' && now >= (req.requestedAt + this.aliasJob.completesAt) / 2 && now > req.requestedAt) req.jobStatus = 'in-progress';
  }

  private finishBuild(d: SandboxDeployment): void {
    this.readyLogged.add(d.id);
    if (d.buildError) {
      this.record({ action: 'deployment.error', deploymentId: d.id }, d.readyAt);
      return;
    }
    this.record({ action: 'deployment.ready', deploymentId: d.id }, d.readyAt);
    if (d.autoPromote && this.autoAssignCustomDomains && !this.aliasJob) this.serve(d, d.readyAt);
  }

  private serve(d: SandboxDeployment, at: number): void {
    d.rollbackCandidate = true;
    if (d.id === this.productionId) return;
    this.productionId = d.id;
    this.record({ action: 'deployment.promoted', deploymentId: d.id }, at);
  }

  private finishAliasJob(at: number): void {
    const job = this.aliasJob;
    const req = this.lastAliasRequest;
    this.aliasJob = null;
    if (!job || !req) return;
    const to = this.deployment(req.toDeploymentId);
    if (job.fails || !to) {
      req.jobStatus = 'failed';
      this.record({ action: 'alias.failed', deploymentId: req.toDeploymentId, fromDeploymentId: req.fromDeploymentId, type: req.type }, at);
      return;
    }
    req.jobStatus = 'succeeded';
    this.serve(to, at);
    if (req.type === 'promote') this.autoAssignCustomDomains = true;
    this.record({ action: 'alias.succeeded', deploymentId: req.toDeploymentId, fromDeploymentId: req.fromDeploymentId, type: req.type }, at);
  }

  /**
   * Starts an alias job (`pending`, done `aliasDelayMs` later) pointing production at `deploymentId`,
   * or throws `AliasRefusal`. A rollback turns the project's auto-assignment off at once; a promote
   * turns it back on when its job succeeds.
   */
  requestAlias(type: AliasRequest['type'], deploymentId: string, now = Date.now()): AliasRequest {
    this.advance(now);
    const d = this.deployment(deploymentId);
    if (!d) throw new AliasRefusal(404, 'not_found', `Deployment not found: ${deploymentId}`);
    if (this.aliasJob) throw new AliasRefusal(409, 'alias_job_in_progress', `A ${this.lastAliasRequest?.type ?? 'alias'} to ${this.lastAliasRequest?.toDeploymentId ?? '?'} is still in progress`);
    const state = this.readyState(d, now);
    if (state !== 'READY') throw new AliasRefusal(422, 'deployment_not_ready', `Deployment ${d.id} is ${state}, not READY`);
    if (d.id === this.productionId && (type === 'rollback' || this.autoAssignCustomDomains)) {
      throw new AliasRefusal(409, 'deployment_already_current', `Deployment ${d.id} is already serving production`);
    }
    if (type === 'rollback' && !d.rollbackCandidate) {
      throw new AliasRefusal(422, 'not_rollback_candidate', `Deployment ${d.id} has never served production and is not a rollback candidate`);
    }
    if (type === 'rollback') this.autoAssignCustomDomains = false;
    const fails = this.failAliasJobs > 0;
    if (fails) this.failAliasJobs -= 1;
    this.lastAliasRequest = { type, fromDeploymentId: this.productionId, toDeploymentId: d.id, jobStatus: 'pending', requestedAt: now };
    this.aliasJob = { completesAt: now + this.aliasDelayMs, fails };
    this.record({ action: 'alias.requested', deploymentId: d.id, fromDeploymentId: this.productionId, type }, now);
    this.advance(now);
    return { ...this.lastAliasRequest };
  }

  /** A production deployment from outside (a push; a drill's bad build), with the project env of now plus `env`. */
  createDeployment(body: VercelDeploymentBody = {}, now = Date.now()): SandboxDeployment {
    const input = parseInput(vercelDeploymentSchema, body);
    this.advance(now);
    const createdAt = now - input.ageMs;
    const env = this.projectProductionEnv();
    for (const [k, v] of Object.entries(input.env ?? {})) {
      if (v === null) delete env[k];
      else env[k] = v;
    }
    const id = newId('dpl');
    const meta: Record<string, string> = { githubCommitSha: hex(40), githubCommitRef: 'main', githubCommitMessage: 'Deploy', ...input.meta };
    const d: SandboxDeployment = {
      id,
      name: SANDBOX_PROJECT.name,
      url: `${SANDBOX_PROJECT.name}-${id.slice(4, 13).toLowerCase()}.vercel.app`,
      target: 'production',
      createdAt,
      readyAt: createdAt + (input.buildMs ?? this.buildMs),
      redeployOf: null,
      env,
      meta,
      rollbackCandidate: false,
      buildError: input.buildError,
      autoPromote: input.promote,
    };
    this.deployments.push(d);
    if (input.bad) this.badDeployments.add(id);
    this.record({ action: 'deployment.create', deploymentId: id }, createdAt);
    this.advance(now);
    return d;
  }

  /** True while a deployment marked bad serves production (the example app's `/app` routes then answer 500). */
  servingBad(): boolean {
    this.advance();
    return this.badDeployments.has(this.productionId);
  }

  private projectProductionEnv(): Record<string, string> {
    return Object.fromEntries([...this.env.values()].filter((e) => e.target.includes('production')).map((e) => [e.key, e.value]));
  }

  deployment(id: string): SandboxDeployment | undefined {
    return this.deployments.find((d) => d.id === id);
  }

  readyState(d: SandboxDeployment, now = Date.now()): ReadyState {
    if (d.readyAt <= now) return d.buildError ? 'ERROR' : 'READY';
    return d.createdAt + 100 > now ? 'QUEUED' : 'BUILDING';
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

  /**
   * A new production deployment from `from`'s source (its commit; bad if the source was), with the
   * project's production env of now. After a rollback it does not take production until a promote.
   */
  /** `meta`: the request's own (Vercel's create-deployment `meta`), over the source's. */
  redeploy(from: SandboxDeployment, meta: Record<string, string> = {}): SandboxDeployment {
    this.advance();
    const now = Date.now();
    const env = this.projectProductionEnv();
    const id = newId('dpl');
    const d: SandboxDeployment = {
      id,
      name: from.name,
      url: `${from.name}-${id.slice(4, 13).toLowerCase()}.vercel.app`,
      target: 'production',
      createdAt: now,
      readyAt: now + this.buildMs,
      redeployOf: from.id,
      env,
      meta: { ...from.meta, ...meta },
      rollbackCandidate: false,
      buildError: false,
      autoPromote: true,
    };
    this.deployments.push(d);
    if (this.badDeployments.has(from.id)) this.badDeployments.add(id);
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
  overview(): VercelOverview {
    this.advance();
    const now = Date.now();
    const hide = (e: VercelEnvVar) => ({ ...e, value: e.type === 'plain' ? e.value : '(hidden)' });
    const hideSnapshot = (env: Record<string, string>): Record<string, string> =>
      Object.fromEntries(Object.entries(env).map(([k, value]) => [k, [...this.env.values()].find((e) => e.key === k)?.type === 'plain' ? value : '(hidden)']));
    return {
      token: this.token,
      project: { ...SANDBOX_PROJECT, env: [...this.env.values()].map(hide) },
      productionDeploymentId: this.productionId,
      autoAssignCustomDomains: this.autoAssignCustomDomains,
      lastAliasRequest: this.lastAliasRequest,
      aliasDelayMs: this.aliasDelayMs,
      failAliasJobs: this.failAliasJobs,
      badDeployments: [...this.badDeployments],
      deployments: this.deployments.map((d) => ({ ...d, readyState: this.readyState(d, now), bad: this.badDeployments.has(d.id), env: hideSnapshot(d.env) })),
      edgeConfig: { id: SANDBOX_EDGE_CONFIG_ID, items: Object.fromEntries(this.edgeConfig) },
      buildMs: this.buildMs,
      flagKey: this.flagKey,
      bypassedRequests: this.bypassedRequests,
      failNext: this.failNext,
      log: [...this.log],
    };
  }
}
