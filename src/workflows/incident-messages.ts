/**
 * The messages `incidentWorkflow` answers, defined once for the workflow and its clients (CLI,
 * drills, tests, the review): one JSON object per update, as the UI's Send an Update form passes
 * it. Imports types only, so a client or an activity never pulls in workflow code.
 */
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { Review } from '../review/build';
import type {
  ApproveRequest,
  CancelAnswer,
  CancelRequest,
  ConfirmAnswer,
  ConfirmOldKeyDeletedRequest,
  ConfirmRequest,
  Decision,
  ExtendBypassAnswer,
  ExtendBypassRequest,
  IncidentState,
  KeyRotationAnswer,
  ProvideNewKeyRequest,
  CompleteReviewRequest,
  FinalizeReviewRequest,
  ReviewPhaseAnswer,
  RecordDetectionAnswer,
  RecordDetectionRequest,
  RejectRequest,
  ResolveAnswer,
  ResolveRequest,
  StepRequest,
  StepRequestAnswer,
} from './incident-types';

export const getIncidentState = defineQuery<IncidentState>('getIncidentState');
/** The post-incident review once written (Markdown, and the same as JSON); null before. */
export const getReview = defineQuery<{ markdown: string; review: Review } | null>('getReview');
export const approveStep = defineUpdate<Decision, [ApproveRequest]>('approveStep');
export const rejectStep = defineUpdate<Decision, [RejectRequest]>('rejectStep');
export const requestStep = defineUpdate<StepRequestAnswer, [StepRequest]>('requestStep');
/** A step done by hand is done: `{ step, confirmedBy, note }`. */
export const confirmStep = defineUpdate<ConfirmAnswer, [ConfirmRequest]>('confirmStep');
/** The commander closes an incident the runbook could not verify: `{ resolvedBy, summary }`. */
export const resolveIncident = defineUpdate<ResolveAnswer, [ResolveRequest]>('resolve');
/** The new key's reference: `{ ref, providedBy, note? }`. */
export const provideNewKey = defineUpdate<KeyRotationAnswer, [ProvideNewKeyRequest]>('provideNewKey');
/** The old key is deleted in the Clerk Dashboard: `{ confirmedBy, note? }`. The runbook then proves it. */
export const confirmOldKeyDeleted = defineUpdate<KeyRotationAnswer, [ConfirmOldKeyDeletedRequest]>('confirmOldKeyDeleted');
/** An approver keeps the bypass on longer: `{ approver, extendBy: "30m", reason }`. */
export const extendBypass = defineUpdate<ExtendBypassAnswer, [ExtendBypassRequest]>('extendBypass');
/**
 * Our CLI's cancel, before it cancels the workflow: `{ cancelledBy, reason? }`, checked by the
 * roster's policy (action cancel) and recorded; a cancel from elsewhere (UI, temporal CLI) is not checked.
 */
export const requestCancel = defineUpdate<CancelAnswer, [CancelRequest]>('requestCancel');
/**
 * The watch or an alert reports this incident's trouble again or cleared:
 * `{ kind: "firing" | "cleared", detectedBy, detectedAt, dedupKey, evidence }`. Timeline only; closes nothing.
 */
export const recordDetection = defineUpdate<RecordDetectionAnswer, [RecordDetectionRequest]>('recordDetection');
/** The commander's findings during the post-incident phase (docs/review.md): `{ completedBy, rootCause?, …, actionItems? }`. */
export const completeReview = defineUpdate<ReviewPhaseAnswer, [CompleteReviewRequest]>('completeReview');
/** The review is final: `{ finalizedBy, note? }`; the incident's workflow closes with it. */
export const finalizeReview = defineUpdate<ReviewPhaseAnswer, [FinalizeReviewRequest]>('finalizeReview');
