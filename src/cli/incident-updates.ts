/**
 * The `npm run incident` commands that send an update to a running incident, as one table: each
 * entry names the command, its flags, how the flags become the update's request (validated with
 * the workflow's own schema, so a bad flag is refused and named before anything is sent) and the
 * update. Every one then runs the same way: find the incident, send the update, print its answer.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { UpdateDefinition } from '@temporalio/common';
import type { Command } from 'commander';
import { z } from 'zod';
import { collect, defined, existingWorkflow, parseOrThrow } from './common';
import { keySpecSchema, signDecision, type DecisionToSign } from './sign';
import { GATED_STEPS } from '../domain';
import { actionText } from '../roster/policy';
import { sendUpdate as resend } from '../temporal/updates';
import { terminalLine } from '../render-safe';
import {
  approveRequestSchema,
  approveStep,
  confirmRequestSchema,
  confirmStep,
  extendBypass,
  extendBypassRequestSchema,
  incidentWorkflow,
  rejectRequestSchema,
  rejectStep,
  requestStep,
  resolveIncident,
  resolveRequestSchema,
  stepRequestSchema,
  confirmOldKeyDeleted,
  confirmOldKeyDeletedRequestSchema,
  provideNewKey,
  provideNewKeyRequestSchema,
  type ApproveRequest,
  type ExtendBypassRequest,
  type RejectRequest,
  completeReview,
  completeReviewSchema,
  finalizeReview,
  finalizeReviewSchema,
} from '../workflows/incident';
import { readFileSync } from 'node:fs';
import { CliArgumentError } from './common';

export const INCIDENT = incidentWorkflow.name;

/** The `<workflowId>` argument every incident command takes. */
const workflowIdSchema = z.object({ workflowId: z.string().trim().min(1, 'an incident (workflow) id is required').max(1000) });

export const parseWorkflowId = (workflowId: string): string => parseOrThrow(workflowIdSchema, { workflowId }, { workflowId: '<workflowId>' }).workflowId;

/** The "Example(s):" block of a command's help. */
export const example = (...commands: string[]) => `\nExample${commands.length > 1 ? 's' : ''}:\n${commands.map((c) => `  npm run incident -- ${c}`).join('\n')}`;

/** Sends an update (src/temporal/updates.ts: one update id, sent again without an answer); a refusal becomes the CLI's error. */
export async function sendUpdate<T>(run: (updateId: string) => Promise<T>): Promise<T> {
  try {
    return await resend(run, randomUUID(), { onResend: (err) => console.error(`no answer yet (${err instanceof Error ? err.message : String(err)}): sending it again with the same update id`) });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new Error(`refused: ${err.cause?.message ?? err.message}`);
    throw err;
  }
}

/** One flag of a command, as commander declares it. */
interface Flag {
  /** e.g. `--step <step>`. */
  flags: string;
  help: string;
  required?: boolean;
  /** Repeatable: one value per occurrence, `[]` when absent. */
  repeat?: boolean;
  parse?: (value: string) => unknown;
}

type Opts = Record<string, unknown>;

/** The answer every incident update gives: a line for the person who sent it. */
interface Answer {
  message: string;
}

interface UpdateCommandSpec<Req, A extends Answer> {
  name: string;
  description: string;
  flags: readonly Flag[];
  example: string;
  /** The update's request from the flags; throws a `CliArgumentError` naming the flag. */
  request: (opts: Opts) => Req;
  update: UpdateDefinition<A, [Req]>;
  /** A decision `--sign` can sign: what the signature covers. */
  toSign?: (req: Req) => DecisionToSign;
}

/** A row of the table, its request type closed over: the flags become a request to send. */
export interface UpdateCommand {
  name: string;
  description: string;
  flags: readonly Flag[];
  example: string;
  prepare(opts: Opts): { toSign?: DecisionToSign; send: (handle: WorkflowHandle, signed: object, updateId: string) => Promise<Answer> };
}

const row = <Req, A extends Answer>(spec: UpdateCommandSpec<Req, A>): UpdateCommand => ({
  name: spec.name,
  description: spec.description,
  flags: spec.flags,
  example: spec.example,
  prepare(opts) {
    const req = spec.request(opts);
    return {
      ...(spec.toSign ? { toSign: spec.toSign(req) } : {}),
      send: (handle, signed, updateId) => handle.executeUpdate(spec.update, { args: [{ ...req, ...signed }], updateId }),
    };
  },
});

const stepHelp = `one of ${GATED_STEPS.join(', ')}`;
export const SIGN_FLAG: Flag = {
  flags: '--sign <key file | agent>',
  help: 'sign it with your SSH key (docs/signed-approvals.md; the roster may require it): a private key file, a public key file whose key is in ssh-agent, or agent',
};
/** The post-incident review's findings, each optional (the review says "not given"): `resolve` and `complete-review` take them. */
const FINDINGS_FLAGS: readonly Flag[] = [
  { flags: '--root-cause <text>', help: 'the root cause' },
  { flags: '--trigger <text>', help: 'what set it off' },
  { flags: '--detection <how>', help: 'monitoring_alert, user_report or manual' },
  { flags: '--data-loss <none|partial>', help: 'whether data was lost' },
  { flags: '--data-loss-details <text>', help: 'with --data-loss partial: what was lost' },
  { flags: '--users-affected <n>', help: 'how many users were affected, if known', parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  { flags: '--went-well <text>', help: 'a lesson: what went well (repeat)', repeat: true },
  { flags: '--went-wrong <text>', help: 'a lesson: what went wrong (repeat)', repeat: true },
  { flags: '--got-lucky <text>', help: 'a lesson: where we got lucky (repeat)', repeat: true },
];
const many = (opts: Opts, key: string) => ((opts[key] as string[]).length ? (opts[key] as string[]) : undefined);

/** The findings the flags give (those left out stay out), and the flag of each field for refusals. */
function findingsFromFlags(o: Opts): Record<string, unknown> {
  const lessons = defined({ wentWell: many(o, 'wentWell'), wentWrong: many(o, 'wentWrong'), gotLucky: many(o, 'gotLucky') });
  return defined({
    rootCause: o.rootCause,
    trigger: o.trigger,
    detection: o.detection,
    dataLoss: o.dataLoss,
    dataLossDetails: o.dataLossDetails,
    usersAffected: o.usersAffected,
    lessons: Object.keys(lessons).length ? lessons : undefined,
  });
}
const FINDINGS_FLAG_OF = { 'lessons.wentWell': '--went-well', 'lessons.wentWrong': '--went-wrong', 'lessons.gotLucky': '--got-lucky', actionItems: '--action-item' };

/** Approve and reject: the step, who decides, and a comment or a reason; the decision can be signed. */
export const DECISION_COMMANDS: readonly UpdateCommand[] = [
  row({
    name: 'approve',
    description: 'approve a pending step (critical steps need two different approvers)',
    flags: [
      { flags: '--step <step>', help: stepHelp, required: true },
      { flags: '--approver <name>', help: 'who approves (must be on the incident approver list)', required: true },
      SIGN_FLAG,
      { flags: '--comment <text>', help: 'why, for the timeline' },
    ],
    example: 'approve incident-3f9c… --step emergency_bypass --approver bob@example.com --comment "status page confirms the outage"',
    request: (o): ApproveRequest => parseOrThrow(approveRequestSchema, defined({ step: o.step, approver: o.approver, comment: o.comment })),
    update: approveStep,
    toSign: (req) => ({ decision: 'approve', step: req.step, approver: req.approver, text: req.comment ?? '' }),
  }),
  row({
    name: 'reject',
    description: 'reject a pending step (a reason is required)',
    flags: [
      { flags: '--step <step>', help: stepHelp, required: true },
      { flags: '--approver <name>', help: 'who rejects (must be on the incident approver list)', required: true },
      SIGN_FLAG,
      { flags: '--reason <text>', help: 'why not', required: true },
    ],
    example: 'reject incident-3f9c… --step revoke_all_sessions --approver carol@example.com --reason "only one user affected"',
    request: (o): RejectRequest => parseOrThrow(rejectRequestSchema, defined({ step: o.step, approver: o.approver, reason: o.reason })),
    update: rejectStep,
    toSign: (req) => ({ decision: 'reject', step: req.step, approver: req.approver, text: req.reason }),
  }),
];

/** The other updates, in the order `--help` lists them. */
export const UPDATE_COMMANDS: readonly UpdateCommand[] = [
  row({
    name: 'confirm',
    description: 'confirm that a step the runbook cannot do yet was done by hand (the steps after it wait for this)',
    flags: [
      { flags: '--step <step>', help: 'the step done by hand, e.g. rotate_secret_key', required: true },
      { flags: '--by <name>', help: 'who did it (the reporter or a listed approver)', required: true },
      { flags: '--note <text>', help: 'what was done: which key, deployment or flag', required: true },
      SIGN_FLAG,
    ],
    example: 'confirm incident-3f9c… --step rotate_secret_key --by bob@example.com --note "new sk_live key deployed, old one deleted"',
    request: (o) => parseOrThrow(confirmRequestSchema, defined({ step: o.step, confirmedBy: o.by, note: o.note }), { confirmedBy: '--by' }),
    update: confirmStep,
    toSign: (req) => ({ decision: 'confirm', step: req.step, approver: req.confirmedBy, text: actionText(req), action: true }),
  }),
  // The key rotation's two updates (docs/key-rotation.md); a raw key is refused here, before anything is sent.
  row({
    name: 'provide-key',
    description: 'key rotation: where the new Clerk secret key is (a reference, never the key)',
    flags: [
      { flags: '--ref <reference>', help: 'env:NAME, file:/path or vault:mount/path#field', required: true },
      { flags: '--by <name>', help: 'who provides it (the reporter or a listed approver)', required: true },
      { flags: '--note <text>', help: 'e.g. "added in the Dashboard"' },
      SIGN_FLAG,
    ],
    example: 'provide-key incident-3f9c… --ref vault:secret/clerk/prod#next_secret_key --by bob@example.com',
    request: (o) => parseOrThrow(provideNewKeyRequestSchema, defined({ ref: o.ref, providedBy: o.by, note: o.note }), { providedBy: '--by' }),
    update: provideNewKey,
    toSign: (req) => ({ decision: 'provide_key', step: 'rotate_secret_key', approver: req.providedBy, text: actionText(provideNewKeyRequestSchema.parse(req)), action: true }),
  }),
  row({
    name: 'key-deleted',
    description: 'key rotation: the old key is deleted in the Clerk Dashboard (the runbook then proves it dead)',
    flags: [
      { flags: '--by <name>', help: 'who deleted it (the reporter or a listed approver)', required: true },
      { flags: '--note <text>', help: 'what was done' },
      SIGN_FLAG,
    ],
    example: 'key-deleted incident-3f9c… --by bob@example.com',
    request: (o) => parseOrThrow(confirmOldKeyDeletedRequestSchema, defined({ confirmedBy: o.by, note: o.note }), { confirmedBy: '--by' }),
    update: confirmOldKeyDeleted,
    toSign: (req) => ({ decision: 'confirm_deletion', step: 'rotate_secret_key', approver: req.confirmedBy, text: actionText(confirmOldKeyDeletedRequestSchema.parse(req)), action: true }),
  }),
  row({
    name: 'extend',
    description: 'emergency bypass: keep it on longer (an approver; never past BYPASS_MAX_DURATION in all)',
    flags: [
      { flags: '--by <name>', help: 'the approver who extends it', required: true },
      { flags: '--for <duration>', help: 'how much longer, e.g. 30m', required: true },
      { flags: '--reason <text>', help: 'why auth stays bypassed', required: true },
      SIGN_FLAG,
    ],
    example: 'extend incident-3f9c… --by bob@example.com --for 30m --reason "Clerk expects recovery in 20 minutes"',
    request: (o): ExtendBypassRequest => {
      // Checked here, sent as given: the workflow parses the duration itself.
      const req = { approver: String(o.by), extendBy: String(o.for), reason: String(o.reason) };
      parseOrThrow(extendBypassRequestSchema, req, { approver: '--by', extendBy: '--for', reason: '--reason' });
      return req;
    },
    update: extendBypass,
    toSign: (req) => ({ decision: 'extend', step: 'emergency_bypass', approver: req.approver, text: actionText(extendBypassRequestSchema.parse(req)), action: true }),
  }),
  row({
    name: 'resolve',
    description: 'resolve an incident that needs a human (status needs_human): the commander says it is over',
    flags: [
      { flags: '--by <name>', help: 'who resolves it (the reporter or a listed approver)', required: true },
      { flags: '--summary <text>', help: 'why it is over: what fixed it, or why nothing more will be done', required: true },
      ...FINDINGS_FLAGS,
      { flags: '--action-item <text>', help: 'an action item for the review (repeat)', repeat: true },
      SIGN_FLAG,
    ],
    example: 'resolve incident-3f9c… --by alice@example.com --summary "Clerk fixed it upstream; sign-ins normal for 30 minutes" --detection monitoring_alert --data-loss none',
    request: (o) =>
      parseOrThrow(resolveRequestSchema, defined({ resolvedBy: o.by, summary: o.summary, ...findingsFromFlags(o), actionItems: many(o, 'actionItem') }), { resolvedBy: '--by', ...FINDINGS_FLAG_OF }),
    update: resolveIncident,
    toSign: (req) => ({ decision: 'resolve', step: 'incident', approver: req.resolvedBy, text: actionText(req), action: true }),
  }),
  row({
    name: 'complete-review',
    description: "the commander's findings for the post-incident review (after resolved, until it is final); may be sent again: each field given replaces the last",
    flags: [
      { flags: '--by <name>', help: 'who sends them (the reporter or a listed approver)', required: true },
      { flags: '--file <findings.json>', help: 'the findings as one JSON object (the update\'s fields but completedBy); flags given override it' },
      ...FINDINGS_FLAGS,
      { flags: '--action-item <title|owner|YYYY-MM-DD>', help: 'an action item with its owner and due date, "|"-separated (repeat: the whole list)', repeat: true },
      SIGN_FLAG,
    ],
    example: 'complete-review incident-3f9c… --by alice@example.com --root-cause "a matcher threw on /dashboard" --went-wrong "no canary for /dashboard" --action-item "add a canary for /dashboard|bob@example.com|2026-12-20"',
    request: (o) => {
      let fromFile: Record<string, unknown> = {};
      if (typeof o.file === 'string') {
        try {
          fromFile = JSON.parse(readFileSync(o.file, 'utf8')) as Record<string, unknown>;
        } catch (e) {
          throw new CliArgumentError(`--file: ${o.file} is not readable JSON (${(e as Error).message.split('\n')[0]})`);
        }
        if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) throw new CliArgumentError('--file: must hold one JSON object');
      }
      const items = many(o, 'actionItem')?.map((spec, i) => {
        const [title, owner, due, ...rest] = spec.split('|').map((p) => p.trim());
        if (!title || !owner || !due || rest.length) throw new CliArgumentError(`--action-item ${i + 1}: write "title|owner|YYYY-MM-DD"`);
        return { title, owner, due };
      });
      // Flags override the file's fields; the lessons merge list by list.
      const flags = findingsFromFlags(o);
      const lessons = flags.lessons || fromFile.lessons ? { ...(fromFile.lessons as object | undefined), ...(flags.lessons as object | undefined) } : undefined;
      return parseOrThrow(completeReviewSchema, defined({ ...fromFile, ...flags, completedBy: o.by, lessons, actionItems: items ?? fromFile.actionItems }), { completedBy: '--by', ...FINDINGS_FLAG_OF });
    },
    update: completeReview,
    toSign: (req) => ({ decision: 'resolve', step: 'incident', approver: req.completedBy, text: actionText(req), action: true }),
  }),
  row({
    name: 'finalize-review',
    description: 'the post-incident review is final: the incident closes with it',
    flags: [{ flags: '--by <name>', help: 'who finalizes it (the reporter or a listed approver)', required: true }, { flags: '--note <text>', help: 'a note for the timeline' }, SIGN_FLAG],
    example: 'finalize-review incident-3f9c… --by alice@example.com --note "reviewed on Thursday"',
    request: (o) => parseOrThrow(finalizeReviewSchema, defined({ finalizedBy: o.by, note: o.note }), { finalizedBy: '--by' }),
    update: finalizeReview,
    toSign: (req) => ({ decision: 'resolve', step: 'incident', approver: req.finalizedBy, text: actionText(req), action: true }),
  }),
  row({
    name: 'request',
    description: 'request an optional step of the playbook (session_issues: targeted_revocation; middleware_failure: undo_rollback)',
    flags: [
      { flags: '--step <step>', help: stepHelp, required: true },
      { flags: '--requester <name>', help: 'who asks (the reporter or a listed approver; cannot approve it then)', required: true },
      { flags: '--user <userId>', help: 'targeted_revocation: a user whose sessions to end (repeat)', repeat: true },
      { flags: '--reason <text>', help: 'why, for the timeline' },
      SIGN_FLAG,
    ],
    example: 'request incident-3f9c… --step targeted_revocation --requester alice@example.com --user user_2abc --reason "stuck sessions"',
    request: (o) => parseOrThrow(stepRequestSchema, defined({ step: o.step, requester: o.requester, reason: o.reason, userIds: many(o, 'user') }), { userIds: '--user' }),
    update: requestStep,
    toSign: (req) => ({ decision: 'request', step: req.step, approver: req.requester, text: actionText(req), action: true }),
  }),
];

/** Every command that talks to Temporal does so as the operator (see `buildProgram`). */
export type Connect = <T>(fn: (client: Client) => Promise<T>) => Promise<T>;

/** Declares `c` on `program`: parse the flags, find the incident, sign if asked, send the update, print its answer. */
export function addUpdateCommand(program: Command, connect: Connect, c: UpdateCommand): void {
  const command = program.command(c.name).description(c.description).argument('<workflowId>');
  for (const f of c.flags) {
    if (f.required) command.requiredOption(f.flags, f.help);
    else if (f.repeat) command.option(f.flags, f.help, collect, []);
    else if (f.parse) command.option(f.flags, f.help, f.parse);
    else command.option(f.flags, f.help);
  }
  command.addHelpText('after', example(c.example));
  command.action(async (workflowId: string, opts: Opts) => {
    const id = parseWorkflowId(workflowId);
    // Validated before connecting: a bad flag is refused without a server.
    const { toSign, send } = c.prepare(opts);
    const key = opts.sign === undefined ? undefined : parseOrThrow(z.object({ sign: keySpecSchema }), { sign: opts.sign }).sign;
    await connect(async (client) => {
      const handle = await existingWorkflow(client, id, INCIDENT);
      const signed = key === undefined || toSign === undefined ? {} : await signDecision(handle, toSign, key);
      console.log(terminalLine((await sendUpdate((updateId) => send(handle, signed, updateId))).message));
    });
  });
}
