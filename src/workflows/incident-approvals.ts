/**
 * Approval gates and optional steps: the requests approvers send (one JSON object each, as the
 * UI's Send an Update form passes it), the rules that accept or refuse them (pure, so the update
 * validators and tests share them), and the durable wait for a decision (`waitForApproval`).
 */
import { condition } from '@temporalio/workflow';
import { z } from 'zod';
import { approvalsNeeded, MANUAL_STEPS, samePerson, CRITICAL_STEPS, formatDuration, type GatedStep, type ManualStep } from '../domain';
import type { NotificationKind } from '../activities/notify';
import type { IncidentTracker } from './incident-state';
import { approveRequestSchema, rejectRequestSchema, type ApprovalGate, type ApproveRequest, type Decision, type GateOutcome, type RejectRequest } from './incident-types';
import { INCIDENT_COMMANDS } from '../shared';
import { checkDecisionSignature, openSignedGate, SignatureRefused } from './incident-signing';
import { actingPerson, eligibleApprovers, openRosterGate } from './incident-roster';
import type { HistoryGuard } from './incident-continue';

import { parseRequest, UpdateRefused } from './incident-errors';

export { parseRequest, UpdateRefused };

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
  if (samePerson(req.approver, gate.requestedBy)) {
    throw new UpdateRefused(`update.approver: ${req.approver} requested ${req.step} and cannot approve their own request`);
  }
  if (gate.approvals.some((a) => samePerson(a.approver, req.approver))) {
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
  /** What a signature of this decision says it is, and the text it covers (comment or reason). */
  kind: 'approve' | 'reject';
  text(req: R): string;
  schema: z.ZodType<R>;
  check(gates: readonly ApprovalGate[], approvers: readonly string[], req: R): ApprovalGate;
  apply(gate: ApprovalGate, req: R, now: string): Decision;
  /** The timeline line, in the approver's name. */
  describe(req: R, decision: Decision): string;
}

const withNote = (text: string, note?: string) => (note ? `${text}: ${note}` : text);

const approveRules: DecisionRules<ApproveRequest> = {
  kind: 'approve',
  text: (req) => req.comment ?? '',
  schema: approveRequestSchema,
  check: checkApproval,
  apply: applyApproval,
  describe: (req, d) => withNote(d.decision === 'approved' ? 'approved' : `approval ${d.approvedBy.length} of ${d.approvalsNeeded}`, req.comment),
};

const rejectRules: DecisionRules<RejectRequest> = {
  kind: 'reject',
  text: (req) => req.reason,
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

function decisionHandler<R extends { step: GatedStep; approver: string; signature?: string; nonce?: string }>(tracker: IncidentTracker, rules: DecisionRules<R>): DecisionHandler {
  const check = (raw: unknown): { req: R; gate: ApprovalGate; fingerprint: string | undefined; spelledAs?: string } => {
    const req = parseRequest(rules.schema, raw);
    if (tracker.state.roster) {
      // The roster decides: the person resolved, its policy applied, the signature verified (incident-roster.ts).
      const gate = pendingGate(tracker.state.gates, req.step);
      const acting = actingPerson(tracker, { action: rules.kind, step: req.step, field: 'approver', who: req.approver, text: rules.text(req), signature: req.signature, nonce: req.nonce, gate });
      return { req: { ...req, approver: acting.person }, gate, fingerprint: acting.fingerprint, ...(acting.person !== req.approver ? { spelledAs: req.approver } : {}) };
    }
    const gate = rules.check(tracker.state.gates, tracker.state.approvers, req);
    return { req, gate, fingerprint: signedBy(tracker, gate, req, rules) };
  };
  return {
    validate: (raw) => void check(raw),
    decide(raw) {
      const { req, gate, fingerprint, spelledAs } = check(raw);
      const decision = rules.apply(gate, req, new Date().toISOString());
      if (fingerprint) {
        const entry = decision.decision === 'rejected' ? gate.rejection : gate.approvals.at(-1);
        if (entry) entry.fingerprint = fingerprint;
      }
      const line = `${rules.describe(req, decision)}${spelledAs ? ` (sent as "${spelledAs}")` : ''}`;
      if (fingerprint) tracker.record(req.step, req.approver, `${line} (signed with key ${fingerprint})`, { fingerprint });
      else tracker.record(req.step, req.approver, line);
      if (decision.decision !== 'pending') tracker.pager.decided(req.step);
      tracker.publish();
      return withHandWork(fingerprint ? { ...decision, message: `${decision.message} (signed with key ${fingerprint})` } : decision, tracker.state.incidentId);
    },
  };
}

/** The key fingerprint that signed the decision, when signed; refuses what the signing policy does not allow. */
function signedBy<R extends { step: GatedStep; approver: string; signature?: string; nonce?: string }>(tracker: IncidentTracker, gate: ApprovalGate, req: R, rules: DecisionRules<R>): string | undefined {
  try {
    return checkDecisionSignature(tracker.state, gate, req, rules.kind, rules.text(req));
  } catch (err) {
    if (err instanceof SignatureRefused) throw new UpdateRefused(err.message);
    throw err;
  }
}

/** How the runbook does a gated step that is also done by hand elsewhere, and what it needs to (the approval's answer). */
const AUTOMATED_WHEN: Partial<Record<ManualStep, string>> = {
  // docs/bypass.md: a deployment platform.
  emergency_bypass: 'the runbook does it through the deployment platform (DEPLOY_ADAPTER); without one it asks for it by hand',
  bypass_off: 'the runbook does it through the deployment platform (DEPLOY_ADAPTER); without one it asks for it by hand',
  // docs/key-rotation.md: a key reference the worker can rotate.
  rotate_secret_key: 'the runbook rotates the key (Platform API, or the key sent with provideNewKey); a worker without key rotation configured asks for it by hand',
  update_session_lifetime: "the runbook changes it through Clerk's Platform API (CLERK_PLATFORM_API_TOKEN); a worker without one asks for it by hand",
  update_deployed_env: 'the runbook sets it through the deployment platform (DEPLOY_ADAPTER) and redeploys; a worker without one asks for it by hand',
};

/** An approved step the runbook cannot do yet: the answer says what the approvers do next. */
function withHandWork(decision: Decision, incidentId: string): Decision {
  const step = decision.step as string;
  if (decision.decision !== 'approved' || !(MANUAL_STEPS as readonly string[]).includes(step)) return decision;
  const how = AUTOMATED_WHEN[step as ManualStep] ?? 'it is not automated yet: do it by hand, then confirm';
  return { ...decision, message: `${decision.message}; ${how} (${INCIDENT_COMMANDS.confirm(incidentId, step)})` };
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
  /** Set where the wait is a safe point for continue-as-new (incident-continue.ts). */
  guard?: HistoryGuard;
}

/** "two different approvers from [a, b], not alice" */
function whoMayDecide(gate: ApprovalGate, approvers: readonly string[]): string {
  const count = gate.approvalsNeeded === 1 ? 'one approver' : gate.approvalsNeeded === 2 ? 'two different approvers' : `${gate.approvalsNeeded} different approvers`;
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

/** A durable wait for people, with the gates' escalation: notify at `escalateAfter`, give up at `decideWithin`. */
export interface HumanWait {
  step: GatedStep | string;
  /** "approval of emergency_bypass", "confirmation of bypass_off" */
  label: string;
  /** Who may answer, in words, for the escalated `waitingFor`. */
  who: string;
  /** `Date.now()` when the wait began. */
  since: number;
  escalateAfter: number;
  decideWithin: number;
  decideBy: string;
  answered: () => boolean;
  escalation: { title: string; text: string; kind: NotificationKind; step?: GatedStep | ManualStep; signed?: boolean; gateRequestedAt?: string };
  onEscalate: () => void;
  /** What happens when nobody answers, in a few words (default: the safe default, not done). */
  otherwise?: string;
  /** Already escalated (a wait resumed after continue-as-new): straight to the second half. */
  escalated?: boolean;
  /** Set where the wait is a safe point for continue-as-new (incident-continue.ts). */
  guard?: HistoryGuard;
  /** A third level (gates with a roster): called halfway from the escalation to the deadline. */
  further?: () => void;
}

function waitUntil(w: HumanWait, ms: number, summary: string): Promise<boolean> {
  return w.guard ? w.guard.wait(w.answered, ms, summary) : condition(w.answered, ms, { summary });
}

/** Wait for `answered()`; escalate once; false when nobody answered in time (the safe default). */
export async function awaitHuman(tracker: IncidentTracker, w: HumanWait): Promise<boolean> {
  const otherwise = w.otherwise ?? 'safe default (not done)';
  if (!w.escalated) {
    if (await waitUntil(w, Math.max(1, w.since + w.escalateAfter - Date.now()), `${w.label}: escalate after ${formatDuration(w.escalateAfter)}`)) return true;
    w.onEscalate();
    tracker.record(String(w.step), 'runbook', `no decision after ${formatDuration(w.escalateAfter)}: escalated`);
    tracker.waitFor(`${w.label} (ESCALATED) by ${w.who}; ${otherwise} at ${w.decideBy}`);
    await tracker.notify(w.escalation.kind, w.escalation.title, w.escalation.text, w.escalation.step, {
      ...(w.escalation.signed ? { signed: true } : {}),
      ...(w.escalation.gateRequestedAt ? { gateRequestedAt: w.escalation.gateRequestedAt } : {}),
    });
  }
  if (w.further) {
    // Halfway from the escalation to the deadline, the next level is paged (the rotation's escalation target).
    const at = w.since + w.escalateAfter + Math.floor((w.decideWithin - w.escalateAfter) / 2);
    if (Date.now() < at) {
      if (await waitUntil(w, Math.max(1, at - Date.now()), `${w.label}: page the escalation target at ${new Date(at).toISOString()}`)) return true;
      w.further();
    }
  }
  const remaining = Math.max(1, w.since + w.decideWithin - Date.now());
  return waitUntil(w, remaining, `${w.label}: ${otherwise} at ${w.decideBy}`);
}

/**
 * Open a gate and wait for its decision on durable timers: notify, escalate after `escalateAfter`,
 * take the safe default (`timed_out`: nothing happens) after `decideWithin`.
 */
export async function waitForApproval(tracker: IncidentTracker, request: GateRequest): Promise<GateOutcome> {
  // A run continued as new while this gate waited: the same gate, its approvals and deadlines.
  const open = tracker.state.gates.find((g) => g.step === request.step && !g.outcome);
  if (open) return decideGate(tracker, open, request);
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
  openSignedGate(tracker.state, gate);
  openRosterGate(tracker.state, gate);
  const approvers = tracker.state.approvers;
  tracker.state.gates.push(gate);
  const who = whoMayDecide(gate, approvers);
  tracker.record(step, gate.requestedBy, `approval requested: ${title} (needs ${who})`, { decideBy: gate.decideBy });
  const eligible = tracker.state.roster ? eligibleApprovers(tracker.state, gate).length : approvers.filter((a) => a !== gate.requestedBy).length;
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
    { evidence: tracker.evidence(), gateRequestedAt: gate.requestedAt, ...(gate.signatureRequired ? { signed: true } : {}) },
  );
  tracker.pager.page(step, 'primary', title, gate.decideBy, gate.requestedBy);
  return decideGate(tracker, gate, request);
}

/** Wait for the decision of an open gate (escalating once), then record its outcome. */
async function decideGate(tracker: IncidentTracker, gate: ApprovalGate, request: GateRequest): Promise<GateOutcome> {
  const { step, title } = gate;
  const since = Date.parse(gate.requestedAt);
  const escalateAfter = Date.parse(gate.escalateAt) - since;
  const decideWithin = Date.parse(gate.decideBy) - since;
  const who = whoMayDecide(gate, tracker.state.approvers);
  const decided = await awaitHuman(tracker, {
    step,
    label: `approval of ${step}`,
    who,
    since,
    escalateAfter,
    decideWithin,
    escalated: gate.escalated,
    ...(request.guard ? { guard: request.guard } : {}),
    decideBy: gate.decideBy,
    answered: () => gate.outcome !== undefined,
    escalation: {
      kind: 'escalation',
      title: `Escalation: ${step} still needs a decision`,
      text: `Nobody decided "${title}" within ${formatDuration(escalateAfter)}. Without a decision by ${gate.decideBy} it is not done (timed_out).`,
      step,
      gateRequestedAt: gate.requestedAt,
      ...(gate.signatureRequired ? { signed: true } : {}),
    },
    onEscalate: () => {
      gate.escalated = true;
      tracker.pager.page(step, 'secondary', title, gate.decideBy, gate.requestedBy);
    },
    ...(tracker.state.roster ? { further: () => tracker.pager.page(step, 'escalation', title, gate.decideBy, gate.requestedBy) } : {}),
  });
  if (!decided) {
    gate.outcome = 'timed_out';
    gate.decidedAt = new Date().toISOString();
  }
  const outcome = gate.outcome as GateOutcome;
  const note = outcomeNote(gate, decideWithin);
  tracker.stepDone(step, outcome, decidedBy(gate), note);
  if (outcome === 'timed_out') tracker.attention(`${step} timed out without a decision`);
  tracker.publish();
  tracker.notifyLater('status_changed', `${step}: ${outcome}`, note);
  return outcome;
}
