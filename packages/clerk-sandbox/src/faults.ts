/**
 * What can go wrong between the runbook and Clerk: the instance's rate limit, injected faults
 * (latency, error statuses, hangs, per route; 4xx rejections of chosen sessions) and outages (a
 * manual switch and scheduled windows).
 */
import { createRng } from './ids';
import type { FaultConfig, FaultRule, OutageBody, OutageIndicator, RateLimitSetting, RejectSessions, RouteKey } from './schemas';

export const RATE_LIMITS = {
  production: { requests: 1000, windowMs: 10_000 },
  development: { requests: 100, windowMs: 10_000 },
} as const;

export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Whole seconds until the window resets (what `Retry-After` carries). */
  retryAfterSeconds: number;
}

/** One fixed window per instance, as Clerk counts Backend API requests. */
export class RateLimiter {
  private limit: { requests: number; windowMs: number } | null = null;
  private windowStart = 0;
  private used = 0;
  limited = 0;

  constructor(setting: RateLimitSetting) {
    this.set(setting);
  }

  set(setting: RateLimitSetting): void {
    this.limit = setting === 'off' ? null : typeof setting === 'string' ? { ...RATE_LIMITS[setting] } : { ...setting };
    this.windowStart = 0;
    this.used = 0;
  }

  get setting(): { requests: number; windowMs: number } | 'off' {
    return this.limit ?? 'off';
  }

  take(now: number): RateLimitDecision | null {
    const lim = this.limit;
    if (!lim) return null;
    if (now - this.windowStart >= lim.windowMs) {
      // A new window opens with the first request after the previous one closed.
      this.windowStart = now;
      this.used = 0;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil((this.windowStart + lim.windowMs - now) / 1000));
    if (this.used >= lim.requests) {
      this.limited++;
      return { allowed: false, limit: lim.requests, remaining: 0, retryAfterSeconds };
    }
    this.used++;
    return { allowed: true, limit: lim.requests, remaining: lim.requests - this.used, retryAfterSeconds };
  }
}

/** A Clerk error a rejected request answers with. */
export interface Rejection {
  status: RejectSessions['status'];
  code: string;
  message: string;
}

export type FaultAction =
  | { kind: 'pass'; delayMs: number }
  | { kind: 'error'; delayMs: number; status: 500 | 502 | 503 }
  | { kind: 'hang' };

/** Decides, per request, what the injected faults do to it. Seeded, so runs are reproducible. */
export class FaultInjector {
  private config: FaultConfig = {};
  private rng: () => number;
  private rejected = new Set<string>();
  readonly injected = { latency: 0, error500: 0, error502: 0, error503: 0, hang: 0, rejected: 0 };

  constructor(seed: string | number, config: FaultConfig = {}) {
    this.rng = createRng(`${seed}:faults`);
    this.set(config);
  }

  set(config: FaultConfig): void {
    this.config = structuredClone(config);
    this.rejected = new Set(config.rejectSessions?.sessionIds);
  }

  get(): FaultConfig {
    return structuredClone(this.config);
  }

  /** The rule in force for a route: a field in the route's override replaces the global one. */
  private rule(route: RouteKey, clerkRoute: boolean): FaultRule {
    const own = this.config.routes?.[route];
    const global: FaultRule = clerkRoute
      ? { latency: this.config.latency, errorRates: this.config.errorRates, hangRate: this.config.hangRate }
      : {};
    return {
      latency: own?.latency ?? global.latency,
      errorRates: own?.errorRates ?? global.errorRates,
      hangRate: own?.hangRate ?? global.hangRate,
    };
  }

  /** The answer Clerk gives instead of revoking this session, if `rejectSessions` names it (counted). */
  rejectRevoke(sessionId: string): Rejection | null {
    const reject = this.config.rejectSessions;
    if (!reject || !this.rejected.has(sessionId)) return null;
    this.injected.rejected++;
    return {
      status: reject.status,
      code: reject.code,
      message: reject.message ?? `Session ${sessionId} cannot be revoked (sandbox rejectSessions fault: ${reject.status} ${reject.code}).`,
    };
  }

  /** Global faults apply to Clerk's Backend API; other routes only through a per-route override. */
  decide(route: RouteKey, clerkRoute: boolean): FaultAction {
    const rule = this.rule(route, clerkRoute);
    const fixed = rule.latency?.fixedMs ?? 0;
    const jitter = rule.latency?.jitterMs ?? 0;
    const delayMs = fixed + (jitter > 0 ? Math.floor(this.rng() * (jitter + 1)) : 0);
    if (delayMs > 0) this.injected.latency++;
    const rates = rule.errorRates ?? {};
    const hang = rule.hangRate ?? 0;
    if (hang === 0 && !rates['500'] && !rates['502'] && !rates['503']) return { kind: 'pass', delayMs };
    let roll = this.rng();
    if ((roll -= hang) < 0) {
      this.injected.hang++;
      return { kind: 'hang' };
    }
    for (const status of [500, 502, 503] as const) {
      if ((roll -= rates[String(status) as '500' | '502' | '503'] ?? 0) < 0) {
        this.injected[`error${status}`]++;
        return { kind: 'error', delayMs, status };
      }
    }
    return { kind: 'pass', delayMs };
  }
}

export interface OutageState {
  /** Whether Clerk is down right now (switch on or inside a window). */
  down: boolean;
  active: boolean;
  indicator: OutageIndicator;
  windows: { startsAt: string; endsAt: string }[];
}

/** Clerk-wide outages: a manual switch and scheduled windows. */
export class Outage {
  private active = false;
  private indicator: OutageIndicator = 'major';
  private windows: { startsAt: number; endsAt: number }[] = [];
  /** When the current outage started (for the status page's incident). */
  startedAt: number | null = null;

  update(body: OutageBody, now = Date.now()): void {
    if (body.clearWindows) this.windows = [];
    if (body.indicator) this.indicator = body.indicator;
    for (const w of body.windows ?? []) {
      const startsAt = now + (w.startInMs ?? 0);
      this.windows.push({ startsAt, endsAt: startsAt + w.durationMs });
    }
    if (body.active !== undefined) this.active = body.active;
    this.isDown(now);
  }

  isDown(now = Date.now()): boolean {
    this.windows = this.windows.filter((w) => w.endsAt > now);
    const down = this.active || this.windows.some((w) => w.startsAt <= now);
    if (down && this.startedAt === null) {
      const windowStart = this.windows.filter((w) => w.startsAt <= now).map((w) => w.startsAt);
      this.startedAt = this.active ? now : Math.min(now, ...windowStart);
    }
    if (!down) this.startedAt = null;
    return down;
  }

  state(now = Date.now()): OutageState {
    return {
      down: this.isDown(now),
      active: this.active,
      indicator: this.indicator,
      windows: this.windows.map((w) => ({ startsAt: new Date(w.startsAt).toISOString(), endsAt: new Date(w.endsAt).toISOString() })),
    };
  }

  get currentIndicator(): OutageIndicator {
    return this.indicator;
  }
}
