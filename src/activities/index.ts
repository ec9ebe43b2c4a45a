/**
 * Activities, built by a factory with their dependencies so the worker, the tests and the
 * sandbox mode inject configuration instead of reading globals. Workflows import the type only.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { notify, type Notification, type NotifyResult } from './notify';
import type { ClerkGateway } from './clerk';
import { fetchStatusPage, probeBackendApi, reportForHistory, runProbes, type StatusPageResult } from './probes';
import { createDiagnosticsActivities, type DiagnosticsDeps } from './diagnostics';
import { createRemedyActivities } from './remedies';
import { createInstanceConfigActivities, type InstanceConfigOptions } from './instance-config';
import { createRevokeSessionsActivities } from './revoke-sessions';
import { createSigningActivities, type SigningDeps } from './signing';
import { createDeployActivities } from './deploy/activities';
import { createKeyRotationActivities } from './key-rotation';
import type { KeyRotationDeps } from '../keys/rotation';
import type { DeployAdapter } from './deploy';
import { createBypassActivities, type BypassConfig } from './bypass';
import { createBypassLeaseActivities } from './bypass-lease';
import { createReconcileActivities, type ReconcileDeps } from './reconcile-users';
import { createPagingActivities, type PagingDeps } from './paging';
import { createRosterActivities, type RosterDeps } from './roster';
import { createWatchActivities } from './watch';
import type { ProbeReport } from '../triage/rules';
import type { IdentityMapping, Review } from '../review/build';
import { renderReviewMarkdown } from '../review/render';
import { reviewOf } from '../review/fetch';
import type { IncidentState } from '../workflows/incident-types';
import type { ReviewPhaseSettings } from '../review/phase-settings';
import { slackWebClient, type SlackAppSettings } from '../chat/slack-client';

export interface ActivityDeps {
  /** Base URL of the Clerk status page (real: https://status.clerk.com; sandbox: its own). */
  statusPageUrl: string;
  /** True when talking to the project's Clerk sandbox instead of real Clerk. */
  sandbox: boolean;
  /** The app's health route (APP_HEALTH_URL), probed by triage. */
  appHealthUrl?: string;
  /** App pages probed by triage (APP_ROUTES); all answering 500 means the auth middleware throws. */
  appRoutes?: string[];
  /** Slack-compatible incoming webhook (CHAT_WEBHOOK_URL); notifications are logged without it. */
  chatWebhookUrl?: string;
  /** The Slack app (SLACK_BOT_TOKEN, SLACK_CHANNEL, SLACK_API_URL): one thread per incident with buttons; replaces the webhook. */
  slack?: SlackAppSettings;
  /** Temporal UI base URL and namespace, for the "how to approve" lines of notifications. */
  temporalUiUrl?: string;
  namespace?: string;
  /** The Clerk adapter (src/activities/clerk.ts); triage's Backend API probe is skipped without it. */
  clerk?: ClerkGateway;
  /** What diagnostics compare against (publishable key, app URL, authorized parties, SDK minimum, lifetimes): `diagnosticsConfig(env)`. */
  diagnostics?: Omit<DiagnosticsDeps, 'clerk' | 'appHealthUrl' | 'appRoutes'>;
  /** People → the client identities they send updates from (APPROVER_IDENTITIES); the review flags decisions that do not match. */
  approverIdentities?: IdentityMapping;
  /** The post-incident phase after `resolved` (REVIEW_PHASE, REVIEW_REMIND_EVERY); absent: the review is final at once. */
  reviewPhase?: ReviewPhaseSettings;
  /** The approver registry and which steps need signed decisions (APPROVER_ALLOWED_SIGNERS, SIGNED_STEPS); signing is off without it. */
  signing?: SigningDeps;
  /** The deployment platform (DEPLOY_ADAPTER, src/activities/deploy); steps that change the deployment are done by hand without it. */
  deploy?: DeployAdapter;
  /** Key references and the rotation (CLERK_SECRET_KEY_REF, docs/key-rotation.md); the rotation is done by hand without them. */
  keys?: KeyRotationDeps;
  /** Without an incident's `exposedAt`, how far back the exposure audit looks (KEY_EXPOSURE_LOOKBACK; default 30 days). */
  keyExposureLookbackMs?: number;
  /** The emergency bypass's settings (BYPASS_*, `bypassConfigFromEnv`); defaults without. */
  bypass?: BypassConfig;
  /** The app's user store and how to fix it (USER_STORE_URL, RECONCILE_WEBHOOK_URL…): `reconcileDepsFromEnv`. */
  reconcile?: ReconcileDeps;
  /** PagerDuty's Events API and each paging target's routing key (PAGERDUTY_*, `pagingFromEnv`); nobody is paged without it. */
  paging?: PagingDeps;
  /** The on-call roster (ROSTER_FILE, watched; docs/roster.md): who may decide what. Approvals are unauthenticated without it. */
  roster?: RosterDeps;
  /** Clerk's Platform API instance config (CLERK_PLATFORM_API_TOKEN…): the session lifetime remedy; done by hand without it. */
  instanceConfig?: InstanceConfigOptions;
}

const DEFAULT_MAX_SESSION_LIFETIME_MS = 7 * 86_400_000;

const NOTIFY_TIMEOUT_MS = 5000;

export function createActivities(deps: ActivityDeps) {
  // One Web API client for the process: it queues its own calls.
  const slack = deps.slack ? { client: slackWebClient(deps.slack), channel: deps.slack.channel } : undefined;
  return {
    /** Mass session revocation (`revokeSessionsWorkflow`): count the scope, revoke batch by batch. */
    ...createRevokeSessionsActivities({ clerk: () => deps.clerk }),

    /** Signed approvals: the approver registry, read when an incident starts. */
    ...createSigningActivities(() => deps.signing),

    /** The deployment platform: set/remove a value, redeploy, a deployment's state (docs/bypass.md). */
    ...createDeployActivities(() => deps.deploy),

    /** The secret-key rotation of key_compromise: new key, verify, push, retire, prove dead, audit (docs/key-rotation.md). */
    ...createKeyRotationActivities(() => deps.keys, { clerk: () => deps.clerk, deploy: () => deps.deploy, ...(deps.appHealthUrl ? { appHealthUrl: deps.appHealthUrl } : {}), ...(deps.keyExposureLookbackMs !== undefined ? { exposureLookbackMs: deps.keyExposureLookbackMs } : {}) }),

    /** The emergency auth bypass: its settings, the flag, and the probes that verify it (docs/bypass.md). */
    ...createBypassActivities(() => deps),

    /** The bypass lease: the incident's requests to it (update-with-start) and its look at its holders. */
    ...createBypassLeaseActivities(),

    /** User reconciliation (`reconcileUsersWorkflow`): compare Clerk with the app's store, replay what it missed. */
    ...createReconcileActivities({ clerk: () => deps.clerk, reconcile: () => deps.reconcile }),

    /** The on-call roster, read when an incident starts (routing keys left out). */
    ...createRosterActivities(() => deps.roster),

    /** Paging the on-call (PagerDuty Events API v2): trigger, acknowledge, resolve a step's alert; change events (docs/paging.md). */
    ...createPagingActivities(() => deps.paging),
    /** The watch (a Schedule of triage's probes) opens, joins and tells incidents, with the worker's client. */
    ...createWatchActivities(),

    /** Diagnostics of middleware failures and session issues: every check in parallel, each bounded. */
    ...createDiagnosticsActivities(() => ({
      maxSessionLifetimeMs: DEFAULT_MAX_SESSION_LIFETIME_MS,
      ...deps.diagnostics,
      ...(deps.clerk ? { clerk: deps.clerk } : {}),
      ...(deps.appHealthUrl ? { appHealthUrl: deps.appHealthUrl } : {}),
      ...(deps.appRoutes ? { appRoutes: deps.appRoutes } : {}),
    })),

    /** The diagnostics' remedies that change Clerk (allowed_origins, compare-and-set, read back) or the deployed app (its publishable key). */
    ...createRemedyActivities(() => ({
      ...(deps.clerk ? { clerk: deps.clerk } : {}),
      ...(deps.deploy ? { deploy: deps.deploy } : {}),
      ...(deps.diagnostics?.publishableKey ? { publishableKey: deps.diagnostics.publishableKey } : {}),
      ...(deps.diagnostics?.publishableKeyEnv ? { publishableKeyEnv: deps.diagnostics.publishableKeyEnv } : {}),
    })),
    /** Clerk's Platform API instance config: the session settings read and changed (dry run first, If-Match on the version read). */
    ...createInstanceConfigActivities(() => deps.instanceConfig),
    /** Whether the session lifetime can be changed here (a Platform API token), for the workflow to choose the remedy's path. */
    async sessionSettingsSupport(): Promise<{ automated: boolean }> {
      return { automated: deps.instanceConfig !== undefined };
    },

    async probeStatusPage(input: { timeoutMs: number }): Promise<StatusPageResult & { sandbox: boolean }> {
      const result = await fetchStatusPage(deps.statusPageUrl, input.timeoutMs);
      return { ...result, sandbox: deps.sandbox };
    },

    /** Triage: every probe in parallel, each bounded by `timeoutMs`. A failing probe is evidence, not an error. */
    async runTriageProbes(input: { timeoutMs: number }): Promise<ProbeReport & { sandbox: boolean }> {
      const report = await runProbes(
        {
          statusPageUrl: deps.statusPageUrl,
          appHealthUrl: deps.appHealthUrl,
          appRoutes: deps.appRoutes,
          backendApi: deps.clerk ? (timeoutMs) => probeBackendApi(deps.clerk as ClerkGateway, timeoutMs) : undefined,
        },
        input.timeoutMs,
        Context.current().cancellationSignal,
      );
      // Only what triage reads crosses into history: the app's answers are the app's to fill.
      return { ...reportForHistory(report), sandbox: deps.sandbox };
    },

    /**
     * The post-incident review of the calling incident, from its event history (fetched with the
     * worker's client) and the state it passes, so it agrees with the UI's timeline to the second.
     */
    /** The worker's post-incident phase, read once by an incident as it resolves (journaled). */
    async reviewPhaseSettings(): Promise<ReviewPhaseSettings | null> {
      return deps.reviewPhase ?? null;
    },

    async writeReview(input: { state: IncidentState }): Promise<{ markdown: string; review: Review }> {
      const execution = Context.current().info.workflowExecution;
      if (!execution) throw ApplicationFailure.create({ type: 'NotInWorkflow', message: 'writeReview runs only for an incident workflow', nonRetryable: true });
      const handle = Context.current().client.workflow.getHandle(execution.workflowId, execution.runId);
      const review = await reviewOf(handle, input.state, deps.approverIdentities);
      return { markdown: renderReviewMarkdown(review), review };
    },

    /** Post to the incident channel (or the worker's console). Failures keep their error name as the failure type. */
    async notify(notification: Notification): Promise<NotifyResult> {
      const info = Context.current().info;
      try {
        return await notify(notification, {
          webhookUrl: deps.chatWebhookUrl,
          ...(slack ? { slack, once: { key: `${info.workflowExecution?.runId ?? '-'}:${info.activityId}`, retry: info.attempt > 1 } } : {}),
          timeoutMs: NOTIFY_TIMEOUT_MS,
          namespace: deps.namespace ?? 'default',
          uiUrl: deps.temporalUiUrl,
          // The worker's console, not its logger: a notification nobody sees is no notification.
          console: (line) => console.log(line),
        });
      } catch (err) {
        if (err instanceof Error && (err.name === 'NotifyTimeoutError' || err.name === 'NotifyNetworkError' || err.name === 'NotifyHttpError' || err.name === 'SlackApiError')) {
          const retryable = !('retryable' in err) || err.retryable === true;
          // Slack's Retry-After sets the next attempt's delay (at most a minute).
          const after = 'retryAfterSeconds' in err && typeof err.retryAfterSeconds === 'number' ? Math.min(60, err.retryAfterSeconds) * 1000 : undefined;
          throw ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !retryable, cause: err, ...(after ? { nextRetryDelay: after } : {}) });
        }
        throw err;
      }
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;

/*
 * What each capability's workflow code calls: a workflow module proxies only its own
 * (`proxyActivities<BypassActivities>(…)`), so its type says which activities it may schedule.
 */
export type NotifyActivities = Pick<Activities, 'notify'>;
export type TriageActivities = Pick<Activities, 'runTriageProbes' | 'probeStatusPage'>;
export type ReviewActivities = Pick<Activities, 'writeReview' | 'reviewPhaseSettings'>;
export type SigningActivities = ReturnType<typeof createSigningActivities>;
export type DeployActivities = ReturnType<typeof createDeployActivities>;
export type KeyRotationActivities = ReturnType<typeof createKeyRotationActivities>;
export type BypassActivities = ReturnType<typeof createBypassActivities>;
export type DiagnosticsActivities = ReturnType<typeof createDiagnosticsActivities>;
export type RemedyActivities = ReturnType<typeof createRemedyActivities> & ReturnType<typeof createInstanceConfigActivities> & { sessionSettingsSupport(): Promise<{ automated: boolean }> };
export type RevocationActivities = ReturnType<typeof createRevokeSessionsActivities>;
export type ReconcileActivities = ReturnType<typeof createReconcileActivities>;
export type RosterActivities = ReturnType<typeof createRosterActivities>;
export type PagingActivities = ReturnType<typeof createPagingActivities>;
