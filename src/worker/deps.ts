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
import type { ActivityDeps } from '../activities';
import { bypassConfigFromEnv } from '../activities/bypass';
import { clerkLimitsFromEnv, createClerkGateway, createClerkRateLimiters } from '../activities/clerk';
import { deployAdapterFromEnv, sandboxDeployAdapter, type SandboxVercel } from '../activities/deploy';
import type { ReconcileDeps } from '../activities/reconcile-users';
import { demoSigning, signingFromEnv } from '../activities/signing';
import { pagingFromEnv } from '../activities/paging';
import { CLERK_STATUS_PAGE, diagnosticsConfig, type Env } from '../config';
import { workerKeysFromEnv } from '../keys/worker-keys';
import { reconcileDepsFromEnv } from '../reconcile-setup';

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
  const paging = pagingFromEnv(env, { ...(sandbox?.pagerduty ? { sandbox: sandbox.pagerduty } : {}), ...(temporalUiUrl ? { uiUrl: temporalUiUrl } : {}), namespace: env.TEMPORAL_NAMESPACE });
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
    ...(signing ? { signing } : {}),
    diagnostics: diagnosticsConfig(env, sandbox ? { url: sandbox.url, publishableKey: sandbox.publishableKey } : undefined),
    ...(chatWebhookUrl ? { chatWebhookUrl } : {}),
    ...(temporalUiUrl ? { temporalUiUrl } : {}),
    namespace: env.TEMPORAL_NAMESPACE,
    ...(deploy ? { deploy } : {}),
    keys: keys.rotation,
    keyExposureLookbackMs: env.KEY_EXPOSURE_LOOKBACK,
    bypass: bypassConfigFromEnv(env),
    ...(reconcile ? { reconcile } : {}),
    ...(paging ? { paging } : {}),
  };
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
  };
}
