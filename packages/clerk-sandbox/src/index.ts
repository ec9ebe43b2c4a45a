/**
 * The Clerk sandbox: a loopback HTTP server that behaves like the parts of Clerk the runbook
 * touches (Backend API subset, status page, webhooks, an example app), for tests, benchmarks
 * and `npm start` without `CLERK_SECRET_KEY`. Point `@clerk/backend` at it with
 * `createClerkClient({ secretKey: sandbox.secretKey, apiUrl: sandbox.url })`.
 * The package's main entry (`@clerk-incident-runbook/clerk-sandbox`); the HTTP-only admin client
 * for a sandbox in another process is `@clerk-incident-runbook/clerk-sandbox/admin-client`.
 */
import { SandboxAdmin } from './admin';
import { parseInput, sandboxOptionsSchema, type SandboxOptions } from './schemas';
import { buildServer } from './server';
import { SANDBOX_EDGE_CONFIG_ID, SANDBOX_PROJECT } from './vercel';

export interface RunningSandbox {
  /** Base URL, e.g. `http://127.0.0.1:43127`: pass as `apiUrl` (the SDK appends `/v1/...`). */
  readonly url: string;
  readonly port: number;
  /** An active secret key (`sk_test_…`), the first of `secretKeys` when given. */
  readonly secretKey: string;
  /** The instance's publishable key (`pk_test_` + base64 of `<frontend api host>$`), as the app is deployed with. */
  readonly publishableKey: string;
  /** Secret that signs webhook deliveries (`whsec_…`), for `verifyWebhook`. */
  readonly webhookSigningSecret: string;
  /** The emulated Vercel (project env, deployments, Edge Config) the example app is deployed on; what the deploy adapters take. */
  readonly vercel: {
    url: string;
    token: string;
    projectId: string;
    edgeConfigId: string;
    /** The app's `EDGE_CONFIG` connection string: `@vercel/edge-config` reads the emulated Edge Config through it. */
    edgeConfigConnection: string;
  };
  /** The emulated Vault KV v2 (VAULT_ADDR, VAULT_TOKEN) and Clerk Platform API (rotation) a key rotation uses. */
  readonly vault: { addr: string; token: string };
  readonly platform: { url: string; token: string; applicationId: string; instanceId: string };
  /** The emulated PagerDuty Events API v2: its base URL (PAGERDUTY_EVENTS_URL; events go to `/v2/enqueue`) and the routing keys that exist now. */
  readonly pagerduty: { url: string; routingKeys: string[] };
  /** The emulated Slack: the Web API base for `new WebClient(botToken, { slackApiUrl: apiUrl })`, the bot token it takes and the secret that signs what it sends the app. */
  readonly slack: { apiUrl: string; botToken: string | null; signingSecret: string | null };
  /** Typed in-process admin operations: faults, keys, audit, seeding, outage, webhooks, app. */
  readonly admin: SandboxAdmin;
  /** Stops the server (dropping hung requests) after in-flight webhook deliveries finish. */
  close(): Promise<void>;
}

/** Starts a sandbox; with no options: 100 users, production rate limit, a free loopback port. */
export async function startSandbox(options: SandboxOptions = {}): Promise<RunningSandbox> {
  const resolved = parseInput(sandboxOptionsSchema, options);
  const admin = new SandboxAdmin(resolved);
  let url = '';
  const app = buildServer({ admin, selfUrl: () => url });
  await app.listen({ port: resolved.port, host: resolved.host });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('sandbox: server has no TCP address');
  const connectHost = resolved.host === '0.0.0.0' || resolved.host === '::' ? '127.0.0.1' : resolved.host;
  url = `http://${connectHost.includes(':') ? `[${connectHost}]` : connectHost}:${address.port}`;
  let closing: Promise<void> | null = null;
  return {
    url,
    port: address.port,
    secretKey: admin.keys.firstActiveSecret() ?? '',
    publishableKey: admin.instance.publishableKey,
    webhookSigningSecret: admin.webhooks.signingSecret,
    get vercel() {
      const edgeConfigConnection = `${url}/edge-config/${SANDBOX_EDGE_CONFIG_ID}?token=${admin.vercel.edgeConfigReadToken}`;
      return { url, token: admin.vercel.token, projectId: SANDBOX_PROJECT.id, edgeConfigId: SANDBOX_EDGE_CONFIG_ID, edgeConfigConnection };
    },
    get vault() {
      return { addr: `${url}/vault`, token: admin.vault.token };
    },
    get platform() {
      return { url, token: admin.platform.token, applicationId: admin.platform.applicationId, instanceId: admin.instanceId };
    },
    get pagerduty() {
      return { url, routingKeys: [...admin.pagerduty.routingKeys] };
    },
    get slack() {
      return { apiUrl: `${url}/slack/api/`, botToken: admin.slack.botToken, signingSecret: admin.slack.signingSecret };
    },
    admin,
    close() {
      closing ??= (async () => {
        await admin.webhooks.close();
        await app.close();
      })();
      return closing;
    },
  };
}

export { SandboxAdmin, SandboxNotFoundError, type AppState, type InstanceOverview, type SeedReport } from './admin';
export { encodePublishableKey, SESSION_TOKEN_TTL_SECONDS, type ClockSetting, type DomainJson } from './instance';
export type { ConfigChange, ConfigConflict, InstanceConfigOverview, SessionConfigJson, SessionSettings } from './instance-config';
export type { AuditEntry, AuditSummary, RevokeRecord } from './audit';
export { RATE_LIMITS, type OutageState } from './faults';
export type { SecretKeyInfo } from './keys';
export {
  CLERK_ROUTES,
  ROUTE_KEYS,
  SandboxInputError,
  type FaultConfig,
  type FaultRule,
  type RateLimitSetting,
  type RejectSessions,
  type RouteKey,
  type SandboxOptions,
  type SessionSettingsBody,
} from './schemas';
export { SESSION_STATUSES, type SessionStatus } from './columns';
export { ClerkStore, type StoreStats } from './store';
export { signSvix, type WebhookEventRecord, type WebhookEventType } from './webhooks';
export { SANDBOX_EDGE_CONFIG_ID, SANDBOX_PROJECT, VercelSandbox, type AliasRequest, type VercelDeploymentBody, type VercelLogEntry, type VercelOverview } from './vercel';
export {
  PAGERDUTY_LIMITS,
  PagerDutySandbox,
  newRoutingKey,
  type ChangeEventRecord,
  type PagerDutyLogEntry,
  type PagerDutyOverview,
  type PagerDutySettings,
  type SandboxAlert,
} from './pagerduty';
export {
  SLACK_BOT,
  SLACK_DEFAULT_CHANNELS,
  SLACK_DEFAULT_USERS,
  SLACK_LIMITS,
  SlackSandbox,
  signSlack,
  type SlackClickBody,
  type SlackClickResult,
  type SlackCommandBody,
  type SlackCommandResult,
  type SlackDelivery,
  type SlackEphemeral,
  type SlackMessage,
  type SlackOverview,
  type SlackSettings,
  type SlackSubmitBody,
  type SlackSubmitResult,
  type SlackViewRecord,
} from './slack';
export { BLOCK_LIMITS } from './slack-blocks';
