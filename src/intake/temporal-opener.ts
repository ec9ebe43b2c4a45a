/**
 * The intake's `IncidentOpener` on Temporal: one incident workflow per category and deployment,
 * under a deterministic workflow id, started with `workflowIdConflictPolicy: 'USE_EXISTING'` so
 * that any number of concurrent or repeated alerts (a burst, Alertmanager's retries, two intake
 * processes) lead to one running execution; the server decides, no lookup races it. Once that
 * incident is closed, the next alert starts a new run under the same id.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { incidentInputSchema, type IncidentCategory, type IncidentInput } from '../domain';
import { incidentWorkflow } from '../workflows/incident';
import { INCIDENT_WORKFLOW_TASK_TIMEOUT } from '../shared';
import { IntakeConfigError } from './rules';
import { oneLine, type AlertResolvedNotice, type AlertResolvedResult, type IncidentOpener, type OpenOrJoinRequest, type OpenOrJoinResult } from './server';

/** The id of the open incident of a category in a deployment, shared by every detection source. */
export const detectedIncidentId = (deployment: string, category: IncidentCategory): string => `incident-${deployment}-${category}`;

export interface TemporalOpenerOptions {
  client: Client;
  taskQueue: string;
  /** ALERT_DEPLOYMENT: what the incidents belong to, part of the workflow id. */
  deployment: string;
  approvers: string[];
  /** The categories the rules map to: each is checked at construction, so missing approvers fail at start-up, not at 3 a.m. */
  categories?: readonly IncidentCategory[];
}

/** The incident input refused what the alert would give it (the request was still single-line and bounded). */
export class AlertIncidentInputInvalid extends Error {
  override readonly name = 'AlertIncidentInputInvalid' as const;
}

const MAX_SUMMARY = 2000;

/** The incident input has no detection fields yet: the detection goes into its summary (and the memo). */
function summaryOf(req: OpenOrJoinRequest): string {
  const head = `Alert (${req.severity}) detected by ${req.detectedBy}, firing since ${req.startsAt}:`;
  const text = [head, ...req.evidence].join('\n');
  return text.length <= MAX_SUMMARY ? text : `${text.slice(0, MAX_SUMMARY - 1)}…`;
}

const inputOf = (req: OpenOrJoinRequest, approvers: string[]) => ({ category: req.category, reporter: oneLine(req.detectedBy, 200), summary: summaryOf(req), approvers });

export function createTemporalIncidentOpener(opts: TemporalOpenerOptions): IncidentOpener {
  const { client } = opts;
  const problems = (opts.categories ?? []).flatMap((category) => {
    const probe = inputOf({ category, severity: 'critical', dedupKey: 'k', detectedBy: 'alert:receiver', startsAt: new Date(0).toISOString(), evidence: [] }, opts.approvers);
    const parsed = incidentInputSchema.safeParse(probe);
    return parsed.success ? [] : parsed.error.issues.map((i) => `${category}: ${i.path.join('.')}: ${i.message}`);
  });
  if (problems.length) throw new IntakeConfigError(`ALERT_APPROVERS: ${problems.join('; ')}`);
  return {
    async openOrJoin(req: OpenOrJoinRequest): Promise<OpenOrJoinResult> {
      const workflowId = detectedIncidentId(opts.deployment, req.category);
      const raw = inputOf(req, opts.approvers);
      const parsed = incidentInputSchema.safeParse(raw);
      if (!parsed.success) throw new AlertIncidentInputInvalid(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      // The memo marks who started the run: the start answer does not say whether it started one or found one.
      const startToken = randomUUID();
      const handle = await client.workflow.start(incidentWorkflow, {
        taskQueue: opts.taskQueue,
        workflowId,
        args: [raw satisfies IncidentInput],
        workflowIdConflictPolicy: 'USE_EXISTING',
        workflowTaskTimeout: INCIDENT_WORKFLOW_TASK_TIMEOUT,
        memo: { detectedBy: req.detectedBy, detectedAt: req.startsAt, severity: req.severity, dedupKey: oneLine(req.dedupKey, 1000), startToken },
        staticSummary: oneLine(`Incident (${req.category}, ${req.severity}) detected by ${req.detectedBy}`, 400),
        staticDetails: `Detected by ${req.detectedBy} at ${req.startsAt}.\n${req.evidence.join('\n')}`,
      });
      const description = await handle.describe();
      return { incidentId: workflowId, joined: description.memo?.startToken !== startToken };
    },

    async alertResolved(notice: AlertResolvedNotice): Promise<AlertResolvedResult> {
      const workflowId = detectedIncidentId(opts.deployment, notice.category);
      try {
        const description = await client.workflow.getHandle(workflowId).describe();
        // The incident workflow has no message for "the alert cleared" yet: the intake logs it (alert_resolved).
        return description.status.name === 'RUNNING' ? { incidentId: workflowId, recorded: false } : { recorded: false };
      } catch (e) {
        if (e instanceof WorkflowNotFoundError) return { recorded: false };
        throw e;
      }
    },
  };
}
