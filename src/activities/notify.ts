/**
 * Notifications to the incident channel: a Slack-compatible incoming webhook (`{ text, blocks }`
 * POSTed as JSON), or one line on the worker's console when no webhook is configured. Approval
 * requests carry the exact commands and the UI path to decide; steps to do by hand, how to confirm.
 */
import type { GatedStep, ManualStep } from '../domain';
import { INCIDENT_COMMANDS } from '../shared';
import { chatInline, logLine, slackText } from '../render-safe';
import type { WebClient } from '@slack/web-api';
import { postToThread } from '../chat/slack-client';

export const NOTIFICATION_KINDS = [
  'incident_opened',
  'approval_requested',
  'escalation',
  'status_changed',
  'incident_notice',
  'incident_notice_withdrawn',
  'needs_attention',
  'action_needed',
  'review_written',
  'detection_cleared',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface Notification {
  kind: NotificationKind;
  incidentId: string;
  /** One line, e.g. "Approval needed: emergency_bypass". */
  title: string;
  /** The body: what happened, what is needed, by when. */
  text: string;
  /**
   * For approval requests and escalations: the step to decide; for `action_needed`: the step to
   * do by hand and confirm. The message then says how.
   */
  step?: GatedStep | ManualStep;
  /** Signed approvals: the step's decisions must be signed with the approver's SSH key; the message says how. */
  signed?: boolean;
  /** For a gate: when it was asked for, so a button of an earlier request of the same step is refused. */
  gateRequestedAt?: string;
  /** For a gate: what the approver needs to decide (triage, diagnostics, the rollback candidate), one line each. */
  evidence?: string[];
  /** The post-incident phase's request for findings: in Slack, buttons to write them and to finalize the review. */
  review?: boolean;
  /** The incident's Slack thread once there is one (Slack app mode): replies go there, its first message is updated. */
  thread?: ChatThread;
  /** The incident's current status, one line each: the thread's first message shows it (Slack app mode). */
  status?: string[];
}

/** An incident's thread in the Slack app's channel: the channel and its first message's `ts`. */
export interface ChatThread {
  channel: string;
  ts: string;
}

export interface NotifyContext {
  webhookUrl?: string;
  timeoutMs: number;
  namespace: string;
  /** Base URL of the Temporal UI, e.g. `http://localhost:8233`. */
  uiUrl?: string;
  /** Where a notification goes without a webhook: one line each, seen at the default log level. */
  console: (line: string) => void;
  /** The Slack app (SLACK_BOT_TOKEN, SLACK_CHANNEL): one thread per incident, instead of the webhook. */
  slack?: { client: WebClient; channel: string };
  /** This notification's key and whether an earlier attempt ran (the activity's run, id and attempt): a retry posts nothing twice. */
  once?: { key: string; retry: boolean };
}

export interface SlackMessage {
  text: string;
  blocks: Array<{ type: 'header'; text: { type: 'plain_text'; text: string } } | { type: 'section'; text: { type: 'mrkdwn'; text: string } }>;
}

export interface NotifyResult {
  /** `console`: no CHAT_WEBHOOK_URL and no Slack app, so only the worker's console saw it, not a channel. */
  delivered: 'webhook' | 'console' | 'slack';
  status?: number;
  /** Slack app mode: the incident's thread (new when the notification opened it). */
  thread?: ChatThread;
  /** Slack app mode: the posted message's `ts`. */
  ts?: string;
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

/** How to decide a step whose decisions must be signed: our CLI signs and sends; `sign` prints what to paste into the UI. */
function signedInstructions(incidentId: string, step: GatedStep): string[] {
  return [
    `Signed decision required (your SSH key in the approver registry): \`${INCIDENT_COMMANDS.decideSigned(incidentId, step)}\` (or \`reject ... --reason "<why>" --sign ...\`)`,
    `UI: \`${INCIDENT_COMMANDS.sign(incidentId, step)}\` prints the one JSON object to paste into Send an Update → approveStep`,
  ];
}

/** How to approve or reject `step` of `incidentId`, from each of the three doors (`signed`: with an SSH signature). */
export function decisionInstructions(incidentId: string, step: GatedStep, namespace: string, uiUrl?: string, signed = false): string[] {
  if (signed) return signedInstructions(incidentId, step);
  const approve = JSON.stringify({ step, approver: '<you>' });
  const reject = JSON.stringify({ step, approver: '<you>', reason: '<why>' });
  const ui = `${uiUrl ?? '<temporal-ui>'}/namespaces/${namespace}/workflows/${encodeURIComponent(incidentId)}`;
  return [
    `CLI: \`${INCIDENT_COMMANDS.approve(incidentId, step)}\` (or \`reject ... --reason "<why>"\`)`,
    `Temporal CLI: \`npm run temporal -- workflow update execute --workflow-id ${incidentId} --name approveStep --input '${approve}'\``,
    `UI: ${ui} → More Actions → Send an Update → approveStep (or rejectStep with ${reject}), input ${approve}`,
  ];
}

/** How to confirm that `step` of `incidentId` was done by hand, from each of the three doors. */
export function confirmInstructions(incidentId: string, step: string, namespace: string, uiUrl?: string): string[] {
  const confirm = JSON.stringify({ step, confirmedBy: '<you>', note: '<what you did>' });
  const ui = `${uiUrl ?? '<temporal-ui>'}/namespaces/${namespace}/workflows/${encodeURIComponent(incidentId)}`;
  return [
    `CLI: \`${INCIDENT_COMMANDS.confirm(incidentId, step)}\``,
    `Temporal CLI: \`npm run temporal -- workflow update execute --workflow-id ${incidentId} --name confirmStep --input '${confirm}'\``,
    `UI: ${ui} → More Actions → Send an Update → confirmStep, input ${confirm}`,
  ];
}

function instructions(n: Notification, ctx: Pick<NotifyContext, 'namespace' | 'uiUrl'>): string[] {
  if (!n.step) return [];
  if (n.kind === 'approval_requested' || n.kind === 'escalation') return decisionInstructions(n.incidentId, n.step as GatedStep, ctx.namespace, ctx.uiUrl, n.signed === true);
  if (n.kind === 'action_needed') return confirmInstructions(n.incidentId, n.step, ctx.namespace, ctx.uiUrl);
  return [];
}

/** Where to read a written review: our CLI, and the incident's page in the UI (its history). */
function reviewLinks(n: Notification, ctx: Pick<NotifyContext, 'namespace' | 'uiUrl'>): string[] {
  if (n.kind !== 'review_written') return [];
  const ui = `${ctx.uiUrl ?? '<temporal-ui>'}/namespaces/${ctx.namespace}/workflows/${encodeURIComponent(n.incidentId)}`;
  return [`CLI: \`${INCIDENT_COMMANDS.review(n.incidentId)} --out review.md\``, `UI: ${ui} (its event history is the timeline the review cites)`];
}

/** The message as lines, before any target's escaping: the title (one line), the body, the runbook's `•` lines. */
function messageLines(n: Notification, ctx: Pick<NotifyContext, 'namespace' | 'uiUrl'>): { title: string; lines: string[] } {
  return { title: chatInline(`[${n.incidentId}] ${n.title}`), lines: [n.text, ...[...instructions(n, ctx), ...reviewLinks(n, ctx)].map((l) => `• ${l}`)] };
}

/**
 * The Slack payload: mrkdwn with `&`, `<`, `>` escaped and mentions inert (so nothing in it links,
 * pings the channel or forges a runbook line: text from input arrives one line, see chatInline);
 * the header is plain_text, which Slack does not parse.
 */
export function formatMessage(n: Notification, ctx: Pick<NotifyContext, 'namespace' | 'uiUrl'>): SlackMessage {
  const { title, lines } = messageLines(n, ctx);
  const body = slackText(lines.join('\n'));
  return {
    text: `${slackText(title)}\n${body}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: body.slice(0, 3000) } },
    ],
  };
}

/** Post to the webhook, or print one console line when none is configured. Throws a `NotifyTimeoutError`, `NotifyNetworkError` or `NotifyHttpError` on failure. */
export async function notify(n: Notification, ctx: NotifyContext): Promise<NotifyResult> {
  if (ctx.slack) {
    const gate = (n.kind === 'approval_requested' || n.kind === 'escalation') && n.step ? { step: n.step as GatedStep, signed: n.signed === true, ...(n.gateRequestedAt ? { at: n.gateRequestedAt } : {}) } : undefined;
    // With buttons, the other doors are one context line each; a signed gate's commands are the way to decide.
    const posted = await postToThread(
      ctx.slack.client,
      ctx.slack.channel,
      { incidentId: n.incidentId, title: chatInline(n.title), lines: [n.text], instructions: [...instructions(n, ctx), ...reviewLinks(n, ctx)], ...(n.evidence?.length ? { evidence: n.evidence.map(chatInline) } : {}), ...(gate ? { gate } : {}), ...(n.review ? { review: true } : {}) },
      n.thread,
      (n.status ?? []).map(chatInline),
      ctx.console,
      ctx.once,
    );
    return { delivered: 'slack', thread: posted.thread, ts: posted.ts };
  }
  if (!ctx.webhookUrl) {
    // One log line: the message's lines joined, every control character in them shown escaped.
    const { title, lines } = messageLines(n, ctx);
    ctx.console(`[notification, no CHAT_WEBHOOK_URL] ${[title, ...lines.flatMap((l) => l.split('\n'))].map((l) => logLine(l.trim())).filter(Boolean).join(' | ')}`);
    return { delivered: 'console' };
  }
  const message = formatMessage(n, ctx);
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
