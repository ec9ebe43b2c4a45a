/**
 * The emergency auth bypass, activity side: its settings (from the worker's configuration), the
 * flag set and cleared through the deploy adapter, and the probes that verify what the app and
 * Clerk do (the app's routes carry `X-Auth-Bypass: true`; the status page says `none` and the
 * Backend API answers 200). The flag carries its own expiry: `{"until":"<ISO>","incident":"<id>"}`.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Env } from '../config';
import type { StatusIndicator } from '../domain';
import type { BackendApiProbe } from '../triage/rules';
import type { ClerkGateway } from './clerk';
import { toDeployFailure, type DeployAdapter, type ValueChange } from './deploy';
import { fetchStatusPage, probeBackendApi } from './probes';

export interface BypassConfig {
  /** The env var / Edge Config key the app reads (BYPASS_FLAG_KEY). */
  flagKey: string;
  /** The longest a bypass may stay on, extensions included (BYPASS_MAX_DURATION). */
  maxDurationMs: number;
  /** Turning it off after recovery waits for an approver (BYPASS_OFF_NEEDS_APPROVAL). */
  offNeedsApproval: boolean;
  /** Checks in a row that must see Clerk healthy (BYPASS_RECOVERY_PROBES). */
  recoveryProbes: number;
  /**
   * While the bypass is on, Clerk is checked at least this often (BYPASS_RECOVERY_CHECK_EVERY): with
   * the defaults (3 checks, 20 s) a sustained recovery turns it off within about a minute.
   */
  recoveryCheckEveryMs: number;
}

export const BYPASS_DEFAULTS: BypassConfig = { flagKey: 'CLERK_AUTH_BYPASS', maxDurationMs: 4 * 3_600_000, offNeedsApproval: false, recoveryProbes: 3, recoveryCheckEveryMs: 20_000 };

export function bypassConfigFromEnv(env: Env): BypassConfig {
  return {
    flagKey: env.BYPASS_FLAG_KEY,
    maxDurationMs: env.BYPASS_MAX_DURATION,
    offNeedsApproval: env.BYPASS_OFF_NEEDS_APPROVAL,
    recoveryProbes: env.BYPASS_RECOVERY_PROBES,
    recoveryCheckEveryMs: env.BYPASS_RECOVERY_CHECK_EVERY,
  };
}

/** What the workflow is told (no token, no URL with credentials). */
export interface BypassSettings extends BypassConfig {
  /** `target` names what the adapter writes to (one bypass lease per target and flag). */
  adapter: { name: DeployAdapter['name']; needsRedeploy: boolean; target: string } | null;
}

/** What the platform shows of the flag: `unknown` when the adapter cannot read it back (Edge Config, webhook). */
export type FlagSeen = { present: true; marker?: string } | { present: false } | { present: 'unknown' };

export interface BypassProbe {
  /** True when what was expected is what every probed URL showed. */
  verified: boolean;
  /** One line per URL: `GET /app/dashboard 200 X-Auth-Bypass: true`. */
  seen: string[];
}

export interface RecoveryProbe {
  indicator: StatusIndicator | 'unknown';
  backendApi: BackendApiProbe['kind'];
  backendStatus: number | null;
  /** Status page `none` and the Backend API answered 200. */
  healthy: boolean;
}

export interface BypassDeps {
  deploy?: DeployAdapter;
  bypass?: BypassConfig;
  clerk?: ClerkGateway;
  statusPageUrl: string;
  appHealthUrl?: string;
  appRoutes?: string[];
}

const path = (url: string) => {
  try {
    return new URL(url).pathname;
  } catch {
    return url;
  }
};

async function look(url: string, timeoutMs: number, signal: AbortSignal): Promise<{ line: string; status: number | null; header: boolean; healthFlag?: boolean }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]), redirect: 'manual' });
    const header = res.headers.get('x-auth-bypass') === 'true';
    let healthFlag: boolean | undefined;
    const text = await res.text();
    try {
      const body: unknown = JSON.parse(text);
      const active = (body as { bypass?: { active?: unknown } } | null)?.bypass?.active;
      if (typeof active === 'boolean') healthFlag = active;
    } catch {
      // a page, not JSON
    }
    const flag = healthFlag === undefined ? '' : `, reports bypass ${healthFlag ? 'active' : 'inactive'}`;
    return { line: `GET ${path(url)} ${res.status}${header ? ' X-Auth-Bypass: true' : ''}${flag}`, status: res.status, header, ...(healthFlag !== undefined ? { healthFlag } : {}) };
  } catch (err) {
    return { line: `GET ${path(url)} no answer (${err instanceof Error ? err.name : 'error'})`, status: null, header: false };
  }
}

export function createBypassActivities(deps: () => BypassDeps) {
  const adapter = (what: string): DeployAdapter => {
    const a = deps().deploy;
    if (!a) throw ApplicationFailure.create({ type: 'DeployRequestRejected', message: `${what}: no deploy adapter is configured (DEPLOY_ADAPTER, docs/bypass.md)`, nonRetryable: true });
    return a;
  };
  const config = () => deps().bypass ?? BYPASS_DEFAULTS;
  const change = async (run: () => Promise<ValueChange>): Promise<ValueChange> => {
    try {
      return await run();
    } catch (err) {
      throw toDeployFailure(err);
    }
  };

  return {
    async bypassSettings(): Promise<BypassSettings> {
      const a = deps().deploy;
      return { ...config(), adapter: a ? { name: a.name, needsRedeploy: a.needsRedeploy, target: a.target } : null };
    },

    /** Set the flag with its expiry. Not live before a redeploy when the adapter needs one. */
    async bypassSet(input: { until: string; incidentId: string }): Promise<ValueChange> {
      const value = JSON.stringify({ until: input.until, incident: input.incidentId });
      const a = adapter('bypassSet');
      // Marked with the incident and expiry: a retry after a crash finds its own write and leaves it.
      return change(() => a.setValue(config().flagKey, value, { marker: `clerk-incident-runbook ${input.incidentId} bypass until ${input.until}` }));
    },

    /** Whether the flag is set on the platform (the sweep's look; `unknown` where the adapter cannot read). */
    async bypassFlagSeen(): Promise<FlagSeen> {
      const a = adapter('bypassFlagSeen');
      if (!a.readValue) return { present: 'unknown' };
      const read = a.readValue.bind(a);
      try {
        return await read(config().flagKey);
      } catch (err) {
        throw toDeployFailure(err);
      }
    },

    async bypassClear(): Promise<ValueChange> {
      const a = adapter('bypassClear');
      return change(() => a.removeValue(config().flagKey));
    },

    /**
     * What the app shows now. `on`: every app route answers 2xx with `X-Auth-Bypass: true` and the
     * health route (if any) reports the bypass active. `off`: no route carries the header and the
     * health route reports it inactive. No app routes configured: nothing can be verified.
     */
    async probeBypass(input: { expect: 'on' | 'off'; timeoutMs: number }): Promise<BypassProbe> {
      const d = deps();
      const routes = d.appRoutes ?? [];
      const signal = Context.current().cancellationSignal;
      const [pages, health] = await Promise.all([
        Promise.all(routes.map((u) => look(u, input.timeoutMs, signal))),
        d.appHealthUrl ? look(d.appHealthUrl, input.timeoutMs, signal) : Promise.resolve(undefined),
      ]);
      const seen = [...pages.map((p) => p.line), ...(health ? [health.line] : [])];
      if (!routes.length) return { verified: false, seen: [...seen, 'no app routes configured (APP_ROUTES): cannot verify'] };
      const healthOk = !health || health.healthFlag === undefined || health.healthFlag === (input.expect === 'on');
      const verified =
        input.expect === 'on'
          ? pages.every((p) => p.header && p.status !== null && p.status >= 200 && p.status < 300) && healthOk
          : pages.every((p) => p.status !== null && !p.header) && healthOk;
      return { verified, seen };
    },

    /** One recovery check: the status page and the Backend API (never throws for a failing probe). */
    async probeRecovery(input: { timeoutMs: number }): Promise<RecoveryProbe> {
      const d = deps();
      const [indicator, api] = await Promise.all([
        fetchStatusPage(d.statusPageUrl, input.timeoutMs).then(
          (s) => s.indicator,
          () => 'unknown' as const,
        ),
        d.clerk ? probeBackendApi(d.clerk, input.timeoutMs) : Promise.resolve(undefined),
      ]);
      const backendApi = api && api.kind !== 'skipped' ? api.kind : 'network_error';
      const backendStatus = api && api.kind !== 'skipped' ? api.status : null;
      return { indicator, backendApi, backendStatus, healthy: indicator === 'none' && backendApi === 'ok' && backendStatus === 200 };
    },
  };
}
