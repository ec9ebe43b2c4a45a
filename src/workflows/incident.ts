/**
 * `incidentWorkflow`: one incident from report to review. Deterministic: state lives in plain
 * objects, all I/O happens in activities.
 */
import {
  ApplicationFailure,
  defineQuery,
  proxyActivities,
  setHandler,
  setCurrentDetails,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  CATEGORY_SEVERITY,
  describeIssues,
  incidentInputSchema,
  type IncidentCategory,
  type IncidentStatus,
  type Severity,
  type TimelineEvent,
  type ValidIncidentInput,
} from '../domain';
import { IncidentCategoryKey, IncidentSeverityKey, IncidentStatusKey } from '../shared';


export interface IncidentState {
  incidentId: string;
  status: IncidentStatus;
  category?: IncidentCategory;
  severity?: Severity;
  reporter: string;
  summary: string;
  waitingFor: string;
  timeline: TimelineEvent[];
}

const RECOVERY_CHECK_EVERY = '5 minutes';
const RECOVERY_MAX_CHECKS = 24;

export const getIncidentState = defineQuery<IncidentState>('getIncidentState');

const probes = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumAttempts: 5 },
});

export async function incidentWorkflow(rawInput: unknown): Promise<IncidentState> {
  const parsed = incidentInputSchema.safeParse(rawInput);
  if (!parsed.success) {
    throw ApplicationFailure.create({
      type: 'InvalidIncidentInput',
      message: describeIssues(parsed.error),
      nonRetryable: true,
    });
  }
  const input: ValidIncidentInput = parsed.data;
  const state: IncidentState = {
    incidentId: workflowInfo().workflowId,
    status: 'triage',
    category: input.category,
    severity: input.category ? CATEGORY_SEVERITY[input.category] : undefined,
    reporter: input.reporter,
    summary: input.summary,
    waitingFor: 'triage: probing the Clerk status page',
    timeline: [],
  };
  setHandler(getIncidentState, () => state);

  const record = (step: string, actor: string, description: string, details?: Record<string, unknown>) => {
    state.timeline.push({ time: new Date().toISOString(), step, actor, description, details });
  };
  const publish = () => {
    setCurrentDetails(
      [
        `**Status:** ${state.status}`,
        `**Category:** ${state.category ?? 'unknown (triage decides)'}`,
        `**Severity:** ${state.severity ?? 'unknown'}`,
        `**Waiting for:** ${state.waitingFor}`,
      ].join('\n\n'),
    );
    upsertSearchAttributes([
      { key: IncidentStatusKey, value: state.status },
      ...(state.category ? [{ key: IncidentCategoryKey, value: state.category }] : []),
      ...(state.severity ? [{ key: IncidentSeverityKey, value: state.severity }] : []),
    ]);
  };

  record('report', input.reporter, `incident reported: ${input.summary}`, { category: input.category ?? null });
  publish();

  const status = await probes.probeStatusPage.executeWithOptions(
    { summary: 'triage: Clerk status page' },
    [{ timeoutMs: 5000 }],
  );
  record('triage', 'runbook', `Clerk status page says "${status.description}" (indicator ${status.indicator})`, {
    ...status,
  });

  if (status.indicator !== 'none') {
    // Clerk reports trouble: watch for recovery on a durable timer rather than closing early.
    state.status = 'monitoring';
    let checks = 0;
    let latest = status;
    while (latest.indicator !== 'none' && checks < RECOVERY_MAX_CHECKS) {
      checks += 1;
      state.waitingFor = `Clerk to recover (status page: ${latest.indicator}); check ${checks} of ${RECOVERY_MAX_CHECKS} in ${RECOVERY_CHECK_EVERY}`;
      publish();
      await sleep(RECOVERY_CHECK_EVERY, { summary: `monitoring: next Clerk status check (${checks}/${RECOVERY_MAX_CHECKS})` });
      latest = await probes.probeStatusPage.executeWithOptions(
        { summary: `monitoring: Clerk status page, check ${checks}` },
        [{ timeoutMs: 5000 }],
      );
    }
    record(
      'monitoring',
      'runbook',
      latest.indicator === 'none'
        ? `Clerk recovered after ${checks} check(s)`
        : `Clerk still reports ${latest.indicator} after ${checks} checks; handing over to a human`,
      { checks, indicator: latest.indicator },
    );
  }

  state.status = 'resolved';
  state.waitingFor = 'nothing: incident closed';
  record('close', 'runbook', 'incident closed');
  publish();
  return state;
}
