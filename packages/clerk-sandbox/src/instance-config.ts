/**
 * The instance configuration Clerk's Platform API serves at
 * `/v1/platform/applications/{app}/instances/{env}/config` (routes/clerk-platform.ts), as far as
 * the sandbox emulates it: the `session` key, its version, a log of what each change and dry
 * run did (`applied`: the version moved), and the PATCHes refused for a stale `If-Match`. What
 * new sessions get as `expire_at` follows it (`newSessionLifetimeMs`).
 *
 * As Clerk's spec and CLI show it (checked 2026-12-03; github.com/clerk/openapi-specs
 * platform/beta.yml `PlatformGetConfig`/`PlatformPatchConfig`, github.com/clerk/cli
 * packages/cli-core): `config_version` is a string; PATCH deep-merges, takes `?dry_run=true` and
 * `?destructive=true` (needed to set a key to null) and an `If-Match: <config_version>` header,
 * and answers `{config_version, dry_run, before, after}` with only the changed top-level keys;
 * errors are `{errors:[{code, message, long_message, meta:{param_name, config_key}}]}` with
 * `config_validation_error`, `unknown_config_key` and `destructive_operation_not_allowed` (400).
 * `session.lifetime` is the maximum lifetime in seconds (604800, Clerk's 7-day default, in the
 * CLI's examples). Not confirmed, and the sandbox's own choice: the name `inactivity_timeout`
 * (seconds), the 300 s..10 y bounds (those of a single session's `expire_at`), and the answer to a
 * stale `If-Match` (409, as the spec lists for PATCH, code `conflict` as clerk/cli handles it).
 */
import { MAX_SESSION_LIFETIME_MS } from './columns';

/** The `session` key as the API shows it: seconds; null is "off" (at least one stays on). */
export interface SessionConfigJson {
  lifetime: number | null;
  inactivity_timeout: number | null;
}

/** The same in milliseconds, as the admin hooks and assertions use it. */
export interface SessionSettings {
  maxLifetimeMs: number | null;
  inactivityTimeoutMs: number | null;
}

export interface ConfigChange {
  time: string;
  /** The version after the request (unchanged for a dry run or a change to the same values). */
  version: string;
  via: 'platform_api' | 'admin';
  dryRun: boolean;
  /** The settings changed and the version moved: false for a dry run or a change to the same values. */
  applied: boolean;
  before: SessionSettings;
  after: SessionSettings;
}

/** A Platform API PATCH refused for a stale `If-Match` (409): it changed nothing, so it is not in `changes`. */
export interface ConfigConflict {
  time: string;
  dryRun: boolean;
  /** The `If-Match` as sent. */
  ifMatch: string;
  /** The version it did not match. */
  version: string;
}

/** What `GET /__sandbox/instance/config` shows. */
export interface InstanceConfigOverview {
  configVersion: string;
  session: SessionSettings;
  /** What a session created now gets: `expire_at - created_at`. */
  newSessionLifetimeMs: number;
  changes: ConfigChange[];
  /** The PATCHes refused for a stale `If-Match` (a retry that finds its own change applied meets one). */
  conflicts: ConfigConflict[];
}

export interface ConfigPatchAnswer {
  config_version: string;
  dry_run: boolean;
  before: { session?: SessionConfigJson };
  after: { session?: SessionConfigJson };
}

/** A request Clerk would refuse: the route answers `status` with this Clerk error. */
export class ConfigRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly shortMessage: string,
    readonly longMessage: string,
    readonly meta: Record<string, unknown> = {},
  ) {
    super(longMessage);
  }
}

export const CONFIG_KEYS = ['session'] as const;
const SESSION_FIELDS = ['lifetime', 'inactivity_timeout'] as const;
type SessionField = (typeof SESSION_FIELDS)[number];
const MIN_SECONDS = 300;
const MAX_SECONDS = 10 * 365 * 86_400;

const toJson = (s: SessionSettings): SessionConfigJson => ({
  lifetime: s.maxLifetimeMs === null ? null : s.maxLifetimeMs / 1000,
  inactivity_timeout: s.inactivityTimeoutMs === null ? null : s.inactivityTimeoutMs / 1000,
});
const same = (a: SessionSettings, b: SessionSettings) => a.maxLifetimeMs === b.maxLifetimeMs && a.inactivityTimeoutMs === b.inactivityTimeoutMs;
const invalid = (param: string, long: string) => new ConfigRequestError(400, 'config_validation_error', `Invalid value for ${param}`, long, { param_name: param, config_key: param.split('.')[0] });

/** `If-Match` as sent: a bare version, or an entity tag (`"7"`, `W/"7"`). */
function matchVersion(header: string, current: string): boolean {
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '').replace(/^"(.*)"$/, '$1') === current;
  });
}

export class InstanceConfig {
  private version = 1;
  private session: SessionSettings = { maxLifetimeMs: MAX_SESSION_LIFETIME_MS, inactivityTimeoutMs: null };
  private readonly log: ConfigChange[] = [];
  private readonly conflicts: ConfigConflict[] = [];

  get configVersion(): string {
    return String(this.version);
  }

  sessionSettings(): SessionSettings {
    return { ...this.session };
  }

  /** Both on: the earlier end (the sandbox does not extend a session on activity). */
  newSessionLifetimeMs(): number {
    const { maxLifetimeMs: max, inactivityTimeoutMs: idle } = this.session;
    return Math.min(max ?? Infinity, idle ?? Infinity);
  }

  /** `GET …/config`: every emulated key, or those asked for (`?keys=`). */
  read(keys: string[] = []): { config_version: string; session?: SessionConfigJson } {
    for (const k of keys) {
      if (!(CONFIG_KEYS as readonly string[]).includes(k)) throw new ConfigRequestError(400, 'unknown_config_key', `Unknown key: ${k}`, `Unknown config key: ${k} (the sandbox emulates: ${CONFIG_KEYS.join(', ')})`, { param_name: k, suggestions: [...CONFIG_KEYS] });
    }
    return { config_version: this.configVersion, ...(keys.length === 0 || keys.includes('session') ? { session: toJson(this.session) } : {}) };
  }

  /** `PATCH …/config`: validated as a whole first, so a refused request changes nothing. */
  patch(body: unknown, opts: { dryRun: boolean; destructive: boolean; ifMatch?: string }): ConfigPatchAnswer {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('(body)', 'The request body must be a JSON object of config keys.');
    const next: SessionSettings = { ...this.session };
    for (const [key, value] of Object.entries(body)) {
      if (key !== 'session') throw new ConfigRequestError(400, 'unknown_config_key', `Unknown key: ${key}`, `Unknown config key: ${key} (the sandbox emulates: ${CONFIG_KEYS.join(', ')})`, { param_name: key, suggestions: [...CONFIG_KEYS] });
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('session', 'session must be an object');
      for (const [field, v] of Object.entries(value as Record<string, unknown>)) {
        if (!(SESSION_FIELDS as readonly string[]).includes(field)) {
          throw new ConfigRequestError(400, 'unknown_config_key', `Unknown key: session.${field}`, `Unknown config key: session.${field}`, { param_name: `session.${field}`, suggestions: SESSION_FIELDS.map((f) => `session.${f}`) });
        }
        const param = `session.${field}`;
        if (v === null) {
          if (!opts.destructive) throw new ConfigRequestError(400, 'destructive_operation_not_allowed', 'Cannot clear this key without destructive=true', `Setting ${param} to null clears it; send destructive=true to allow it.`, { param_name: param });
        } else if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_SECONDS || v > MAX_SECONDS) {
          throw invalid(param, `${param} must be a whole number of seconds between ${MIN_SECONDS} and ${MAX_SECONDS}`);
        }
        const ms = v === null ? null : v * 1000;
        if ((field as SessionField) === 'lifetime') next.maxLifetimeMs = ms;
        else next.inactivityTimeoutMs = ms;
      }
      if (next.maxLifetimeMs === null && next.inactivityTimeoutMs === null) throw invalid('session', 'At least one of session.lifetime and session.inactivity_timeout must be set.');
    }
    if (opts.ifMatch !== undefined && !matchVersion(opts.ifMatch, this.configVersion)) {
      this.conflicts.push({ time: new Date().toISOString(), dryRun: opts.dryRun, ifMatch: opts.ifMatch, version: this.configVersion });
      throw new ConfigRequestError(409, 'conflict', 'Config version mismatch', `The config changed since version ${opts.ifMatch} was read; read it again and retry.`);
    }
    const before = this.sessionSettings();
    const changed = !same(before, next) && 'session' in body;
    const applied = changed && !opts.dryRun;
    if (applied) this.apply(next);
    this.record('platform_api', opts.dryRun, applied, before, changed ? next : before);
    const touched = 'session' in body;
    return {
      config_version: this.configVersion,
      dry_run: opts.dryRun,
      before: touched ? { session: toJson(before) } : {},
      after: touched ? { session: toJson(changed ? next : before) } : {},
    };
  }

  /** The admin hook (a Dashboard change, a drill's short lifetime): no API bounds, but still one setting on. */
  set(change: Partial<SessionSettings>): SessionSettings {
    const next: SessionSettings = {
      maxLifetimeMs: change.maxLifetimeMs !== undefined ? change.maxLifetimeMs : this.session.maxLifetimeMs,
      inactivityTimeoutMs: change.inactivityTimeoutMs !== undefined ? change.inactivityTimeoutMs : this.session.inactivityTimeoutMs,
    };
    if (next.maxLifetimeMs === null && next.inactivityTimeoutMs === null) throw new Error('one of maxLifetimeMs and inactivityTimeoutMs must stay set');
    const before = this.sessionSettings();
    const applied = !same(before, next);
    if (applied) this.apply(next);
    this.record('admin', false, applied, before, next);
    return this.sessionSettings();
  }

  overview(): InstanceConfigOverview {
    return { configVersion: this.configVersion, session: this.sessionSettings(), newSessionLifetimeMs: this.newSessionLifetimeMs(), changes: this.log.map((c) => ({ ...c })), conflicts: this.conflicts.map((c) => ({ ...c })) };
  }

  private apply(next: SessionSettings): void {
    this.session = { ...next };
    this.version++;
  }

  private record(via: ConfigChange['via'], dryRun: boolean, applied: boolean, before: SessionSettings, after: SessionSettings): void {
    this.log.push({ time: new Date().toISOString(), version: this.configVersion, via, dryRun, applied, before, after: { ...after } });
  }
}
