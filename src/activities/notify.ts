/**
 * Notifications to the incident channel: a Slack-compatible incoming webhook (`{ text, blocks }`
 * POSTed as JSON), or the worker's log when no webhook is configured. Approval requests carry
 * the exact commands and the UI path to decide.
 */
import type { GatedStep } from '../domain';

export const NOTIFICATION_KINDS = [
  'incident_opened',
  'approval_requested',
  'escalation',
  'status_changed',
  'incident_notice',
  'incident_notice_withdrawn',
  'needs_attention',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface Notification {
  kind: NotificationKind;
  incidentId: string;
  /** One line, e.g. "Approval needed: emergency_bypass". */
  title: string;
  /** The body: what happened, what is needed, by when. */
  text: string;
  /** For approval requests and escalations: the step to decide (the message then says how). */
  step?: GatedStep;
}

export interface NotifyContext {
  webhookUrl?: string;
  timeoutMs: number;
  namespace: string;
  /** Base URL of the Temporal UI, e.g. `http://localhost:8233`. */
  uiUrl?: string;
  log: (message: string) => void;
}

export interface SlackMessage {
  text: string;
  blocks: Array<{ type: 'header'; text: { type: 'plain_text'; text: string } } | { type: 'section'; text: { type: 'mrkdwn'; text: string } }>;
}

export interface NotifyResult {
  delivered: 'webhook' | 'log';
  status?: number;
}

// One class per failure, with a literal name: the name is what crosses the activity boundary.
export class NotifyTimeoutError extends Error {
  override readonly name = 'NotifyTimeoutError';
  constructor(readonly url: string, readonly timeoutMs: number) {
    super(`chat webhook did not answer within ${timeoutMs} ms`);
  }
}
export class NotifyNetworkError extends Error {
  override readonly name = 'NotifyNetworkError';
  constructor(readonly url: string, cause: unknown) {
    super(`chat webhook unreachable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
export class NotifyHttpError extends Error {
  override readonly name = 'NotifyHttpError';
  /** 429 and 5xx may pass on a retry; other 4xx mean the message or the URL is wrong. */
  readonly retryable: boolean;
  constructor(readonly url: string, readonly status: number, readonly body: string) {
    super(`chat webhook answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
    this.retryable = status === 429 || status >= 500;
  }
}
export type NotifyError = NotifyTimeoutError | NotifyNetworkError | NotifyHttpError;

/** How to approve or reject `step` of `incidentId`, from each of the three doors. */
export function decisionInstructions(incidentId: string, step: GatedStep, namespace: string, uiUrl?: string): string[] {
  const approve = JSON.stringify({ step, approver: '<you>' });
  const reject = JSON.stringify({ step, approver: '<you>', reason: '<why>' });
  const ui = `${uiUrl ?? '<temporal-ui>'}/namespaces/${namespace}/workflows/${encodeURIComponent(incidentId)}`;
  return [
    `CLI: \`npm run incident -- approve ${incidentId} --step ${step} --approver <you>\` (or \`reject ... --reason "<why>"\`)`,
    `Temporal CLI: \`temporal workflow update execute --workflow-id ${incidentId} --name approveStep --input '${approve}'\``,
    `UI: ${ui} → More Actions → Send an Update → approveStep (or rejectStep with ${reject}), input ${approve}`,
  ];
}

export function formatMessage(n: Notification, ctx: Pick<NotifyContext, 'namespace' | 'uiUrl'>): SlackMessage {
  const lines = [n.text];
  if (n.step && (n.kind === 'approval_requested' || n.kind === 'escalation')) {
    lines.push(...decisionInstructions(n.incidentId, n.step, ctx.namespace, ctx.uiUrl).map((l) => `• ${l}`));
  }
  const title = `[${n.incidentId}] ${n.title}`;
  return {
    text: `${title}\n${lines.join('\n')}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 3000) } },
    ],
  };
}

/** Post to the webhook, or log when none is configured. Throws a `NotifyError` on failure. */
export async function notify(n: Notification, ctx: NotifyContext): Promise<NotifyResult> {
  const message = formatMessage(n, ctx);
  if (!ctx.webhookUrl) {
    ctx.log(`notification (no CHAT_WEBHOOK_URL set): ${message.text}`);
    return { delivered: 'log' };
  }
  let response: Response;
  try {
    response = await fetch(ctx.webhookUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(ctx.timeoutMs),
    });
  } catch (err) {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) throw new NotifyTimeoutError(ctx.webhookUrl, ctx.timeoutMs);
    throw new NotifyNetworkError(ctx.webhookUrl, err instanceof Error && err.cause ? err.cause : err);
  }
  const body = await response.text().catch(() => '');
  if (!response.ok) throw new NotifyHttpError(ctx.webhookUrl, response.status, body);
  return { delivered: 'webhook', status: response.status };
}
