/**
 * `incidentWorkflow`: one incident from report to review, and the messages it answers. Triage
 * classifies; the driver opens the incident (notice, `mitigating`), runs the category's playbook
 * (incident-playbooks.ts), moves to `monitoring` and closes it with the review (incident-close.ts).
 * Its messages are in incident-messages.ts, approvals wait in incident-approvals.ts, the steps are
 * `Incident`'s (incident-run.ts, one module per capability), the state and its publishing in
 * incident-state.ts. Deterministic: state lives in plain objects, all I/O happens in activities.
 */
import { ApplicationFailure, CancellationScope, isCancellation, setHandler } from '@temporalio/workflow';
import { CATEGORIES, describeIssues, incidentInputSchema, type IncidentCategory, type IncidentInput } from '../domain';
import { approvalHandler, rejectionHandler, UpdateRefused } from './incident-approvals';
import {
  approveStep,
  confirmOldKeyDeleted,
  confirmStep,
  extendBypass,
  getIncidentState,
  getReview,
  provideNewKey,
  rejectStep,
  requestStep,
  resolveIncident,
} from './incident-messages';
import { PLAYBOOKS } from './incident-playbooks';
import { Incident } from './incident-run';
import type { IncidentState } from './incident-types';
import { loadApproverRegistry } from './incident-signing';

export * from './incident-messages';
export * from './incident-types';

/** A validator whose refusals reach the caller as non-retryable `UpdateRefused` failures. */
function refusing<T>(check: (req: T) => void): (req: T) => void {
  return (req) => {
    try {
      check(req);
    } catch (err) {
      if (err instanceof UpdateRefused) throw ApplicationFailure.create({ type: 'UpdateRefused', message: err.message, nonRetryable: true });
      throw err;
    }
  };
}

/** What every playbook shares, around what is particular to its category. Returns what is still open. */
async function runPlaybook(incident: Incident, category: IncidentCategory): Promise<string[]> {
  const playbook = PLAYBOOKS[category];
  await incident.postIncidentNotice();
  incident.tracker.setStatus('mitigating');
  const decision = await playbook.mitigate(incident);
  incident.tracker.setStatus('monitoring');
  await playbook.monitor?.(incident, decision);
  return incident.ending.openItems(CATEGORIES[category].fixedWhen);
}

const NOTHING_TO_RUN = 'no category named and none seen: nothing to run. Start a new incident with a category if users still report trouble';

export async function incidentWorkflow(rawInput: IncidentInput): Promise<IncidentState> {
  const parsed = incidentInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: 'InvalidIncidentInput', message: describeIssues(parsed.error), nonRetryable: true });
  }
  const input = parsed.data;
  const incident = new Incident(input);
  const { tracker, optionalSteps, manualSteps, resolution } = incident;
  const approvals = approvalHandler(tracker);
  const rejections = rejectionHandler(tracker);

  setHandler(getIncidentState, () => tracker.snapshot());
  setHandler(getReview, () => incident.ending.review ?? null);
  setHandler(approveStep, (req) => approvals.decide(req), { validator: refusing((req) => approvals.validate(req)) });
  setHandler(rejectStep, (req) => rejections.decide(req), { validator: refusing((req) => rejections.validate(req)) });
  setHandler(requestStep, (req) => optionalSteps.request(req), { validator: refusing((req) => void optionalSteps.validate(req)) });
  setHandler(confirmStep, (req) => manualSteps.confirm(req), { validator: refusing((req) => void manualSteps.validate(req)) });
  setHandler(resolveIncident, (req) => resolution.resolve(req), { validator: refusing((req) => void resolution.validate(req)) });
  setHandler(provideNewKey, (req) => incident.rotation.inbox.provideNewKey(req), { validator: refusing((req) => void incident.rotation.inbox.validateNewKey(req)) });
  setHandler(confirmOldKeyDeleted, (req) => incident.rotation.inbox.confirmDeleted(req), { validator: refusing((req) => void incident.rotation.inbox.validateDeleted(req)) });
  setHandler(extendBypass, (req) => incident.bypass.extend(req), { validator: refusing((req) => void incident.bypass.validateExtend(req)) });

  tracker.record('report', input.reporter, `incident reported: ${input.summary}`, { category: input.category ?? null, dryRun: input.dryRun });
  tracker.publish();

  try {
    // Signed approvals: the worker's approver registry, recorded before any gate opens.
    await loadApproverRegistry(tracker);
    await incident.verification.triage();
    const category = tracker.state.category;
    const open = category ? await runPlaybook(incident, category) : [NOTHING_TO_RUN];
    await incident.ending.conclude(open);
  } catch (err) {
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => incident.ending.cancel());
    }
    throw err;
  }
  return tracker.snapshot();
}
