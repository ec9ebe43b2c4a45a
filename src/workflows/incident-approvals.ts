/**
 * Approval gates and optional steps: the requests approvers send (one JSON object each, as the
 * UI's Send an Update form passes it), the rules that accept or refuse them (pure, so the update
 * validators and tests share them), and the durable wait for a decision (`waitForApproval`).
 */
import { condition } from '@temporalio/workflow';
import { z } from 'zod';
import { clerkUserIdSchema, CRITICAL_STEPS, describeIssues, formatDuration, gatedStepSchema, type GatedStep, type IncidentCategory } from '../domain';
import type { IncidentTracker } from './incident-state';

const person = z.string().trim().min(1).max(200);

export const approveRequestSchema = z.strictObject({
  step: gatedStepSchema,
  approver: person,
  comment: z.string().trim().max(2000).optional(),
});
export type ApproveRequest = z.infer<typeof approveRequestSchema>;

export const rejectRequestSchema = z.strictObject({
  step: gatedStepSchema,
  approver: person,
  reason: z.string({ error: 'a rejection needs a reason' }).trim().min(1, 'a rejection needs a reason').max(2000),
});
export type RejectRequest = z.infer<typeof rejectRequestSchema>;

/** Ask for an optional step of the playbook (today: targeted revocation in session_issues). */
export const stepRequestSchema = z.strictObject({
  step: gatedStepSchema,
  requester: person,
  reason: z.string().trim().min(1).max(2000).optional(),
  /** targeted_revocation: whose sessions to end. */
  userIds: z.array(clerkUserIdSchema).min(1).max(1000).optional(),
});
export type StepRequest = z.infer<typeof stepRequestSchema>;

export type GateOutcome = 'approved' | 'rejected' | 'timed_out';

export interface ApprovalGate {
  step: GatedStep;
  /** What approving does, in a sentence. */
  title: string;
  critical: boolean;
  approvalsNeeded: 1 | 2;
  requestedBy: string;
  requestedAt: string;
  escalateAt: string;
  decideBy: string;
  escalated: boolean;
  approvals: { approver: string; at: string; comment?: string }[];
  rejection?: { approver: string; at: string; reason: string };
  outcome?: GateOutcome;
  decidedAt?: string;
}

/** What an accepted update returns. `pending`: a critical step has one of its two approvals. */
export interface Decision {
  step: GatedStep;
  decision: 'approved' | 'rejected' | 'pending';
  approvedBy: string[];
  approvalsNeeded: number;
  rejectedBy?: string;
  reason?: string;
  message: string;
}

/** Refusal of an update, before it reaches history. The message says why and names the field. */
export class UpdateRefused extends Error {
  override readonly name = 'UpdateRefused';
}

export function approvalsNeeded(step: GatedStep): 1 | 2 {
  return CRITICAL_STEPS.includes(step) ? 2 : 1;
}

export function parseRequest<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new UpdateRefused(describeIssues(parsed.error, 'update'));
  return parsed.data;
}

function pendingGate(gates: readonly ApprovalGate[], step: GatedStep): ApprovalGate {
  const pending = gates.filter((g) => !g.outcome);
  const gate = pending.find((g) => g.step === step);
  if (gate) return gate;
  const decided = [...gates].reverse().find((g) => g.step === step);
  const waiting = pending.map((g) => g.step).join(', ') || 'none';
  throw new UpdateRefused(
    decided
      ? `update.step: ${step} is not pending: it was already ${decided.outcome} (pending: ${waiting})`
      : `update.step: ${step} is not pending in this incident (pending: ${waiting})`,
  );
}

function checkApprover(approvers: readonly string[], approver: string): void {
  if (!approvers.includes(approver)) {
    throw new UpdateRefused(
      `update.approver: ${approver} is not on this incident's approver list (${approvers.length ? approvers.join(', ') : 'empty'})`,
    );
  }
}

/** Throws `UpdateRefused` unless `req` may approve now. */
export function checkApproval(gates: readonly ApprovalGate[], approvers: readonly string[], req: ApproveRequest): ApprovalGate {
  const gate = pendingGate(gates, req.step);
  checkApprover(approvers, req.approver);
  if (req.approver === gate.requestedBy) {
    throw new UpdateRefused(`update.approver: ${req.approver} requested ${req.step} and cannot approve their own request`);
  }
  if (gate.approvals.some((a) => a.approver === req.approver)) {
    throw new UpdateRefused(
      `update.approver: ${req.approver} already approved ${req.step}; a critical step needs two different approvers`,
    );
  }
  return gate;
}

/** Throws `UpdateRefused` unless `req` may reject now. */
export function checkRejection(gates: readonly ApprovalGate[], approvers: readonly string[], req: RejectRequest): ApprovalGate {
  const gate = pendingGate(gates, req.step);
  checkApprover(approvers, req.approver);
  return gate;
}

/** Apply an approval that passed `checkApproval`. */
export function applyApproval(gate: ApprovalGate, req: ApproveRequest, now: string): Decision {
  gate.approvals.push({ approver: req.approver, at: now, ...(req.comment ? { comment: req.comment } : {}) });
  const approvedBy = gate.approvals.map((a) => a.approver);
  if (approvedBy.length >= gate.approvalsNeeded) {
    gate.outcome = 'approved';
    gate.decidedAt = now;
    return { step: gate.step, decision: 'approved', approvedBy, approvalsNeeded: gate.approvalsNeeded, message: `${gate.step} approved by ${approvedBy.join(' and ')}` };
  }
  return {
    step: gate.step,
    decision: 'pending',
    approvedBy,
    approvalsNeeded: gate.approvalsNeeded,
    message: `${gate.step}: ${approvedBy.length} of ${gate.approvalsNeeded} approvals; waiting for a second, different approver`,
  };
}

export function applyRejection(gate: ApprovalGate, req: RejectRequest, now: string): Decision {
  gate.rejection = { approver: req.approver, at: now, reason: req.reason };
  gate.outcome = 'rejected';
  gate.decidedAt = now;
  return {
    step: gate.step,
    decision: 'rejected',
    approvedBy: gate.approvals.map((a) => a.approver),
    approvalsNeeded: gate.approvalsNeeded,
    rejectedBy: req.approver,
    reason: req.reason,
    message: `${gate.step} rejected by ${req.approver}: ${req.reason}`,
  };
}

// -- one shape for both decisions ----------------------------------------------------------------

/** A decision an approver sends: how it is parsed, checked against the pending gate, applied and told. */
interface DecisionRules<R> {
  schema: z.ZodType<R>;
  check(gates: readonly ApprovalGate[], approvers: readonly string[], req: R): ApprovalGate;
  apply(gate: ApprovalGate, req: R, now: string): Decision;
  /** The timeline line, in the approver's name. */
  describe(req: R, decision: Decision): string;
}

const withNote = (text: string, note?: string) => (note ? `${text}: ${note}` : text);

const approveRules: DecisionRules<ApproveRequest> = {
  schema: approveRequestSchema,
  check: checkApproval,
  apply: applyApproval,
  describe: (req, d) => withNote(d.decision === 'approved' ? 'approved' : `approval ${d.approvedBy.length} of ${d.approvalsNeeded}`, req.comment),
};

const rejectRules: DecisionRules<RejectRequest> = {
  schema: rejectRequestSchema,
  check: checkRejection,
  apply: applyRejection,
  describe: (req) => `rejected: ${req.reason}`,
};

/** Validator and handler of one decision update, both over the incident's gates. */
export interface DecisionHandler {
  validate(raw: unknown): void;
  decide(raw: unknown): Decision;
}

function decisionHandler<R extends { step: GatedStep; approver: string }>(tracker: IncidentTracker, rules: DecisionRules<R>): DecisionHandler {
  const check = (raw: unknown) => {
    const req = parseRequest(rules.schema, raw);
    return { req, gate: rules.check(tracker.state.gates, tracker.state.approvers, req) };
  };
  return {
    validate: (raw) => void check(raw),
    decide(raw) {
      const { req, gate } = check(raw);
      const decision = rules.apply(gate, req, new Date().toISOString());
      tracker.record(req.step, req.approver, rules.describe(req, decision));
      tracker.publish();
      return decision;
    },
  };
}

export const approvalHandler = (tracker: IncidentTracker) => decisionHandler(tracker, approveRules);
export const rejectionHandler = (tracker: IncidentTracker) => decisionHandler(tracker, rejectRules);

// -- waiting for a decision ----------------------------------------------------------------------

export interface GateRequest {
  step: GatedStep;
  /** What approving does, in a sentence. */
  title: string;
  requestedBy: string;
  escalateAfter: number;
  decideWithin: number;
}

/** "two different approvers from [a, b], not alice" */
function whoMayDecide(gate: ApprovalGate, approvers: readonly string[]): string {
  const count = gate.approvalsNeeded === 2 ? 'two different approvers' : 'one approver';
  return `${count} from [${approvers.join(', ')}], not ${gate.requestedBy}`;
}

function outcomeNote(gate: ApprovalGate, decideWithin: number): string {
  switch (gate.outcome) {
    case 'approved':
      return `${gate.title}: approved by ${gate.approvals.map((a) => a.approver).join(' and ')}`;
    case 'rejected':
      return `${gate.title}: rejected by ${gate.rejection?.approver}: ${gate.rejection?.reason}`;
    default:
      return `${gate.title}: nobody decided within ${formatDuration(decideWithin)}; safe default, not done`;
  }
}

/** Who the outcome is recorded under: the runbook for a timeout, else whoever decided last. */
function decidedBy(gate: ApprovalGate): string {
  if (gate.outcome === 'timed_out') return 'runbook';
  return gate.rejection?.approver ?? gate.approvals.at(-1)?.approver ?? 'runbook';
}

/**
 * Open a gate and wait for its decision on durable timers: notify, escalate after `escalateAfter`,
 * take the safe default (`timed_out`: nothing happens) after `decideWithin`.
 */
export async function waitForApproval(tracker: IncidentTracker, request: GateRequest): Promise<GateOutcome> {
  const { step, title, escalateAfter, decideWithin } = request;
  // Date.now() in workflow code is Temporal's replay-safe clock (the time of the current workflow task).
  const now = Date.now();
  const gate: ApprovalGate = {
    step,
    title,
    critical: CRITICAL_STEPS.includes(step),
    approvalsNeeded: approvalsNeeded(step),
    requestedBy: request.requestedBy,
    requestedAt: new Date(now).toISOString(),
    escalateAt: new Date(now + escalateAfter).toISOString(),
    decideBy: new Date(now + decideWithin).toISOString(),
    escalated: false,
    approvals: [],
  };
  const approvers = tracker.state.approvers;
  tracker.state.gates.push(gate);
  const who = whoMayDecide(gate, approvers);
  tracker.record(step, gate.requestedBy, `approval requested: ${title} (needs ${who})`, { decideBy: gate.decideBy });
  const eligible = approvers.filter((a) => a !== gate.requestedBy).length;
  if (eligible < gate.approvalsNeeded) {
    // Say so now rather than let the gate time out silently: the approver list is fixed at start.
    tracker.attention(`${step} cannot be approved: it needs ${gate.approvalsNeeded} approver(s) other than ${gate.requestedBy}, the incident lists ${eligible}; it will time out (not done)`);
  }
  tracker.waitFor(`approval of ${step} (${title}) by ${who}; escalation at ${gate.escalateAt}, safe default (not done) at ${gate.decideBy}`);
  await tracker.notify(
    'approval_requested',
    `Approval needed: ${step}`,
    `${gate.requestedBy} asks to ${title}. Needs ${who}. Escalates at ${gate.escalateAt}; without a decision by ${gate.decideBy} it is not done (timed_out).`,
    step,
  );

  const decided = () => gate.outcome !== undefined;
  if (!(await condition(decided, Math.max(1, now + escalateAfter - Date.now()), { summary: `approval of ${step}: escalate after ${formatDuration(escalateAfter)}` }))) {
    gate.escalated = true;
    tracker.record(step, 'runbook', `no decision after ${formatDuration(escalateAfter)}: escalated`);
    tracker.waitFor(`approval of ${step} (ESCALATED) by ${who}; safe default (not done) at ${gate.decideBy}`);
    await tracker.notify(
      'escalation',
      `Escalation: ${step} still needs a decision`,
      `Nobody decided "${title}" within ${formatDuration(escalateAfter)}. Without a decision by ${gate.decideBy} it is not done (timed_out).`,
      step,
    );
    const remaining = Math.max(1, now + decideWithin - Date.now());
    if (!(await condition(decided, remaining, { summary: `approval of ${step}: safe default (not done) after ${formatDuration(remaining)}` }))) {
      gate.outcome = 'timed_out';
      gate.decidedAt = new Date().toISOString();
    }
  }
  const outcome = gate.outcome as GateOutcome;
  const note = outcomeNote(gate, decideWithin);
  tracker.stepDone(step, outcome, decidedBy(gate), note);
  if (outcome === 'timed_out') tracker.attention(`${step} timed out without a decision`);
  tracker.publish();
  tracker.notifyLater('status_changed', `${step}: ${outcome}`, note);
  return outcome;
}

// -- optional steps ------------------------------------------------------------------------------

/** Steps the playbook only runs when someone asks for them. */
const OPTIONAL_STEPS: Partial<Record<IncidentCategory, GatedStep[]>> = { session_issues: ['targeted_revocation'] };

export interface StepRequestAnswer {
  step: GatedStep;
  requestedBy: string;
  message: string;
}

/** Requests for optional steps: accepted while the playbook's window for the step is open. */
export class OptionalSteps {
  private readonly requests = new Map<GatedStep, StepRequest>();
  private readonly closedWindows = new Set<GatedStep>();

  constructor(private readonly tracker: IncidentTracker) {}

  get(step: GatedStep): StepRequest | undefined {
    return this.requests.get(step);
  }

  validate(raw: unknown): StepRequest {
    const { state } = this.tracker;
    const req = parseRequest(stepRequestSchema, raw);
    const optional = state.category ? (OPTIONAL_STEPS[state.category] ?? []) : [];
    if (!optional.includes(req.step)) {
      throw new UpdateRefused(
        `update.step: ${req.step} cannot be requested in this incident (optional steps of ${state.category ?? 'an unclassified incident'}: ${optional.join(', ') || 'none'})`,
      );
    }
    if (this.requests.has(req.step)) throw new UpdateRefused(`update.step: ${req.step} was already requested by ${this.requests.get(req.step)?.requester}`);
    if (this.closedWindows.has(req.step)) throw new UpdateRefused(`update.step: the window to request ${req.step} has closed`);
    if (req.requester !== state.reporter && !state.approvers.includes(req.requester)) {
      throw new UpdateRefused(`update.requester: ${req.requester} is neither the reporter nor on the approver list`);
    }
    if (req.step === 'targeted_revocation' && !req.userIds) throw new UpdateRefused('update.userIds: targeted_revocation needs the user ids whose sessions to end');
    return req;
  }

  request(raw: unknown): StepRequestAnswer {
    const req = this.validate(raw);
    this.requests.set(req.step, req);
    this.tracker.record(req.step, req.requester, `requested${req.reason ? `: ${req.reason}` : ''}`, { userIds: req.userIds ?? null });
    this.tracker.publish();
    return { step: req.step, requestedBy: req.requester, message: `${req.step} requested by ${req.requester}; it now needs an approval from someone else` };
  }

  /** A request made in the incident input counts as made by the reporter at the start. */
  fromInput(req: StepRequest, description: string): void {
    if (this.requests.has(req.step)) return;
    this.requests.set(req.step, req);
    this.tracker.record(req.step, req.requester, description);
  }

  /** Wait up to `window` for a request of `step`; after that, requests are refused. */
  async awaitRequest(step: GatedStep, what: string, window: number): Promise<StepRequest | undefined> {
    if (!this.requests.has(step)) {
      this.tracker.waitFor(`an optional request to ${what} (update requestStep with step "${step}") until ${new Date(Date.now() + window).toISOString()}; otherwise none`);
      await condition(() => this.requests.has(step), window, { summary: `optional ${step}: wait ${formatDuration(window)} for a request` });
    }
    this.closedWindows.add(step);
    const req = this.requests.get(step);
    if (!req) this.tracker.stepDone(step, 'not_requested', 'runbook', `nobody asked to ${what}`);
    return req;
  }
}
