/**
 * The Slack app's request URLs (docs/slack.md): `POST /slack/interactions` (button clicks and the
 * reject modal) and `POST /slack/commands` (`/incident`). Every request's Slack signature is
 * verified on the raw body before anything is parsed; the Slack user is mapped to a roster person
 * by `chatUserId` (an unknown user is told so, ephemerally, and nothing is sent); a click becomes
 * the same `approveStep`/`rejectStep` update a person sends, under an update id derived from the
 * click, so Slack's retry of the same request is applied once. Slack waits 3 s for an answer: a
 * click is acknowledged at once and its outcome written into the message afterwards.
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { WebClient } from '@slack/web-api';
import { z } from 'zod';
import { CATEGORIES, INCIDENT_CATEGORIES, incidentInputSchema, type IncidentCategory, type IncidentInput } from '../domain';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT, IncidentCategoryKey, IncidentStatusKey } from '../shared';
import { slackText, terminalLine } from '../render-safe';
import type { Roster, RosterPerson } from '../roster/schema';
import { SLACK_HANDLE_PREFIX } from '../roster/resolve';
import { sendUpdate } from '../temporal/updates';
import { approveStep, completeReview, finalizeReview, getIncidentState, getReview, incidentWorkflow, rejectStep } from '../workflows/incident';
import type { CompleteReviewRequest, Decision, IncidentState } from '../workflows/incident-types';
import { verifySlackRequest, SlackSignatureError } from './slack-signature';
import {
  actionItemLine,
  APPROVE_ACTION,
  findingsModal,
  gateValueSchema,
  REVIEW_FINALIZE_ACTION,
  REVIEW_FINDINGS_ACTION,
  REVIEW_VIEW,
  reviewMetadataSchema,
  reviewValueSchema,
  type FindingsInput,
  type ReviewMetadata,
  REASON_BLOCK,
  REASON_INPUT,
  REJECT_ACTION,
  REJECT_VIEW,
  rejectMetadataSchema,
  rejectModal,
  withOutcome,
  type GateValue,
  type RejectMetadata,
  type SlackBlock,
} from './slack-messages';

export interface SlackAppOptions {
  signingSecret: string;
  /** The bot's Web API client: views.open for the reject modal, chat.update and chat.postEphemeral for outcomes. */
  slack: WebClient;
  temporal: Client;
  taskQueue: string;
  /** The worker's roster as it is now (ROSTER_FILE): who a Slack user is. */
  roster: () => Roster | undefined;
  /** Who is asked to approve an incident `/incident start` opens (default: the watch's approvers). */
  approvers: readonly string[];
  /** Origins a `response_url` may have (Slack's: https://hooks.slack.com; the sandbox's own): the app POSTs there, so nothing else is followed. */
  responseOrigins: readonly string[];
  log?: (entry: { event: string } & Record<string, unknown>) => void;
  now?: () => number;
  /** How long a modal submission or a command waits for its answer before acknowledging anyway (Slack allows 3 s). */
  answerWithinMs?: number;
}

export const jsonLineLog: NonNullable<SlackAppOptions['log']> = (entry) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);

// -- Slack's payloads: only the fields we read, the rest passed through --------------------------

const id = z.string().min(1).max(200);
const user = z.looseObject({ id });

/** Slack's payloads, with the origins a `response_url` may have (the app POSTs there: nothing else is followed). */
function payloadSchemas(origins: readonly string[]) {
  const responseUrl = z
    .url()
    .max(2000)
    .refine((u) => URL.canParse(u) && origins.includes(new URL(u).origin), { message: `must be a response URL of Slack (${origins.join(' or ')})` });
  const blockActions = z.looseObject({
    type: z.literal('block_actions'),
    user,
    team: z.looseObject({ id }).nullish(),
    trigger_id: id,
    response_url: responseUrl,
    container: z.looseObject({ message_ts: id.optional(), channel_id: id.optional() }),
    channel: z.looseObject({ id }).nullish(),
    message: z.looseObject({ ts: id, thread_ts: id.optional(), blocks: z.array(z.looseObject({ type: z.string() })).max(50).optional() }).optional(),
    actions: z.array(z.looseObject({ action_id: id, value: z.string().max(2000).optional(), action_ts: id })).min(1).max(5),
  });
  const viewSubmission = z.looseObject({
    type: z.literal('view_submission'),
    user,
    team: z.looseObject({ id }).nullish(),
    view: z.looseObject({
      id,
      callback_id: z.string().max(255),
      private_metadata: z.string().max(3000),
      state: z.looseObject({ values: z.record(z.string(), z.record(z.string(), z.looseObject({ value: z.string().nullish() }))) }),
    }),
  });
  return {
    blockActions,
    viewSubmission,
    interaction: z.discriminatedUnion('type', [blockActions, viewSubmission]),
    command: z.object({
      command: z.string().max(100),
      text: z.string().max(4000).default(''),
      user_id: id,
      channel_id: id.optional(),
      response_url: responseUrl.optional(),
    }),
  };
}
type Schemas = ReturnType<typeof payloadSchemas>;
type BlockActions = z.infer<Schemas['blockActions']>;
type ViewSubmission = z.infer<Schemas['viewSubmission']>;

/** Where Slack's response URLs live. */
export const SLACK_RESPONSE_ORIGIN = 'https://hooks.slack.com';

// -- what people are told -------------------------------------------------------------------------

/** One line for Slack from text that may come from anywhere (a refusal quoting input): controls shown, Slack syntax escaped. */
const line = (text: string, max = 500) => slackText(terminalLine(text, max));

const refusalOf = (err: unknown): string => {
  if (err instanceof WorkflowUpdateFailedError) return `refused: ${err.cause?.message ?? err.message}`;
  if (err instanceof WorkflowNotFoundError) return 'that incident is not running any more';
  return `could not reach the incident: ${err instanceof Error ? err.message : String(err)}`;
};

const outcomeLine = (d: Decision, slackUser: string, at: string): string => {
  const mark = d.decision === 'approved' ? 'Approved' : d.decision === 'rejected' ? 'Rejected' : 'Approval recorded';
  return `${mark}: ${d.message} (clicked in Slack by ${slackUser} at ${at})`;
};

// -- the findings modal's inputs → completeReview -------------------------------------------------

type ViewValues = Record<string, Record<string, { value?: string | null }>>;
const DETECTIONS = ['monitoring_alert', 'user_report', 'manual'] as const;

/** The modal's inputs as a `completeReview` request, or which inputs are wrong (the workflow validates the rest). */
export function findingsFrom(values: ViewValues, completedBy: string): { request: CompleteReviewRequest } | { errors: Partial<Record<FindingsInput, string>> } {
  const v = (id: FindingsInput) => (values[id]?.[id]?.value ?? '').trim();
  const lines = (id: FindingsInput) => v(id).split('\n').map((l) => l.trim()).filter(Boolean);
  const errors: Partial<Record<FindingsInput, string>> = {};
  const rootCause = v('root_cause');
  if (!rootCause) errors.root_cause = 'the root cause is required';
  const detection = v('detection');
  if (detection && !(DETECTIONS as readonly string[]).includes(detection)) errors.detection = `must be one of ${DETECTIONS.join(', ')}`;
  const loss = v('data_loss');
  const partial = /^partial\s*:\s*(.+)$/su.exec(loss);
  if (loss && loss !== 'none' && !partial) errors.data_loss = 'write "none", or "partial: what was lost"';
  const items: NonNullable<CompleteReviewRequest['actionItems']> = [];
  lines('action_items').forEach((l, i) => {
    const parts = l.split('|').map((x) => x.trim());
    if (parts.length < 3 || !parts.slice(0, -2).join('|').trim()) {
      errors.action_items ??= `line ${i + 1}: write title | owner | YYYY-MM-DD`;
      return;
    }
    items.push({ title: parts.slice(0, -2).join(' | ').trim(), owner: parts.at(-2)!, due: parts.at(-1)! });
  });
  if (Object.keys(errors).length) return { errors };
  const lessons = { wentWell: lines('went_well'), wentWrong: lines('went_wrong'), gotLucky: lines('got_lucky') };
  return {
    request: {
      completedBy,
      rootCause,
      ...(v('trigger') ? { trigger: v('trigger') } : {}),
      ...(detection ? { detection: detection as (typeof DETECTIONS)[number] } : {}),
      ...(loss === 'none' ? { dataLoss: 'none' as const } : partial ? { dataLoss: 'partial' as const, dataLossDetails: partial[1]!.trim() } : {}),
      ...(lessons.wentWell.length || lessons.wentWrong.length || lessons.gotLucky.length
        ? { lessons: Object.fromEntries(Object.entries(lessons).filter(([, l]) => l.length)) }
        : {}),
      ...(items.length ? { actionItems: items } : {}),
    },
  };
}

/** The modal input a workflow refusal (`update.<field>…: why`) is about, so Slack shows it under that input. */
function inputOfRefusal(refusal: string): FindingsInput {
  const field = /update\.([A-Za-z]+)(?:\.([A-Za-z]+))?/.exec(refusal);
  const map: Record<string, FindingsInput> = { rootCause: 'root_cause', trigger: 'trigger', detection: 'detection', dataLoss: 'data_loss', dataLossDetails: 'data_loss', actionItems: 'action_items', wentWell: 'went_well', wentWrong: 'went_wrong', gotLucky: 'got_lucky' };
  return (field && (map[field[2] ?? ''] ?? map[field[1] ?? ''])) || 'root_cause';
}

// -- the server -----------------------------------------------------------------------------------

/** Answers Slack's request URLs. `seen` remembers request bodies for 10 minutes: Slack's retry of one is acknowledged and not acted on twice. */
export function createSlackApp(opts: SlackAppOptions): FastifyInstance {
  const log = opts.log ?? jsonLineLog;
  const now = opts.now ?? Date.now;
  const answerWithin = opts.answerWithinMs ?? 2_000;
  const schemas = payloadSchemas(opts.responseOrigins);
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
  const seen = new Map<string, number>();
  /** Gate messages as the clicker saw them, so the reject modal's outcome can rewrite the same blocks. */
  const shown = new Map<string, { blocks: SlackBlock[]; at: number }>();
  const pending = new Set<Promise<unknown>>();
  /** Kept 30 minutes (a form left open longer gets the short outcome message). */
  const remember = (channel: string, ts: string, blocks: SlackBlock[]) => {
    for (const [k, v] of shown) if (v.at < now() - 30 * 60_000) shown.delete(k);
    shown.set(`${channel}:${ts}`, { blocks, at: now() });
  };

  // The raw body is what Slack signed: parse it only after the signature is checked. Slack sends forms only.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: 'body: larger than 1 MiB' });
    if (status === 415) return reply.code(415).send({ error: 'body: Slack sends application/x-www-form-urlencoded' });
    log({ event: 'slack_app_error', error: terminalLine(error.message, 300) });
    return reply.code(status >= 500 ? 500 : status).send({ error: terminalLine(error.message, 300) });
  });
  app.get('/healthz', async () => ({ ok: true }));

  /** Verified and not seen before: the request's form fields; otherwise the reply is sent and null returned. */
  function admit(request: FastifyRequest, reply: FastifyReply): URLSearchParams | null {
    const raw = typeof request.body === 'string' ? request.body : '';
    try {
      verifySlackRequest(opts.signingSecret, { timestamp: request.headers['x-slack-request-timestamp'], signature: request.headers['x-slack-signature'] }, raw, now());
    } catch (err) {
      if (!(err instanceof SlackSignatureError)) throw err;
      log({ event: 'slack_request_refused', url: request.url, reason: err.message });
      void reply.code(401).send({ error: err.message });
      return null;
    }
    const key = createHash('sha256').update(raw).digest('hex');
    for (const [k, until] of seen) if (until < now()) seen.delete(k);
    if (seen.has(key)) {
      log({ event: 'slack_retry_ignored', url: request.url, retryNum: request.headers['x-slack-retry-num'] ?? null });
      void reply.code(200).send();
      return null;
    }
    seen.set(key, now() + 10 * 60_000);
    return new URLSearchParams(raw);
  }

  /** Work after the acknowledgement, kept so `close()` waits for it. */
  function later(work: () => Promise<unknown>): void {
    const p = work().catch((err: unknown) => log({ event: 'slack_followup_failed', error: terminalLine(err instanceof Error ? err.message : String(err), 300) }));
    pending.add(p);
    void p.finally(() => pending.delete(p));
  }

  async function respond(url: string, body: Record<string, unknown>): Promise<void> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`response_url answered HTTP ${res.status}`);
  }
  const ephemeral = (url: string, text: string) => respond(url, { response_type: 'ephemeral', replace_original: false, text });

  /** The roster person a Slack user is, by `chatUserId` only (never by a name a user could choose). */
  function personOf(slackUser: string): { person: RosterPerson } | { refusal: string } {
    const roster = opts.roster();
    if (!roster) return { refusal: 'this runbook has no on-call roster (ROSTER_FILE), so a Slack user is nobody to it: decide with the CLI or the Temporal UI' };
    const person = roster.people.find((p) => p.chatUserId === slackUser);
    if (!person) return { refusal: `Slack user ${slackUser} is not in the on-call roster (no person has chatUserId ${slackUser}): nothing was sent. Ask the roster's owner to add you.` };
    return { person };
  }

  const updateId = (...parts: string[]) => `slack-${createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 32)}`;
  /** A click's update, sent again under its id while the call ends without an answer (a worker or server restarting): applied once. */
  const send = <T>(call: (id: string) => Promise<T>, id: string) =>
    sendUpdate(call, id, { attempts: Infinity, deadline: now() + 60_000, delayMs: (a) => Math.min(5_000, 250 * 2 ** a), onResend: (err) => log({ event: 'slack_update_resent', updateId: id, error: terminalLine(err instanceof Error ? err.message : String(err), 300) }) });

  app.post('/slack/interactions', async (request, reply) => {
    const form = admit(request, reply);
    if (!form) return reply;
    let raw: unknown;
    try {
      raw = JSON.parse(form.get('payload') ?? '');
    } catch {
      return reply.code(400).send({ error: 'payload: not JSON' });
    }
    if (typeof raw === 'object' && raw !== null && 'type' in raw && raw.type !== 'block_actions' && raw.type !== 'view_submission') {
      return reply.code(200).send(); // view_closed, shortcuts: nothing to do
    }
    const parsed = schemas.interaction.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply.code(400).send({ error: `payload.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}` });
    }
    const p = parsed.data;
    if (p.type === 'block_actions') return onClick(p, reply);
    return onSubmit(p, reply);
  });

  async function onClick(p: BlockActions, reply: FastifyReply): Promise<FastifyReply> {
    const action = p.actions[0]!;
    if (action.action_id === REVIEW_FINDINGS_ACTION || action.action_id === REVIEW_FINALIZE_ACTION) return onReviewClick(p, action.action_id, reply);
    if (action.action_id !== APPROVE_ACTION && action.action_id !== REJECT_ACTION) return reply.code(200).send();
    let gate: GateValue;
    try {
      gate = gateValueSchema.parse(JSON.parse(action.value ?? ''));
    } catch {
      return reply.code(400).send({ error: 'payload.actions.0.value: not a gate of this runbook' });
    }
    const who = personOf(p.user.id);
    const channel = p.container.channel_id ?? p.channel?.id;
    const ts = p.container.message_ts ?? p.message?.ts;
    if ('refusal' in who) {
      log({ event: 'slack_click_refused', user: p.user.id, incident: gate.incident, step: gate.step, reason: 'not in the roster' });
      later(() => ephemeral(p.response_url, line(who.refusal)));
      return reply.code(200).send();
    }
    const blocks = (p.message?.blocks ?? []) as SlackBlock[];
    if (action.action_id === REJECT_ACTION) {
      if (!channel || !ts) return reply.code(400).send({ error: 'payload.container: names no message' });
      remember(channel, ts, blocks);
      const meta: RejectMetadata = { ...gate, channel, ts };
      // The trigger id is good for 3 s: open the modal before answering (the stale-button check waits for the submission).
      try {
        await opts.slack.views.open({ trigger_id: p.trigger_id, view: rejectModal(meta) });
      } catch (err) {
        log({ event: 'slack_modal_failed', incident: gate.incident, step: gate.step, error: terminalLine(err instanceof Error ? err.message : String(err), 300) });
        later(() => ephemeral(p.response_url, line(`the reject form could not be opened (${err instanceof Error ? err.message : String(err)}): reject with the CLI`)));
      }
      return reply.code(200).send();
    }
    const at = new Date(now()).toISOString();
    later(async () => {
      const stale = await staleButton(gate);
      if (stale) {
        await ephemeral(p.response_url, line(`${gate.step} of ${gate.incident}: ${stale}`));
        return;
      }
      let decision: Decision;
      try {
        const handle = opts.temporal.workflow.getHandle<typeof incidentWorkflow>(gate.incident);
        decision = await send((id) => handle.executeUpdate(approveStep, { args: [{ step: gate.step, approver: `${SLACK_HANDLE_PREFIX}${p.user.id}` }], updateId: id }), updateId('approve', p.team?.id ?? '', p.user.id, action.action_ts, ts ?? ''));
      } catch (err) {
        log({ event: 'slack_click_refused', incident: gate.incident, step: gate.step, user: p.user.id, reason: terminalLine(refusalOf(err), 300) });
        await ephemeral(p.response_url, line(`${gate.step} of ${gate.incident}: ${refusalOf(err)}`));
        return;
      }
      log({ event: 'slack_decision', incident: gate.incident, step: gate.step, user: p.user.id, approvedBy: decision.approvedBy, decision: decision.decision });
      const text = outcomeLine(decision, p.user.id, at);
      // The decision stands whatever happens to the message: a failed rewrite says so, never "could not reach".
      await respond(p.response_url, { replace_original: true, text: line(text), blocks: withOutcome(blocks, text, decision.decision === 'pending') }).catch((err: unknown) =>
        ephemeral(p.response_url, line(`${text}; the message could not be updated (${err instanceof Error ? err.message : String(err)})`)),
      );
    });
    return reply.code(200).send();
  }

  /**
   * A button of an earlier request of the same step (the step asked for again since): refused, so
   * an old message never decides a new request. Undefined when it is the current gate's, or the
   * incident cannot be asked (the update then says what is wrong).
   */
  async function staleButton(gate: GateValue): Promise<string | undefined> {
    if (!gate.at) return undefined;
    const state = await Promise.race([
      opts.temporal.workflow.getHandle(gate.incident).query(getIncidentState).catch(() => undefined),
      new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_000)),
    ]);
    const open = state?.gates.find((g) => g.step === gate.step && !g.outcome);
    if (open && open.requestedAt !== gate.at) return `refused: this button belongs to the request of ${gate.at}; ${gate.step} was asked for again at ${open.requestedAt}: use the newest message`;
    return undefined;
  }

  // -- the post-incident phase: findings in a modal, and the review finalized ----------------------

  async function onReviewClick(p: BlockActions, actionId: string, reply: FastifyReply): Promise<FastifyReply> {
    const action = p.actions[0]!;
    let incident: string;
    try {
      incident = reviewValueSchema.parse(JSON.parse(action.value ?? '')).incident;
    } catch {
      return reply.code(400).send({ error: 'payload.actions.0.value: not an incident of this runbook' });
    }
    const who = personOf(p.user.id);
    if ('refusal' in who) {
      later(() => ephemeral(p.response_url, line(who.refusal)));
      return reply.code(200).send();
    }
    const channel = p.container.channel_id ?? p.channel?.id;
    const ts = p.container.message_ts ?? p.message?.ts;
    const blocks = (p.message?.blocks ?? []) as SlackBlock[];
    const handle = opts.temporal.workflow.getHandle<typeof incidentWorkflow>(incident);
    if (actionId === REVIEW_FINDINGS_ACTION) {
      if (!channel || !ts) return reply.code(400).send({ error: 'payload.container: names no message' });
      remember(channel, ts, blocks);
      // The proposed action items, owned by the clicker and due in two weeks, as a start (the trigger id lasts 3 s: a slow query is skipped).
      const review = await Promise.race([handle.query(getReview).catch(() => null), new Promise<null>((r) => setTimeout(() => r(null), 1_000))]);
      const due = new Date(now() + 14 * 86_400_000).toISOString().slice(0, 10);
      const proposed = (review?.review.actionItems ?? []).map((a) => actionItemLine({ title: terminalLine(a.text, 300), owner: who.person.id, due }));
      try {
        await opts.slack.views.open({ trigger_id: p.trigger_id, view: findingsModal({ incident, channel, ts }, proposed) });
      } catch (err) {
        later(() => ephemeral(p.response_url, line(`the findings form could not be opened (${err instanceof Error ? err.message : String(err)}): use npm run incident -- complete-review`)));
      }
      return reply.code(200).send();
    }
    const at = new Date(now()).toISOString();
    later(async () => {
      try {
        const answer = await send((id) => handle.executeUpdate(finalizeReview, { args: [{ finalizedBy: `${SLACK_HANDLE_PREFIX}${p.user.id}` }], updateId: id }), updateId('finalize', p.team?.id ?? '', p.user.id, action.action_ts, ts ?? ''));
        const text = `Review final: ${answer.message} (clicked in Slack by ${p.user.id} at ${at})`;
        await respond(p.response_url, { replace_original: true, text: line(text), blocks: withOutcome(blocks, text, false) });
      } catch (err) {
        await ephemeral(p.response_url, line(`the review of ${incident}: ${refusalOf(err)}`));
      }
    });
    return reply.code(200).send();
  }

  async function onFindings(p: ViewSubmission, reply: FastifyReply): Promise<FastifyReply> {
    let meta: ReviewMetadata;
    try {
      meta = reviewMetadataSchema.parse(JSON.parse(p.view.private_metadata));
    } catch {
      return reply.code(400).send({ error: 'payload.view.private_metadata: not an incident of this runbook' });
    }
    const errors = (e: Partial<Record<FindingsInput, string>>) => reply.code(200).send({ response_action: 'errors', errors: Object.fromEntries(Object.entries(e).map(([k, v]) => [k, terminalLine(v ?? '', 300)])) });
    const who = personOf(p.user.id);
    if ('refusal' in who) return errors({ root_cause: who.refusal });
    const found = findingsFrom(p.view.state.values, `${SLACK_HANDLE_PREFIX}${p.user.id}`);
    if ('errors' in found) return errors(found.errors);
    const at = new Date(now()).toISOString();
    const findingsHandle = opts.temporal.workflow.getHandle<typeof incidentWorkflow>(meta.incident);
    const sent = send((id) => findingsHandle.executeUpdate(completeReview, { args: [found.request], updateId: id }), updateId('findings', p.team?.id ?? '', p.view.id));
    return settleForm(sent, reply, {
      refused: (refusal) => errors({ [inputOfRefusal(refusal)]: refusal }),
      meta,
      user: p.user.id,
      what: `the review of ${meta.incident}`,
      outcome: (a) => ({ text: `Findings sent: ${a.message} (in Slack by ${p.user.id} at ${at}; ${found.request.actionItems?.length ?? 0} action item(s))`, keepButtons: true }),
    });
  }

  async function onSubmit(p: ViewSubmission, reply: FastifyReply): Promise<FastifyReply> {
    if (p.view.callback_id === REVIEW_VIEW) return onFindings(p, reply);
    if (p.view.callback_id !== REJECT_VIEW) return reply.code(200).send();
    let meta: RejectMetadata;
    try {
      meta = rejectMetadataSchema.parse(JSON.parse(p.view.private_metadata));
    } catch {
      return reply.code(400).send({ error: 'payload.view.private_metadata: not a gate of this runbook' });
    }
    const fieldError = (text: string) => reply.code(200).send({ response_action: 'errors', errors: { [REASON_BLOCK]: terminalLine(text, 300) } });
    const reason = (p.view.state.values[REASON_BLOCK]?.[REASON_INPUT]?.value ?? '').trim();
    if (!reason) return fieldError('a rejection needs a reason');
    const who = personOf(p.user.id);
    if ('refusal' in who) return fieldError(who.refusal);
    const at = new Date(now()).toISOString();
    const stale = await staleButton(meta);
    if (stale) return fieldError(stale);
    const rejectHandle = opts.temporal.workflow.getHandle<typeof incidentWorkflow>(meta.incident);
    const sent = send((id) => rejectHandle.executeUpdate(rejectStep, { args: [{ step: meta.step, approver: `${SLACK_HANDLE_PREFIX}${p.user.id}`, reason }], updateId: id }), updateId('reject', p.team?.id ?? '', p.view.id));
    return settleForm(sent, reply, {
      refused: fieldError,
      meta,
      user: p.user.id,
      what: `${meta.step} of ${meta.incident}`,
      outcome: (d) => {
        log({ event: 'slack_decision', incident: meta.incident, step: meta.step, user: p.user.id, approvedBy: d.approvedBy, decision: d.decision });
        return { text: outcomeLine(d, p.user.id, at), keepButtons: false };
      },
    });
  }

  /**
   * A form's update: refused within `answerWithin`, the refusal is shown in the form, which stays
   * open; otherwise the form closes and, once the update answers, its message says the outcome
   * (or the clicker is told the refusal, ephemerally).
   */
  async function settleForm<T>(
    sent: Promise<T>,
    reply: FastifyReply,
    o: { refused: (refusal: string) => FastifyReply; meta: { channel: string; ts: string }; user: string; what: string; outcome: (answer: T) => { text: string; keepButtons: boolean } },
  ): Promise<FastifyReply> {
    const settled = sent.then(
      (answer) => ({ ok: true as const, answer }),
      (err: unknown) => ({ ok: false as const, refusal: refusalOf(err) }),
    );
    const first = await Promise.race([settled, new Promise<undefined>((r) => setTimeout(() => r(undefined), answerWithin))]);
    if (first && !first.ok) return o.refused(first.refusal);
    later(async () => {
      const s = await settled;
      if (!s.ok) {
        await opts.slack.chat.postEphemeral({ channel: o.meta.channel, user: o.user, text: line(`${o.what}: ${s.refusal}`) });
        return;
      }
      const { text, keepButtons } = o.outcome(s.answer);
      const blocks = shown.get(`${o.meta.channel}:${o.meta.ts}`)?.blocks ?? [{ type: 'section', text: { type: 'mrkdwn', text: line(o.what) } } as SlackBlock];
      await opts.slack.chat.update({ channel: o.meta.channel, ts: o.meta.ts, text: line(text), blocks: withOutcome(blocks, text, keepButtons) });
    });
    return reply.code(200).send();
  }

  // -- /incident ----------------------------------------------------------------------------------

  app.post('/slack/commands', async (request, reply) => {
    const form = admit(request, reply);
    if (!form) return reply;
    const parsed = schemas.command.safeParse(Object.fromEntries(form));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply.code(400).send({ error: `${issue?.path.join('.') ?? 'body'}: ${issue?.message ?? 'invalid'}` });
    }
    const c = parsed.data;
    const say = (text: string, inChannel = false) => reply.code(200).send({ response_type: inChannel ? 'in_channel' : 'ephemeral', text });
    if (c.command !== '/incident') return say(line(`${c.command}: this app answers /incident only`));
    const who = personOf(c.user_id);
    if ('refusal' in who) return say(line(who.refusal));
    const [verb = 'help', ...rest] = c.text.trim().split(/\s+/u);
    // The incident's id from the request itself: the same request again (a replay after a restart) starts nothing new.
    const requestKey = createHash('sha256').update(typeof request.body === 'string' ? request.body : '').digest('hex').slice(0, 24);
    const answer = verb === 'start' ? start(who.person, rest, requestKey) : verb === 'status' ? status(rest[0]) : Promise.resolve<{ text: string; inChannel?: boolean }>({ text: usage() });
    const first = await Promise.race([answer, new Promise<undefined>((r) => setTimeout(() => r(undefined), answerWithin))]);
    if (first) return say(first.text, first.inChannel);
    // Slow (Temporal busy): acknowledged now, the answer follows on the response_url.
    if (c.response_url) {
      const url = c.response_url;
      later(async () => ephemeral(url, (await answer).text));
    }
    return say(line(`/incident ${verb}: working on it…`));
  });

  function usage(): string {
    return line(`Usage: /incident start <category> <summary> (categories: ${INCIDENT_CATEGORIES.join(', ')}) · /incident status · /incident status <incident id>`, 1000);
  }

  async function start(person: RosterPerson, words: string[], requestKey: string): Promise<{ text: string; inChannel?: boolean }> {
    const [category, ...summaryWords] = words;
    if (!category || !(INCIDENT_CATEGORIES as readonly string[]).includes(category)) return { text: line(`category: must be one of ${INCIDENT_CATEGORIES.join(', ')} (got ${category ?? 'nothing'}). ${usage()}`, 1000) };
    const raw: IncidentInput = { category: category as IncidentCategory, reporter: person.id, summary: summaryWords.join(' '), approvers: [...opts.approvers] };
    const input = incidentInputSchema.safeParse(raw);
    if (!input.success) {
      const issue = input.error.issues[0];
      return { text: line(`${issue?.path.join('.') || 'input'}: ${issue?.message ?? 'invalid'}; nothing was started`) };
    }
    const workflowId = `incident-slack-${requestKey}`;
    try {
      await opts.temporal.workflow.start(incidentWorkflow, {
        taskQueue: opts.taskQueue,
        workflowId,
        args: [raw],
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT,
        staticSummary: `slack: ${terminalLine(input.data.summary, 200)}`,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return { text: line(`this request already started incident ${workflowId}; nothing new was started`) };
      return { text: line(`the incident could not be started: ${err instanceof Error ? err.message : String(err)}`) };
    }
    log({ event: 'slack_incident_started', incident: workflowId, category, person: person.id });
    return { text: line(`${person.name} started incident ${workflowId} (${category}, severity ${CATEGORIES[category as IncidentCategory].severity}, approvers ${opts.approvers.join(', ') || 'none'}); its thread opens in this app's channel.`), inChannel: true };
  }

  async function status(incident: string | undefined): Promise<{ text: string; inChannel?: boolean }> {
    if (incident) {
      try {
        const s: IncidentState = await opts.temporal.workflow.getHandle(incident).query(getIncidentState);
        const pending = s.pendingApprovals.map((g) => `${g.step} (${g.approvedBy.length}/${g.approvalsNeeded}, decide by ${g.decideBy})`);
        return { text: line(`${s.incidentId}: ${s.status} · ${s.category ?? 'unclassified'} · ${s.summary} · waiting for: ${s.waitingFor} · pending: ${pending.join('; ') || 'none'}`, 2000) };
      } catch (err) {
        return { text: line(`${incident}: ${err instanceof WorkflowNotFoundError ? 'no such incident' : err instanceof Error ? err.message : String(err)}`) };
      }
    }
    const open: string[] = [];
    for await (const w of opts.temporal.workflow.list({ query: `WorkflowType = 'incidentWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${opts.taskQueue}'`, pageSize: 20 })) {
      const sa = w.typedSearchAttributes;
      open.push(`${w.workflowId} (${sa.get(IncidentStatusKey) ?? '?'}, ${sa.get(IncidentCategoryKey) ?? 'unclassified'})`);
      if (open.length >= 20) break;
    }
    return { text: line(open.length ? `Open incidents: ${open.join('; ')}` : 'No open incidents.', 3000) };
  }

  // Follow-ups finish before the app closes, but a worker that is down cannot hold the shutdown up.
  app.addHook('onClose', async () => {
    await Promise.race([Promise.all([...pending]), new Promise((r) => setTimeout(r, 5_000).unref())]);
  });
  return app;
}
