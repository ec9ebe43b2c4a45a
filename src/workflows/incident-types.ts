/**
 * The incident's data as it crosses the workflow's edge: its state as `getIncidentState` answers
 * it, and the request and answer of every update, as zod schemas (the validators') and types.
 * Pure, no workflow APIs: the workflow, its clients, the activities and the review all import it.
 */
import { z } from 'zod';
import {
  clerkUserIdSchema,
  detectionSchema,
  durationSchema,
  gatedStepSchema,
  manualStepSchema,
  personSchema,
  freeText,
  type GatedStep,
  type IncidentCategory,
  type IncidentStatus,
  type ManualStep,
  type Severity,
  type StepOutcome,
  type TimelineEvent,
} from '../domain';
import { providedKeyRefSchema } from '../keys/ref';
import type { ApproverRegistry } from '../signing/policy';
import { MAX_SIGNATURE_CHARS } from '../signing/sshsig';
import type { TriageVerdict } from '../triage/rules';
import type { BypassRecord } from './bypass-record';
import type { RecordedRoster } from '../roster/schema';

// -- approvals -------------------------------------------------------------------------------------

/** Signed approvals (docs/signed-approvals.md): the armored `ssh-keygen -Y sign` output, and the nonce it answers. */
const signedFields = {
  signature: z.string().max(MAX_SIGNATURE_CHARS).optional(),
  nonce: z.string().trim().min(1).max(100).optional(),
};

export const approveRequestSchema = z.strictObject({
  step: gatedStepSchema,
  approver: personSchema,
  comment: freeText(z.string().trim().max(2000)).optional(),
  ...signedFields,
});
export type ApproveRequest = z.infer<typeof approveRequestSchema>;

export const rejectRequestSchema = z.strictObject({
  step: gatedStepSchema,
  approver: personSchema,
  reason: freeText(z.string({ error: 'a rejection needs a reason' }).trim().min(1, 'a rejection needs a reason').max(2000)),
  ...signedFields,
});
export type RejectRequest = z.infer<typeof rejectRequestSchema>;

/** Ask for an optional step of the playbook (today: targeted revocation in session_issues). */
export const stepRequestSchema = z.strictObject({
  step: gatedStepSchema,
  requester: personSchema,
  reason: freeText(z.string().trim().min(1).max(2000)).optional(),
  /** targeted_revocation: whose sessions to end. */
  userIds: z.array(clerkUserIdSchema).min(1).max(1000).optional(),
  ...signedFields,
});
export type StepRequest = z.infer<typeof stepRequestSchema>;

export type GateOutcome = 'approved' | 'rejected' | 'timed_out';

export interface ApprovalGate {
  step: GatedStep;
  /** What approving does, in a sentence. */
  title: string;
  critical: boolean;
  /** 1 or 2 by the step; a roster's rule may ask more. */
  approvalsNeeded: number;
  requestedBy: string;
  requestedAt: string;
  escalateAt: string;
  decideBy: string;
  escalated: boolean;
  /** `fingerprint`: the SSH key that signed the decision (signed approvals). */
  approvals: { approver: string; at: string; comment?: string; fingerprint?: string }[];
  rejection?: { approver: string; at: string; reason: string; fingerprint?: string };
  outcome?: GateOutcome;
  decidedAt?: string;
  /** With an approver registry: this request's nonce, which a signed decision must answer. */
  nonce?: string;
  /** With an approver registry: whether decisions on this step must be signed (SIGNED_STEPS). */
  signatureRequired?: boolean;
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


// -- optional steps, steps done by hand, resolve ---------------------------------------------------

export interface StepRequestAnswer {
  step: GatedStep;
  requestedBy: string;
  message: string;
}

export const confirmRequestSchema = z.strictObject({
  step: manualStepSchema,
  /** Who did it (or checked it was done). */
  confirmedBy: personSchema,
  /** What was done, for the timeline and the review: which key, which deployment, which flag. */
  note: freeText(z.string({ error: 'say what was done' }).trim().min(1, 'say what was done').max(2000)),
  ...signedFields,
});
export type ConfirmRequest = z.infer<typeof confirmRequestSchema>;

/** A step the runbook cannot do yet, waiting for a person to do it and confirm. */
export interface ManualStepRecord {
  step: ManualStep;
  /** What to do, in a sentence. */
  instructions: string;
  requestedAt: string;
  escalateAt: string;
  confirmBy: string;
  escalated: boolean;
  outcome?: 'done_by_hand' | 'timed_out';
  confirmedBy?: string;
  note?: string;
}

export interface ConfirmAnswer {
  step: ManualStep;
  confirmedBy: string;
  message: string;
}

const text = (max = 2000) => freeText(z.string().trim().min(1).max(max));
const lessons = z.array(text()).max(20);

/** What only the commander knows, for the post-incident review (each optional: the review says "not given"); `resolve` and `completeReview` take them. */
const findingsFields = {
  rootCause: text().optional(),
  trigger: text().optional(),
  detection: z.enum(['monitoring_alert', 'user_report', 'manual']).optional(),
  dataLoss: z.enum(['none', 'partial']).optional(),
  /** With `dataLoss: "partial"`: what was lost. */
  dataLossDetails: text().optional(),
  usersAffected: z.number().int().min(0).optional(),
  lessons: z.strictObject({ wentWell: lessons.optional(), wentWrong: lessons.optional(), gotLucky: lessons.optional() }).optional(),
};
const dataLossExplained: [(r: { dataLoss?: string; dataLossDetails?: string }) => boolean, { path: string[]; message: string }] = [
  (r) => r.dataLoss !== 'partial' || Boolean(r.dataLossDetails),
  { path: ['dataLossDetails'], message: 'say what was lost when dataLoss is "partial"' },
];

export const resolveRequestSchema = z
  .strictObject({
    /** The incident commander: the reporter or a listed approver. */
    resolvedBy: personSchema,
    /** Why it is over, in a sentence: what fixed it, or why nothing more will be done. */
    summary: freeText(z.string({ error: 'say why the incident is over' }).trim().min(1, 'say why the incident is over').max(4000)),
    ...findingsFields,
    actionItems: z.array(text(500)).max(50).optional(),
    ...signedFields,
  })
  .refine(...dataLossExplained);
export type ResolveRequest = z.infer<typeof resolveRequestSchema>;

/** An action item of the final review: a roster person owns it (the name resolved with a roster), by a date. */
export const reviewActionItemSchema = z.strictObject({
  title: text(300).refine((t) => !/[\r\n]/.test(t), 'must be one line'),
  owner: personSchema,
  /** The day it is due, `YYYY-MM-DD`. */
  due: z
    .string()
    .refine((d) => /^\d{4}-\d{2}-\d{2}$/.test(d) && !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d), 'must be a date like "2026-12-31"'),
  state: z.enum(['open', 'done', 'dropped']).default('open'),
  body: text(4000).optional(),
});
export type ReviewActionItem = z.output<typeof reviewActionItemSchema>;

/**
 * `completeReview`: the commander's findings during the post-incident phase. Each field given
 * replaces what was sent before; `actionItems`, when given, is the whole list (the proposed ones
 * kept, edited or left out). May be sent more than once until the review is final.
 */
export const completeReviewSchema = z
  .strictObject({
    completedBy: personSchema,
    ...findingsFields,
    actionItems: z.array(reviewActionItemSchema).max(50).optional(),
    ...signedFields,
  })
  .refine(...dataLossExplained);
export type CompleteReviewRequest = z.input<typeof completeReviewSchema>;

/** `finalizeReview`: the review is final; the incident's workflow closes with it. */
export const finalizeReviewSchema = z.strictObject({ finalizedBy: personSchema, note: text(1000).optional(), ...signedFields });
export type FinalizeReviewRequest = z.input<typeof finalizeReviewSchema>;

export interface ReviewPhaseAnswer {
  by: string;
  message: string;
}

/** The commander's findings as the incident keeps them (the last value of each field, and who sent it). */
export type ReviewFindings = Omit<z.output<typeof completeReviewSchema>, 'completedBy' | 'signature' | 'nonce' | 'actionItems'> & { by: string; at: string };

/** The post-incident phase: from `resolved` until the review is final (finalizeReview, or its deadline). */
export interface PostIncidentRecord {
  since: string;
  until: string;
  remindEveryMs: number;
  findings?: ReviewFindings;
  /** The commander's action items (once sent); before that the review proposes its derived ones. */
  actionItems?: ReviewActionItem[];
  /** How many completeReview were accepted. */
  completions: number;
  reminders: number;
  final?: { how: 'finalized' | 'deadline'; by?: string; at: string; note?: string };
}

export interface ResolveAnswer {
  resolvedBy: string;
  message: string;
}

// -- the key rotation ----------------------------------------------------------------------------

export const provideNewKeyRequestSchema = z.strictObject({
  /** Where the new key is (env:NAME, file:/path, vault:mount/path#field): never the key itself. */
  ref: providedKeyRefSchema,
  providedBy: personSchema,
  note: freeText(z.string().trim().max(2000)).optional(),
  ...signedFields,
});
export type ProvideNewKeyRequest = z.input<typeof provideNewKeyRequestSchema>;

export const confirmOldKeyDeletedRequestSchema = z.strictObject({
  confirmedBy: personSchema,
  note: freeText(z.string().trim().max(2000)).optional(),
  ...signedFields,
});
export type ConfirmOldKeyDeletedRequest = z.input<typeof confirmOldKeyDeletedRequestSchema>;

export interface KeyRotationAnswer {
  message: string;
}

// -- the emergency bypass ------------------------------------------------------------------------

export const extendBypassRequestSchema = z.strictObject({
  approver: personSchema,
  /** e.g. "30m"; the whole bypass never exceeds the worker's BYPASS_MAX_DURATION. */
  extendBy: durationSchema(60_000, 24 * 3_600_000),
  reason: freeText(z.string().trim().min(1).max(500)),
  ...signedFields,
});
export type ExtendBypassRequest = z.input<typeof extendBypassRequestSchema>;
/** Our CLI's cancel: who asks and why, checked by the roster's policy before the CLI cancels the workflow. */
export const cancelRequestSchema = z.strictObject({
  cancelledBy: personSchema,
  reason: freeText(z.string().trim().min(1).max(1000)).optional(),
  ...signedFields,
});
export type CancelRequest = z.infer<typeof cancelRequestSchema>;
export interface CancelAnswer {
  cancelledBy: string;
  message: string;
}

export interface ExtendBypassAnswer {
  /** This incident's hold, as the lease applied it. */
  expiresAt: string;
  /** What the flag on the platform says (later when another incident holds it longer). */
  flagUntil: string;
  extensions: number;
  message: string;
}

// -- the state -------------------------------------------------------------------------------------

/**
 * Outcome of a playbook step: the runbook's outcomes, plus those of a step it did not do itself:
 * `not_automated` (a human must do it), `done_by_hand` (a human did it and confirmed), `skipped`
 * (a step it depends on was not done), `not_needed`, `not_requested`.
 */
export type StepResult = StepOutcome | 'not_automated' | 'done_by_hand' | 'skipped' | 'not_needed' | 'not_requested';

export interface StepRecord {
  step: string;
  outcome: StepResult;
  at: string;
  actor: string;
  note: string;
}

export interface PendingApproval {
  step: GatedStep;
  title: string;
  requestedBy: string;
  approvalsNeeded: number;
  approvedBy: string[];
  /** Who may still approve: listed, not the requester, not already approved. */
  eligible: string[];
  escalateAt: string;
  decideBy: string;
  escalated: boolean;
  /** Signed approvals: the nonce a signed decision answers, and whether this step must be signed. */
  nonce?: string;
  signatureRequired?: boolean;
}

export interface IncidentState {
  incidentId: string;
  status: IncidentStatus;
  category?: IncidentCategory;
  severity?: Severity;
  reporter: string;
  summary: string;
  approvers: string[];
  dryRun: boolean;
  /** What the incident is waiting for right now, in a sentence (also in the UI's current details). */
  waitingFor: string;
  triage?: { agreement: TriageVerdict['agreement']; rule: string; note: string; probes: string[] };
  steps: StepRecord[];
  gates: ApprovalGate[];
  pendingApprovals: PendingApproval[];
  /** Steps done by hand: waiting for `confirmStep`, confirmed, or timed out. */
  manualSteps: ManualStepRecord[];
  /** Once the playbook is over: what is still not fixed or not verified (empty when resolved). */
  openItems: string[];
  /** The post-incident review (Markdown), written as the last step; `npm run incident -- review <id>` prints it. */
  review?: string;
  /** The commander's explicit `resolve`, when it was needed and given. */
  resolution?: ResolveRequest & { at: string };
  /** What a human must look at: disagreements, steps not automated, failed compensations. */
  attention: string[];
  /** The emergency auth bypass, once it was turned on (on since, expires at, verified, off). */
  bypass?: BypassRecord;
  timeline: TimelineEvent[];
  /** Signed approvals: the approver registry read when the incident started (public keys and fingerprints). */
  signing?: ApproverRegistry;
  /** The on-call roster the incident decides by (docs/roster.md), as read when it started; routing keys left out. */
  roster?: IncidentRoster;
  /** Who asked our CLI to cancel the incident, checked by the roster's policy (`requestCancel`). */
  cancelRequest?: { by: string; reason?: string; at: string; fingerprint?: string };
  /** Pages sent to the on-call (PagerDuty Events API v2), newest last. */
  pages?: PageRecord[];
  /** Opened by detection (the watch, an alert): who noticed, when, and what reported it since. */
  detection?: DetectionRecord;
  /** After `resolved`, while the review is a draft: the commander's findings and action items. */
  postIncident?: PostIncidentRecord;
  /** The incident's thread in the Slack app's channel, once its first notification opened it. */
  chat?: { channel: string; ts: string };
}

/** The incident's detection: the one it was opened for, and the reports that joined or cleared since. */
export interface DetectionRecord {
  detectedBy: string;
  detectedAt: string;
  /** When the incident workflow started: MTTD is `openedAt - detectedAt`. */
  openedAt: string;
  /** Every report received (the opening one included), recorded or only counted. */
  reports: number;
  /** Detection lines in the timeline (incident-detection.ts bounds them). */
  lines: number;
  /** What each source (dedup key) reported last: a repeat of it is counted, not listed again. */
  last: Record<string, 'firing' | 'cleared'>;
  /** The last report that said the trouble cleared, while nothing else fires since. */
  clearedAt?: string;
}

/** Detection reports written into the timeline at most; later ones are counted in `state.detection.reports`. */
export const MAX_DETECTION_LINES = 40;
/** Report sources (dedup keys) remembered at most; a report from a source beyond them is counted only. */
export const MAX_DETECTION_KEYS = 50;

/**
 * `recordDetection`: the watch or an alert saw this incident's trouble again (`firing`: it joins)
 * or saw it clear (`cleared`). Only adds to the timeline (and, for a clear before any decision,
 * the channel); it never closes or decides anything, so it takes no approver.
 */
export const recordDetectionSchema = detectionSchema.extend({ kind: z.enum(['firing', 'cleared']), dedupKey: detectionSchema.shape.dedupKey.unwrap() });
export type RecordDetectionRequest = z.input<typeof recordDetectionSchema>;
export interface RecordDetectionAnswer {
  incidentId: string;
  /** False when the report was only counted: the same source already reported the same thing. */
  recorded: boolean;
  message: string;
}

/** The roster an incident decides by, as its state records it. `nonce`: what a signed update other than a gate decision answers. */
export interface IncidentRoster {
  roster: RecordedRoster;
  nonce: string;
}

/** One page: a step's alert at a target, or a change event. */
export interface PageRecord {
  step: string;
  target: string;
  /** The roster person paged, when the target is a person's. */
  person?: string;
  /** `primary`, `secondary`, `escalation`; `change` for a change event. */
  level: 'primary' | 'secondary' | 'escalation' | 'change';
  action: 'trigger' | 'acknowledge' | 'resolve' | 'change';
  at: string;
  outcome: 'sending' | 'delivered' | 'not_configured' | 'failed';
  note?: string;
}
