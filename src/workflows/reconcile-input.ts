/**
 * The input of `reconcileUsersWorkflow` (scope, dry run, approval threshold, tuning), its
 * continue-as-new checkpoint and the `decideReconcile` request, as zod schemas: one JSON object
 * each, pasteable into the UI. Workflow code: no Node APIs, no I/O.
 */
import { z } from 'zod';
import { freeText, personSchema, plainLine } from '../domain';
import {
  lastClerkErrorSchema,
  MAX_RECONCILE_FAILURES_KEPT,
  reconcileApprovalSchema,
  reconcileFailureSchema,
  reconcileSamplesSchema,
  reconcileTotalsSchema,
  RECONCILE_STAGES,
} from '../reconcile';
import { userCursorSchema } from '../user-paging';
import { revocationTuningSchema } from './revoke-sessions';
import { timelineEventSchema } from './checkpointed-batches';

const isoTimeSchema = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 time like "2026-11-26T10:00:00Z"' });

/** Whose copies to check: every user, or those created / active in a window. The store sweep for deleted users covers the whole store. */
export const reconcileScopeSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('all') }),
  z.strictObject({ type: z.literal('createdBetween'), from: isoTimeSchema, to: isoTimeSchema.optional() }),
  z.strictObject({ type: z.literal('activeBetween'), from: isoTimeSchema, to: isoTimeSchema.optional() }),
]);
export type ReconcileScope = z.infer<typeof reconcileScopeSchema>;


/** What a run hands the next one on continue-as-new. Internal: starters leave it out. */
export const reconcileCheckpointSchema = z.strictObject({
  startedAt: z.number(),
  stage: z.enum(RECONCILE_STAGES),
  cursor: userCursorSchema,
  delivery: z.enum(['webhook', 'store']).nullable(),
  storeRows: z.number().nullable(),
  usersInScope: z.number().nullable(),
  planned: reconcileTotalsSchema.nullable(),
  totals: reconcileTotalsSchema,
  samples: reconcileSamplesSchema,
  failures: z.array(reconcileFailureSchema).max(MAX_RECONCILE_FAILURES_KEPT),
  failuresDropped: z.number().int().min(0),
  approval: reconcileApprovalSchema.nullable(),
  svixPortalUrl: z.string().nullable(),
  lastError: lastClerkErrorSchema.nullable(),
  batches: z.number().int().min(0),
  runs: z.number().int().min(1),
  lastBatchFinishedAt: z.number().nullable(),
  timeline: z.array(timelineEventSchema).max(1_000),
});
export type ReconcileCheckpoint = z.infer<typeof reconcileCheckpointSchema>;

/** Input of `reconcileUsersWorkflow`: one JSON object, pasteable into the UI's Start Workflow form. */
export const reconcileUsersInputSchema = z.strictObject({
  scope: reconcileScopeSchema.prefault({ type: 'all' }),
  /** Count and sample the differences; deliver and write nothing. */
  dryRun: z.boolean().default(false),
  requestedBy: personSchema,
  reason: freeText(z.string().trim().min(1).max(2_000)),
  incidentId: plainLine(z.string().trim().min(1).max(200)).optional(),
  /** A real run that would deliver more events than this waits for `decideReconcile`; null: never asks, and skips the plan. */
  approvalAbove: z.number().int().min(0).nullable().default(1_000),
  /** How long an approval is awaited before the run ends with nothing delivered. */
  approvalTimeoutSeconds: z.number().int().min(1).max(30 * 86_400).default(86_400),
  /** Also sweep the store for users deleted in Clerk (one count request per 100 stored users). */
  sweepStore: z.boolean().default(true),
  /** Batches in a row interrupted (Clerk, the endpoint or the store down) before the run fails; backoff up to 1 min each. */
  maxInterruptionsInARow: z.number().int().min(1).max(10_000).default(60),
  tuning: revocationTuningSchema.prefault({}),
  checkpoint: reconcileCheckpointSchema.optional(),
});
export type ReconcileUsersInput = z.input<typeof reconcileUsersInputSchema>;
export type ValidReconcileUsersInput = z.output<typeof reconcileUsersInputSchema>;

export const reconcileDecisionSchema = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  approver: personSchema,
  reason: freeText(z.string().trim().max(2_000)).optional(),
});
export type ReconcileDecision = z.input<typeof reconcileDecisionSchema>;
