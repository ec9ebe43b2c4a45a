/**
 * The `webhook_backlog` playbook's reconciliation step: `reconcileUsersWorkflow` as a child of the
 * incident, its outcome and totals recorded as the step's.
 */
import { ApplicationFailure, ChildWorkflowFailure, executeChild, isCancellation } from '@temporalio/workflow';
import type { ManualStep, ValidIncidentInput } from '../domain';
import { totalsLine } from '../reconcile';
import { errorMessage, type IncidentTracker } from './incident-state';
import type { IncidentContext } from './incident-steps';
import { reconcileUsersWorkflow } from './reconcile-users';

/**
 * Runs the reconciliation child and records the step. False when the worker has no user store
 * configured (`ReconcileNotConfigured`): the playbook then hands the step to a person.
 */
export async function reconcileUsersStep(tracker: IncidentTracker, input: ValidIncidentInput, step: string): Promise<boolean> {
  const { state } = tracker;
  const childId = `${state.incidentId}-${step}`;
  const dry = input.dryRun ? ' (dry run)' : '';
  tracker.waitFor(
    `${step}: reconciling the app's user store with Clerk${dry} in child workflow ${childId}; above its approval threshold it waits for decideReconcile there`,
  );
  try {
    const result = await executeChild(reconcileUsersWorkflow, {
      workflowId: childId,
      args: [
        {
          dryRun: input.dryRun,
          requestedBy: state.reporter,
          reason: `incident ${state.incidentId} (${state.category}): ${state.summary}`,
          incidentId: state.incidentId,
        },
      ],
      staticSummary: `${step}: reconcile users and replay missed webhooks${dry} for incident ${state.incidentId}`,
    });
    if (result.svixPortalUrl) tracker.record(step, 'runbook', `Clerk's Svix portal, to retry deliveries there too: ${result.svixPortalUrl}`);
    const details = { childWorkflowId: childId, dryRun: result.dryRun, delivery: result.delivery, planned: result.planned, reconcileTotals: result.totals, left: result.left, samples: result.samples };
    const approval = result.approval;
    if (approval && approval.decision !== 'approved') {
      const why = approval.decision === 'rejected' ? `rejected by ${approval.by}` : 'no decision in time';
      tracker.stepDone(step, approval.decision, 'runbook', `reconciliation not approved (${why}); nothing was delivered`, details);
      tracker.attention(`${step}: ${result.left} difference(s) left, not approved (see ${childId})`);
      return true;
    }
    const note = `${totalsLine(result.totals, result.dryRun)} (${result.delivery ?? 'webhook'} delivery)`;
    tracker.stepDone(step, result.outcome, 'runbook', note, details);
    if (result.outcome !== 'succeeded') tracker.attention(`${step} ${result.outcome}: ${result.left} difference(s) left; the endpoint refused ${result.totals.rejected} (see ${childId})`);
    return true;
  } catch (err) {
    if (isCancellation(err)) throw err;
    if (err instanceof ChildWorkflowFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'ReconcileNotConfigured') {
      tracker.record(step, 'runbook', `not automated on this worker (no user store configured: USER_STORE_URL); handed to a person`, { childWorkflowId: childId });
      return false;
    }
    tracker.stepDone(step, 'failed', 'runbook', `reconciliation workflow ${childId} failed: ${errorMessage(err)}`, { childWorkflowId: childId });
    tracker.attention(`${step} failed: ${errorMessage(err)}`);
    return true;
  }
}

export interface ReconciliationStep {
  /**
   * Reconcile the app's user store with Clerk through `reconcileUsersWorkflow` (a child workflow);
   * false when the worker has no user store configured and the step goes to a person.
   */
  reconcileUsers(step: ManualStep): Promise<boolean>;
}

export class Reconciliation implements ReconciliationStep {
  constructor(private readonly ctx: IncidentContext) {}

  reconcileUsers(step: ManualStep): Promise<boolean> {
    return reconcileUsersStep(this.ctx.tracker, this.ctx.input, step);
  }
}
