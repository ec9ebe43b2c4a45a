/**
 * A small typed client for the sandbox's admin API (`/__sandbox/...`), for tests and
 * benchmarks that run the sandbox as a child process; `spawnSandbox` starts one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { AppState, InstanceOverview, SeedReport } from './admin';
import type { ClockSetting } from './instance';
import type { InstanceConfigOverview } from './instance-config';
import type { AuditEntry, AuditSummary, RevokeRecord } from './audit';
import type { OutageState } from './faults';
import type { SecretKeyInfo } from './keys';
import type { AddKeyBody, AppBody, AuditQuery, ClockBody, FaultConfig, OutageBody, RateLimitSetting, ReplayBody, SeedBody, SessionSettingsBody, WebhookBody } from './schemas';
import type { UserJson } from './clerk-json';
import type { SessionStatus } from './columns';
import type { StoreStats } from './store';
import type { WebhookConfig, WebhookEventRecord } from './webhooks';
import type { PagerDutyOverview, PagerDutySettings } from './pagerduty';
import type { SlackClickBody, SlackClickResult, SlackCommandBody, SlackCommandResult, SlackOverview, SlackSettings, SlackSubmitBody, SlackSubmitResult } from './slack';
import type { VercelDeploymentBody, VercelOverview, vercelSettingsSchema } from './vercel';
import type { z } from 'zod';

export class SandboxAdminHttpError extends Error {
  override readonly name = 'SandboxAdminHttpError';
  constructor(readonly status: number, readonly body: unknown, message: string) {
    super(message);
  }
}

export class SandboxAdminClient {
  private readonly base: string;

  /** `url` is the sandbox's base URL (what `startSandbox` / the CLI report). */
  constructor(url: string) {
    this.base = `${url.replace(/\/$/, '')}/__sandbox`;
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const detail = typeof parsed === 'object' && parsed !== null && 'message' in parsed ? String(parsed.message) : text;
      throw new SandboxAdminHttpError(res.status, parsed, `${method} /__sandbox${path}: ${res.status} ${detail}`);
    }
    return parsed as T;
  }

  /** Overview: seed, limits, faults, outage, webhooks, keys, and the process's CPU and memory. */
  info(): Promise<{ url: string; instanceId: string; seed: SeedReport; process: { cpuMs: number; rssMb: number } }> {
    return this.call('GET', '');
  }
  getFaults(): Promise<{ faults: FaultConfig; injected: Record<string, number> }> {
    return this.call('GET', '/faults');
  }
  setFaults(faults: FaultConfig): Promise<{ faults: FaultConfig }> {
    return this.call('PUT', '/faults', faults);
  }
  clearFaults(): Promise<{ faults: FaultConfig }> {
    return this.call('DELETE', '/faults');
  }
  setRateLimit(rateLimit: RateLimitSetting): Promise<{ rateLimit: { requests: number; windowMs: number } | 'off' }> {
    return this.call('PUT', '/rate-limit', { rateLimit });
  }
  listKeys(): Promise<{ keys: SecretKeyInfo[] }> {
    return this.call('GET', '/keys');
  }
  addKey(body: AddKeyBody = {}): Promise<SecretKeyInfo & { secretKey: string }> {
    return this.call('POST', '/keys', body);
  }
  deleteKey(id: string): Promise<{ id: string; deleted: true }> {
    return this.call('DELETE', `/keys/${encodeURIComponent(id)}`);
  }
  audit(query: AuditQuery = {}): Promise<{ entries: AuditEntry[] }> {
    const qs = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
    return this.call('GET', `/audit${qs.size ? `?${qs}` : ''}`);
  }
  auditSummary(): Promise<AuditSummary> {
    return this.call('GET', '/audit/summary');
  }
  revokes(): Promise<{ revokes: Record<string, RevokeRecord> }> {
    return this.call('GET', '/audit/revokes');
  }
  resetAudit(): Promise<{ reset: true }> {
    return this.call('DELETE', '/audit');
  }
  seed(body: SeedBody): Promise<SeedReport> {
    return this.call('POST', '/seed', body);
  }
  stats(): Promise<StoreStats> {
    return this.call('GET', '/stats');
  }
  sessionIds(status: SessionStatus = 'active'): Promise<{ status: SessionStatus; ids: string[] }> {
    return this.call('GET', `/sessions?status=${status}`);
  }
  createUsers(count: number): Promise<{ users: UserJson[] }> {
    return this.call('POST', '/users', { count });
  }
  deleteUser(id: string): Promise<{ object: 'user'; id: string; deleted: true }> {
    return this.call('DELETE', `/users/${encodeURIComponent(id)}`);
  }
  outage(body: OutageBody): Promise<OutageState> {
    return this.call('PUT', '/outage', body);
  }
  setWebhooks(body: WebhookBody): Promise<WebhookConfig> {
    return this.call('PUT', '/webhooks', body);
  }
  webhookEvents(filter: { type?: string; status?: string } = {}): Promise<{ events: WebhookEventRecord[] }> {
    const qs = new URLSearchParams(Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined));
    return this.call('GET', `/webhooks/events${qs.size ? `?${qs}` : ''}`);
  }
  replayWebhooks(body: ReplayBody = {}): Promise<{ replayed: string[]; unknown: string[] }> {
    return this.call('POST', '/webhooks/replay', body);
  }
  flushWebhooks(): Promise<{ counts: Record<string, number> }> {
    return this.call('POST', '/webhooks/flush');
  }
  setApp(body: AppBody): Promise<AppState> {
    return this.call('PUT', '/app', body);
  }
  resetApp(): Promise<AppState> {
    return this.call('DELETE', '/app');
  }
  instance(): Promise<InstanceOverview> {
    return this.call('GET', '/instance');
  }
  setAllowedOrigins(origins: string[]): Promise<{ allowedOrigins: string[] }> {
    return this.call('PUT', '/instance/allowed-origins', { origins });
  }
  /** The instance's config: version, session settings, the lifetime new sessions get, every change and dry run. */
  instanceConfig(): Promise<InstanceConfigOverview> {
    return this.call('GET', '/instance/config');
  }
  /** Sets the session settings as a Dashboard change would (a drill's short lifetime: `{ maxLifetimeMs: 60_000 }`). */
  setSessionSettings(body: SessionSettingsBody): Promise<InstanceConfigOverview> {
    return this.call('PUT', '/instance/session', body);
  }
  setClock(body: ClockBody): Promise<ClockSetting> {
    return this.call('PUT', '/clock', body);
  }
  resetClock(): Promise<ClockSetting> {
    return this.call('DELETE', '/clock');
  }
  /** The emulated Vercel: project env, deployments, alias state (`lastAliasRequest`, auto-assign), Edge Config and the log. */
  vercel(): Promise<VercelOverview> {
    return this.call('GET', '/vercel');
  }
  setVercel(body: z.input<typeof vercelSettingsSchema>): Promise<VercelOverview> {
    return this.call('PUT', '/vercel', body);
  }
  resetVercel(): Promise<VercelOverview> {
    return this.call('DELETE', '/vercel');
  }
  /** A production deployment with given env and meta (`bad: true`: every `/app` route 500 while it serves). */
  createVercelDeployment(body: VercelDeploymentBody = {}): Promise<VercelOverview['deployments'][number]> {
    return this.call('POST', '/vercel/deployments', body);
  }
  /** The emulated PagerDuty: routing keys, alerts by dedup key, change events and the log of every event. */
  pagerduty(): Promise<PagerDutyOverview> {
    return this.call('GET', '/pagerduty');
  }
  setPagerDuty(body: PagerDutySettings): Promise<PagerDutyOverview> {
    return this.call('PUT', '/pagerduty', body);
  }
  resetPagerDuty(): Promise<PagerDutyOverview> {
    return this.call('DELETE', '/pagerduty');
  }
  /** The emulated Slack: settings (no secrets), channels with threads and edits, ephemerals, views, deliveries to the app, Web API calls. */
  slack(): Promise<SlackOverview> {
    return this.call('GET', '/slack');
  }
  /** Merged with the current settings (bot token, signing secret, the app's URLs, channels, users, team, failNext, rate limit). */
  slackSettings(body: SlackSettings): Promise<SlackOverview> {
    return this.call('PUT', '/slack', body);
  }
  /** Empties messages, ephemerals, views, deliveries and calls; settings stay. */
  resetSlack(): Promise<SlackOverview> {
    return this.call('DELETE', '/slack');
  }
  /** A user clicks a button shown to them; the app gets a signed `block_actions` payload (404/409 when there is no such message or button). */
  slackClick(body: SlackClickBody): Promise<SlackClickResult> {
    return this.call('POST', '/slack/click', body);
  }
  /** A user submits an open modal; the app gets `view_submission`. */
  slackSubmit(body: SlackSubmitBody): Promise<SlackSubmitResult> {
    return this.call('POST', '/slack/submit', body);
  }
  /** A user runs a slash command; the app gets Slack's form fields. */
  slackCommand(body: SlackCommandBody): Promise<SlackCommandResult> {
    return this.call('POST', '/slack/command', body);
  }
}

export interface SpawnedSandbox {
  url: string;
  port: number;
  secretKey: string;
  webhookSigningSecret: string;
  admin: SandboxAdminClient;
  process: ChildProcess;
  /** SIGTERM, then waits for the process to exit. */
  close(): Promise<void>;
}

function cliPath(): string {
  const here = typeof __dirname === 'string' ? __dirname : path.join(process.cwd(), 'packages', 'clerk-sandbox', 'src');
  return path.join(here, 'cli.ts');
}

/** Runs the sandbox's CLI (`cli.ts`, what `npm run sandbox` runs) in a child process (through tsx) and waits for its ready line. */
export function spawnSandbox(args: string[] = [], opts: { timeoutMs?: number } = {}): Promise<SpawnedSandbox> {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise<SpawnedSandbox>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sandbox did not start within ${opts.timeoutMs ?? 30_000} ms: ${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sandbox exited with code ${code}: ${stderr}`));
    });
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      const ready = JSON.parse(line) as { url: string; port: number; secretKey: string; webhookSigningSecret: string };
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      resolve({
        ...ready,
        admin: new SandboxAdminClient(ready.url),
        process: child,
        async close() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}
