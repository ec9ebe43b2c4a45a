/**
 * The Slack app's messages (docs/slack.md), as Block Kit: an incident's thread opens with its
 * status (updated in place as it moves), every notification is a reply, and a gate's reply
 * carries Approve and Reject buttons (not for a step whose decisions must be signed: that reply
 * shows the command to sign). Pure: the notifier (activities) and the interactions endpoint build
 * the same blocks. All text goes through `slackText`, so nothing from input links, pings or
 * forges a line; plain_text fields are not parsed by Slack.
 */
import type { ViewsOpenArguments } from '@slack/web-api';
import { z } from 'zod';
import { gatedStepSchema, type GatedStep } from '../domain';
import { slackText, terminalLine } from '../render-safe';

export const APPROVE_ACTION = 'approve_step';
export const REJECT_ACTION = 'reject_step';
/** The reject modal: its callback id, and the reason input's block and action ids. */
export const REJECT_VIEW = 'reject_step';
export const REASON_BLOCK = 'reason';
export const REASON_INPUT = 'reason';
/** The post-incident phase's buttons, and the findings modal's callback id and inputs (block id = action id). */
export const REVIEW_FINDINGS_ACTION = 'review_findings';
export const REVIEW_FINALIZE_ACTION = 'review_finalize';
export const REVIEW_VIEW = 'review_findings';
export const FINDINGS_INPUTS = ['root_cause', 'trigger', 'detection', 'data_loss', 'went_well', 'went_wrong', 'got_lucky', 'action_items'] as const;
export type FindingsInput = (typeof FINDINGS_INPUTS)[number];
/** The block a gate's outcome line is written to (replaced, not stacked, on each decision). */
export const OUTCOME_BLOCK = 'gate_outcome';
const ACTIONS_BLOCK_PREFIX = 'gate:';

/** What a button carries: the incident and the step, nothing else (the approver is whoever clicked). */
export const gateValueSchema = z.strictObject({ incident: z.string().min(1).max(1000), step: gatedStepSchema, at: z.string().max(40).optional() });
export type GateValue = z.infer<typeof gateValueSchema>;

/** What a review button carries: the incident. */
export const reviewValueSchema = z.strictObject({ incident: z.string().min(1).max(1000) });
/** What the findings modal keeps for its submission: the incident and the message to update. */
export const reviewMetadataSchema = reviewValueSchema.extend({ channel: z.string().min(1).max(100), ts: z.string().min(1).max(100) });
export type ReviewMetadata = z.infer<typeof reviewMetadataSchema>;

/** What the reject modal keeps for its submission: the gate and the message to update. */
export const rejectMetadataSchema = gateValueSchema.extend({ channel: z.string().min(1).max(100), ts: z.string().min(1).max(100) });
export type RejectMetadata = z.infer<typeof rejectMetadataSchema>;

type Plain = { type: 'plain_text'; text: string; emoji?: boolean };
type Mrkdwn = { type: 'mrkdwn'; text: string };
type Text = Plain | Mrkdwn;
export type SlackBlock =
  | { type: 'header'; text: Plain }
  | { type: 'section'; block_id?: string; text: Text }
  | { type: 'context'; block_id?: string; elements: Text[] }
  | { type: 'actions'; block_id: string; elements: SlackButton[] }
  | { type: 'input'; block_id: string; label: Plain; optional?: boolean; hint?: Plain; element: { type: 'plain_text_input'; action_id: string; multiline?: boolean; min_length?: number; max_length?: number; placeholder?: Plain; initial_value?: string } };
export interface SlackButton {
  type: 'button';
  action_id: string;
  text: Plain;
  value: string;
  style?: 'primary' | 'danger';
}
export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

// Slack's limits: header 150, section text 3000, context element 2000, message fallback text 40 000.
const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);
const mrkdwn = (text: string, max = 3000): Mrkdwn => ({ type: 'mrkdwn', text: cut(text, max) });
const plain = (text: string, max: number): Plain => ({ type: 'plain_text', text: cut(text, max), emoji: false });

/** The thread's first message: the incident's status lines, as the workflow wrote them. */
export function statusMessage(incidentId: string, status: readonly string[], updatedAt: string): SlackMessage {
  const body = slackText(status.join('\n'));
  return {
    text: cut(slackText(`[${incidentId}] ${status[0] ?? 'incident'}`), 3000),
    blocks: [
      { type: 'header', text: plain(`Incident ${incidentId}`, 150) },
      { type: 'section', text: mrkdwn(body) },
      { type: 'context', elements: [mrkdwn(slackText(`Status as of ${updatedAt}; every notification of this incident is in the thread below.`), 2000)] },
    ],
  };
}

/** One notification in the thread, as the notifier hands it over: its lines already written. */
export interface ThreadPost {
  incidentId: string;
  title: string;
  /** The body's lines. */
  lines: string[];
  /** How to do it without Slack (our CLI, the Temporal CLI, the UI), or how to sign. */
  instructions: string[];
  evidence?: string[];
  /** A gate to decide: buttons, unless its decisions must be signed. */
  gate?: { step: GatedStep; signed: boolean; at?: string };
  /** The post-incident phase asks for findings: buttons to write them and to finalize. */
  review?: boolean;
}

export function threadMessage(p: ThreadPost): SlackMessage {
  const body = slackText([p.title, ...p.lines].join('\n'));
  const blocks: SlackBlock[] = [{ type: 'section', text: mrkdwn(body) }];
  if (p.evidence?.length) blocks.push({ type: 'section', text: mrkdwn(slackText(['What the runbook saw:', ...p.evidence.map((e) => `• ${e}`)].join('\n'))) });
  if (p.gate && !p.gate.signed) blocks.push(gateButtons(p.incidentId, p.gate.step, p.gate.at));
  if (p.review) blocks.push(reviewButtons(p.incidentId));
  if (p.gate?.signed) blocks.push({ type: 'section', text: mrkdwn(slackText(`${p.gate.step} must be decided with a signature: no button here. Sign and send it from a terminal:`)) });
  if (p.instructions.length) blocks.push({ type: 'context', elements: [mrkdwn(slackText(p.instructions.map((l) => `• ${l}`).join('\n')), 2000)] });
  return { text: cut(slackText(`[${p.incidentId}] ${[p.title, ...p.lines].join('\n')}`), 40_000), blocks };
}

/** `at`: when the gate was asked for; a click is refused once the step was asked for again since. */
export function gateButtons(incident: string, step: GatedStep, at?: string): SlackBlock {
  const value = JSON.stringify({ incident, step, ...(at ? { at } : {}) } satisfies GateValue);
  return {
    type: 'actions',
    block_id: `${ACTIONS_BLOCK_PREFIX}${step}`,
    elements: [
      { type: 'button', action_id: APPROVE_ACTION, text: plain('Approve', 75), style: 'primary', value },
      { type: 'button', action_id: REJECT_ACTION, text: plain('Reject…', 75), style: 'danger', value },
    ],
  };
}

export function reviewButtons(incident: string): SlackBlock {
  const value = JSON.stringify({ incident });
  return {
    type: 'actions',
    block_id: 'review',
    elements: [
      { type: 'button', action_id: REVIEW_FINDINGS_ACTION, text: plain('Write the findings…', 75), style: 'primary', value },
      { type: 'button', action_id: REVIEW_FINALIZE_ACTION, text: plain('Finalize the review', 75), value },
    ],
  };
}

/** One action item per line in the findings modal: `title | owner | YYYY-MM-DD` (the title may hold "|": the last two fields are split off). */
export function actionItemLine(item: { title: string; owner: string; due: string }): string {
  return `${item.title.replace(/\s+/g, ' ')} | ${item.owner} | ${item.due}`;
}

/** The findings modal: root cause (required), the rest optional; lessons one per line; action items one per line, prefilled with the ones proposed. */
export function findingsModal(meta: ReviewMetadata, proposed: readonly string[]): SlackModal {
  const input = (id: FindingsInput, label: string, o: { optional?: boolean; multiline?: boolean; hint?: string; initial?: string; max?: number } = {}): SlackBlock => ({
    type: 'input',
    block_id: id,
    label: plain(label, 2000),
    ...(o.optional === false ? {} : { optional: true }),
    ...(o.hint ? { hint: plain(o.hint, 2000) } : {}),
    element: { type: 'plain_text_input', action_id: id, ...(o.multiline ? { multiline: true } : {}), max_length: o.max ?? 3000, ...(o.initial ? { initial_value: cut(o.initial, 3000) } : {}) },
  });
  return {
    type: 'modal',
    callback_id: REVIEW_VIEW,
    private_metadata: JSON.stringify(meta),
    title: plain('Post-incident review', 24),
    submit: plain('Send findings', 24),
    close: plain('Cancel', 24),
    blocks: [
      input('root_cause', 'Root cause', { optional: false, multiline: true }),
      input('trigger', 'Trigger (what set it off)', { multiline: true }),
      input('detection', 'Detection', { hint: 'monitoring_alert, user_report or manual', max: 20 }),
      input('data_loss', 'Data loss', { hint: 'none, or partial: what was lost', max: 2000 }),
      input('went_well', 'Went well (one per line)', { multiline: true }),
      input('went_wrong', 'Went wrong (one per line)', { multiline: true }),
      input('got_lucky', 'Got lucky (one per line)', { multiline: true }),
      input('action_items', 'Action items, one per line: title | owner | YYYY-MM-DD', { multiline: true, ...(proposed.length ? { initial: proposed.join('\n') } : {}) }),
    ] satisfies SlackBlock[],
  };
}

/**
 * The gate's message after a decision: the same blocks with one outcome line (replacing an earlier
 * one), and without the buttons once the gate needs nothing more (`keepButtons` false).
 */
export function withOutcome(blocks: readonly SlackBlock[], line: string, keepButtons: boolean): SlackBlock[] {
  const kept = blocks.filter((b) => !('block_id' in b && b.block_id === OUTCOME_BLOCK) && (keepButtons || b.type !== 'actions'));
  // One line whatever it quotes (a reason with a newline cannot add an "Approved:" line of its own).
  return [...kept, { type: 'context', block_id: OUTCOME_BLOCK, elements: [mrkdwn(slackText(terminalLine(line, 1900)), 2000)] }];
}

/** The modal a Reject click opens: the reason is required, as `rejectStep` requires it. */
/** A modal as `views.open` takes it. */
export type SlackModal = ViewsOpenArguments['view'];

export function rejectModal(meta: RejectMetadata): SlackModal {
  return {
    type: 'modal',
    callback_id: REJECT_VIEW,
    private_metadata: JSON.stringify(meta),
    title: plain('Reject step', 24),
    submit: plain('Reject', 24),
    close: plain('Cancel', 24),
    blocks: [
      { type: 'section', text: mrkdwn(slackText(`Reject ${meta.step} of ${meta.incident}? The runbook does not do it; the playbook goes on without it.`)) },
      { type: 'input', block_id: REASON_BLOCK, label: plain('Why (goes into the timeline and the review)', 2000), element: { type: 'plain_text_input', action_id: REASON_INPUT, multiline: true, min_length: 1, max_length: 2000 } },
    ] satisfies SlackBlock[],
  };
}
