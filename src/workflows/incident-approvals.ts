/**
 * Approval gates: the requests approvers send (one JSON object each, as the UI's Send an Update
 * form passes it) and the rules that accept or refuse them. Pure: the workflow's update
 * validators call these, and the unit tests too.
 */
import { z } from 'zod';
import { clerkUserIdSchema, CRITICAL_STEPS, describeIssues, gatedStepSchema, type GatedStep } from '../domain';

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
