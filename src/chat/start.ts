/**
 * The Slack app as `npm start` and the drills run it (docs/slack.md): configured by SLACK_BOT_TOKEN,
 * SLACK_SIGNING_SECRET and SLACK_CHANNEL (all three, or none), or in sandbox mode by the sandbox's
 * emulated Slack with a token and secret made here. `SLACK=off` keeps it off. Every configuration
 * problem is refused at start-up, naming the variable.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client, type ConnectionLike, type DataConverter } from '@temporalio/client';
import { z } from 'zod';
import { SandboxAdminClient } from '@clerk-incident-runbook/clerk-sandbox/admin-client';
import type { Roster } from '../roster/schema';
import { createSlackApp, SLACK_RESPONSE_ORIGIN } from './slack-app';
import { slackWebClient, type SlackAppSettings } from './slack-client';

export class SlackConfigError extends Error {
  override readonly name = 'SlackConfigError';
}

/** The sandbox's one channel (its emulated Slack's default). */
export const SANDBOX_SLACK_CHANNEL = 'C0SANDBOXINC';

const envSchema = z.object({
  SLACK: z.enum(['on', 'off', '']).default(''),
  SLACK_BOT_TOKEN: z.string().trim().regex(/^xoxb-[A-Za-z0-9-]{10,250}$/, 'must be a bot token (xoxb-…)').optional(),
  SLACK_SIGNING_SECRET: z.string().trim().regex(/^[A-Za-z0-9]{16,128}$/, "must be the app's signing secret (letters and digits, from Basic Information)").optional(),
  SLACK_CHANNEL: z.string().trim().regex(/^[CG][A-Z0-9]{2,30}$/, 'must be a channel id (C…), not its name').optional(),
  SLACK_API_URL: z.url().default('https://slack.com/api/'),
  SLACK_HOST: z.string().trim().min(1).default('127.0.0.1'),
  SLACK_PORT: z.coerce.number().int().min(0).max(65535).default(8791),
  /** Who an incident `/incident start` opens asks to approve, comma-separated (default: the watch's approvers). */
  SLACK_APPROVERS: z.string().optional().transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
});

export interface SlackConfig {
  settings: SlackAppSettings;
  signingSecret: string;
  host: string;
  port: number;
  approvers: string[];
  /** Made here for the sandbox's emulated Slack (no SLACK_BOT_TOKEN). */
  sandbox: boolean;
}

/** The Slack app's configuration, or undefined when it is off (no SLACK_* set outside sandbox mode, or SLACK=off). */
export function slackConfigFromEnv(source: NodeJS.ProcessEnv, sandboxUrl?: string): SlackConfig | undefined {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SlackConfigError(`${issue?.path.join('.') ?? 'SLACK'}: ${issue?.message ?? 'invalid'}`);
  }
  const e = parsed.data;
  if (e.SLACK === 'off') return undefined;
  const given = (['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_CHANNEL'] as const).filter((k) => e[k] !== undefined);
  const common = { host: e.SLACK_HOST, port: e.SLACK_PORT, approvers: e.SLACK_APPROVERS };
  if (given.length === 3) {
    return { settings: { botToken: e.SLACK_BOT_TOKEN!, channel: e.SLACK_CHANNEL!, apiUrl: e.SLACK_API_URL }, signingSecret: e.SLACK_SIGNING_SECRET!, sandbox: false, ...common };
  }
  if (given.length) {
    const missing = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_CHANNEL'].filter((k) => !given.includes(k as (typeof given)[number]));
    throw new SlackConfigError(`${missing.join(', ')}: the Slack app needs SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL together (${given.join(', ')} set)`);
  }
  if (!sandboxUrl && e.SLACK !== 'on') return undefined;
  if (!sandboxUrl) throw new SlackConfigError('SLACK=on: set SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_CHANNEL (outside sandbox mode there is no emulated Slack)');
  return {
    settings: { botToken: `xoxb-sandbox-${randomBytes(12).toString('hex')}`, channel: SANDBOX_SLACK_CHANNEL, apiUrl: `${sandboxUrl.replace(/\/$/, '')}/slack/api/` },
    signingSecret: randomBytes(16).toString('hex'),
    sandbox: true,
    ...common,
  };
}

export interface RunningSlackApp {
  url: string;
  close(): Promise<void>;
}

/**
 * Listens for Slack's requests; in sandbox mode, tells the sandbox's Slack where they go (its
 * interactivity and slash-command request URLs) and the token and secret made for it.
 */
export async function startSlackApp(
  config: SlackConfig,
  o: { connection: ConnectionLike; namespace: string; taskQueue: string; dataConverter?: DataConverter; roster: () => Roster | undefined; defaultApprovers: readonly string[]; sandboxUrl?: string; log?: (entry: { event: string } & Record<string, unknown>) => void },
): Promise<RunningSlackApp> {
  // The worker's data converter: with PAYLOAD_KEY its updates are encrypted and its queries' answers readable.
  const temporal = new Client({ connection: o.connection, namespace: o.namespace, identity: 'slack-app', ...(o.dataConverter ? { dataConverter: o.dataConverter } : {}) });
  const app = createSlackApp({
    signingSecret: config.signingSecret,
    slack: slackWebClient(config.settings),
    temporal,
    taskQueue: o.taskQueue,
    roster: o.roster,
    approvers: config.approvers.length ? config.approvers : o.defaultApprovers,
    // The emulated Slack's response URLs are the sandbox's own.
    responseOrigins: config.sandbox && o.sandboxUrl ? [new URL(o.sandboxUrl).origin] : [SLACK_RESPONSE_ORIGIN],
    ...(o.log ? { log: o.log } : {}),
  });
  await app.listen({ host: config.host, port: config.port });
  const { port } = app.server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}`;
  if (config.sandbox && o.sandboxUrl) {
    await new SandboxAdminClient(o.sandboxUrl).slackSettings({
      botToken: config.settings.botToken,
      signingSecret: config.signingSecret,
      interactivityUrl: `${url}/slack/interactions`,
      commandUrl: `${url}/slack/commands`,
    });
  }
  return { url, close: () => app.close() };
}
