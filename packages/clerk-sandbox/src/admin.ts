/**
 * The sandbox's state and every operation on it, typed: the in-process handle tests use
 * (`sandbox.admin`), and what the `/__sandbox/...` HTTP routes call. Inputs are validated
 * here with the zod schemas, so both doors reject the same bad input the same way.
 */
import { writeFileSync } from 'node:fs';
import { AuditLog, type AuditEntry, type AuditSummary, type RevokeRecord } from './audit';
import { FaultInjector, Outage, RateLimiter, type OutageState } from './faults';
import { KeyRing, type SecretKeyInfo } from './keys';
import {
  addKeyBodySchema,
  appBodySchema,
  auditQuerySchema,
  allowedOriginsBodySchema,
  clockBodySchema,
  createUsersBodySchema,
  faultConfigSchema,
  outageBodySchema,
  parseInput,
  rateLimitSchema,
  replayBodySchema,
  seedBodySchema,
  webhookBodySchema,
  type AuditQuery,
  type FaultConfig,
  type ReplayBody,
  type ResolvedSandboxOptions,
  type SeedBody,
} from './schemas';
import type { UserJson } from './clerk-json';
import type { SessionStatus } from './columns';
import { SandboxInstance, type ClockSetting, type DomainJson } from './instance';
import { ClerkStore, type StoreStats } from './store';
import { WebhookDispatcher, generateSigningSecret, type WebhookConfig, type WebhookEventRecord } from './webhooks';
import { VercelSandbox } from './vercel';
import { PagerDutySandbox } from './pagerduty';
import { SlackSandbox } from './slack';
import { ClerkPlatformSandbox, VaultSandbox } from './secret-stores';

const APP_DEFAULTS = { middlewareFailure: false, publishableKey: null, origin: null, cookieDomain: null, sdkVersion: null } as const;

export class SandboxNotFoundError extends Error {
  override readonly name = 'SandboxNotFoundError';
}

export interface AppState {
  middlewareFailure: boolean;
  /** Prefix of the key the example app is deployed with. */
  secretKeyPrefix: string | null;
  /** The app's fault overrides; null = as the instance is configured (see `appBodySchema`). */
  publishableKey: string | null;
  origin: string | null;
  cookieDomain: string | null;
  sdkVersion: string | null;
}

/** What `GET /__sandbox/instance` shows: the instance the diagnostics compare the app with. */
export interface InstanceOverview {
  instanceId: string;
  frontendApi: string;
  publishableKey: string;
  allowedOrigins: string[];
  domains: DomainJson[];
  clock: ClockSetting;
}

interface ExampleApp {
  middlewareFailure: boolean;
  secretKey: string;
  publishableKey: string | null;
  origin: string | null;
  cookieDomain: string | null;
  sdkVersion: string | null;
}

export interface SeedReport {
  users: number;
  sessions: number;
  activeSessions: number;
  seed: string | number;
  now: number;
  ms: number;
}

export class SandboxAdmin {
  readonly store: ClerkStore;
  readonly keys = new KeyRing();
  readonly limiter: RateLimiter;
  readonly faults: FaultInjector;
  readonly outage = new Outage();
  readonly audit: AuditLog;
  readonly webhooks: WebhookDispatcher;
  readonly instanceId: string;
  /** Frontend API host, publishable key, domains, JWT signing key, clock. */
  readonly instance: SandboxInstance;
  readonly startedAt = Date.now();
  /** The example app (health route, pages): its deployed key, the middleware switch and its fault overrides. */
  readonly app: ExampleApp;
  lastSeed: SeedReport;
  /** The emulated Vercel project and Edge Config the example app is deployed with (routes/vercel.ts). */
  readonly vercel = new VercelSandbox();
  /** The emulated HashiCorp Vault (KV v2) and Clerk Platform API (key rotation): routes/vault.ts, routes/clerk-platform.ts. */
  readonly vault = new VaultSandbox();
  readonly platform = new ClerkPlatformSandbox();
  /** The emulated PagerDuty Events API v2 (routes/pagerduty.ts): routing keys, alerts by dedup key, change events, the log. */
  readonly pagerduty: PagerDutySandbox;
  /** The emulated Slack (routes/slack.ts): Web API, channels and messages, modals, and the people who click. */
  readonly slack = new SlackSandbox();

  constructor(readonly options: ResolvedSandboxOptions) {
    const t0 = performance.now();
    this.store = new ClerkStore({ users: options.users, seed: options.seed, now: options.now });
    const seeded = this.store.stats();
    this.lastSeed = {
      users: seeded.users,
      sessions: seeded.sessions,
      activeSessions: seeded.sessionsByStatus.active,
      seed: options.seed,
      now: this.store.seedInfo.now,
      ms: Math.round(performance.now() - t0),
    };
    for (const key of options.secretKeys ?? []) this.keys.add(key, 'initial');
    if (!options.secretKeys?.length) this.keys.add(undefined, 'initial');
    this.limiter = new RateLimiter(options.rateLimit);
    this.faults = new FaultInjector(options.seed, options.faults ?? {});
    this.audit = new AuditLog(options.auditCapacity);
    this.instanceId = `ins_sandbox_${String(options.seed).replace(/[^A-Za-z0-9]/g, '').slice(0, 20) || 'default'}`;
    this.webhooks = new WebhookDispatcher(options.webhookSigningSecret ?? generateSigningSecret(), this.instanceId, options.seed, {
      url: options.webhookUrl ?? null,
      drop: options.dropWebhooks,
    });
    this.instance = new SandboxInstance(this.instanceId, options.seed);
    this.pagerduty = new PagerDutySandbox(options.pagerdutyRoutingKeys);
    this.app = { ...APP_DEFAULTS, secretKey: this.keys.firstActiveSecret() ?? '' };
  }

  // -- faults, rate limit, outage ------------------------------------------------------------

  getFaults(): FaultConfig {
    return this.faults.get();
  }

  /** Replaces the whole fault configuration (`{}` switches every fault off). */
  setFaults(config: unknown): FaultConfig {
    this.faults.set(parseInput(faultConfigSchema, config));
    return this.faults.get();
  }

  faultCounters(): FaultInjector['injected'] {
    return { ...this.faults.injected };
  }

  getRateLimit(): { requests: number; windowMs: number } | 'off' {
    return this.limiter.setting;
  }

  setRateLimit(setting: unknown): { requests: number; windowMs: number } | 'off' {
    this.limiter.set(parseInput(rateLimitSchema, setting, 'rateLimit'));
    return this.limiter.setting;
  }

  setOutage(body: unknown): OutageState {
    this.outage.update(parseInput(outageBodySchema, body));
    return this.outage.state();
  }

  outageState(): OutageState {
    return this.outage.state();
  }

  // -- keys -----------------------------------------------------------------------------------

  listKeys(): SecretKeyInfo[] {
    return this.keys.list();
  }

  addKey(body: unknown = {}): SecretKeyInfo & { secretKey: string } {
    const b = parseInput(addKeyBodySchema, body ?? {});
    const key = this.keys.add(b.secretKey, b.label ?? null);
    if (b.file) writeFileSync(b.file, `${key.secretKey}\n`, { mode: 0o600 });
    return key;
  }

  deleteKey(id: string): void {
    if (!this.keys.has(id)) throw new SandboxNotFoundError(`no key with id ${id}`);
    this.keys.delete(id);
  }

  // -- audit ----------------------------------------------------------------------------------

  auditEntries(query: AuditQuery = {}): AuditEntry[] {
    const q = parseInput(auditQuerySchema, query);
    return this.audit.query(q);
  }

  auditSummary(): AuditSummary {
    return this.audit.summary();
  }

  /** Revoke calls per session id. */
  revokes(): Record<string, RevokeRecord> {
    return this.audit.revokes();
  }

  resetAudit(): void {
    this.audit.reset();
  }

  // -- data -----------------------------------------------------------------------------------

  seed(body: SeedBody | unknown): SeedReport {
    const b = parseInput(seedBodySchema, body);
    const t0 = performance.now();
    const seed = b.seed ?? this.options.seed;
    const r = this.store.seed({ users: b.users, seed, now: b.now });
    this.lastSeed = { ...r, seed, now: this.store.seedInfo.now, ms: Math.round(performance.now() - t0) };
    return this.lastSeed;
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  sessionIds(status: SessionStatus = 'active'): string[] {
    return this.store.sessionIdsWithStatus(status);
  }

  /** Creates users as sign-ups would (each with one active session), with their webhook events. */
  createUsers(body: unknown): UserJson[] {
    const { count, expiredSessions } = parseInput(createUsersBodySchema, body);
    // New sessions last as the instance is configured now (instance-config.ts).
    const rows = this.store.createUsers(count, Date.now(), expiredSessions, this.instance.config.newSessionLifetimeMs());
    return rows.map((i) => {
      const user = this.store.userJson(i);
      this.webhooks.emit('user.created', user.id, user);
      for (const j of this.store.sessionRows(i, 'active')) {
        this.webhooks.emit('session.created', this.store.sessionId(j), this.sessionEvent(j, user));
      }
      return user;
    });
  }

  /** Deletes a user as Clerk does (their active sessions end), with the webhook events. */
  deleteUser(userId: string): { object: 'user'; id: string; deleted: true } {
    const i = this.store.findUser(userId);
    if (i < 0) throw new SandboxNotFoundError(`no user with id ${userId}`);
    const user = this.store.userJson(i);
    const ended = this.store.deleteUser(i);
    for (const j of ended) this.webhooks.emit('session.removed', this.store.sessionId(j), this.sessionEvent(j, user));
    this.webhooks.emit('user.deleted', userId, { deleted: true, id: userId, object: 'user' });
    return { object: 'user', id: userId, deleted: true };
  }

  /** Revokes a session; false when it was not active (no change, no event). */
  revokeSession(session: number): boolean {
    const changed = this.store.revokeSession(session);
    this.audit.recordRevoke(this.store.sessionId(session), changed ? 'revoked' : 'unchanged');
    if (changed) {
      const user = this.store.userJson(this.store.sessionUser(session));
      this.webhooks.emit('session.revoked', this.store.sessionId(session), this.sessionEvent(session, user));
    }
    return changed;
  }

  /** A session event's data: the session with its user embedded (webhook schema 2025-04-15 has no `tasks`). */
  private sessionEvent(session: number, user: UserJson): object {
    const { tasks: _tasks, ...json } = this.store.sessionJson(session);
    return { ...json, user };
  }

  // -- webhooks -------------------------------------------------------------------------------

  setWebhooks(body: unknown): WebhookConfig {
    return this.webhooks.configure(parseInput(webhookBodySchema, body));
  }

  webhookConfig(): WebhookConfig & { signingSecret: string } {
    return { ...this.webhooks.getConfig(), signingSecret: this.webhooks.signingSecret };
  }

  webhookEvents(filter: { type?: string; status?: string } = {}): WebhookEventRecord[] {
    return this.webhooks.list(filter);
  }

  replayWebhooks(body: ReplayBody | unknown = {}): { replayed: string[]; unknown: string[] } {
    const b = parseInput(replayBodySchema, body ?? {});
    return this.webhooks.replay(b.eventIds, b.onlyUndelivered);
  }

  /** Resolves when every webhook delivery in flight has finished. */
  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  // -- example app ----------------------------------------------------------------------------

  /** Changes the fields given; a null override goes back to the instance's own value. */
  setApp(body: unknown): AppState {
    const b = parseInput(appBodySchema, body);
    if (b.middlewareFailure !== undefined) this.app.middlewareFailure = b.middlewareFailure;
    if (b.secretKey !== undefined) this.app.secretKey = b.secretKey;
    for (const field of ['publishableKey', 'origin', 'cookieDomain', 'sdkVersion'] as const) {
      if (b[field] !== undefined) this.app[field] = b[field];
    }
    return this.appState();
  }

  /** Every app fault off (middleware, overrides); the deployed secret key stays. */
  resetApp(): AppState {
    Object.assign(this.app, APP_DEFAULTS);
    return this.appState();
  }

  appState(): AppState {
    const { middlewareFailure, publishableKey, origin, cookieDomain, sdkVersion } = this.app;
    return {
      middlewareFailure,
      secretKeyPrefix: this.app.secretKey ? `${this.app.secretKey.slice(0, 12)}…` : null,
      publishableKey,
      origin,
      cookieDomain,
      sdkVersion,
    };
  }

  // -- instance and clock ---------------------------------------------------------------------

  /** The instance's identity; `appUrl` is the sandbox's own URL (the primary domain). */
  instanceOverview(appUrl: string): InstanceOverview {
    const i = this.instance;
    return {
      instanceId: this.instanceId,
      frontendApi: i.frontendApiHost,
      publishableKey: i.publishableKey,
      allowedOrigins: [...i.allowedOrigins],
      domains: i.domains(appUrl),
      clock: this.clock(),
    };
  }

  clock(): ClockSetting {
    return { skewMs: this.instance.clock.skewMs, applyTo: [...this.instance.clock.applyTo] };
  }

  /** Skews the clock Clerk's answers (`Date`, token times) and/or the health route's `Date` show. */
  setAllowedOrigins(body: unknown): { allowedOrigins: string[] } {
    const b = parseInput(allowedOriginsBodySchema, body);
    this.instance.setAllowedOrigins(b.origins);
    return { allowedOrigins: [...this.instance.allowedOrigins] };
  }

  setClock(body: unknown): ClockSetting {
    const b = parseInput(clockBodySchema, body);
    this.instance.clock = { skewMs: b.skewMs, applyTo: [...new Set(b.applyTo)] };
    return this.clock();
  }

  resetClock(): ClockSetting {
    return this.setClock({ skewMs: 0 });
  }
}
