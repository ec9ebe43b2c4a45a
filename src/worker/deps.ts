/**
 * The worker's activity dependencies (`ActivityDeps`) from the environment: the one wiring of the
 * production worker (./index.ts), `npm start` (src/main.ts), the drills and the load bench, so
 * what a drill or the bench proves is what production runs.
 *
 * With `sandbox`, the Clerk sandbox stands in for Clerk (its key in a `file:` reference, rotated
 * through its Platform API and Vault), its emulated Vercel for the deployment platform unless
 * DEPLOY_ADAPTER names one, and its example app for triage unless APP_HEALTH_URL / APP_ROUTES say
 * otherwise. A worker that must reach nothing but the sandbox gets `sandboxOnly(env)`.
 */
import { instanceConfigOptionsFromEnv } from '../activities/instance-config';
import type { ActivityDeps } from '../activities';
import { bypassConfigFromEnv } from '../activities/bypass';
import { clerkLimitsFromEnv, createClerkGateway, createClerkRateLimiters } from '../activities/clerk';
import { deployAdapterFromEnv, sandboxDeployAdapter, type SandboxVercel } from '../activities/deploy';
import type { ReconcileDeps } from '../activities/reconcile-users';
import { demoSigning, signingFromEnv } from '../activities/signing';
import { pagingFromEnv } from '../activities/paging';
import { rosterRoutingKeys } from '../activities/roster';
import type { SlackAppSettings } from '../chat/slack-client';
import { watchRoster, type RosterWatcher } from '../roster/load';
import { CLERK_STATUS_PAGE, diagnosticsConfig, type Env } from '../config';
import { workerKeysFromEnv } from '../keys/worker-keys';
import { reconcileDepsFromEnv } from '../reconcile-setup';
import { PROJECT_ROOT } from '../temporal/provision';
import { join } from 'node:path';

/** The sample roster (alice, bob, carol, dave; two rotations): `npm start` in sandbox mode and the drills decide by it. */
export const SAMPLE_ROSTER_FILE = join(PROJECT_ROOT, 'config', 'roster.sample.yaml');

/** What the wiring needs of a running Clerk sandbox (the sandbox package's `RunningSandbox` has all of it). */
export interface SandboxEndpoints {
  url: string;
  secretKey: string;
  publishableKey: string;
  vercel: SandboxVercel;
  vault: { addr: string; token: string };
  platform: { url: string; token: string; applicationId: string; instanceId: string };
  /** The emulated PagerDuty Events API: paged when PAGERDUTY_ROUTING_KEYS is unset. */
  pagerduty?: { url: string; routingKeys: string[] };
  /** To make the emulated PagerDuty accept the roster's routing keys (the sandbox's `admin`). */
  admin?: { pagerduty: { settings(settings: { routingKeys: string[] }): void } };
}

interface SandboxWiring {
  endpoints: SandboxEndpoints;
  /** Where the sandbox's key is kept for the worker's `file:` reference (a rotation writes the new key there). */
  keyFile: string;
  /** Where SIGNED_APPROVALS_DEMO keeps the sample approvers' keys (`npm start`: .data/signing); no demo signing without it. */
  demoSigningDir?: string;
}

export interface WorkerDepsOptions {
  /** Sandbox mode: the Clerk sandbox instead of real Clerk. */
  sandbox?: SandboxWiring;
  /** The app's user store when the caller runs it (sandbox mode: `startSandboxReconcile`); otherwise from USER_STORE_URL. */
  reconcile?: ReconcileDeps;
  /** The incident channel when the caller runs one (a drill's sink); otherwise CHAT_WEBHOOK_URL. */
  chatWebhookUrl?: string;
  /** The Temporal UI when TEMPORAL_UI_URL is unset (`npm start`: the dev server's). */
  temporalUiUrl?: string;
  /** The Slack app (src/chat/start.ts): notifications go to one thread per incident, with buttons. */
  slack?: SlackAppSettings;
  /** The roster when ROSTER_FILE is unset (`npm start` in sandbox mode and the drills: config/roster.sample.yaml). */
  rosterFile?: string;
  /** Where start-up lines go (which approver registry was read, the demo keys made). */
  say?: (line: string) => void;
}

/** The sandbox's example app: triage probes its health route and two of its pages. */
function sandboxApp(url: string): { appHealthUrl: string; appRoutes: string[] } {
  return { appHealthUrl: `${url}/api/clerk-health`, appRoutes: [`${url}/app/dashboard`, `${url}/app/profile`] };
}

export async function workerDepsFromEnv(env: Env, opts: WorkerDepsOptions = {}): Promise<ActivityDeps> {
  const say = opts.say ?? (() => undefined);
  const sandbox = opts.sandbox?.endpoints;
  const keys = await workerKeysFromEnv(
    env,
    opts.sandbox && sandbox
      ? { apiUrl: sandbox.url, sandbox: { keyFile: opts.sandbox.keyFile, secretKey: sandbox.secretKey, vault: sandbox.vault, platform: sandbox.platform } }
      : {},
  );
  const apiUrl = sandbox?.url ?? env.CLERK_API_URL;
  const app = sandbox ? sandboxApp(sandbox.url) : undefined;
  const deploy = deployAdapterFromEnv(env) ?? (sandbox ? sandboxDeployAdapter(sandbox.vercel) : undefined);
  const demoDir = opts.sandbox?.demoSigningDir;
  const signing = (await signingFromEnv(env, say)) ?? (demoDir && env.SIGNED_APPROVALS_DEMO ? await demoSigning(demoDir, env.SIGNED_STEPS, say) : undefined);
  const reconcile = opts.reconcile ?? reconcileDepsFromEnv(env);
  const chatWebhookUrl = opts.chatWebhookUrl ?? env.CHAT_WEBHOOK_URL;
  const temporalUiUrl = env.TEMPORAL_UI_URL ?? opts.temporalUiUrl;
  const roster = await rosterFromEnv(env.ROSTER_FILE ?? opts.rosterFile, say);
  // The session lifetime remedy: the Platform API configured, or in sandbox mode the sandbox's own.
  const instanceConfig =
    instanceConfigOptionsFromEnv(env) ?? (sandbox ? { url: sandbox.platform.url, token: sandbox.platform.token, applicationId: sandbox.platform.applicationId, instance: sandbox.platform.instanceId } : undefined);
  if (roster && sandbox?.pagerduty && sandbox.admin) {
    // The emulated PagerDuty refuses keys it does not know, as PagerDuty does: it learns the roster's.
    const known = new Set(sandbox.pagerduty.routingKeys);
    const add = rosterRoutingKeys(roster.current()).filter((k) => /^[A-Za-z0-9]{32}$/.test(k) && !known.has(k));
    if (add.length) sandbox.admin.pagerduty.settings({ routingKeys: [...known, ...add] });
  }
  const paging = pagingFromEnv(env, {
    ...(sandbox?.pagerduty ? { sandbox: sandbox.pagerduty } : {}),
    ...(temporalUiUrl ? { uiUrl: temporalUiUrl } : {}),
    namespace: env.TEMPORAL_NAMESPACE,
    ...(roster ? { roster } : {}),
  });
  return {
    statusPageUrl: sandbox?.url ?? env.CLERK_STATUS_PAGE_URL ?? CLERK_STATUS_PAGE,
    sandbox: sandbox !== undefined,
    clerk: createClerkGateway({
      secretKey: keys.secretKey,
      keySource: keys.keySource,
      apiUrl,
      // The sandbox enforces the production limit by default, whatever its sk_test_ key suggests.
      ...clerkLimitsFromEnv(env, keys.secretKey, env.CLERK_INSTANCE_TYPE ?? (sandbox ? 'production' : undefined)),
      // One limiter per Clerk instance for this process: every gateway given this registry shares it.
      rateLimiters: createClerkRateLimiters(),
    }),
    appHealthUrl: env.APP_HEALTH_URL ?? app?.appHealthUrl,
    appRoutes: env.APP_ROUTES.length || !app ? env.APP_ROUTES : app.appRoutes,
    ...(env.APPROVER_IDENTITIES ? { approverIdentities: env.APPROVER_IDENTITIES } : {}),
    ...(env.REVIEW_PHASE !== 'off' ? { reviewPhase: { withinMs: env.REVIEW_PHASE, remindEveryMs: env.REVIEW_REMIND_EVERY } } : {}),
    ...(signing ? { signing } : {}),
    diagnostics: diagnosticsConfig(env, sandbox ? { url: sandbox.url, publishableKey: sandbox.publishableKey } : undefined),
    ...(chatWebhookUrl ? { chatWebhookUrl } : {}),
    ...(opts.slack ? { slack: opts.slack } : {}),
    ...(temporalUiUrl ? { temporalUiUrl } : {}),
    namespace: env.TEMPORAL_NAMESPACE,
    ...(deploy ? { deploy } : {}),
    keys: keys.rotation,
    keyExposureLookbackMs: env.KEY_EXPOSURE_LOOKBACK,
    bypass: bypassConfigFromEnv(env),
    ...(reconcile ? { reconcile } : {}),
    ...(paging ? { paging } : {}),
    ...(roster ? { roster } : {}),
    ...(instanceConfig ? { instanceConfig } : {}),
  };
}

/**
 * The roster, watched (an edit applies to the next incident; a version that does not validate is
 * reported and the last good one stays). A roster that does not validate at start-up stops the worker.
 */
async function rosterFromEnv(file: string | undefined, say: (line: string) => void): Promise<RosterWatcher | undefined> {
  if (!file) return undefined;
  const watcher = await watchRoster(file, {
    onChange: (r) => say(`Roster: ${r.source} changed; new incidents decide by ${r.version.slice(0, 19)}`),
    onError: (err) => say(`Roster: the new version of ${file} is refused, the previous one stays in force: ${err.message}`),
  });
  const r = watcher.current();
  say(`Roster: ${r.people.length} people, ${Object.keys(r.rotations).length} rotation(s), ${r.policy.rules.length} rule(s) from ${r.source} (${r.version.slice(0, 19)})`);
  for (const w of r.warnings) say(`Roster: warning: ${w}`);
  return watcher;
}

/**
 * The environment with every setting that points a worker outside the sandbox left out: the
 * deploy adapter, triage targets, signing, approver identities, chat and UI links, the instance
 * type, PagerDuty (its URL and routing keys). The drills and the load bench run on it, so the
 * operator's shell never sends a drill's bypass to a real deployment, pages a real person, or
 * asks it for signatures it cannot give.
 */
export function sandboxOnly(env: Env): Env {
  return {
    ...env,
    DEPLOY_ADAPTER: undefined,
    APP_HEALTH_URL: undefined,
    APP_ROUTES: [],
    APPROVER_ALLOWED_SIGNERS: undefined,
    SIGNED_APPROVALS_DEMO: false,
    APPROVER_IDENTITIES: undefined,
    CHAT_WEBHOOK_URL: undefined,
    TEMPORAL_UI_URL: undefined,
    CLERK_INSTANCE_TYPE: undefined,
    PAGERDUTY_EVENTS_URL: undefined,
    PAGERDUTY_ROUTING_KEYS: undefined,
    ROSTER_FILE: undefined,
  };
}
