/**
 * `incidentWorkflow`: one incident from report to review, and the messages it answers. Triage
 * classifies; the driver opens the incident (notice, `mitigating`), runs the category's playbook
 * (incident-playbooks.ts), moves to `monitoring` and closes it with the review (incident-close.ts).
 * Its messages are in incident-messages.ts, approvals wait in incident-approvals.ts, the steps are
 * `Incident`'s (incident-run.ts, one module per capability), the state and its publishing in
 * incident-state.ts. Deterministic: state lives in plain objects, all I/O happens in activities.
 * Before its history grows dangerous it continues as new with its state (incident-continue.ts).
 */
import { ApplicationFailure, CancellationScope, isCancellation, makeContinueAsNewFunc, setDefaultSignalHandler, setHandler, workflowInfo } from '@temporalio/workflow';
import { CATEGORIES, describeIssues, incidentInputSchema, type IncidentCategory, type IncidentInput } from '../domain';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT } from '../shared';
import { approvalHandler, rejectionHandler, UpdateRefused } from './incident-approvals';
import {
  approveStep,
  confirmOldKeyDeleted,
  confirmStep,
  extendBypass,
  getIncidentState,
  getReview,
  provideNewKey,
  recordDetection,
  completeReview,
  finalizeReview,
  rejectStep,
  requestCancel,
  requestStep,
  resolveIncident,
} from './incident-messages';
import { carriedIncidentSchema, ContinueAsNewRequested, type CarriedIncident } from './incident-continue';
import { PLAYBOOKS } from './incident-playbooks';
import { VERIFY_REMEDY } from './incident-remedies';
import { Incident } from './incident-run';
import type { CompleteReviewRequest, FinalizeReviewRequest, IncidentState, RecordDetectionRequest } from './incident-types';
import { loadApproverRegistry } from './incident-signing';
import { loadRoster } from './incident-roster';
import { cancelRequested, validateCancel } from './incident-requests';
import { Detections } from './incident-detection';

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
  await incident.journal.once('incident_notice', () => incident.postIncidentNotice());
  incident.tracker.setStatus('mitigating');
  const decision = await playbook.mitigate(incident.run);
  incident.tracker.setStatus('monitoring');
  await playbook.monitor?.(incident.run, decision);
  // A remedy's verification, once the playbook reached it (middleware_failure's remedies), is part of the fix: succeeded, or open.
  const fixedWhen = CATEGORIES[category].fixedWhen;
  const reached = incident.tracker.state.steps.some((s) => s.step === VERIFY_REMEDY);
  return incident.ending.openItems(reached && !fixedWhen.includes(VERIFY_REMEDY) ? [...fixedWhen, VERIFY_REMEDY] : fixedWhen);
}

const NOTHING_TO_RUN = 'no category named and none seen: nothing to run. Start a new incident with a category if users still report trouble';

const invalid = (message: string) => ApplicationFailure.create({ type: 'InvalidIncidentInput', message, nonRetryable: true });

/**
 * The state a previous run handed over: only for a run the server says continues another
 * (anyone may start a workflow with two arguments), checked like every input, for this incident.
 */
function carriedFrom(raw: unknown): CarriedIncident | undefined {
  if (raw === undefined || raw === null) return undefined;
  const info = workflowInfo();
  if (!info.continuedFromExecutionRunId) {
    throw invalid('carried state: only a run the incident continued as new itself takes a second argument; start an incident with its input alone');
  }
  const parsed = carriedIncidentSchema.safeParse(raw);
  if (!parsed.success) throw invalid(describeIssues(parsed.error, 'carried'));
  if (parsed.data.state.incidentId !== info.workflowId) throw invalid(`carried.state.incidentId: the state of ${parsed.data.state.incidentId.slice(0, 200)}, not of this incident`);
  return parsed.data;
}

/** Unknown signals are dropped, not kept in memory; the timeline says so at most once a minute. */
const DROPPED_SIGNALS_NOTED_EVERY_MS = 60_000;

export async function incidentWorkflow(rawInput: IncidentInput, rawCarried?: CarriedIncident): Promise<IncidentState> {
  const parsed = incidentInputSchema.safeParse(rawInput);
  if (!parsed.success) throw invalid(describeIssues(parsed.error));
  const input = parsed.data;
  const carried = carriedFrom(rawCarried);
  const incident = new Incident(input, carried);
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
  setHandler(requestCancel, (req) => cancelRequested(tracker, req), { validator: refusing((req) => void validateCancel(tracker, req)) });
  const detections = new Detections(tracker);
  setHandler(completeReview, (req) => incident.ending.phase.complete(req), { validator: refusing<CompleteReviewRequest>((req) => void incident.ending.phase.validateComplete(req)) });
  setHandler(finalizeReview, (req) => incident.ending.phase.finalize(req), { validator: refusing<FinalizeReviewRequest>((req) => void incident.ending.phase.validateFinalize(req)) });

  const dropped = carried?.dropped ?? { count: 0, lastRecordedAt: 0 };
  setDefaultSignalHandler((name) => {
    dropped.count += 1;
    if (Date.now() - dropped.lastRecordedAt < DROPPED_SIGNALS_NOTED_EVERY_MS) return;
    const first = dropped.lastRecordedAt === 0;
    dropped.lastRecordedAt = Date.now();
    const shown = name.replace(/[^\w.:-]/g, '?').slice(0, 80);
    tracker.record('signal', 'runbook', `${dropped.count} unknown signal(s) dropped so far (latest "${shown}"): this incident takes updates only`, { dropped: dropped.count });
    if (first) tracker.attention('unknown signals are being sent to this incident (dropped; its history still grows, it continues as new when large)');
  });

  if (carried) {
    const from = workflowInfo().continuedFromExecutionRunId;
    tracker.record('continue_as_new', 'runbook', `run ${carried.runs + 1} of this incident, continued from run ${from} with its state (${Object.keys(carried.journal).length} step(s) done)`);
  } else {
    tracker.record('report', input.reporter, `incident reported: ${input.summary}`, { category: input.category ?? null, dryRun: input.dryRun });
    detections.opened(input.detection);
  }
  tracker.publish();
  // After the opening detection: a report that reached the incident with its first task (a second source,
  // or the watch's own open retried after a crash) is dispatched here, and joins or is counted; registered
  // earlier it ran first, listed itself before the detection, and was overwritten by it.
  setHandler(recordDetection, (req) => detections.record(req), { validator: refusing<RecordDetectionRequest>((req) => void detections.validate(req)) });

  try {
    // A continued run: the undo of what is applied (the notice, the bypass) registered again.
    if (carried) await incident.restoreCompensations();
    // The on-call roster, recorded before any update is taken; its policy decides them all (incident-roster.ts).
    await incident.journal.once('roster', () => loadRoster(tracker));
    // Signed approvals without a roster: the worker's approver registry, recorded before any gate opens.
    if (!tracker.state.roster) await incident.journal.once('signing', () => loadApproverRegistry(tracker));
    await incident.journal.once('triage', () => incident.verification.triage());
    const category = tracker.state.category;
    const open = category ? await runPlaybook(incident, category) : [NOTHING_TO_RUN];
    await incident.ending.conclude(open);
  } catch (err) {
    if (err instanceof ContinueAsNewRequested) {
      const info = workflowInfo();
      tracker.record('continue_as_new', 'runbook', `history at ${(info.historySize / 1_048_576).toFixed(1)} MiB, ${info.historyLength} events${info.continueAsNewSuggested ? ' (the server suggests continue-as-new)' : ''}: continuing as new with the state`);
      const next = makeContinueAsNewFunc<typeof incidentWorkflow>({ workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT, typedSearchAttributes: info.typedSearchAttributes, ...(info.memo ? { memo: info.memo } : {}) });
      return next(rawInput, incident.carry((carried?.runs ?? 0) + 1, dropped));
    }
    if (isCancellation(err)) {
      await CancellationScope.nonCancellable(() => incident.ending.cancel());
    }
    throw err;
  }
  return tracker.snapshot();
}
